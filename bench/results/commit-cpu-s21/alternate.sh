#!/usr/bin/env bash
# Alternated runs of bench/commit-cost.cjs in two trees (before, after):
#   bash bench/results/commit-cpu-s21/alternate.sh /path/to/before /path/to/after [pairs=3] [commits=5000] [engine=ringmaster]
# One JSON line per run, prefixed with the tree; every pair in order. Run on a quiet machine.
set -euo pipefail
A="$1"; B="$2"; P="${3:-3}"; N="${4:-5000}"; E="${5:-ringmaster}"
for i in $(seq 1 "$P"); do
  for t in "$A" "$B"; do
    echo "$t $(cd "$t" && node bench/commit-cost.cjs "$E" "$N")"
  done
done
