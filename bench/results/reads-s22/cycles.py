#!/usr/bin/env python3
"""Per-cycle timing of one process's O_DIRECT reads from a `perf record -a -e
io_uring:io_uring_submit_req,io_uring:io_uring_complete,block:block_rq_issue` trace:
usage: perf script -i X.data -F comm,tid,cpu,time,event,trace | cycles.py
A cycle starts when read CQEs (result > 0) follow issues. For each: device wait (the last
issue before it -> its first read CQE), the turn (first read CQE -> first new block issue),
reads per burst of CQEs; and the time-weighted count of reads between block issue and CQE."""
import sys, re, collections
rows = [l.split(None, 5) for l in sys.stdin if 'io_uring_submit_req' in l or 'io_uring_complete' in l or 'block_rq_issue' in l]
cnt = collections.Counter(r[1] for r in rows if 'submit_req' in r[4])
pid = cnt.most_common(1)[0][0]
ev = []
for r in rows:
    if r[1] != pid and 'io_uring_complete' not in r[4]:
        continue
    t = float(r[3].rstrip(':')) * 1e6
    if 'io_uring_complete' in r[4]:
        m = re.search(r'result (-?\d+)', r[5])
        if r[1] != pid or not m or int(m.group(1)) <= 0:
            continue
        ev.append((t, 'c'))
    elif 'block_rq_issue' in r[4]:
        ev.append((t, 'i'))
dev, turn, burst = [], [], []
state, last_issue, first_c, n = None, None, None, 0
q, area, t_prev, q_min = 0, 0.0, None, 0
for t, k in ev:
    if t_prev is not None:
        area += q * (t - t_prev)
    t_prev = t
    if k == 'c':
        q -= 1
        if state != 'c':
            if last_issue is not None:
                dev.append(t - last_issue)
            first_c = t
            if n: burst.append(n)
            n = 0
            state = 'c'
        n += 1
    else:
        q += 1
        if state == 'c':
            turn.append(t - first_c)
            state = 'i'
        last_issue = t
    q_min = min(q_min, q)
span = ev[-1][0] - ev[0][0]
def p(a, f):
    a = sorted(a)
    return a[min(len(a) - 1, int(f * len(a)))] if a else float('nan')
reads = sum(1 for _, k in ev if k == 'c')
print(f"pid {pid}: {reads} reads in {span/1e3:.0f} ms ({reads/span*1e6:.0f}/s), {len(dev)} cycles; "
      f"device wait p50 {p(dev,.5):.0f} us p90 {p(dev,.9):.0f}; turn (first CQE -> first new issue) p50 {p(turn,.5):.0f} us p90 {p(turn,.9):.0f}; "
      f"CQEs per burst p50 {p(burst,.5)}; reads between issue and CQE, time-weighted mean {area/span - q_min:.1f}")
