#!/bin/bash
# ab.sh OLD NEW [env...]: cpu-ab in both orders, prints load before/after
echo "load $(cut -d' ' -f1 /proc/loadavg)"
node /work/wt/qd1r25/bench/cpu-ab.cjs $1 $2 | sed 's/; reaped.*//'
node /work/wt/qd1r25/bench/cpu-ab.cjs $2 $1 | sed 's/; reaped.*//'
echo "load $(cut -d' ' -f1 /proc/loadavg)"
