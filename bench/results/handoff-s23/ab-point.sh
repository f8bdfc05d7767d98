#!/bin/bash
# One handoff scenario (bench/lib/point.cjs, 400 handoffs), old and new tree alternated,
# with the 1-min load average. usage: ab-point.sh OLD NEW OUTDIR SCENARIO_JSON [pairs]
set -u
OLD=$1; NEW=$2; OUT=$(realpath -m "$3"); SC=$4; PAIRS=${5:-10}
mkdir -p "$OUT"
SPEC="{\"engine\":\"handoff\",\"dataDir\":\"/tmp/ho23-pt\",\"scenario\":$SC,\"iterations\":400,\"maxMs\":20000}"
for p in $(seq 1 "$PAIRS"); do
  for tree in old new; do
    T=$OLD; [ $tree = new ] && T=$NEW
    L=$(cut -d' ' -f1 /proc/loadavg)
    R=$(cd "$T" && node bench/lib/point.cjs "$SPEC" 2>/dev/null | tail -1)
    echo "$tree $p load $L $R" >> "$OUT/raw.txt"
    echo "$R" | python3 -c "import json,sys; d=json.load(sys.stdin); print('$tree', $p, 'load $L', 'handoff p50/p99', d['handoffP50us'], d['handoffP99us'], 'fromSubmit p50/p99', d['fromSubmitP50us'], d['fromSubmitP99us'], 'wakes', d.get('wakes'))" >> "$OUT/summary.txt"
  done
done
