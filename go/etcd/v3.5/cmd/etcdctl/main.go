// etcdctl 3.5 (API v3), built from etcd's own module at the version go.mod pins.
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }
