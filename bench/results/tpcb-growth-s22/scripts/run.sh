#!/bin/bash
mkdir -p ${WORK:-/tmp/g22}
# usage: run.sh TREE P OUTPREFIX  (env SCALE WARM DUR HR SLICE)
T=$1; P=$2; O=$3
rm -f $O.slices
TPCB_SLICES=$O.slices TPCB_SLICE_MS=${SLICE:-10000} node $T/bench/tpcb/point.cjs "{\"engine\":\"rm\",\"kind\":\"tpcb\",\"procs\":$P,\"sessions\":16,\"durationMs\":${DUR:-3000},\"warmupMs\":${WARM:-40000},\"dataDir\":\"${WORK:-/tmp/g22}/d$$\",\"mode\":\"fork\",\"g\":{\"scale\":${SCALE:-1}},\"historyRows\":${HR:-3000000}}" 2>$O.err > $O.json
python3 -c "import json,sys; d=json.load(open('$O.json')); print(json.dumps({k:d.get(k) for k in ['error','commitsPerSec','cpuPerCommitUs','cswPerCommit','poolPages','dataPages']}))"
