#!/bin/bash
mkdir -p ${WORK:-/tmp/tpcb-s21}
# usage: ps.sh TREE P -> perf stat (children inherited) over the measured window
T=$1; P=$2
F=${WORK:-/tmp/tpcb-s21}/ctl$$; rm -f $F; mkfifo $F
export TPCB_PERF_CTL=$F
W=${WARM:-$((2000+500*P))}
perf stat -x, -o ${WORK:-/tmp/tpcb-s21}/perf$$.txt -D -1 --control fifo:$F -e task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_fdatasync,syscalls:sys_enter_pwrite64,sched:sched_wakeup,sched:sched_switch,syscalls:sys_enter_sched_yield \
 node $T/bench/tpcb/point.cjs "{\"engine\":\"rm\",\"kind\":\"tpcb\",\"procs\":$P,\"sessions\":16,\"durationMs\":${DUR:-3000},\"warmupMs\":$W,\"dataDir\":\"${WORK:-/tmp/tpcb-s21}/d$$\",\"mode\":\"fork\",\"g\":{\"scale\":${SCALE:-1}},\"historyRows\":${HR:-100000}}" 2>/dev/null > ${WORK:-/tmp/tpcb-s21}/out$$.json
python3 - ${WORK:-/tmp/tpcb-s21}/out$$.json ${WORK:-/tmp/tpcb-s21}/perf$$.txt <<'PY'
import json,sys
d=json.load(open(sys.argv[1])); n=d['commitsPerSec']*3
print('tps',d['commitsPerSec'],'cpu/commit',d['cpuPerCommitUs'],'p50',d['p50us'],'p99',d['p99us'],'fds/c',d['fdatasyncsPerCommit'], 'commits',d['commits'])
for l in open(sys.argv[2]):
    p=l.strip().split(',')
    if len(p)>3 and p[0] and p[0][0].isdigit():
        print('  %-40s %10.3f /commit'%(p[2], float(p[0])/d['commits']))
PY
rm -f $F
