#!/bin/bash
# prof.sh MODE OUT : perf record (user+kernel, cpu-clock every 20 µs of CPU) of the reading process for 2 s,
# with a concurrent perf stat counting its SQEs (reads = SQEs / 2), switches and CPU.
MODE=$1; OUT=$2; shift 2
case $MODE in
  rm:*) NODEFLAGS=--perf-basic-prof /tmp/cold23/pt.sh ${MODE#rm:} 5000 > $OUT.json & PID=$!; sleep 2.2;;
  hops:*) /tmp/cold23/hops /tmp/cold23/bench.dat ${MODE#hops:} 400000 > $OUT.json & PID=$!; sleep 1;;
esac
perf stat -x, -e task-clock,context-switches,cpu-migrations,io_uring:io_uring_submit_req,io_uring:io_uring_complete,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_io_uring_enter,syscalls:sys_exit_epoll_pwait,syscalls:sys_exit_epoll_wait -p $PID -o $OUT.stat -- sleep 2 >/dev/null 2>&1 &
SP=$!
perf record -q -c 20000 -e cpu-clock "$@" -o $OUT.data -p $PID -- sleep 2 >/dev/null 2>&1
wait $SP
[ "${MODE%%:*}" = hops ] && kill $PID 2>/dev/null
wait
