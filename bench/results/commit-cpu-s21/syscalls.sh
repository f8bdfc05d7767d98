#!/usr/bin/env bash
# Syscalls per commit of one committing session (append 100 bytes + flush), by kind: the
# difference between a run of 6000 and one of 1000 commits (startup cancels), over 5000.
#   bash bench/results/commit-cpu-s21/syscalls.sh [tree=.]
set -euo pipefail
cd "${1:-.}"
EV='raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_futex'
count() { perf stat -x, -e "$EV" -- node bench/commit-cost.cjs ringmaster "$1" 2>&1 >/dev/null | awk -F, '$3 ~ /sys/ {print $3"="$1}'; }
a=$(count 1000); b=$(count 6000)
python3 - "$a" "$b" <<'PY'
import sys
p=lambda s: dict((l.split('=')[0], float(l.split('=')[1])) for l in s.split())
a,b=p(sys.argv[1]),p(sys.argv[2])
print(' '.join(f"{k.split(':')[-1].replace('sys_enter_','')}={(b[k]-a[k])/5000:.2f}" for k in a))
PY
