#!/usr/bin/env python3
# Per-pair table and medians of an ab.sh output file. usage: summarize.py FILE...
import json, statistics, sys
for fn in sys.argv[1:]:
    rows = {}
    for line in open(fn):
        tree, pair, _, load, js = line.split(' ', 4)
        d = json.loads(js)
        rows.setdefault(int(pair), {})[tree] = (float(load), d)
    print(f'## {fn}')
    print('| pair | load old / new | handoff p50 old → new | handoff p99 | from submit start p50 | from submit start p99 | B: CQ wakes / JS reaped (of 400), new |')
    print('|---|---|---|---|---|---|---|')
    keys = ['handoffP50us', 'handoffP99us', 'fromSubmitP50us', 'fromSubmitP99us']
    cols = {k: ([], []) for k in keys}
    lower = {k: 0 for k in keys}
    for p in sorted(rows):
        o, n = rows[p]['old'], rows[p]['new']
        cells = []
        for k in keys:
            cols[k][0].append(o[1][k]); cols[k][1].append(n[1][k])
            lower[k] += n[1][k] < o[1][k]
            cells.append(f'{o[1][k]} → {n[1][k]}')
        w = n[1]['bWakes']
        print(f'| {p} | {o[0]} / {n[0]} | ' + ' | '.join(cells) + f" | {w['cqWakes']} / {w['reapedHere']} |")
    print('| median | | ' + ' | '.join(f'{statistics.median(cols[k][0]):.0f} → {statistics.median(cols[k][1]):.0f}' for k in keys) + ' | |')
    print('| new lower in | | ' + ' | '.join(f'{lower[k]} of {len(rows)}' for k in keys) + ' | |')
    print()
