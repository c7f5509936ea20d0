#!/usr/bin/env bash
# Every scenario of `mercato bench` against a running shop, as BENCHMARKS.md reports them:
# 10 s closed loop with 16 connections (the maximum), then 10 s open loop at half the maximum
# it reached (latency without coordinated omission). Results as JSON in OUT_DIR, tables on stdout.
#
#   bench/scenarios.sh http://127.0.0.1:18080 OUT_DIR PID [PID...]
#
# Scenarios can be narrowed with SCENARIOS="browse product". The ceiling and proxy scenarios also
# call the gateway's operations listener (OPERATIONS, default http://127.0.0.1:19080) and the
# products service directly (SERVICE, default http://127.0.0.1:18082), as shop-processes.sh runs them.
set -euo pipefail

BIN=${MERCATO_BIN:-target/release/mercato}
TARGET=${1:?the gateway URL}
OUT=${2:?a directory for the JSON results}
shift 2
PIDS=()
for pid in "$@"; do PIDS+=(--pid "$pid"); done
mkdir -p "$OUT"

for scenario in ${SCENARIOS:-ceiling proxy browse list search product checkout mixed}; do
  "$BIN" bench --target "$TARGET" --operations "${OPERATIONS:-http://127.0.0.1:19080}" \
    --service "${SERVICE:-http://127.0.0.1:18082}" --scenario "$scenario" --connections 16 --duration 10s \
    --users 16 "${PIDS[@]}" --json "$OUT/$scenario-max.json"
  case $scenario in ceiling | proxy) continue ;; esac
  half=$(python3 -c "import json,sys; print(max(1, round(json.load(open(sys.argv[1]))['total']['rate'] / 2)))" \
    "$OUT/$scenario-max.json")
  "$BIN" bench --target "$TARGET" --scenario "$scenario" --rate "$half" --duration 10s \
    --users 16 "${PIDS[@]}" --json "$OUT/$scenario-half.json"
done
