#!/usr/bin/env bash
# Quiet-machine before/after: base = 21d394f (stop 21, /work/wt/base21), new = 3166e05 (stop 22, /work/main).
set -u
Q=/work/s23/quiet; B=/work/wt/base21; N=/work/main
log() { echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) $*" | tee -a $Q/log.txt; }
log start
for i in 1 2 3; do
  for t in base new; do
    d=$B; [ $t = new ] && d=$N
    log "durable-commits $t-$i"
    (cd $d && npm run -s bench -- durable-commits --duration=2000 --out=$Q/dc-$t-$i > $Q/dc-$t-$i.log 2>&1)
  done
done
for i in 1 2; do
  for t in base new; do
    d=$B; [ $t = new ] && d=$N
    log "handoff $t-$i"
    (cd $d && npm run -s bench -- handoff --out=$Q/ho-$t-$i > $Q/ho-$t-$i.log 2>&1)
  done
done
log "reads new"; (cd $N && npm run -s bench -- cold-reads cached-reads --out=$Q/reads-new > $Q/reads-new.log 2>&1)
log "cpu-per-io new"; (cd $N && node bench/cpu-per-io.cjs > $Q/cpu-per-io-new.txt 2>&1)
log "tpcb scale new"; (cd $N && npm run -s bench -- scale --parts=tpcb --procs=2,4,8,16 --scale-high=32 --out=$Q/tpcb-new > $Q/tpcb-new.log 2>&1)
log done
