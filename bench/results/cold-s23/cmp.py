#!/usr/bin/env python3
# cmp.py A B ... : per-read CPU (µs) by dso and top symbols (prof.sh: cpu-clock sampled every 20 µs; reads = SQEs / 2 from its perf stat)
import subprocess, sys, collections
def stat(f):
    d = {}
    for line in open(f + '.stat'):
        p = line.strip().split(',')
        if len(p) > 2 and p[0] and p[0][0].isdigit(): d[p[2]] = float(p[0])
    return d
def load(f):
    out = subprocess.run(['perf', 'script', '-i', f + '.data', '-F', 'ip,sym,dso'], capture_output=True, text=True).stdout
    by_dso = collections.Counter(); by_sym = collections.Counter(); n = 0
    for line in out.splitlines():
        line = line.strip()
        if not line: continue
        parts = line.split(None, 1)
        rest = parts[1] if len(parts) > 1 else ''
        dso = rest[rest.rfind('(') + 1:-1] if '(' in rest else '?'
        sym = rest[:rest.rfind('(')].strip() if '(' in rest else rest
        dso = dso.split('/')[-1]
        if dso.startswith('perf-'): dso = 'JIT'
        by_dso[dso] += 1; by_sym[(dso, sym)] += 1; n += 1
    return n, by_dso, by_sym
P = 20.0
top = int(sys.argv[1]) if sys.argv[1].isdigit() else 40
for f in [a for a in sys.argv[1:] if not a.isdigit()]:
    st = stat(f); n, d, s = load(f)
    reads = st.get('io_uring:io_uring_submit_req', 0) / 2
    per = lambda x: x * P / reads
    print(f'== {f}: {reads:.0f} reads in 2 s; CPU/read: sampled {per(n):.2f} us, task-clock {st.get("task-clock",0)*1000/reads:.2f} us (msec->us)')
    for k in ['context-switches', 'cpu-migrations', 'io_uring:io_uring_complete', 'syscalls:sys_enter_epoll_pwait', 'syscalls:sys_enter_epoll_wait', 'syscalls:sys_enter_io_uring_enter']:
        if k in st: print(f'   per read: {k:36s} {st[k] / reads:.3f}')
    for k, v in d.most_common(8): print(f'   {k:28s} {per(v):6.2f}')
    print('   top symbols:')
    for (dd, ss), v in s.most_common(top): print(f'     {per(v):6.2f}  {dd[:14]:14s} {ss[:100]}')
