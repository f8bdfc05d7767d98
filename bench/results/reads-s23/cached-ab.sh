#!/bin/bash
# cached-reads at 4 KiB QD 1, 1 and 2 processes, OLD and NEW alternated (PAIRS pairs),
# each tree's own bench against fio and Node in the same run. Usage: cached-ab.sh OLD NEW OUT [PAIRS]
OLD=$1; NEW=$2; OUT=$3; PAIRS=${4:-3}
mkdir -p "$OUT"
for i in $(seq 1 "$PAIRS"); do
  for side in old new; do
    t=$OLD; [ $side = new ] && t=$NEW
    echo "pair $i $side load1 $(cut -d' ' -f1 /proc/loadavg)"
    (cd "$t" && node bench/run.cjs cached-reads --qd=1 --procs=1,2 --bs=4 --data-dir=/tmp/r23/bench-data --out="$OUT/$side-$i" >/dev/null 2>&1)
    grep '^| 4k' "$OUT/$side-$i/cached-reads.md" | awk -F'|' '{print "  procs" $4 ": rm " $5 " fio-io_uring " $8 " rm/fio-io_uring " $12}'
  done
done
