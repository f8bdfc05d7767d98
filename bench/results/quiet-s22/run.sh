#!/usr/bin/env bash
# After CI: soaks on the merged tree, then short quiet benches (new, and cpu-ab against base22).
set -u
# N: this stop's code (lead22 = main 76b7ede), B: the previous stop's (21d394f), both built.
Q=/work/s22/post; N=/work/wt/lead22; B=/work/wt/base22
log() { echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) $*" | tee -a $Q/log.txt; }
cd $N
log "soak kill mixed io_uring"; npm run -s soak -- kill --workload mixed --kills 200 --workers 3 > $Q/kill-io_uring.log 2>&1; echo "rc=$?" >> $Q/kill-io_uring.log
log "soak kill mixed threads"; npm run -s soak -- kill --workload mixed --kills 200 --workers 3 --backend threads > $Q/kill-threads.log 2>&1; echo "rc=$?" >> $Q/kill-threads.log
log "soak powercut ext4-lazyfs io_uring"; npm run -s soak -- powercut --fs ext4-lazyfs --variant direct-dsync --rounds 20 > $Q/pc-io_uring.log 2>&1; echo "rc=$?" >> $Q/pc-io_uring.log
log "soak powercut lazyfs 20 threads"; npm run -s soak -- powercut --rounds 20 --backend threads > $Q/pc-threads.log 2>&1; echo "rc=$?" >> $Q/pc-threads.log
log "soak powercut control skip-dsync"; npm run -s soak -- powercut --fs ext4-lazyfs --variant direct-dsync --rounds 20 --control skip-dsync > $Q/pc-control.log 2>&1; echo "rc=$?" >> $Q/pc-control.log
mkdir -p $Q/soak-results; cp soak/results/*.json $Q/soak-results/; git checkout soak/results/
log "cold reads new"; npm run -s bench -- cold-reads --bs=4,8 --qd=1,8,32 --procs=1 --out=$Q/cold > $Q/cold.log 2>&1
log "cached reads new"; npm run -s bench -- cached-reads --qd=1 --procs=1,2 --out=$Q/cached > $Q/cached.log 2>&1
log "cpu-ab PROCS=2"; PROCS=2 node bench/cpu-ab.cjs $B $N > $Q/cpu-ab-p2.txt 2>&1
log "cpu-ab qd1"; node bench/cpu-ab.cjs $B $N > $Q/cpu-ab-qd1.txt 2>&1
log "handoff new"; npm run -s bench -- handoff --out=$Q/ho-new > $Q/ho-new.log 2>&1
log done
