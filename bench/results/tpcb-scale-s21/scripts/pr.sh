#!/bin/bash
mkdir -p ${WORK:-/tmp/tpcb-s21}
# usage: pr.sh TREE P OUT -> perf record (children inherited) over the measured window
T=$1; P=$2; O=$3
F=${WORK:-/tmp/tpcb-s21}/ctl$$; rm -f $F; mkfifo $F
export TPCB_PERF_CTL=$F
W=${WARM:-$((2000+500*P))}
NODE_OPTIONS=--perf-basic-prof perf record -F 1999 -g -o $O -D -1 --control fifo:$F \
 node $T/bench/tpcb/point.cjs "{\"engine\":\"rm\",\"kind\":\"tpcb\",\"procs\":$P,\"sessions\":16,\"durationMs\":${DUR:-3000},\"warmupMs\":$W,\"dataDir\":\"${WORK:-/tmp/tpcb-s21}/d$$\",\"mode\":\"fork\",\"g\":{\"scale\":${SCALE:-1}},\"historyRows\":${HR:-100000}}" 2>/dev/null > ${WORK:-/tmp/tpcb-s21}/out$$.json
python3 -c "import json,sys; d=json.load(open('${WORK:-/tmp/tpcb-s21}/out$$.json')); print('tps',d['commitsPerSec'],'cpu/commit',d['cpuPerCommitUs'],'commits',d['commits'])"
rm -f $F
