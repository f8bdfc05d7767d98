#!/bin/bash
# usage: BASE=<old checkout> NEW=<new checkout> ab.sh OUTFILE ROUNDS "P list" ; env SCALE, DUR, WARM, HR
# Alternates base/new per point; one line per run with the 1-min load average.
D=$(cd "$(dirname "$0")" && pwd)
O=$1; R=$2; PL=$3
for r in $(seq 1 $R); do for P in $PL; do for T in base new; do
  TREE=$NEW; [ $T = base ] && TREE=$BASE
  L=$(cut -d' ' -f1 /proc/loadavg)
  res=$($D/pt.sh $TREE $P)
  echo "round=$r P=$P scale=${SCALE:-1} tree=$T load1=$L $res" | tee -a $O
done; done; done
