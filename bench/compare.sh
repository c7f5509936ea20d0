#!/usr/bin/env bash
# Two builds of the shop compared on the same machine in one run: each started in turn as four
# processes on PostgreSQL (bench/shop-processes.sh, databases of its own), the scenarios run
# against it, stopped; alternated ROUNDS times (before, after, before, after, …) so the machine's
# drift falls on both. The same load tool (LOAD, default the second binary) measures both: each
# scenario 10 s closed loop with 16 connections, then 10 s at half that rate over the same 16
# connections. JSON and text reports go to OUT_DIR; a table is printed at the end.
#
#   bench/compare.sh BEFORE_BIN AFTER_BIN OUT_DIR
#
# Build the older one from a worktree, e.g.
#   git worktree add /tmp/before 1edd2a0 && (cd /tmp/before && cargo build --release -p mercato)
# SCENARIOS (default "product checkout mixed"), ROUNDS (default 2).
set -uo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:?the first binary} AFTER=${2:?the second binary} OUT=${3:?a directory for the results}
LOAD=${LOAD:-$AFTER}
mkdir -p "$OUT"

run() { # label binary round
  local label=$1 bin=$2 round=$3 pids=() pid scenario half
  MERCATO_BIN=$bin BENCH_DB_PREFIX=cmp_$label bench/shop-processes.sh start >/dev/null || exit 1
  for pid in $(MERCATO_BIN=$bin BENCH_DB_PREFIX=cmp_$label bench/shop-processes.sh pids); do pids+=(--pid "$pid"); done
  sleep 2
  for scenario in ${SCENARIOS:-product checkout mixed}; do
    local base=$OUT/$label-$round-$scenario
    "$LOAD" bench --target http://127.0.0.1:18080 --scenario "$scenario" --connections 16 --duration 10s \
      --users 16 "${pids[@]}" --json "$base-max.json" >"$base-max.txt" 2>&1
    half=$(python3 -c "import json,sys; print(max(1, round(json.load(open(sys.argv[1]))['total']['rate'] / 2)))" "$base-max.json")
    "$LOAD" bench --target http://127.0.0.1:18080 --scenario "$scenario" --rate "$half" --connections 16 \
      --duration 10s --users 16 "${pids[@]}" --json "$base-half.json" >"$base-half.txt" 2>&1
  done
  MERCATO_BIN=$bin BENCH_DB_PREFIX=cmp_$label bench/shop-processes.sh stop >/dev/null
  echo "$label, round $round: done"
}

for round in $(seq "${ROUNDS:-2}"); do
  run before "$BEFORE" "$round"
  run after "$AFTER" "$round"
done

python3 - "$OUT" ${SCENARIOS:-product checkout mixed} <<'PY'
import json, sys, glob, os
out, scenarios = sys.argv[1], sys.argv[2:]
print(f"{'scenario':10} {'build':7} {'round':5} {'max req/s':>10} {'p50':>7} {'p99':>8} {'half p99':>9}")
for s in scenarios:
    for label in ("before", "after"):
        for path in sorted(glob.glob(f"{out}/{label}-*-{s}-max.json")):
            r = os.path.basename(path).split("-")[1]
            m = json.load(open(path))["total"]
            h = json.load(open(path.replace("-max.json", "-half.json")))["total"]
            print(f"{s:10} {label:7} {r:5} {m['rate']:10.0f} {m['p50_ms']:7.2f} {m['p99_ms']:8.2f} {h['p99_ms']:9.2f}")
PY
