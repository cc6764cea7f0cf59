#!/usr/bin/env bash
# Makes sure systemd-analyze (Debian's systemd package) is installed: test/systemd-units.test.ts
# checks deploy/systemd/'s units with `systemd-analyze verify`. Nothing of systemd needs to run.
set -euo pipefail
if command -v systemd-analyze >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "systemd-analyze is not installed. Install Debian's systemd package as root first:  apt-get update && apt-get install -y systemd" >&2
  exit 1
fi
echo "installing Debian's systemd (for systemd-analyze) ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends systemd >/dev/null
systemd-analyze --version | head -1 >&2
