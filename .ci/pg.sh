#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on a free loopback port in a temporary directory.
# Usage: source .ci/pg.sh; pg_start; ... "$PG_URL" ...; pg_stop
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

pg_install() {
  pg_bin >/dev/null && return 0
  echo "PostgreSQL server not found: installing it"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

pg_start() {
  pg_install || { echo "cannot install PostgreSQL" >&2; return 1; }
  local bin; bin=$(pg_bin)
  PG_DIR=$(mktemp -d /tmp/hep-pg.XXXXXX)
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local as=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$PG_DIR" postgres
    chown postgres "$PG_DIR"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$PG_DIR/data" -U hep --auth=trust -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log"; return 1; }
  "${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=on -c max_connections=300 -c shared_buffers=128MB" start >/dev/null \
    || { cat "$PG_DIR/server.log"; return 1; }
  "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U hep hep_test
  PG_URL="postgres://hep@127.0.0.1:$PG_PORT/hep_test"
  PG_AS=("${as[@]}")
  PG_BINDIR="$bin"
  export PG_URL PG_DIR PG_PORT PG_BINDIR
  echo "PostgreSQL running at $PG_URL"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  "${PG_AS[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=
}
