#!/usr/bin/env bash
# The fault drill of issue 10: the shop as four processes on PostgreSQL (bench/shop-processes.sh)
# under a steady checkout load, while
#   1. the orders service is killed with SIGKILL, then restarted;
#   2. the products service is killed with SIGKILL, then restarted;
#   3. PostgreSQL itself is stopped, then started again.
# It fails unless
#   - while PostgreSQL is down every service's /readyz and the API answer 503 (never 500, never a
#     hang), and once it is back every service is ready again by itself;
#   - the load saw no answer but successes, out-of-stock 409s and 503/504s (no 500, no 502);
#   - afterwards every order is confirmed or cancelled (none left pending, every cancelled
#     order's stock returned), and each product's stock is exactly its start minus the
#     quantities of its confirmed orders.
#
#   bench/faults.sh [--quick]      # --quick: a shorter load, for CI
#
# MERCATO_BIN (default target/release/mercato) is the binary; it needs root or the postgres
# user's rights to restart the local cluster (pg_ctlcluster), or PG_STOP_COMMAND and
# PG_START_COMMAND saying how to stop and start PostgreSQL otherwise (a CI runner's service
# container: docker stop/start). Uses databases faults_* and
# ports 18180-18183 (and 19180); writes logs to /tmp/mercato-faults-processes.
set -euo pipefail
cd "$(dirname "$0")/.."

export MERCATO_BIN=${MERCATO_BIN:-target/release/mercato}
export BENCH_DB_PREFIX=faults BENCH_PORT_BASE=18180 BENCH_PRODUCTS=${BENCH_PRODUCTS:-200}
# Settle abandoned checkouts quickly; calls give up fast while a service is away.
export BENCH_ENV_ORDERS="MERCATO_RECOVERY__INTERVAL_MS=500 MERCATO_RECOVERY__PENDING_TIMEOUT_MS=20000 MERCATO_CLIENT__BREAKER_COOLDOWN_MS=500"
PG=postgres://postgres@127.0.0.1:5432
DATA=/tmp/mercato-faults-processes
GATEWAY=http://127.0.0.1:18180
declare -A PORT=([users]=18181 [products]=18182 [orders]=18183)
shop() { bench/shop-processes.sh "$@"; }
say() { printf '[%6.1fs] %s\n' "$((($(date +%s%N) - STARTED) / 1000000))e-3" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

QUICK=false
[ "${1:-}" = --quick ] && QUICK=true
if $QUICK; then PHASE=4; else PHASE=10; fi
# Long enough to cover the three faults (PostgreSQL's takes ~25 s) and a stretch after them.
LOAD_SECONDS=$((PHASE * 3 + 45))
STARTED=$(date +%s%N)
# shellcheck disable=SC2034,SC2012 # read by the default commands below, through eval
cluster=$(ls /etc/postgresql 2>/dev/null | head -n 1)
pg_stop() { eval "${PG_STOP_COMMAND:-pg_ctlcluster --skip-systemctl-redirect \"\$cluster\" main stop -m fast}"; }
pg_start() { eval "${PG_START_COMMAND:-pg_ctlcluster --skip-systemctl-redirect \"\$cluster\" main start}"; }

cleanup() {
  shop stop >/dev/null 2>&1 || true
  pg_isready -q -h 127.0.0.1 || pg_start
}
trap cleanup EXIT

rm -rf "$DATA"
for db in faults_users faults_products faults_orders; do
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done
shop start "$PG" "$DATA" >/dev/null
say "shop up on $GATEWAY"
psql "$PG/faults_products" -qAtF ' ' -c "SELECT id, stock FROM products WHERE deleted_at IS NULL" >"$DATA/stock-before"

"$MERCATO_BIN" bench --target "$GATEWAY" --scenario checkout --rate 40 --connections 16 \
  --duration "${LOAD_SECONDS}s" --users 16 --json "$DATA/load.json" >"$DATA/load.log" 2>&1 &
load=$!
# The load registers its buyers (a second or two) before its clock starts.
sleep $((PHASE + 2))

say "kill -9 orders"
shop kill orders KILL
sleep 1
shop start-service orders
say "orders restarted"
sleep "$PHASE"

say "kill -9 products"
shop kill products KILL
sleep 1
shop start-service products
say "products restarted"
sleep "$PHASE"

say "stopping PostgreSQL"
pg_stop
for service in users products orders; do
  code=$(curl -s -o /dev/null -m 10 -w '%{http_code}' "http://127.0.0.1:${PORT[$service]}/readyz")
  [ "$code" = 503 ] || fail "$service's /readyz answered $code while PostgreSQL was down (expected 503)"
done
code=$(curl -s -o /dev/null -m 10 -w '%{http_code}' "$GATEWAY/api/v1/products?limit=1&sort=name")
[ "$code" = 503 ] || fail "the catalog answered $code while PostgreSQL was down (expected 503)"
say "every service unready and the API 503 while PostgreSQL is down"
sleep 2
pg_start
pg_back=$(date -u +%FT%T.%NZ)
say "PostgreSQL started"
for service in users products orders; do
  for attempt in $(seq 300); do
    curl -fsS -o /dev/null -m 2 "http://127.0.0.1:${PORT[$service]}/readyz" && break
    [ "$attempt" = 300 ] && fail "$service did not become ready again within 30 s of PostgreSQL's return"
    sleep 0.1
  done
done
say "every service ready again by itself"
sleep "$PHASE"
placed=$(psql "$PG/faults_orders" -qAtc "SELECT count(*) FROM orders WHERE status = 'confirmed' AND created_at > '$pg_back'")
[ "$placed" -gt 0 ] || fail "no checkout succeeded after PostgreSQL came back"
say "$placed orders placed since PostgreSQL came back"

wait "$load" || fail "the load tool failed: $(tail -n 5 "$DATA/load.log")"
python3 - "$DATA/load.json" <<'PY' || fail "the load saw failures other than 503/504"
import json, sys
total = json.load(open(sys.argv[1]))["total"]
print(f"load: {total['requests']} checkouts, {total['successes']} placed, "
      f"{total['out_of_stock']} out of stock, failures {total['errors']}")
sys.exit(1 if set(total["errors"]) - {"503", "504"} or not total["successes"] else 0)
PY

say "waiting for the recovery worker to settle every order"
for attempt in $(seq 120); do
  unsettled=$(psql "$PG/faults_orders" -qAtc \
    "SELECT count(*) FROM orders WHERE status = 'pending' OR (status = 'cancelled' AND NOT stock_released)")
  [ "$unsettled" = 0 ] && break
  [ "$attempt" = 120 ] && fail "$unsettled orders still unsettled after 60 s"
  sleep 0.5
done

psql "$PG/faults_products" -qAtF ' ' -c "SELECT id, stock FROM products WHERE deleted_at IS NULL" >"$DATA/stock-after"
psql "$PG/faults_orders" -qAtF ' ' -c \
  "SELECT i.product_id, sum(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id
   WHERE o.status <> 'cancelled' GROUP BY i.product_id" >"$DATA/sold"
psql "$PG/faults_orders" -qAtF ' ' -c "SELECT status, count(*) FROM orders GROUP BY status ORDER BY 1" >"$DATA/statuses"
python3 - "$DATA" <<'PY' || fail "stock does not add up"
import sys
d = sys.argv[1]
def table(name):
    return {k: int(v) for k, v in (line.split() for line in open(f"{d}/{name}") if line.strip())}
before, after, sold = table("stock-before"), table("stock-after"), table("sold")
statuses = table("statuses")
print("orders by status:", statuses)
if set(statuses) - {"confirmed", "cancelled"}:
    sys.exit(f"orders neither confirmed nor cancelled: {statuses}")
wrong = {p: (before[p], after.get(p), sold.get(p, 0)) for p in before if before[p] - after.get(p, 0) != sold.get(p, 0)}
if wrong:
    sys.exit(f"products whose stock is not start minus confirmed (start, now, confirmed): {wrong}")
print(f"stock of {len(before)} products = start - confirmed quantities ({sum(sold.values())} units sold)")
PY
say "PASS"
