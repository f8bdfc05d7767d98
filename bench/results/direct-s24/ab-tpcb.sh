#!/bin/bash
# TPC-B (npm run bench -- tpcb), old and new tree alternated, with the 1-min load.
# usage: ab-tpcb.sh OLD NEW OUTDIR PAIRS [DURATION_MS]
set -u
OLD=$1; NEW=$2; OUT=$(realpath -m "$3"); PAIRS=$4; DUR=${5:-4000}
mkdir -p "$OUT"
for p in $(seq 1 "$PAIRS"); do
  for tree in old new; do
    T=$OLD; [ $tree = new ] && T=$NEW
    L=$(cut -d' ' -f1 /proc/loadavg)
    (cd "$T" && timeout 300 npm run bench -- tpcb --duration=$DUR --out="$OUT/$tree-$p" >/dev/null 2>&1)
    echo "$tree $p load $L" >> "$OUT/log.txt"
  done
done
