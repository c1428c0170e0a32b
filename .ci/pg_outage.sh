#!/usr/bin/env bash
# A PostgreSQL outage seen from outside: with the database stopped, a write answers 503
# `no-store` ("database unavailable") with Retry-After within a second, readiness fails,
# and the log says so once; once it is back, writes succeed again without a restart of
# the server. Needs .ci/pg.sh's server running (PG_URL, PG_DIR, PG_PORT, PG_BINDIR).
set -euo pipefail
as=()
[ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
bin=target/debug/hep-server
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$bin" --database-url "$PG_URL" --bind "127.0.0.1:$port" --export-dir "$work/exports" \
  --starter-library false >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  curl -sf "$base/health/live" >/dev/null && break
  sleep 0.2
done
token=$("$bin" dev-token --database-url "$PG_URL" --scope "system/*.cruds")
write() {
  curl -s -o "$work/answer" -D "$work/headers" -w '%{http_code} %{time_total}' \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/fhir+json' \
    -d '{"resourceType":"Patient"}' "$base/fhir/Patient"
}
read -r status _ <<<"$(write)"
[ "$status" = 201 ] || { echo "before the outage: $status"; exit 1; }

"${as[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null
for _ in 1 2 3; do
  read -r status took <<<"$(write)"
  [ "$status" = 503 ] || { echo "during the outage: $status"; cat "$work/answer"; tail -20 "$work/server.log"; exit 1; }
  grep -q '"code":"no-store"' "$work/answer" || { cat "$work/answer"; exit 1; }
  grep -q 'database unavailable' "$work/answer" || { cat "$work/answer"; exit 1; }
  grep -qi '^retry-after: 5' "$work/headers" || { cat "$work/headers"; exit 1; }
  python3 -c "import sys; sys.exit(0 if float('$took') < 1.0 else 1)" \
    || { echo "a request during the outage took $took s"; exit 1; }
done
ready=$(curl -s -o /dev/null -w '%{http_code}' "$base/health/ready")
[ "$ready" = 503 ] || { echo "readiness during the outage: $ready"; exit 1; }
began=$(grep -c 'database outage began' "$work/server.log" || true)
[ "$began" -ge 1 ] || { echo "no log line for the outage"; cat "$work/server.log"; exit 1; }

"${as[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
  -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR" start >/dev/null
recovered=""
for _ in $(seq 1 50); do
  read -r status _ <<<"$(write)"
  [ "$status" = 201 ] && { recovered=yes; break; }
  sleep 0.2
done
[ -n "$recovered" ] || { echo "writes did not recover after the database came back"; exit 1; }
grep -q 'database outage ended' "$work/server.log" || { echo "no log line for the end"; exit 1; }
echo "PostgreSQL outage: 503 no-store during it ($began 'began' lines for 3 writes and a probe), writes back after it"
