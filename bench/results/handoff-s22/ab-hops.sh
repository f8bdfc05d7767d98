#!/bin/bash
# Alternated before/after of the idle handoff scenarios, each traced (sched + epoll/enter
# exits) and broken into hops by hops.py. usage: ab-hops.sh BASE_TREE NEW_TREE OUTDIR [pairs]
set -u
BASE=$1; NEW=$2; OUT=$3; PAIRS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
for p in $(seq 1 "$PAIRS"); do
  for tree in base new; do
    T=$BASE; [ $tree = new ] && T=$NEW
    for sc in '"id":"b-reaps","aReaper":false,"bReaper":true,"pmReaper":false' '"id":"a-reaps","aReaper":true,"bReaper":false,"pmReaper":false'; do
      id=$(echo "$sc" | sed 's/.*"id":"\([^"]*\)".*/\1/')
      tag=$tree-$p-$id
      rm -rf /tmp/rm-ab-hops-d
      echo "== $tag load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$OUT/log.txt"
      perf record -q -k mono -a -o /tmp/rm-ab-hops.data -e sched:sched_waking,sched:sched_switch,syscalls:sys_exit_io_uring_enter,syscalls:sys_exit_epoll_wait,syscalls:sys_exit_epoll_pwait -- \
        node "$T/bench/lib/point.cjs" "{\"engine\":\"handoff\",\"dataDir\":\"/tmp/rm-ab-hops-d\",\"scenario\":{$sc},\"iterations\":400,\"maxMs\":20000,\"samplesOut\":\"$OUT/$tag.json\"}" > "$OUT/$tag.point.json" 2>/dev/null
      perf script -i /tmp/rm-ab-hops.data -F comm,pid,tid,cpu,time,event,trace --ns 2>/dev/null | grep -v '^ *perf ' > /tmp/rm-ab-hops.txt
      python3 "$HERE/hops.py" "$OUT/$tag.json" /tmp/rm-ab-hops.txt > "$OUT/$tag.hops.md"
      grep -E "epoll_pwait returns -> B JS|handoff \(t1" "$OUT/$tag.hops.md" | tee -a "$OUT/log.txt"
    done
  done
done
rm -f /tmp/rm-ab-hops.data /tmp/rm-ab-hops.txt
