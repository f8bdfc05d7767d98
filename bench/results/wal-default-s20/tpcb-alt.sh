#!/bin/bash
# Alternated TPC-B points, the buffered WAL (wal.direct false: write -> fdatasync) against the
# default (O_DIRECT | O_DSYNC where the file system has direct IO). One JSON line per point.
# usage: bash tpcb-alt.sh ROUNDS "P1 P2 ..." SCALE > out.jsonl
cd "$(dirname "$0")/../../.."
R=${1:-3}; PS=${2:-"2 16"}; S=${3:-1}
for r in $(seq 1 "$R"); do
  for P in $PS; do
    for mode in buffered default; do
      wd=''; [ "$mode" = buffered ] && wd=',"walDirect":false'
      spec="{\"engine\":\"rm\",\"kind\":\"tpcb\",\"procs\":$P,\"sessions\":16,\"durationMs\":3000,\"warmupMs\":$((2000+500*P)),\"g\":{\"scale\":$S},\"historyRows\":100000,\"mode\":\"fork\",\"dataDir\":\"/tmp\"$wd}"
      out=$(node bench/tpcb/point.cjs "$spec" | tail -1)
      echo "{\"round\":$r,\"P\":$P,\"scale\":$S,\"wal\":\"$mode\",\"load1\":\"$(cut -d' ' -f1 /proc/loadavg)\",\"result\":$out}"
    done
  done
done
