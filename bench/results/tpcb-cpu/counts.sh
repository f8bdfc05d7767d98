#!/bin/bash
# Per-transaction counts of one TPC-B point in its measured window only (perf stat, started
# and stopped by bench/tpcb/point.cjs through TPCB_PERF_CTL), with uprobes on the native
# functions that wake other processes. Needs perf (Debian: apt-get install linux-perf), root.
# usage: bench/results/tpcb-cpu/counts.sh P [scale] [tree=.]   (16 sessions per worker, 3 s)
set -e
P=$1; S=${2:-1}; cd "${3:-.}"
L=$PWD/build/Release/ringmaster.node
W=$((2000 + 500 * P))
EV=""
perf probe -q -d 'probe_ringmaster:*' 2>/dev/null || true
for f in ring_slot wake_word_waiters wal_release_flusher wal_publish wal_try_flusher content_lock_wait_end; do
  a=$(nm -C "$L" | grep -E " T rm::$f\(" | awk '{print $1}')
  perf probe -q -x "$L" -a "$f=0x$a" >/dev/null 2>&1 && EV="$EV -e probe_ringmaster:$f"
done
F=$(mktemp -u); mkfifo "$F"; OUT=$(mktemp)
SPEC="{\"engine\":\"rm\",\"kind\":\"tpcb\",\"procs\":$P,\"sessions\":16,\"durationMs\":3000,\"warmupMs\":$W,\"dataDir\":\"/tmp/rm-tpcb-counts\",\"g\":{\"scale\":$S},\"historyRows\":100000,\"mode\":\"fork\"}"
TPCB_PERF_CTL=$F perf stat -D -1 --control fifo:"$F" -x, $EV -e task-clock -e sched:sched_switch -e sched:sched_wakeup \
  -e raw_syscalls:sys_enter -e syscalls:sys_enter_futex -e syscalls:sys_enter_epoll_pwait -e syscalls:sys_enter_io_uring_enter \
  -o "$OUT" -- node bench/tpcb/point.cjs "$SPEC" > "$OUT.json" 2>/dev/null
perf probe -q -d 'probe_ringmaster:*' || true
rm -f "$F"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
d = json.load(open(out + '.json'))
n = d['commits']
print(f"tps {d['commitsPerSec']} cpu/c {d['cpuPerCommitUs']} p50 {d['p50us']} p99 {d['p99us']} lockWaits/c {d['poolPerCommit']['lockWaits']} fdatasyncs/c {d['fdatasyncsPerCommit']}")
for line in open(out):
    f = line.strip().split(',')
    if len(f) < 3 or not f[0] or f[0].startswith('#'): continue
    try: x = float(f[0])
    except ValueError: continue
    print('  %-34s %.3f per transaction' % (f[2].replace('probe_ringmaster:', ''), x / n * (1000 if f[2] == 'task-clock' else 1)))
PY
rm -f "$OUT" "$OUT.json"
