#!/bin/bash
# "A busy (JS spins 5 ms), B reaps", alternated: the kernel's slice, a 100 µs slice for B's
# watcher threads, and for B's watcher and JS threads (prototype env switches of this
# branch's first slice commit); then the C floor with A busy, with and without the slice.
# usage: slice-ab.sh TREE OUTDIR [rounds]
set -u
T=$1; OUT=$2; R=${3:-3}
mkdir -p "$OUT"
cc -O2 -o /tmp/rm-slice-handoff "$T/bench/wake/handoff.c"
for r in $(seq 1 "$R"); do
  for v in ${VARIANTS:-off watcher watcher+js}; do
    rm -rf /tmp/rm-slice-d
    W=; J=
    [ $v != off ] && W=100
    [ $v = watcher+js ] && J=100
    l=$(cut -d' ' -f1 /proc/loadavg)
    res=$(env ${W:+RINGMASTER_PROTO_WATCHER_SLICE_US=$W} ${J:+RINGMASTER_PROTO_JS_SLICE_US=$J} node "$T/bench/lib/point.cjs" '{"engine":"handoff","dataDir":"/tmp/rm-slice-d","scenario":{"id":"a-busy-b-reaps","aReaper":false,"bReaper":true,"pmReaper":false,"busyMs":5},"iterations":400,"maxMs":20000}' 2>/dev/null | grep -o '"handoffP50us[^,]*,"handoffP99us[^,]*,"handoffMaxUs[^,]*')
    echo "round $r slice=$v load=$l $res" | tee -a "$OUT/log.txt"
  done
  for s in 0 100; do
    for m in futex ring; do
      echo "round $r floor load=$(cut -d' ' -f1 /proc/loadavg) $(/tmp/rm-slice-handoff $m 400 5 $s)" | tee -a "$OUT/log.txt"
    done
  done
done
