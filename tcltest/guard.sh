#!/bin/sh
# guard.sh -- run a server for a test, and stop it when the test ends.
#
#   sh guard.sh LOG COMMAND [ARG...]
#
# Starts COMMAND in the background under timeout(1), its output going to
# LOG, and prints the process id of that timeout.  Then it reads its own
# standard input until it ends: the test closes it when it is done, and
# the kernel closes it when the test process dies, however it dies.  Then
# it stops COMMAND (SIGTERM, which timeout passes on) and waits for it.
# A HUP, INT or TERM to the guard stops COMMAND as well, and COMMAND never
# outlives 15 minutes.
log=$1
shift
timeout -k 10 900 "$@" >"$log" 2>&1 </dev/null &
pid=$!
echo $pid
stop() {
  kill $pid 2>/dev/null
  wait $pid 2>/dev/null
}
trap 'stop; exit 0' HUP INT TERM
while read -r _; do :; done
stop
