#!/usr/bin/env bash
# Durability under kill -9, seen from outside: 8 writers create Patients and post
# transaction Bundles (a Patient and 2 Observations referencing it by urn:uuid) while the
# server is killed with SIGKILL and restarted on the same database several times. Every
# acknowledged write must read back, and no transaction may be half there (.ci/crash.py
# does the load and the checks).
# Usage: bash .ci/crash.sh [sqlite|postgres|both]   (default both)
# PostgreSQL needs $PG_URL (source .ci/pg.sh; pg_start): a fresh database is created on
# that server for the run and dropped after it. Without $PG_URL it is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-both}
case "$which" in sqlite|postgres|both) ;; *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;; esac

cargo build --locked -q -p api --bin hep-server
bin=$PWD/target/debug/hep-server

work=$(mktemp -d /tmp/hep-crash.XXXXXX)
pg_db=""
cleanup() {
  # the server crash.py runs, if it is still there (crash.py removes the file once it
  # has reaped its server)
  local f
  for f in "$work"/*/server.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  [ -n "$pg_db" ] && "$pg_bin/dropdb" --maintenance-db="$PG_URL" --if-exists "$pg_db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

status=0

# SQLite: a fresh database file in a temporary directory, 4 kill -9 cycles
if [ "$which" != postgres ]; then
  mkdir "$work/sqlite"
  python3 .ci/crash.py "$bin" "$work/sqlite/crash.db" "$work/sqlite" sqlite 4 || status=1
fi

# PostgreSQL: a fresh database on $PG_URL's server, 3 kill -9 cycles
if [ "$which" != sqlite ]; then
  if [ -z "${PG_URL:-}" ]; then
    echo "crash postgres: skipped (no \$PG_URL; source .ci/pg.sh; pg_start)"
  else
    pg_bin=${PG_BINDIR:-}
    if [ -z "$pg_bin" ]; then
      for d in /usr/lib/postgresql/*/bin; do [ -x "$d/createdb" ] && pg_bin=$d; done
      [ -n "$pg_bin" ] || pg_bin=$(dirname "$(command -v createdb)")
    fi
    pg_db="hep_crash_$(date +%s)_$$"
    "$pg_bin/createdb" --maintenance-db="$PG_URL" "$pg_db"
    # $PG_URL with its database name replaced (user, host, port and options kept)
    url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$pg_db")
    mkdir "$work/postgres"
    python3 .ci/crash.py "$bin" "$url" "$work/postgres" postgres 3 || status=1
  fi
fi
exit $status
