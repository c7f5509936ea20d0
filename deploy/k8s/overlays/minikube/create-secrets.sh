#!/usr/bin/env bash
# Writes the Secrets the minikube overlay generates (see ../../secret.example.yaml for their
# shape) into secrets/ beside this script, git-ignored: fresh random passwords and a new token
# signing key. `kubectl apply -k` turns them into Secrets whose names carry a hash of their
# content, so changing a file and applying again rolls the pods that use it. Existing files are
# kept, so running it again changes nothing; delete a file to renew what it holds. Needs openssl.
#
#   bash deploy/k8s/overlays/minikube/create-secrets.sh [DIR]    # DIR defaults to secrets/ here
set -euo pipefail
dir=${1:-"$(dirname "$0")/secrets"}
mkdir -p "$dir"
chmod 700 "$dir"
umask 077

# KEY's value in the env file $1, or a new random one.
value_or_new() {
  local value=
  [[ -f $1 ]] && value=$(sed -n "s/^$2=//p" "$1")
  if [[ -n $value ]]; then printf '%s' "$value"; else openssl rand -hex 24; fi
}

users_db=$(value_or_new "$dir/postgres.env" USERS_DB_PASSWORD)
products_db=$(value_or_new "$dir/postgres.env" PRODUCTS_DB_PASSWORD)
orders_db=$(value_or_new "$dir/postgres.env" ORDERS_DB_PASSWORD)
minio_password=$(value_or_new "$dir/minio.env" MINIO_ROOT_PASSWORD)
redis_password=$(value_or_new "$dir/redis.env" password)
rabbitmq_password=$(value_or_new "$dir/rabbitmq.env" password)
# orders' client secret at users: one value in both orders.env and users.env.
orders_client=$(value_or_new "$dir/orders.env" service-client-secret)
# carts' client secret at users: one value in both carts.env and users.env.
carts_client=$(value_or_new "$dir/carts.env" service-client-secret)

# Writes $1 from stdin unless it exists.
write_once() {
  if [[ -e $1 ]]; then cat >/dev/null; echo "kept    $1"; else cat >"$1"; echo "created $1"; fi
}
write_once "$dir/postgres.env" <<ENV
POSTGRES_PASSWORD=$(value_or_new "$dir/postgres.env" POSTGRES_PASSWORD)
USERS_DB_PASSWORD=$users_db
PRODUCTS_DB_PASSWORD=$products_db
ORDERS_DB_PASSWORD=$orders_db
ENV
write_once "$dir/minio.env" <<ENV
MINIO_ROOT_USER=mercato
MINIO_ROOT_PASSWORD=$minio_password
ENV
write_once "$dir/redis.env" <<ENV
password=$redis_password
url=redis://:$redis_password@redis:6379
ENV
write_once "$dir/rabbitmq.env" <<ENV
username=mercato
password=$rabbitmq_password
url=amqp://mercato:$rabbitmq_password@rabbitmq:5672/%2f
ENV
write_once "$dir/users.env" <<ENV
database-url=postgres://users:$users_db@postgres:5432/mercato_users
service-client-orders=$orders_client
service-client-carts=$carts_client
ENV
[[ -e $dir/signing-key.pem ]] || openssl genpkey -algorithm ed25519 -out "$dir/signing-key.pem"
write_once "$dir/products.env" <<ENV
database-url=postgres://products:$products_db@postgres:5432/mercato_products
s3-access-key-id=mercato
s3-secret-access-key=$minio_password
ENV
write_once "$dir/orders.env" <<ENV
database-url=postgres://orders:$orders_db@postgres:5432/mercato_orders
service-client-secret=$orders_client
ENV
write_once "$dir/carts.env" <<ENV
service-client-secret=$carts_client
ENV
# The storefront's session key: 32 random bytes, base64 (every replica the same).
write_once "$dir/storefront.env" <<ENV
session-key=$(openssl rand -base64 32)
ENV
