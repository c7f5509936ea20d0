#!/usr/bin/env bash
# Fuzzes the shop's whole public API through the gateway with schemathesis, from the merged
# OpenAPI document the gateway serves: every operation, signed in as a customer and then as an
# admin, on the embedded default (SQLite) and on PostgreSQL. Every check schemathesis has must
# pass: no 5xx, every status and body as documented, every 4xx problem+json, schema-valid input
# accepted and invalid input refused.
#
#   tests/fuzz/fuzz.sh [--quick] [sqlite|postgres ...]     # default: both backends
#
# The fuzzer never deletes the signed-in account (DELETE /api/v1/users/me): the rest of its run
# would only see 401; tests/api.rs of the users service covers that operation.
# --quick is CI's bounded budget (a few examples per operation); without it, 100 per operation.
# FUZZ_INCLUDE (a regular expression of paths, e.g. '^/api/v1/orders') narrows the operations.
# MERCATO_BIN (default target/debug/mercato) is the shop. Reports (JUnit) go to
# $FUZZ_OUT (default /tmp/mercato-fuzz). MERCATO_FUZZ_PYTHON (default python3.13 when there is
# one, else python3) makes the fuzzer's virtualenv: CPython 3.11.7 fails hypothesis'
# descriptions of its filters ("SystemError: AST constructor recursion depth mismatch") on
# richer documents, which schemathesis reports as errors; 3.13 does not. Each run takes a free
# port and databases of its own, so runs side by side do not collide.
set -euo pipefail
cd "$(dirname "$0")/../.."

PIN="schemathesis==4.32.5"
# The first Python 3.13 that runs (a pyenv shim may exist without the version being active).
python313() {
  local candidate
  for candidate in python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3.13 /usr/bin/python3.13; do
    "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { command -v "$candidate"; return; }
  done
  command -v python3
}
PYTHON=${MERCATO_FUZZ_PYTHON:-$(python313)}
VENV=${MERCATO_FUZZ_VENV:-$HOME/.cache/mercato-ci/fuzz-venv-$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')}
BIN=${MERCATO_BIN:-target/debug/mercato}
OUT=${FUZZ_OUT:-/tmp/mercato-fuzz}
PG=postgres://postgres@127.0.0.1:5432
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
GW=http://127.0.0.1:$PORT
RUN=$$
EXAMPLES=100
if [ "${1:-}" = --quick ]; then EXAMPLES=8; shift; fi
BACKENDS=("$@")
[ ${#BACKENDS[@]} -gt 0 ] || BACKENDS=(sqlite postgres)

if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version ${PIN#*==}" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PIN"
fi

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
call() { # method path token [body]
  curl -sS -X "$1" "$GW$2" -H "authorization: Bearer $3" -H 'content-type: application/json' ${4:+-d "$4"}
}

shop_pid=
stop_shop() { [ -z "$shop_pid" ] || { kill "$shop_pid" 2>/dev/null; wait "$shop_pid" 2>/dev/null || true; shop_pid=; }; }
trap stop_shop EXIT

failed=()
for backend in "${BACKENDS[@]}"; do
  data=$(mktemp -d)
  mkdir -p "$OUT/$backend"
  env_vars=(MERCATO_LOG=warn MERCATO_GATEWAY__RATE_LIMIT__ENABLED=false
            MERCATO_USERS__AUTH__ACCESS_TOKEN_TTL_SECS=3600)
  if [ "$backend" = postgres ]; then
    for service in users products orders; do
      psql "$PG/postgres" -qc "CREATE DATABASE fuzz_${RUN}_$service"
      env_vars+=("MERCATO_${service^^}__DATABASE__URL=$PG/fuzz_${RUN}_$service?sslmode=disable")
    done
  fi
  env "${env_vars[@]}" "$BIN" up --data-dir "$data" --listen "127.0.0.1:$PORT" --operations-listen 127.0.0.1:0 \
    >"$OUT/$backend/shop.log" 2>&1 &
  shop_pid=$!
  for _ in $(seq 600); do grep -q 'mercato is running' "$OUT/$backend/shop.log" && break; sleep 0.1; done
  env "${env_vars[@]}" "$BIN" admin create --email admin@fuzz.test --password 'fuzzing admin 1' --data-dir "$data" >/dev/null

  admin=$(call POST /api/v1/auth/login '' '{"email":"admin@fuzz.test","password":"fuzzing admin 1"}' | json '["access_token"]')
  customer=$(call POST /api/v1/auth/register '' '{"name":"Fuzz","email":"fuzz@fuzz.test","password":"correct horse"}' | json '["access_token"]')
  # Fixtures, so operations on one resource reach their logic rather than 404.
  product=$(call GET '/api/v1/products?limit=1&in_stock=true' "$customer" | json '["items"][0]["id"]')
  address=$(call POST /api/v1/users/me/addresses "$customer" \
    '{"line1":"1 Main St","city":"Springfield","postal_code":"62701","country":"US"}' | json '["id"]')
  order=$(call POST /api/v1/orders "$customer" \
    "{\"items\":[{\"product_id\":\"$product\",\"quantity\":1}],\"shipping_address_id\":\"$address\"}" | json '["id"]')
  user=$(call GET /api/v1/users/me "$customer" | json '["id"]')
  doomed=$(call POST /api/v1/products "$admin" \
    '{"name":"Doomed","description":"Deleted by the fuzzer.","price":{"amount":100,"currency":"USD"},"category":"Fuzz"}' \
    | json '["id"]')
  # An [[operations]] entry selects what any of its include-* keys matches (include-path and
  # include-method are two filters, ORed), so one operation is named by its label (include-name).
  cat >"$OUT/$backend/schemathesis.toml" <<TOML
[[operations]]
include-name = "DELETE /api/v1/users/me"
enabled = false
# DELETE of a product has a product of its own to delete, so the other operations keep theirs
# (the first entry that names an option decides it).
[[operations]]
include-name = "DELETE /api/v1/products/{id}"
parameters = { id = "$doomed" }
[[operations]]
include-path-regex = "^/api/v1/products/\\\\{id\\\\}"
parameters = { id = "$product" }
[[operations]]
include-path-regex = "^/api/v1/orders/\\\\{id\\\\}"
parameters = { id = "$order" }
# A schema-valid order may name any product or saved address; one that does not exist, or is
# someone else's, is 422 by contract (API.md), not a refusal of well-formed input. Lines of one
# product are merged, and more than 999 units of it in all is 400: no schema of the lines can
# say so (each line alone is within bounds). A quote is priced like an order.
[[operations]]
include-name = "POST /api/v1/orders"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429", "5xx"]
[[operations]]
include-name = "POST /api/v1/orders/quote"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429", "5xx"]
[[operations]]
include-path-regex = "^/api/v1/users/me/addresses/\\\\{id\\\\}"
parameters = { id = "$address" }
[[operations]]
include-path-regex = "^/api/v1/users/\\\\{id\\\\}"
parameters = { id = "$user" }
# A cursor is a token the list hands out: no schema tells a forged one from a real one, and the
# list answers a forged one 400. So the product list is fuzzed with the cursor absent or empty
# (both answer shapes), and without the coverage phase, which ignores dictionaries.
[dictionaries.cursors]
values = [""]
[[operations]]
include-name = "GET /api/v1/products"
parameters = { cursor = { dictionary = "cursors", probability = 1.0 } }
phases.coverage.enabled = false
# A cart line names a product: the fixture, so a schema-valid PUT is 200 (any other id is 422
# by contract, API.md).
[[operations]]
include-path-regex = "^/api/v1/cart/items/"
parameters = { product_id = "$product" }
# A checkout orders the cart's lines as POST /api/v1/orders would: an empty cart is 400, and a
# full one may be refused as an order is (400 for both or neither address, 409, 422), none of
# which a schema of the request can say.
[[operations]]
include-name = "POST /api/v1/cart/checkout"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429", "5xx"]
# Random bytes are not a JPEG, PNG or WebP, which no schema can say: 415 and 422 are answers.
[[operations]]
include-name = "POST /api/v1/products/{id}/images"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "415", "422", "429", "5xx"]
TOML

  for who in customer admin; do
    token=${!who}
    echo "==> $backend, signed in as $who"
    # From the output directory: schemathesis keeps its cache (.schemathesis/) where it runs.
    if ! (cd "$OUT" && "$VENV/bin/schemathesis" --config-file "$OUT/$backend/schemathesis.toml" run "$GW/openapi.json" \
        --header "Authorization: Bearer $token" --checks all --max-examples "$EXAMPLES" \
        --phases examples,coverage,fuzzing --workers 2 --seed 1 --continue-on-failure \
        ${FUZZ_INCLUDE:+--include-path-regex "$FUZZ_INCLUDE"} \
        --report junit --report-dir "$OUT/$backend/$who" >"$OUT/$backend/$who.log" 2>&1); then
      failed+=("$backend/$who")
      grep -E '^(- |  - |Failures:|  ❌|Test cases:|====)' "$OUT/$backend/$who.log" | tail -n 40
    else
      tail -n 3 "$OUT/$backend/$who.log"
    fi
  done
  stop_shop
  rm -rf "$data"
  if [ "$backend" = postgres ]; then
    for service in users products orders; do
      psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS fuzz_${RUN}_$service WITH (FORCE)"
    done
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]} (full output in $OUT)" >&2
  exit 1
fi
echo "fuzzing: no failures (${BACKENDS[*]}, customer and admin, $EXAMPLES examples per operation)"
