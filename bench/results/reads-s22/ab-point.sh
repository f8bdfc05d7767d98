#!/bin/bash
# Alternated before/after pairs of one ringmaster read point (1 process by default):
# usage: ab-point.sh OLD_TREE NEW_TREE <direct: true|false> <pairs> <bs:qd> [<bs:qd> ...]
# env: MS (ms per point, default 2000), PROCS (default 1), BENCH_FILE (default the bench's file)
old=$1; new=$2; direct=$3; pairs=$4; shift 4
file=${BENCH_FILE:-/tmp/ringmaster-bench-0/bench.dat}
run() {  # tree bs qd -> "iops p50 cpu/op"
  local spec="{\"engine\":\"ringmaster\",\"file\":\"$file\",\"dataDir\":\"$(dirname "$file")\",\"fileSize\":536870912,\"bs\":$2,\"depth\":$3,\"procs\":${PROCS:-1},\"direct\":$direct,\"durationMs\":${MS:-2000}}"
  node "$1/bench/lib/point.cjs" "$spec" | python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().split('\n')[-1]); print(d.get('iops'), d.get('p50us'), d.get('cpuPerOpUs'), d.get('error') or '')"
}
for p in "$@"; do
  bs=${p%:*}; qd=${p#*:}
  for i in $(seq "$pairs"); do
    if [ $((i % 2)) = 1 ]; then a=$(run "$old" $bs $qd); b=$(run "$new" $bs $qd); else b=$(run "$new" $bs $qd); a=$(run "$old" $bs $qd); fi
    echo "bs=$bs qd=$qd procs=${PROCS:-1} pair $i: old $a | new $b | load1 $(cut -d' ' -f1 /proc/loadavg)"
  done
done
