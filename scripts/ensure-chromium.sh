#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed: the dashboard's end-to-end tests drive it with
# playwright-core (never a browser downloaded by Playwright).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Chromium is not installed. Install Debian's chromium as root first:  apt-get update && apt-get install -y chromium" >&2
  exit 1
fi
echo "installing Debian's chromium ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version >&2 || true
