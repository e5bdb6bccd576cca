#!/usr/bin/env bash
# Throwaway PostgreSQL cluster on 127.0.0.1 for the store's and the portal's PostgreSQL tests.
#
#   tests/postgres/pg.sh install   apt-get postgresql when root and missing (idempotent)
#   tests/postgres/pg.sh up        initdb in a temp dir, start on a free loopback port, create the
#                                  test database and a password (SCRAM) role
#   tests/postgres/pg.sh env       print LATCHKEY_TEST_POSTGRES_URL for the running cluster
#   tests/postgres/pg.sh down      stop it and delete the temp dir (idempotent)
#
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` system user
# (created by Debian's package; `latchkey-pg` is created when it is missing) and every server
# command runs through runuser. The unix socket lives in the temp dir, TCP only on 127.0.0.1.
# Durability is off (fsync, synchronous_commit): the data is thrown away, the tests want speed.
# PG_DURABLE=1 keeps PostgreSQL's defaults (for latency measurements that mean something).
# State: the cluster's folder is remembered in $PG_STATE (default /tmp/latchkey-pg.dir).
set -euo pipefail
PG_STATE=${PG_STATE:-/tmp/latchkey-pg.dir}
ROLE=latchkey
DB=latchkey_test

pgbin() {  # the newest installed server's bin folder (Debian keeps them out of PATH)
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then dirname "$(command -v initdb)"; return; fi
  return 1
}

owner() {  # the user the server runs as
  if [ "$(id -u)" != 0 ]; then id -un; return; fi
  if id postgres >/dev/null 2>&1; then echo postgres; return; fi
  id latchkey-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin latchkey-pg
  echo latchkey-pg
}

as_owner() {  # run a server command as the cluster's owner, from a folder it can read
  local u; u=$(owner)
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u "$u" -- "$@"); else (cd / && "$@"); fi
}

case "${1:-}" in
install)
  if pgbin >/dev/null && command -v psql >/dev/null; then echo "postgresql present ($(pgbin))"; exit 0; fi
  if [ "$(id -u)" != 0 ]; then echo "postgresql missing and not root: install postgresql (server + client)" >&2; exit 1; fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql postgresql-client
  pgbin >/dev/null || { echo "postgresql installed but initdb not found" >&2; exit 1; }
  ;;
up)
  if [ -f "$PG_STATE" ] && D=$(cat "$PG_STATE") && [ -f "$D/data/postmaster.pid" ] &&
     as_owner "$(pgbin)/pg_ctl" -D "$D/data" status >/dev/null 2>&1; then
    echo "postgres already up (dir $D)"; exit 0; fi
  BIN=$(pgbin) || { echo "postgresql not installed: run tests/postgres/pg.sh install" >&2; exit 1; }
  U=$(owner)
  D=$(mktemp -d /tmp/latchkey-pg.XXXXXX)
  echo "$D" > "$PG_STATE"
  mkdir -p "$D/sock"
  # A fresh random password per cluster, for the SCRAM login the tests use over TCP.
  PASS=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$PASS" > "$D/password"
  chmod 600 "$D/password"
  [ "$(id -u)" = 0 ] && chown -R "$U" "$D"
  as_owner "$BIN/initdb" -D "$D/data" -U "$ROLE" --pwfile="$D/password" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$D/initdb.log" 2>&1 ||
    { tail -20 "$D/initdb.log" >&2; exit 1; }
  FAST="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [ "${PG_DURABLE:-0}" = 1 ] && FAST=""
  # A free port, asked of the kernel; another process may take it before the server binds, so a
  # failed start is retried on a new one.
  for try in 1 2 3; do
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$PORT" > "$D/port"
    if as_owner "$BIN/pg_ctl" -D "$D/data" -l "$D/server.log" -w -t 60 start -o \
      "-c listen_addresses=127.0.0.1 -p $PORT -k $D/sock -c max_connections=400 $FAST" >/dev/null; then
      break
    fi
    [ "$try" = 3 ] && { tail -30 "$D/server.log" >&2; exit 1; }
  done
  psql -X -q -h "$D/sock" -p "$PORT" -U "$ROLE" -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE $DB" >/dev/null
  echo "postgres up: 127.0.0.1:$PORT (dir $D, running as $U)"
  ;;
env)
  [ -f "$PG_STATE" ] || { echo "no cluster: run tests/postgres/pg.sh up" >&2; exit 1; }
  D=$(cat "$PG_STATE")
  echo "export LATCHKEY_TEST_POSTGRES_URL='postgres://$ROLE:$(cat "$D/password")@127.0.0.1:$(cat "$D/port")/$DB'"
  ;;
down)
  if [ -f "$PG_STATE" ]; then
    D=$(cat "$PG_STATE")
    if [ -d "$D/data" ] && BIN=$(pgbin); then
      as_owner "$BIN/pg_ctl" -D "$D/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$D" "$PG_STATE"
  fi
  ;;
*)
  echo "usage: $0 install|up|env|down" >&2; exit 2 ;;
esac
