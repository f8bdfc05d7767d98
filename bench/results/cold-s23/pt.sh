#!/bin/bash
# pt.sh TREE DURATION_MS [bs] : one ringmaster cold QD1 point in one process, JSON on stdout
TREE=${1:-/work/wt/cold23}; DUR=${2:-3000}; BS=${3:-4096}
exec node $NODEFLAGS $TREE/bench/lib/point.cjs "{\"engine\":\"ringmaster\",\"file\":\"/tmp/cold23d/bench.dat\",\"dataDir\":\"/tmp/cold23d\",\"fileSize\":268435456,\"bs\":$BS,\"depth\":1,\"procs\":1,\"direct\":true,\"durationMs\":$DUR}"
