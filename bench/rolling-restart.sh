#!/usr/bin/env bash
# The rolling-restart proof: two replicas of each service (`mercato serve`, one PostgreSQL
# database per service shared by its replicas, as in production) behind one gateway that lists
# both; `mercato bench` runs the mixed scenario open loop through the gateway while every
# replica in turn gets SIGTERM, is waited for, and is started again and waited for until ready.
# Fails unless the bench reports zero failed requests.
#
#   bench/rolling-restart.sh [--quick] [PG_URL_BASE] [DATA_DIR]
#
# --quick (CI): a small catalog, 25 req/s for 40 s (about a minute in all). Otherwise
# 100 req/s for 90 s and a larger catalog. RATE, DURATION (seconds) and BENCH_PRODUCTS override. PG_URL_BASE defaults to
# postgres://postgres@127.0.0.1:5432; databases rolling_users, rolling_products and
# rolling_orders are created when missing. MERCATO_BIN picks the binary (default
# target/release/mercato). Logs: DATA_DIR/<service>-<replica>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=false
if [ "${1:-}" = --quick ]; then QUICK=true; shift; fi
PG_BASE=${1:-postgres://postgres@127.0.0.1:5432}
DATA_DIR=${2:-/tmp/mercato-rolling-restart}
# Its functions (prepare_databases, common_env) and settings (BIN, PG, DATA, PG_OPTIONS).
# shellcheck source=bench/shop-processes.sh
export BENCH_PG=$PG_BASE BENCH_DATA=$DATA_DIR
source bench/shop-processes.sh

if $QUICK; then
  RATE=${RATE:-25} PRODUCTS_COUNT=${BENCH_PRODUCTS:-500} DURATION=${DURATION:-40}
else
  RATE=${RATE:-100} PRODUCTS_COUNT=${BENCH_PRODUCTS:-20000} DURATION=${DURATION:-90}
fi
GATEWAY=127.0.0.1:18280
OPERATIONS=127.0.0.1:19280
declare -A BASE=([users]=18281 [products]=18282 [orders]=18283)
REPLICAS=(a b)
# Readiness says 503 this long before a replica's listener closes; the gateway asks every
# READINESS_MS, so it stops sending there well before.
SHUTDOWN_DELAY_MS=1000
READINESS_MS=200

port_of() { # service replica
  local offset=0
  [ "$2" = b ] && offset=10
  echo $((BASE[$1] + offset))
}

urls_of() { # service: both replicas, comma-separated
  echo "http://127.0.0.1:$(port_of "$1" a),http://127.0.0.1:$(port_of "$1" b)"
}

replica_env() { # service replica
  local service=$1 replica=$2
  echo "MERCATO_HTTP__LISTEN=127.0.0.1:$(port_of "$service" "$replica")"
  echo "MERCATO_HTTP__SHUTDOWN_DELAY_MS=$SHUTDOWN_DELAY_MS"
  echo "MERCATO_HTTP__DRAIN_TIMEOUT_MS=10000"
  echo "MERCATO_DATABASE__URL=$PG/rolling_$service$PG_OPTIONS"
  echo "MERCATO_DATABASE__MAX_CONNECTIONS=8"
  echo "MERCATO_DATABASE__MIGRATE_ON_START=false"
  case $service in
    users)
      echo "MERCATO_AUTH__SIGNING_KEY_FILE=$DATA/signing.key"
      echo "MERCATO_AUTH__GENERATE_SIGNING_KEY=true"
      echo "MERCATO_SERVICE_CLIENTS__ORDERS=$MERCATO_CLIENT_SECRET_FOR_BENCH" ;;
    products)
      echo "MERCATO_USERS_URL=$(urls_of users)"
      echo "MERCATO_IMAGES__BACKEND=local"
      echo "MERCATO_IMAGES__LOCAL_DIR=$DATA/images" ;;
    orders)
      echo "MERCATO_USERS_URL=$(urls_of users)"
      echo "MERCATO_PRODUCTS_URL=$(urls_of products)"
      echo "MERCATO_SERVICE_CLIENT_ID=orders"
      echo "MERCATO_SERVICE_CLIENT_SECRET=$MERCATO_CLIENT_SECRET_FOR_BENCH" ;;
  esac
}

gateway_env() {
  echo "MERCATO_HTTP__LISTEN=$GATEWAY"
  echo "MERCATO_HTTP__OPERATIONS_LISTEN=$OPERATIONS"
  for service in users products orders; do
    echo "MERCATO_UPSTREAMS__${service^^}=$(urls_of "$service")"
  done
  echo "MERCATO_REPLICAS__READINESS_INTERVAL_MS=$READINESS_MS"
  echo "MERCATO_RATE_LIMIT__ENABLED=false"
}

start_process() { # name env-function args...
  local name=$1 env_of=$2; shift 2
  local vars=()
  mapfile -t vars < <("$env_of" "$@")
  (exec env "${vars[@]}" "$BIN" serve "${name%%-*}" >>"$DATA/$name.log" 2>&1) &
  echo $! >"$DATA/$name.pid"
}

wait_ready() { # url what
  for _ in $(seq 300); do
    curl -fsS "$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "rolling-restart: $2 did not become ready; see $DATA/*.log" >&2
  return 1
}

start_replica() { # service replica
  start_process "$1-$2" replica_env "$1" "$2"
  wait_ready "http://127.0.0.1:$(port_of "$1" "$2")" "$1-$2"
}

stop_all() {
  for pidfile in "$DATA"/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  [ -n "${BENCH_PID:-}" ] && kill "$BENCH_PID" 2>/dev/null || true
}

# SIGTERM, wait until the process has drained and exited, start a new one, wait until ready.
restart_replica() { # service replica
  local name="$1-$2" pid started
  pid=$(cat "$DATA/$name.pid")
  started=$(date +%s%N)
  kill -TERM "$pid"
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "rolling-restart: $name did not exit within 30 s of SIGTERM" >&2
    return 1
  fi
  start_replica "$1" "$2"
  echo "  restarted $name in $((($(date +%s%N) - started) / 1000000)) ms"
}

main() {
  mkdir -p "$DATA"
  rm -f "$DATA"/*.pid "$DATA"/*.log
  common_env
  trap stop_all EXIT
  prepare_databases rolling
  # users first (the others fetch its key set); replica a creates the signing key both use.
  for service in users products orders; do
    for replica in "${REPLICAS[@]}"; do start_replica "$service" "$replica"; done
  done
  start_process gateway gateway_env
  wait_ready "http://$OPERATIONS" gateway
  echo "rolling-restart: 2 replicas each of users, products, orders behind http://$GATEWAY"

  local report="$DATA/bench.json"
  "$BIN" bench --target "http://$GATEWAY" --scenario mixed --rate "$RATE" --duration "${DURATION}s" \
    --users 4 --json "$report" >"$DATA/bench.log" 2>&1 &
  BENCH_PID=$!
  # Let the bench register its buyers and reach its steady rate first.
  sleep 8
  for service in users products orders; do
    for replica in "${REPLICAS[@]}"; do
      kill -0 "$BENCH_PID" 2>/dev/null || { echo "rolling-restart: the bench ended before the restarts did (raise DURATION)" >&2; cat "$DATA/bench.log" >&2; return 1; }
      restart_replica "$service" "$replica"
      sleep 1
    done
  done
  kill -0 "$BENCH_PID" 2>/dev/null || { echo "rolling-restart: the bench ended before the restarts did (raise DURATION)" >&2; return 1; }
  local bench_status=0
  wait "$BENCH_PID" || bench_status=$?
  BENCH_PID=
  cat "$DATA/bench.log"
  [ "$bench_status" = 0 ] || { echo "rolling-restart: mercato bench failed ($bench_status)" >&2; return 1; }
  python3 - "$report" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
total = report["total"]
errors = total["errors"]
failed = sum(errors.values()) if isinstance(errors, dict) else errors
print(f"rolling-restart: {total['requests']} requests, {failed} failed, while every replica restarted")
if not total["requests"]:
    sys.exit("rolling-restart: the bench sent nothing")
if failed:
    sys.exit(f"rolling-restart: requests failed during the rolling restart: {errors}")
EOF
}

main
