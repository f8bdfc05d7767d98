#!/usr/bin/env python3
# Break each handoff of a traced `point.cjs` handoff run into hops.
# usage: perf record -k mono -a -e <events in README> -- node bench/lib/point.cjs '{...,"samplesOut":"S.json"}'
#        perf script -F comm,pid,tid,cpu,time,event,trace --ns > T.txt;  hops.py S.json T.txt
import json, re, sys, bisect
samples = json.load(open(sys.argv[1]))
A, B = samples['aPid'], samples['bPid']
ev = []  # (t_ns, pid, tid, cpu, event, trace)
rx = re.compile(r'^\s*(.+?)\s+(-?\d+)/(-?\d+)\s+\[(\d+)\]\s+(\d+)\.(\d+):\s+(\S+):\s?(.*)$')
for line in open(sys.argv[2]):
    m = rx.match(line)
    if not m: continue
    pid, tid = int(m.group(2)), int(m.group(3))
    e, tr = m.group(7), m.group(8)
    if pid not in (A, B) and not (e.startswith('sched:') and (f'pid={A}' in tr or f'pid={B}' in tr or 'next_pid' in tr)):
        continue
    t = int(m.group(5)) * 10**9 + int(m.group(6).ljust(9, '0')[:9])
    ev.append((t, pid, tid, int(m.group(4)), e, tr))
ev.sort(key=lambda x: x[0])
ts = [x[0] for x in ev]
btids = {x[2] for x in ev if x[1] == B}
watchers = {x[2] for x in ev if x[1] == B and x[4] == 'syscalls:sys_exit_epoll_wait'}
def first(t0, t1, pred):
    i = bisect.bisect_left(ts, t0)
    while i < len(ev) and ev[i][0] <= t1:
        if pred(ev[i]): return ev[i]
        i += 1
    return None
def wake_of(tid):
    return lambda x: x[4] == 'sched:sched_waking' and re.search(rf'\bpid={tid}\b', x[5])
def run_of(tid):
    return lambda x: x[4] == 'sched:sched_switch' and re.search(rf'next_pid={tid}\b', x[5])
def cpu_running_at(cpu, t):  # who ran on `cpu` just before t (last switch-in)
    i = bisect.bisect_left(ts, t) - 1
    while i >= 0 and ts[i] > t - 50_000_000:
        x = ev[i]
        if x[3] == cpu and x[4] == 'sched:sched_switch':
            m = re.search(r'next_comm=(.*?) next_pid=(\d+)', x[5]); return int(m.group(2)), m.group(1)
        i -= 1
    return None, None
rows = []
for s in samples['samples']:
    t1, tw = s['t1'], s['tWake']
    lo = s['t0'] - 5000
    r = {'handoff': (tw - t1) / 1e3}
    ent = first(lo, tw, lambda x: x[2] == A and x[4] == 'syscalls:sys_exit_io_uring_enter')
    r['enterExit'] = ent[0] if ent else None
    base = ent[0] if ent else t1
    # the first wake of a B thread after A's enter began
    w = first(lo, tw, lambda x: x[4] == 'sched:sched_waking' and any(re.search(rf'\bpid={b}\b', x[5]) for b in btids))
    r['firstWake'] = w
    # watcher hop (if a B watcher ran between)
    ww = first(lo, tw, lambda x: x[4] == 'sched:sched_waking' and any(re.search(rf'\bpid={b}\b', x[5]) for b in watchers))
    if ww:
        wt = int(re.search(r'\bpid=(\d+)', ww[5]).group(1))
        r['wWaking'] = ww[0]; r['wWaker'] = ww[1:4]; r['wTarget'] = int(re.search(r'target_cpu=(\d+)', ww[5]).group(1))
        run = first(ww[0], tw, run_of(wt)); r['wRun'] = run[0] if run else None
        r['wOnCpuBefore'] = cpu_running_at(r['wTarget'], ww[0])
        ep = first(ww[0], tw, lambda x: x[2] == wt and x[4] == 'syscalls:sys_exit_epoll_wait'); r['wEpoll'] = ep[0] if ep else None
    jw = first(lo, tw, lambda x: x[4] == 'sched:sched_waking' and re.search(rf'\bpid={B}\b', x[5]))
    if jw:
        r['jWaking'] = jw[0]; r['jWaker'] = jw[1:4]; r['jTarget'] = int(re.search(r'target_cpu=(\d+)', jw[5]).group(1))
        run = first(jw[0], tw, run_of(B)); r['jRun'] = run[0] if run else None
        r['jOnCpuBefore'] = cpu_running_at(r['jTarget'], jw[0])
        ep = first(jw[0], tw, lambda x: x[2] == B and x[4] == 'syscalls:sys_exit_epoll_pwait'); r['jEpoll'] = ep[0] if ep else None
    r['t1'] = t1; r['tWake'] = tw
    rows.append(r)
def d(a, b):
    return None if a is None or b is None else (b - a) / 1e3
hops = {
    "A enter exit -> A's JS t1": lambda r: d(r.get('enterExit'), r['t1']),
    'A enter exit -> watcher waking': lambda r: d(r.get('enterExit'), r.get('wWaking')),
    'watcher waking -> watcher runs': lambda r: d(r.get('wWaking'), r.get('wRun')),
    'watcher runs -> B JS waking (reap + futex wake)': lambda r: d(r.get('wRun'), r.get('jWaking')),
    'A enter exit -> B JS waking': lambda r: d(r.get('enterExit'), r.get('jWaking')),
    'B JS waking -> B JS runs': lambda r: d(r.get('jWaking'), r.get('jRun')),
    'B JS runs -> epoll_pwait returns': lambda r: d(r.get('jRun'), r.get('jEpoll')),
    'epoll_pwait returns -> B JS resumes (loop, N-API, promise)': lambda r: d(r.get('jEpoll'), r['tWake']),
    'A enter exit -> B JS resumes': lambda r: d(r.get('enterExit'), r['tWake']),
    'handoff (t1 -> tWake)': lambda r: r['handoff'],
}
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))] if v else None
print(f"A={A} B={B} watcher tids={sorted(watchers)} samples={len(rows)}")
print('| hop | n | p50 µs | p90 µs | p99 µs | max µs |\n|---|---|---|---|---|---|')
for k, f in hops.items():
    v = [x for x in (f(r) for r in rows) if x is not None]
    if v: print(f'| {k} | {len(v)} | {pct(v,50):.1f} | {pct(v,90):.1f} | {pct(v,99):.1f} | {max(v):.1f} |')
# placement: where was each wakee put, and what ran there
for who, tk, ck in (('watcher', 'wTarget', 'wWaker'), ('B JS', 'jTarget', 'jWaker')):
    same = [r for r in rows if r.get(tk) is not None and r[ck][2] == r[tk]]
    n = sum(1 for r in rows if r.get(tk) is not None)
    if not n: continue
    runk = 'wRun' if who == 'watcher' else 'jRun'
    wk = 'wWaking' if who == 'watcher' else 'jWaking'
    lat_same = [d(r[wk], r[runk]) for r in same if r.get(runk)]
    lat_other = [d(r[wk], r[runk]) for r in rows if r.get(tk) is not None and r not in same and r.get(runk)]
    print(f"{who}: placed on the waker's CPU {len(same)}/{n}; wake->run p50/p99/max µs there: "
          f"{pct(lat_same,50) if lat_same else '-'} / {pct(lat_same,99) if lat_same else '-'} / {max(lat_same) if lat_same else '-'}; "
          f"elsewhere: {pct(lat_other,50) if lat_other else '-'} / {pct(lat_other,99) if lat_other else '-'} / {max(lat_other) if lat_other else '-'}")
slow = sorted(rows, key=lambda r: -r['handoff'])[:8]
print('slowest handoffs:')
for r in slow:
    print(f"  {r['handoff']:.0f} µs: watcher wake->run {d(r.get('wWaking'), r.get('wRun'))} (cpu {r.get('wTarget')}, waker {r.get('wWaker')}, running there {r.get('wOnCpuBefore')}); "
          f"B JS wake->run {d(r.get('jWaking'), r.get('jRun'))} (cpu {r.get('jTarget')}, waker {r.get('jWaker')}, running there {r.get('jOnCpuBefore')}); epoll->JS {d(r.get('jEpoll'), r['tWake'])}")
