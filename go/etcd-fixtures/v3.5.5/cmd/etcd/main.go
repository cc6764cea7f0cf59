// etcd 3.5.5, a test fixture, never a supported version: a release with a known defrag
// defect (etcd#14685) that defragd must refuse; built from etcd's own module at the go.mod pin.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
