#!/bin/bash
# Context switches and syscalls of the whole b-reaps handoff run (driver, postmaster, A, B
# and all their threads; perf stat follows forks), old and new tree alternated; divide by
# the 405 handoffs (5 warm-up). usage: counts.sh OLD_TREE NEW_TREE OUTDIR [pairs]
set -u
OLD=$1; NEW=$2; OUT=$(realpath -m "$3"); PAIRS=${4:-2}
mkdir -p "$OUT"
SPEC='{"engine":"handoff","dataDir":"/tmp/ho23-cnt","scenario":{"id":"b-reaps","aReaper":false,"bReaper":true,"pmReaper":false},"iterations":400,"maxMs":20000}'
for p in $(seq 1 "$PAIRS"); do
  for tree in old new; do
    T=$OLD; [ $tree = new ] && T=$NEW
    echo "== $tree-$p load $(cut -d' ' -f1 /proc/loadavg) $(date -u +%T)" >> "$OUT/counts.txt"
    (cd "$T" && perf stat -x, -e context-switches,syscalls:sys_enter_futex,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_read,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_wait \
      -o "$OUT/perf-$tree-$p.csv" -- node bench/lib/point.cjs "$SPEC" > "$OUT/point-$tree-$p.json" 2>/dev/null)
    cat "$OUT/perf-$tree-$p.csv" >> "$OUT/counts.txt"
  done
done
