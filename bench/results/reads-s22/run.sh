#!/bin/bash
# Everything in this folder, in order (about 10 minutes on the 2-core VM). OLD: a checkout
# of the code before (git worktree add /work/wt/reads22-base <commit>; cp -a node_modules;
# npm run install && npm run build:ts), NEW: this tree, built. Needs perf and fio.
# usage: bench/results/reads-s22/run.sh OLD NEW [outdir]
set -u
old=$1; new=$2; out=${3:-$new/bench/results/reads-s22}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
log() { echo "== $* (load $(cut -d' ' -f1-3 /proc/loadavg))"; }
# 1. one cycle of 32 reads traced (4 KiB QD 32, O_DIRECT): from the first CQE to the first new block request
cyc() {  # label tree
  local spec='{"engine":"ringmaster","file":"/tmp/ringmaster-bench-0/bench.dat","dataDir":"/tmp/ringmaster-bench-0","fileSize":536870912,"bs":4096,"depth":32,"procs":1,"direct":true,"durationMs":2500}'
  node "$2/bench/lib/point.cjs" "$spec" > /dev/null & local pid=$!
  sleep 1.2
  perf record -q -a -e io_uring:io_uring_submit_req,io_uring:io_uring_complete,block:block_rq_issue -o /tmp/r22-cyc.data -- sleep 0.3 2>/dev/null
  wait $pid
  echo "$1: $(perf script -i /tmp/r22-cyc.data -F comm,tid,cpu,time,event,trace 2>/dev/null | python3 "$here/cycles.py")"
}
{
  log cycles
  for i in 1 2; do cyc old "$old"; cyc new "$new"; done
  log fio cycles
  fio --name=b --filename=/tmp/ringmaster-bench-0/bench.dat --size=536870912 --rw=randread --bs=4096 --direct=1 --ioengine=io_uring --iodepth=32 --time_based --runtime=2500ms --norandommap --randrepeat=0 --invalidate=0 >/dev/null & pid=$!
  sleep 1.2; perf record -q -a -e io_uring:io_uring_submit_req,io_uring:io_uring_complete,block:block_rq_issue -o /tmp/r22-cyc.data -- sleep 0.3 2>/dev/null; wait $pid
  echo "fio: $(perf script -i /tmp/r22-cyc.data -F comm,tid,cpu,time,event,trace 2>/dev/null | python3 "$here/cycles.py")"
} 2>&1 | tee "$out/cycles.txt"
# 2. tracepoint and syscall counts per engine at 4 KiB QD 32 (new tree), and the device's queue
for e in rm fio node-uring; do "$here/trace-point.sh" $e 4096 32 3000 "$out/trace"; done 2>&1 | tee "$out/trace-point.txt"
# 3. alternated before/after pairs, 1 process, O_DIRECT
"$here/ab-point.sh" "$old" "$new" true 3 4096:8 4096:32 8192:8 8192:32 4096:128 8192:128 2>&1 | tee "$out/ab-cold-1proc-final.txt"
# 4. alternated pairs, 2 processes, cached 4 KiB QD 1 (the file read into the page cache first)
cat /tmp/ringmaster-bench-0/bench.dat > /dev/null
PROCS=2 "$here/ab-point.sh" "$old" "$new" false 4 4096:1 2>&1 | tee "$out/ab-cached-2proc.txt"
# 5. CPU per cached read, both builds in one process (and its forked worker) alternated
{
  for i in 1 2; do PROCS=2 ROUNDS=20 node "$new/bench/cpu-ab.cjs" "$old" "$new"; done
  QD=16 PROCS=2 ROUNDS=20 node "$new/bench/cpu-ab.cjs" "$old" "$new"
  ROUNDS=20 node "$new/bench/cpu-ab.cjs" "$old" "$new"
  QD=16 ROUNDS=20 node "$new/bench/cpu-ab.cjs" "$old" "$new"
  echo "load $(cat /proc/loadavg)"
} 2>&1 | tee "$out/cpu-ab-final.txt"
