#!/bin/bash
# usage: pin.sh MODE OUT  (MODE: split = worker1->cpu0 worker2->cpu1; same = both workers on cpu0; none)
MODE=$1; O=$2
rm -rf /tmp/g25/*
TPCB_SLICES=$O.slices TPCB_SLICE_MS=5000 node bench/tpcb/point.cjs '{"engine":"rm","kind":"tpcb","procs":2,"sessions":16,"durationMs":3000,"warmupMs":40000,"dataDir":"/tmp/g25/d1","mode":"fork","g":{"scale":1},"historyRows":2500000}' > /dev/null 2>&1 &
sleep 4
W=$(pgrep -f bench/tpcb/worker.cjs)
echo workers $W
i=0
for p in $W; do
  case $MODE in split) c=$((i%2));; same) c=0;; *) c=0-1;; esac
  for t in /proc/$p/task/*; do taskset -pc $c ${t##*/} >/dev/null; done
  i=$((i+1))
done
wait
python3 -c "
import json
for l in open('$O.slices'):
    d=json.loads(l); print(d['s'], d['tps'], d['cpuUsPerTx'], d['byThread'], d['volPerTx'])"
