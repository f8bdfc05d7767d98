#!/bin/bash
# `npm run bench -- handoff`, alternated between two trees (old first), with the 1-min load
# average before and after each run. usage: ab-bench.sh OLD_TREE NEW_TREE OUTDIR [pairs]
set -u
OLD=$1; NEW=$2; OUT=$(realpath -m "$3"); PAIRS=${4:-3}
mkdir -p "$OUT"
for p in $(seq 1 "$PAIRS"); do
  for tree in old new; do
    T=$OLD; [ $tree = new ] && T=$NEW
    echo "== $tree-$p load $(cut -d' ' -f1 /proc/loadavg) $(date -u +%T)" >> "$OUT/log.txt"
    (cd "$T" && npm run -s bench -- handoff --data-dir=/tmp/ho23-data --out="$OUT/ho-$tree-$p" > /dev/null 2>&1)
    echo "   end load $(cut -d' ' -f1 /proc/loadavg) $(date -u +%T)" >> "$OUT/log.txt"
  done
done
