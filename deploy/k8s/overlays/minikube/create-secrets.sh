#!/usr/bin/env bash
# Creates the Secrets the minikube overlay references (see ../../secret.example.yaml), with
# fresh random passwords and a new token signing key. Existing Secrets are kept, and the
# passwords they hold are reused, so running it again changes nothing; delete a Secret to
# renew it. Needs kubectl (pointed at minikube) and openssl.
set -euo pipefail
ns=mercato
kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"

exists() { kubectl -n "$ns" get secret "$1" >/dev/null 2>&1; }
# The value of key $2 in Secret $1 (empty when either is missing).
value_of() {
  if exists "$1"; then
    kubectl -n "$ns" get secret "$1" -o "jsonpath={.data.$2}" | base64 -d
  fi
}
# The value of key $2 in Secret $1, or a new random one.
value_or_new() {
  local value
  value=$(value_of "$1" "$2")
  if [[ -n $value ]]; then printf '%s' "$value"; else openssl rand -hex 24; fi
}
# Adds key $2=$3 to the existing Secret $1 if it lacks it (a service added after the first run).
add_key() {
  if exists "$1" && [[ -z $(value_of "$1" "$2") ]]; then
    kubectl -n "$ns" patch secret "$1" --type merge -p "{\"stringData\":{\"$2\":\"$3\"}}"
    echo "added $2 to Secret $1"
  fi
}

users_db=$(value_or_new postgres-secrets USERS_DB_PASSWORD)
products_db=$(value_or_new postgres-secrets PRODUCTS_DB_PASSWORD)
orders_db=$(value_or_new postgres-secrets ORDERS_DB_PASSWORD)
minio_password=$(value_or_new minio-secrets MINIO_ROOT_PASSWORD)
# orders' client secret at users: one value in both orders-secrets and users-secrets.
orders_client=$(value_of orders-secrets service-client-secret)
[[ -n $orders_client ]] || orders_client=$(value_or_new users-secrets service-client-orders)

if ! exists postgres-secrets; then
  kubectl -n "$ns" create secret generic postgres-secrets \
    --from-literal=POSTGRES_PASSWORD="$(openssl rand -hex 24)" \
    --from-literal=USERS_DB_PASSWORD="$users_db" \
    --from-literal=PRODUCTS_DB_PASSWORD="$products_db" \
    --from-literal=ORDERS_DB_PASSWORD="$orders_db"
elif [[ -z $(value_of postgres-secrets ORDERS_DB_PASSWORD) ]]; then
  add_key postgres-secrets ORDERS_DB_PASSWORD "$orders_db"
  # init-databases.sh runs only on an empty data directory: an existing server needs the
  # orders role and database created once by hand.
  echo "PostgreSQL is already initialised: create the orders database once with" >&2
  echo "  kubectl -n $ns exec postgres-0 -- psql -U postgres -v ON_ERROR_STOP=1 \\" >&2
  echo "    -c \"CREATE ROLE orders LOGIN PASSWORD '\$ORDERS_DB_PASSWORD'\" -c 'CREATE DATABASE mercato_orders OWNER orders' \\" >&2
  echo "    -c 'REVOKE ALL ON DATABASE mercato_orders FROM PUBLIC'   # the password from postgres-secrets" >&2
fi
if ! exists minio-secrets; then
  kubectl -n "$ns" create secret generic minio-secrets \
    --from-literal=MINIO_ROOT_USER=mercato \
    --from-literal=MINIO_ROOT_PASSWORD="$minio_password"
fi
if ! exists users-secrets; then
  key=$(mktemp)
  trap 'rm -f "$key"' EXIT
  openssl genpkey -algorithm ed25519 -out "$key"
  kubectl -n "$ns" create secret generic users-secrets \
    --from-literal=database-url="postgres://users:$users_db@postgres:5432/mercato_users" \
    --from-file=signing-key.pem="$key" \
    --from-literal=service-client-orders="$orders_client"
else
  add_key users-secrets service-client-orders "$orders_client"
fi
if ! exists products-secrets; then
  kubectl -n "$ns" create secret generic products-secrets \
    --from-literal=database-url="postgres://products:$products_db@postgres:5432/mercato_products" \
    --from-literal=s3-access-key-id=mercato \
    --from-literal=s3-secret-access-key="$minio_password"
fi
if ! exists orders-secrets; then
  kubectl -n "$ns" create secret generic orders-secrets \
    --from-literal=database-url="postgres://orders:$orders_db@postgres:5432/mercato_orders" \
    --from-literal=service-client-secret="$orders_client"
fi
kubectl -n "$ns" get secrets
