// etcd 3.6's server, built from etcd's own module at the version go.mod pins
// (etcd's go.mod replace directives stop a plain go install of it).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
