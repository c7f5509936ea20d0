#!/usr/bin/env bash
# One database and one owner role per service, created when PostgreSQL initialises an empty
# data directory (docker-entrypoint-initdb.d). Each service is found by its password variable:
# USERS_DB_PASSWORD makes role `users` owning database `mercato_users`, and so on, so a new
# service needs only its <SERVICE>_DB_PASSWORD, or <SERVICE>_DB_PASSWORD_FILE naming a file that
# holds it (compose passes secrets as files). Used by deploy/compose.yaml and the minikube
# overlay; a managed database gets the same statements from its operator.
set -euo pipefail

found=0
while IFS='=' read -r variable _; do
    case $variable in
        *_DB_PASSWORD) password=${!variable} ;;
        *_DB_PASSWORD_FILE) password=$(<"${!variable}"); variable=${variable%_FILE} ;;
        *) continue ;;
    esac
    service=$(tr '[:upper:]' '[:lower:]' <<<"${variable%_DB_PASSWORD}")
    [[ $service =~ ^[a-z][a-z0-9_]*$ ]] || { echo "init-databases: bad service name in $variable" >&2; exit 1; }
    echo "init-databases: role $service, database mercato_$service"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v role="$service" -v database="mercato_$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
    found=$((found + 1))
done < <(env)

if [[ $found -eq 0 ]]; then
    echo "init-databases: no <SERVICE>_DB_PASSWORD(_FILE) variable set; no database created" >&2
    exit 1
fi
