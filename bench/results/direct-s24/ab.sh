#!/bin/bash
# Old and new tree alternated, one bench/direct-waits.cjs run each, with the 1-min load.
# usage: ab.sh OLD NEW OUTFILE SCENARIO PAIRS [--all-reap]
set -u
OLD=$1; NEW=$2; OUT=$(realpath -m "$3"); SC=$4; PAIRS=$5; EXTRA=${6:-}
for p in $(seq 1 "$PAIRS"); do
  for tree in old new; do
    T=$OLD; [ $tree = new ] && T=$NEW
    L=$(cut -d' ' -f1 /proc/loadavg)
    R=$(cd "$T" && timeout 120 node bench/direct-waits.cjs "$SC" 400 $EXTRA 2>/dev/null | tail -1)
    echo "$tree $p load $L $R" >> "$OUT"
  done
done
