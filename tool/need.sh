#!/bin/sh
# need.sh -- make sure the Debian packages the project needs are installed.
#
#   tool/need.sh PACKAGE...
#
# Installs the missing ones with apt-get when running as root (running
# "apt-get update" first); otherwise prints the exact command to run and
# fails.  Packages already installed cost nothing.
missing=""
for pkg in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    missing="$missing $pkg"
  fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "need.sh: installing$missing"
  apt-get update -qq >/dev/null && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  status=$?
  [ $status -eq 0 ] || echo "need.sh: apt-get failed (exit $status) for:$missing" >&2
  exit $status
fi
echo "need.sh: missing packages:$missing" >&2
echo "need.sh: run this, then try again:  sudo apt-get install -y$missing" >&2
exit 1
