#!/bin/bash
mkdir -p ${WORK:-/tmp/tpcb-s21}
# usage: iot.sh TREE P OUT [extra json]  -> perf record -a of io_uring/block tracepoints over the window
T=$1; P=$2; O=$3; EX=${4:-}
F=${WORK:-/tmp/tpcb-s21}/ctl$$; rm -f $F; mkfifo $F
export TPCB_PERF_CTL=$F
W=${WARM:-$((2000+500*P))}
perf record -a -o $O -D -1 --control fifo:$F -e io_uring:io_uring_submit_req,io_uring:io_uring_complete,io_uring:io_uring_task_work_run,block:block_rq_complete,workqueue:workqueue_execute_start,workqueue:workqueue_execute_end \
 node $T/bench/tpcb/point.cjs "{\"engine\":\"rm\",\"kind\":\"tpcb\",\"procs\":$P,\"sessions\":16,\"durationMs\":${DUR:-3000},\"warmupMs\":$W,\"dataDir\":\"${WORK:-/tmp/tpcb-s21}/d$$\",\"mode\":\"fork\",\"g\":{\"scale\":${SCALE:-1}},\"historyRows\":100000$EX}" 2>/dev/null > ${WORK:-/tmp/tpcb-s21}/out$$.json
python3 -c "import json; d=json.load(open('${WORK:-/tmp/tpcb-s21}/out$$.json')); print('tps',d['commitsPerSec'],'cpu/commit',d['cpuPerCommitUs'],'p50',d['p50us'],'p99',d['p99us'],'fds/c',d['fdatasyncsPerCommit'],'walDirect',d['walDirect'],d['walSync'])"
rm -f $F
