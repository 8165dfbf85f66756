#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the tests (Debian's PostgreSQL, any version in
# /usr/lib/postgresql). Used by .ci/run and by the tests themselves (internal/store/postgres/pgtest).
#
#   test-postgres.sh start [OWNER_PID]  initdb into a new temp dir and start the server on a free
#                                      loopback port; prints shell lines:
#                                        LIVESNAP_TEST_POSTGRES=postgres://postgres:...@127.0.0.1:PORT/livesnap
#                                        LIVESNAP_TEST_POSTGRES_DIR=/tmp/livesnap-pg.XXXXXX
#                                      With OWNER_PID the server also stops when that process ends.
#   test-postgres.sh stop DIR           stop that server and remove DIR.
#
# As root, the server runs as the postgres user (initdb refuses root). The password is random
# and only ever printed on stdout.
set -euo pipefail

bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return; }
  echo "test-postgres: no PostgreSQL server binaries (apt-get install postgresql-15)" >&2
  exit 1
}

# as runs a command as the server's owner.
as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
  local dir=$1 bin
  [ -n "$dir" ] && [ -f "$dir/data/PG_VERSION" ] || { rm -rf -- "$dir"; return 0; }
  bin=$(bindir)
  as "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf -- "$dir"
}

start() {
  local owner=${1:-} bin dir pw port ok=""
  bin=$(bindir)
  dir=$(mktemp -d /tmp/livesnap-pg.XXXXXX)
  chmod 0755 "$dir"
  pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s\n' "$pw" >"$dir/pw"
  chmod 0600 "$dir/pw"
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
  as "$bin/initdb" -D "$dir/data" -U postgres --auth=scram-sha-256 --pwfile="$dir/pw" \
    --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; stop "$dir"; exit 1; }
  rm -f "$dir/pw"
  # Tests want speed, not durability; loopback TCP only, no Unix socket.
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    if as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o \
      "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories= -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null 2>&1; then
      ok=1
      break
    fi
  done
  [ -n "$ok" ] || { echo "test-postgres: the server did not start:" >&2; tail -n 20 "$dir/server.log" >&2; stop "$dir"; exit 1; }
  PGPASSWORD=$pw "$bin/psql" -qAt -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'CREATE DATABASE livesnap' >/dev/null
  if [ -n "$owner" ]; then
    # A watchdog: a test binary that dies without cleaning up still takes its server along.
    (
      trap '' HUP
      while kill -0 "$owner" 2>/dev/null; do sleep 1; done
      stop "$dir"
    ) </dev/null >/dev/null 2>&1 &
  fi
  echo "LIVESNAP_TEST_POSTGRES=postgres://postgres:$pw@127.0.0.1:$port/livesnap"
  echo "LIVESNAP_TEST_POSTGRES_DIR=$dir"
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop "${2:?usage: test-postgres.sh stop DIR}" ;;
  *) echo "usage: test-postgres.sh start [OWNER_PID] | stop DIR" >&2; exit 2 ;;
esac
