#!/bin/bash
# usage: ho.sh SCENARIO_JSON PAIRS QUIETMS... alternates base and new handoff points
SC=$1; N=${2:-3}; shift 2; QS=${@:-2}
for i in $(seq 1 $N); do
  for q in $QS; do
  for root in ${OLD:-/work/wt/reads21-base} ${NEW:-/work/wt/reads21}; do
    spec="{\"engine\":\"handoff\",\"dataDir\":\"${DIR:-/tmp/r21/hd}\",\"scenario\":$SC,\"iterations\":400,\"maxMs\":20000,\"durationMs\":20000,\"quietMs\":$q}"
    l0=$(cut -d' ' -f1 /proc/loadavg)
    out=$(node $root/bench/lib/point.cjs "$spec" 2>/dev/null | tail -1)
    echo "$(basename $root) quiet$q: $(echo "$out" | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(`n ${j.samples} p50 ${j.handoffP50us} p99 ${j.handoffP99us} max ${j.handoffMaxUs} neg ${j.negativeHandoffs} fromSubmit ${j.fromSubmitP50us}/${j.fromSubmitP99us} submitCall ${j.submitCallP50us} reaped ${JSON.stringify(j.reapedBy)}`)') load $l0"
  done; done
done
