#!/usr/bin/env bash
# Installs and starts the real services the coordinator's tests use: PostgreSQL and Chromium,
# both from Debian's packages. Safe to run again: it only does what is missing.
# Run as root on Debian. Progress goes to stderr; stdout is one line to eval:
#   eval "$(scripts/ci_services.sh)"   # sets FEDKG_TEST_POSTGRES_URL
set -euo pipefail

PG_USER="${FEDKG_PG_USER:-fedkg}"
PG_PASSWORD="${FEDKG_PG_PASSWORD:-fedkg}"
PG_DB="${FEDKG_PG_DB:-fedkg_test}"
PG_PORT="${FEDKG_PG_PORT:-5432}"

say() { echo "ci_services: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    say "must run as root (it installs Debian packages and starts PostgreSQL)"
    exit 1
fi

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
    say "creating cluster $version/main"
    pg_createcluster "$version" main --port "$PG_PORT" >&2
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -qx online; then
    say "starting PostgreSQL $version"
    pg_ctlcluster "$version" main start >&2
fi
port="$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')"
for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$port" >&2

psql_as_postgres() { su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -qtAc \"$1\""; }
if [ "$(psql_as_postgres "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'")" != "1" ]; then
    say "creating role $PG_USER"
    psql_as_postgres "CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD' CREATEDB" >&2
fi
if [ "$(psql_as_postgres "SELECT 1 FROM pg_database WHERE datname='$PG_DB'")" != "1" ]; then
    say "creating database $PG_DB"
    psql_as_postgres "CREATE DATABASE $PG_DB OWNER $PG_USER" >&2
fi

say "PostgreSQL $version on 127.0.0.1:$port, database $PG_DB; $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium: version unknown')"
echo "export FEDKG_TEST_POSTGRES_URL=postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$port/$PG_DB"
