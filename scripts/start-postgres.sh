#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on loopback for the integration tests (installing Debian's server if it is missing)
# and prints its URL. Idempotent: a server already running on the port is reused.
set -euo pipefail
port="${MICROSCALE_PG_PORT:-55432}"
data="${MICROSCALE_PG_DATA:-/tmp/microscale-postgres-$port}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "installing postgresql" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
# PostgreSQL refuses to run as root: run it as the postgres user then.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
url="postgres://microscale@127.0.0.1:$port/microscale_test"
if ! as_owner "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    as_owner "$bin/initdb" -D "$data" -U microscale --auth=trust >/dev/null
  fi
  as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $port -c listen_addresses=127.0.0.1 -k /tmp -c fsync=on" start >/dev/null
fi
as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U microscale -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'microscale_test'" | grep -q 1 \
  || as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U microscale microscale_test
echo "$url"
