#!/usr/bin/env bash
# Creates the Secrets the minikube overlay references (see ../../secret.example.yaml), with
# fresh random passwords and a new token signing key. Existing Secrets are kept, and the
# passwords they hold are reused, so running it again changes nothing; delete a Secret to
# renew it. Needs kubectl (pointed at minikube) and openssl.
set -euo pipefail
ns=mercato
kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"

exists() { kubectl -n "$ns" get secret "$1" >/dev/null 2>&1; }
# The value of key $2 in Secret $1, or a new random one.
value_or_new() {
  if exists "$1"; then
    kubectl -n "$ns" get secret "$1" -o "jsonpath={.data.$2}" | base64 -d
  else
    openssl rand -hex 24
  fi
}

users_db=$(value_or_new postgres-secrets USERS_DB_PASSWORD)
products_db=$(value_or_new postgres-secrets PRODUCTS_DB_PASSWORD)
minio_password=$(value_or_new minio-secrets MINIO_ROOT_PASSWORD)

if ! exists postgres-secrets; then
  kubectl -n "$ns" create secret generic postgres-secrets \
    --from-literal=POSTGRES_PASSWORD="$(openssl rand -hex 24)" \
    --from-literal=USERS_DB_PASSWORD="$users_db" \
    --from-literal=PRODUCTS_DB_PASSWORD="$products_db"
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
    --from-file=signing-key.pem="$key"
fi
if ! exists products-secrets; then
  kubectl -n "$ns" create secret generic products-secrets \
    --from-literal=database-url="postgres://products:$products_db@postgres:5432/mercato_products" \
    --from-literal=s3-access-key-id=mercato \
    --from-literal=s3-secret-access-key="$minio_password"
fi
kubectl -n "$ns" get secrets
