#!/bin/bash
# usage: ab.sh OUT ROUNDS "Ps"  (env SCALE WARM DUR HR) alternates base and new trees
OUT=$1; R=$2; PS=$3
for r in $(seq 1 $R); do for P in $PS; do
  if [ $((r % 2)) = 1 ]; then order="base new"; else order="new base"; fi
  for w in $order; do
    T=$NEW; [ $w = base ] && T=$BASE
    l=$(cut -d' ' -f1 /proc/loadavg)
    res=$($(dirname $0)/run.sh $T $P ${WORK:-/tmp/g22}/ab-$w-$P-$r)
    echo "round $r P=$P $w load1=$l $res" | tee -a $OUT
  done
done; done
