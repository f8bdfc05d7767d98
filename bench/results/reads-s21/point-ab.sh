#!/bin/bash
# usage: pt.sh PROCS DEPTH BS PAIRS DIRECT -- alternates base and new point runs
P=$1; D=$2; BS=${3:-4096}; N=${4:-3}; DIRECT=${5:-false}
for i in $(seq 1 $N); do
  for root in ${OLD:-/work/wt/reads21-base} ${NEW:-/work/wt/reads21}; do
    spec="{\"engine\":\"ringmaster\",\"file\":\"${DIR:-/tmp/r21/bd}/bench.dat\",\"dataDir\":\"${DIR:-/tmp/r21/bd}\",\"fileSize\":536870912,\"bs\":$BS,\"depth\":$D,\"procs\":$P,\"direct\":$DIRECT,\"durationMs\":${DUR:-2000},\"warmupMs\":300}"
    out=$(node $root/bench/lib/point.cjs "$spec" 2>/dev/null | tail -1)
    echo "$(basename $root) p$P qd$D bs$BS: $(echo "$out" | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(`iops ${j.iops} cpu/op ${j.cpuPerOpUs} p50 ${j.p50us} p99 ${j.p99us}`)') load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
