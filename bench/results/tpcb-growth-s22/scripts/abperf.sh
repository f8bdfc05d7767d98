#!/bin/bash
# usage: abperf.sh ROUNDS P  (env SCALE WARM DUR HR) alternated perf-recorded runs, base and new
R=$1; P=$2
for r in $(seq 1 $R); do
  if [ $((r % 2)) = 1 ]; then order="base new"; else order="new base"; fi
  for w in $order; do
    T=$NEW; [ $w = base ] && T=$BASE
    l=$(cut -d' ' -f1 /proc/loadavg)
    res=$($(dirname $0)/prun.sh $T $P ${WORK:-/tmp/g22}/pab-$w-$P-$r 2>/dev/null)
    echo "round $r P=$P $w load1=$l $res" | tee -a ${WORK:-/tmp/g22}/pab-$P.txt
  done
done
