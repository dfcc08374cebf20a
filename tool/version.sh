#!/bin/sh
# SPDX-License-Identifier: MIT
# version.sh -- print the version the Python and Node packages are given.
#
#   sh tool/version.sh
#
# The one place the packages take their version from: the file VERSION at
# the top of the repository when there is one, otherwise the
# ATM_VERSION the C sources define (what SELECT atomic_version()
# returns).  The package tests check that the two agree.
cd "$(dirname "$0")/.." || exit 1
if [ -f VERSION ]; then
  v=$(tr -d ' \n' < VERSION)
else
  v=$(sed -n 's/^#define ATM_VERSION "\([^"]*\)".*/\1/p' ext/*.h | head -n 1)
fi
if [ -z "$v" ]; then
  echo "version.sh: no VERSION file and no ATM_VERSION in ext/*.h" >&2
  exit 1
fi
echo "$v"
