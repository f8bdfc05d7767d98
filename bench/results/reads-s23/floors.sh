#!/bin/bash
# The floors, alternated: C io_uring reads (floor.c) with one or two processes, through
# one shared open file description or one each, in cpu-ab's pattern (seq256) and the
# cached-reads bench's (random); then Node loops without ringmaster (scale-floor.cjs).
# Usage: floors.sh FILE ROUNDS
set -e
here=$(cd "$(dirname "$0")" && pwd)
F=${1:-/tmp/r23/file}; R=${2:-3}; N=${N:-2000000}
[ -x /tmp/r23/floor ] || gcc -O2 -o /tmp/r23/floor "$here/floor.c"
for i in $(seq 1 "$R"); do
  echo "== round $i load1 $(cut -d' ' -f1 /proc/loadavg)"
  for pat in seq256 random; do
    /tmp/r23/floor "$F" 1 shared "$N" $pat
    /tmp/r23/floor "$F" 2 shared "$N" $pat
    /tmp/r23/floor "$F" 2 own "$N" $pat
  done
  /tmp/r23/floor "$F" 2 own "$N" random line
done
