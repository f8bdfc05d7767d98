#!/bin/bash
# pt.sh TREE DURATION_MS : one ringmaster cold O_DIRECT 4 KiB QD1 point (bench/results/cold-s23/pt.sh, own file)
TREE=$1; DUR=${2:-3000}
exec node $TREE/bench/lib/point.cjs "{\"engine\":\"ringmaster\",\"file\":\"/tmp/q25cold/bench.dat\",\"dataDir\":\"/tmp/q25cold\",\"fileSize\":268435456,\"bs\":4096,\"depth\":1,\"procs\":1,\"direct\":true,\"durationMs\":$DUR}"
