#!/bin/bash
# alternated: default young generation vs fixed 1 MiB vs fixed 16 MiB semi-spaces; per-slice tps:CPUµs/tx
cd /work/main
for r in 1 2 3; do
for f in "" "--max-semi-space-size=1" "--min-semi-space-size=16 --max-semi-space-size=16"; do
  rm -rf /tmp/g25/*; rm -f /work/s25/ab.slices
  L=$(cut -d' ' -f1 /proc/loadavg)
  TPCB_SLICES=/work/s25/ab.slices TPCB_SLICE_MS=5000 node $f bench/tpcb/point.cjs '{"engine":"rm","kind":"tpcb","procs":2,"sessions":16,"durationMs":3000,"warmupMs":40000,"dataDir":"/tmp/g25/d1","mode":"fork","g":{"scale":1},"historyRows":2500000}' > /work/s25/ab.json 2>/dev/null
  python3 -c "
import json,statistics as st
S=[json.loads(l) for l in open('/work/s25/ab.slices')][1:-1]
c=[d['cpuUsPerTx'] for d in S]
print('round $r [${f:-default}] load $L  cpu/tx median %.1f max %.1f  tps median %d  slices: %s'%(st.median(c),max(c),st.median([d['tps'] for d in S]),' '.join('%d:%.0f'%(d['tps']/1000,d['cpuUsPerTx']) for d in S)))"
done; done
