// etcdctl 3.5.5 (API v3), the test fixture's etcdctl.
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }
