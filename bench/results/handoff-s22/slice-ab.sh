#!/bin/bash
# "A busy (JS spins 5 ms), B reaps", alternated: B with the kernel's slice, and B attached
# with wakeSliceUs: 100 (its JS and watcher threads ask for a 100 µs slice); then the C
# floor with A busy 5 ms after its wake, with and without B asking for the slice.
# usage: slice-ab.sh TREE OUTDIR [rounds]
# (The committed log.txt was made with an uncommitted prototype of this branch that set
# the same slice from environment variables: "watcher" = B's watcher threads only,
# "watcher+js" = B's watcher and JS threads, which is what wakeSliceUs: 100 does.)
set -u
T=$1; OUT=$2; R=${3:-3}
mkdir -p "$OUT"
cc -O2 -o /tmp/rm-slice-handoff "$T/bench/wake/handoff.c"
for r in $(seq 1 "$R"); do
  for v in 0 100; do
    rm -rf /tmp/rm-slice-d
    l=$(cut -d' ' -f1 /proc/loadavg)
    res=$(node "$T/bench/lib/point.cjs" "{\"engine\":\"handoff\",\"dataDir\":\"/tmp/rm-slice-d\",\"scenario\":{\"id\":\"a-busy-b-reaps\",\"aReaper\":false,\"bReaper\":true,\"pmReaper\":false,\"busyMs\":5,\"bWakeSliceUs\":$v},\"iterations\":400,\"maxMs\":20000}" 2>/dev/null | grep -o '"handoffP50us[^,]*,"handoffP99us[^,]*,"handoffMaxUs[^,]*')
    echo "round $r wakeSliceUs=$v load=$l $res" | tee -a "$OUT/log.txt"
  done
  for s in 0 100; do
    echo "round $r floor load=$(cut -d' ' -f1 /proc/loadavg) $(/tmp/rm-slice-handoff ring 400 5 $s)" | tee -a "$OUT/log.txt"
  done
done
