#!/usr/bin/env bash
# Runs the shop as four processes (`mercato serve <service>`), each service on its own
# PostgreSQL database, as in a deployment: the setup of the "whole shop on PostgreSQL" figures
# in BENCHMARKS.md. Migrates first; seeds the catalog once (100,000 products, seed 7) when empty.
#
#   bench/shop-processes.sh start [PG_URL_BASE] [DATA_DIR]   # gateway on 127.0.0.1:18080
#   bench/shop-processes.sh pids                              # gateway users products orders
#   bench/shop-processes.sh stop
#   bench/shop-processes.sh kill SERVICE [SIGNAL]             # e.g. kill orders KILL
#   bench/shop-processes.sh start-service SERVICE             # (re)start one, wait for /healthz
#
# PG_URL_BASE defaults to postgres://postgres@127.0.0.1:5432 (databases bench_users,
# bench_products, bench_orders are created when missing). Logs go to DATA_DIR/<service>.log
# (default /tmp/mercato-bench-processes; the other commands find it in BENCH_DATA, the server
# in BENCH_PG, when start was given others).
# BENCH_DB_PREFIX (default bench) and BENCH_PORT_BASE (default 18080: the gateway; users,
# products and orders on the next three ports) let another shop run beside this one;
# BENCH_ENV_<SERVICE> (e.g. BENCH_ENV_ORDERS="MERCATO_RECOVERY__INTERVAL_MS=500") adds
# variables to one service. The gateway's operations endpoints (/readyz, /metrics) are on
# BENCH_PORT_BASE + 1000 (19080). bench/rolling-restart.sh sources this file for
# prepare_databases and common_env.
set -euo pipefail

BIN=${MERCATO_BIN:-target/release/mercato}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
PREFIX=${BENCH_DB_PREFIX:-bench}
DATA=${BENCH_DATA:-/tmp/mercato-$PREFIX-processes}
PRODUCTS_COUNT=${BENCH_PRODUCTS:-100000}
# The database is on this machine: no TLS on loopback (sqlx would otherwise negotiate it, and
# every query pays for encryption). Set PG_OPTIONS= to keep the driver's default.
PG_OPTIONS=${PG_OPTIONS-?sslmode=disable}
BASE=${BENCH_PORT_BASE:-18080}
declare -A PORT=([gateway]=$BASE [users]=$((BASE + 1)) [products]=$((BASE + 2)) [orders]=$((BASE + 3))
                 [operations]=$((BASE + 1000)))

common_env() {
  export MERCATO_LOG=${MERCATO_LOG:-warn} MERCATO_LOG_FORMAT=json
  export MERCATO_CLIENT_SECRET_FOR_BENCH=bench-orders-secret-0123456789abcdef
}

service_env() { # service
  local service=$1
  echo "MERCATO_HTTP__LISTEN=127.0.0.1:${PORT[$service]}"
  case $service in
    users)
      echo "MERCATO_DATABASE__URL=$PG/${PREFIX}_users$PG_OPTIONS"
      echo "MERCATO_AUTH__SIGNING_KEY_FILE=$DATA/signing.key"
      echo "MERCATO_AUTH__GENERATE_SIGNING_KEY=true"
      echo "MERCATO_SERVICE_CLIENTS__ORDERS=$MERCATO_CLIENT_SECRET_FOR_BENCH" ;;
    products)
      echo "MERCATO_DATABASE__URL=$PG/${PREFIX}_products$PG_OPTIONS"
      echo "MERCATO_USERS_URL=http://127.0.0.1:${PORT[users]}"
      echo "MERCATO_IMAGES__BACKEND=local"
      echo "MERCATO_IMAGES__LOCAL_DIR=$DATA/images" ;;
    orders)
      echo "MERCATO_DATABASE__URL=$PG/${PREFIX}_orders$PG_OPTIONS"
      echo "MERCATO_USERS_URL=http://127.0.0.1:${PORT[users]}"
      echo "MERCATO_PRODUCTS_URL=http://127.0.0.1:${PORT[products]}"
      echo "MERCATO_SERVICE_CLIENT_ID=orders"
      echo "MERCATO_SERVICE_CLIENT_SECRET=$MERCATO_CLIENT_SECRET_FOR_BENCH" ;;
    gateway)
      echo "MERCATO_HTTP__OPERATIONS_LISTEN=127.0.0.1:${PORT[operations]}"
      echo "MERCATO_UPSTREAMS__USERS=http://127.0.0.1:${PORT[users]}"
      echo "MERCATO_UPSTREAMS__PRODUCTS=http://127.0.0.1:${PORT[products]}"
      echo "MERCATO_UPSTREAMS__ORDERS=http://127.0.0.1:${PORT[orders]}"
      echo "MERCATO_RATE_LIMIT__ENABLED=false" ;;
  esac
  local extra="BENCH_ENV_${service^^}"
  [ -z "${!extra:-}" ] || tr ' ' '\n' <<<"${!extra}"
}

with_env() { # service command...
  local service=$1; shift
  local vars=()
  mapfile -t vars < <(service_env "$service")
  env "${vars[@]}" "$@"
}

# The same, replacing the (sub)shell, so the recorded pid is the service's own.
exec_with_env() { # service command...
  local service=$1; shift
  local vars=()
  mapfile -t vars < <(service_env "$service")
  exec env "${vars[@]}" "$@"
}

# Creates PREFIX_users, PREFIX_products and PREFIX_orders when missing, migrates them, and
# seeds the catalog (PRODUCTS_COUNT products, seed 7) when it is empty.
prepare_databases() { # prefix
  local prefix=$1 db service
  for db in "${prefix}_users" "${prefix}_products" "${prefix}_orders"; do
    psql "$PG/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
      || psql "$PG/postgres" -qc "CREATE DATABASE $db"
  done
  for service in users products orders; do
    MERCATO_DATABASE__URL="$PG/${prefix}_$service$PG_OPTIONS" "$BIN" migrate "$service"
  done
  if [ "$(psql "$PG/${prefix}_products" -qtAc 'SELECT count(*) FROM products')" = 0 ]; then
    MERCATO_DATABASE__URL="$PG/${prefix}_products$PG_OPTIONS" \
      "$BIN" seed --generate "$PRODUCTS_COUNT" --seed 7 >/dev/null
  fi
}

start() {
  mkdir -p "$DATA"
  common_env
  prepare_databases "$PREFIX"
  # users first: the others fetch its key set.
  for service in users products orders gateway; do
    start_service "$service"
  done
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:${PORT[operations]}/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "shop up: gateway http://127.0.0.1:${PORT[gateway]}, pids $(pids)"
}

start_service() { # service: start it (logs appended), wait until it answers /healthz
  local service=$1 health
  common_env
  exec_with_env "$service" "$BIN" serve "$service" >>"$DATA/$service.log" 2>&1 &
  echo $! >"$DATA/$service.pid"
  health=${PORT[$service]}
  [ "$service" = gateway ] && health=${PORT[operations]}
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$health/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$service did not start; see $DATA/$service.log" >&2
  return 1
}

kill_service() { # service [signal]: signal it and wait until it is gone
  local pid
  pid=$(cat "$DATA/$1.pid")
  kill "-${2:-TERM}" "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

pids() {
  local out=()
  for service in gateway users products orders; do out+=("$(cat "$DATA/$service.pid")"); done
  echo "${out[*]}"
}

stop() {
  for service in gateway orders products users; do
    [ -f "$DATA/$service.pid" ] && kill "$(cat "$DATA/$service.pid")" 2>/dev/null || true
  done
}

# Sourced (by rolling-restart.sh): only the functions.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

case ${1:-} in
  start) PG=${2:-$PG} DATA=${3:-$DATA} start ;;
  pids) pids ;;
  stop) stop ;;
  kill) kill_service "${2:?which service}" "${3:-TERM}" ;;
  start-service) start_service "${2:?which service}" ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
