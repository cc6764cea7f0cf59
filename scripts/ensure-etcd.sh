#!/usr/bin/env bash
# Makes sure Debian's etcd 3.4 (etcd + etcdctl) is installed: the tests and the demo start real members.
set -euo pipefail
if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "etcd is not installed. Install Debian's etcd as root first:  apt-get update && apt-get install -y etcd-server etcd-client" >&2
  exit 1
fi
echo "installing Debian's etcd-server and etcd-client ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq etcd-server etcd-client >/dev/null
# The package registers a service; nothing here starts it (no systemd), and the tests start their own members.
etcd --version | head -1 >&2
