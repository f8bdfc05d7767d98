#!/bin/bash
# For a quiet machine (about 2 minutes): does a second cached reader at QD 1 cost the first
# CPU per read, in ringmaster (pair-ab.cjs, alternated in one run) and in C (floor.c), and
# do two busy processes slow each other's cores (spin.c)? Usage: quiet-check.sh BUILD
set -e
here=$(cd "$(dirname "$0")" && pwd); B=${1:-$(cd "$here/../../.." && pwd)}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
gcc -O2 -o "$T/floor" "$here/floor.c"; gcc -O2 -o "$T/spin" "$here/spin.c"
dd if=/dev/urandom of="$T/file" bs=1M count=64 status=none; cat "$T/file" > /dev/null
echo "load1 $(cut -d' ' -f1 /proc/loadavg)"
for pat in seq random; do PATTERN=$pat ROUNDS=30 node "$here/pair-ab.cjs" "$B" | tail -1; done
for i in 1 2; do "$T/spin" 1 300000000 ilp; "$T/spin" 2 300000000 ilp; done
for i in 1 2; do for m in "1 own" "2 shared" "2 own"; do "$T/floor" "$T/file" $m 2000000 random; done; done
echo "load1 $(cut -d' ' -f1 /proc/loadavg)"
