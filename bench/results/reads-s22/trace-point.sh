#!/bin/bash
# One O_DIRECT random-read point (1 process) under perf, for ringmaster, fio io_uring or
# Node fs with UV_USE_IO_URING=1 at the same bs/QD:
#  1. system-wide tracepoint and syscall counts over the whole run (perf stat -a);
#  2. a second run: the device's reads in flight, /sys/block/<dev>/inflight (the tags
#     the device holds), sampled every ~1 ms for 1 s in the middle of the run.
#     (block_rq_complete misses batched completions on this kernel, so issue/complete
#     tracing cannot count the queue.)
# usage: trace-point.sh <rm|rm-threads|fio|node-uring> <bs> <qd> [ms] [outdir]
# env: BENCH_FILE (default /tmp/ringmaster-bench-0/bench.dat, made by `npm run bench`),
#      BENCH_DEV (default vda), CACHED=1 (buffered reads: the file must be in the page cache)
set -e
eng=$1; bs=$2; qd=$3; ms=${4:-3000}; out=${5:-/tmp/r22trace}
root=$(cd "$(dirname "$0")/../../.." && pwd)
mkdir -p "$out"
file=${BENCH_FILE:-/tmp/ringmaster-bench-0/bench.dat}
dev=${BENCH_DEV:-vda}
size=$((512*1024*1024))
direct=true; d=1
if [ "${CACHED:-0}" = 1 ]; then direct=false; d=0; fi
spec="{\"engine\":\"ENGINE\",\"file\":\"$file\",\"dataDir\":\"/tmp/ringmaster-bench-0\",\"fileSize\":$size,\"bs\":$bs,\"depth\":$qd,\"procs\":${PROCS:-1},\"direct\":$direct,\"durationMs\":$ms}"
case $eng in
  rm) cmd=(node "$root/bench/lib/point.cjs" "${spec/ENGINE/ringmaster}");;
  rm-threads) cmd=(env RINGMASTER_BACKEND=threads node "$root/bench/lib/point.cjs" "${spec/ENGINE/ringmaster}");;
  node-uring) cmd=(env UV_USE_IO_URING=1 node "$root/bench/lib/point.cjs" "${spec/ENGINE/node}");;
  fio) cmd=(fio --name=bench --filename=$file --size=$size --rw=randread --bs=$bs --direct=$d --ioengine=io_uring --iodepth=$qd --numjobs=${PROCS:-1} --group_reporting --time_based --runtime=${ms}ms --norandommap --randrepeat=0 --invalidate=0 --output-format=json);;
esac
tag=$eng-$((bs/1024))k-qd$qd${TAG:-}
ev=io_uring:io_uring_submit_req,io_uring:io_uring_queue_async_work,io_uring:io_uring_complete,io_uring:io_uring_task_add,io_uring:io_uring_task_work_run,block:block_rq_issue,block:block_rq_insert,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,raw_syscalls:sys_enter,context-switches,task-clock
perf stat -a -x, -e "$ev" -o "$out/$tag.stat" -- "${cmd[@]}" > "$out/$tag.json" 2>"$out/$tag.err" || true
echo "$tag run 1: $(grep -o '"iops" *: *[0-9.]*' "$out/$tag.json" | head -1)"
[ "${NOQD:-0}" = 1 ] && exit 0
"${cmd[@]}" > "$out/$tag.2.json" 2>/dev/null &
pid=$!
sleep "$(awk -v ms="$ms" 'BEGIN { print ms / 3000 + 0.5 }')"
python3 - "$dev" <<'PY' | tee "$out/$tag.qd"
import sys, time
f = f"/sys/block/{sys.argv[1]}/inflight"
v = []
end = time.monotonic() + 1.0
while time.monotonic() < end:
    with open(f) as fh: v.append(int(fh.read().split()[0]))
    time.sleep(0.001)
v.sort()
print(f"device reads in flight ({len(v)} samples over 1 s): mean {sum(v)/len(v):.1f}, p10 {v[len(v)//10]}, p50 {v[len(v)//2]}, p90 {v[9*len(v)//10]}")
PY
wait $pid || true
echo "$tag run 2: $(grep -o '"iops" *: *[0-9.]*' "$out/$tag.2.json" | head -1)"
