#!/bin/bash
mkdir -p ${WORK:-/tmp/tpcb-s21}
# usage: pt.sh TREE P [extra json] -> runs a tpcb point with the scale bench warmup
T=$1; P=$2; EX=${3:-}
W=${WARM:-$((2000+500*P))}
node $T/bench/tpcb/point.cjs "{\"engine\":\"rm\",\"kind\":\"tpcb\",\"procs\":$P,\"sessions\":16,\"durationMs\":${DUR:-3000},\"warmupMs\":$W,\"dataDir\":\"${WORK:-/tmp/tpcb-s21}/d$$\",\"mode\":\"fork\",\"g\":{\"scale\":${SCALE:-1}},\"historyRows\":${HR:-100000}$EX}" 2>${WORK:-/tmp/tpcb-s21}/err$$.txt | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({k:d.get(k) for k in ['error','commitsPerSec','p50us','p99us','cpuPerCommitUs','cswPerCommit','pmCswPerCommit','fdatasyncsPerCommit']}), json.dumps({k:v for k,v in (d.get('poolPerCommit') or {}).items() if v}))"
