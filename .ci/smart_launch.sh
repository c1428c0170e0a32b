#!/usr/bin/env bash
# A patient's SMART standalone launch end to end, twice: in headless Chromium with SMART's
# JS client library (fhirclient, .ci/browser), and as a native app with a loopback
# redirect (.ci/native_launch.py). Starts hep-server on SQLite in a temporary directory,
# makes two patients with Tasks and an invitation each, registers the two public apps,
# then runs both. Screenshots of every server page: target/browser/*.png.
# Usage: bash .ci/smart_launch.sh   (from anywhere; needs node, npm, and chromium for the
# browser part, which is skipped with a message when chromium is not installed)
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cargo build --locked -p api --bin hep-server
bin="$PWD/target/debug/hep-server"

# The browser tests' npm packages, installed under target/ (the checkout stays clean).
chromium_path=$(command -v chromium || true)
modules="$PWD/target/browser-node"
if [ -n "$chromium_path" ]; then
  mkdir -p "$modules"
  if ! cmp -s .ci/browser/package-lock.json "$modules/package-lock.json" || [ ! -d "$modules/node_modules" ]; then
    cp .ci/browser/package.json .ci/browser/package-lock.json "$modules/"
    (cd "$modules" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --silent --no-audit --no-fund)
  fi
fi

work=$(mktemp -d)
db="$work/hep.db"
port=$(free_port)
app_port=$(free_port)
while [ "$app_port" = "$port" ]; do app_port=$(free_port); done
base="http://127.0.0.1:$port"
app_origin="http://127.0.0.1:$app_port"

NO_COLOR=1 "$bin" --database-url "$db" --bind "127.0.0.1:$port" --export-dir "$work/exports" \
  --starter-library false --cors-allowed-origins "$app_origin" >"$work/server.log" 2>&1 &
server=$!
finish() {
  local rc=$?
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  if [ "$rc" != 0 ]; then
    echo "--- hep-server's log (last 80 lines)"
    tail -n 80 "$work/server.log" || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap finish EXIT

for _ in $(seq 1 150); do
  curl -sf "$base/health/live" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "hep-server did not start"; exit 1; }
  sleep 0.2
done
curl -sf "$base/health/live" >/dev/null || { echo "hep-server is not live after 30s"; exit 1; }

token=$("$bin" dev-token --database-url "$db" --scope "system/*.cruds")

# POST a resource (JSON on stdin) and print its id.
create() {
  curl -sfS -X POST "$base/fhir/$1" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/fhir+json' -H 'Accept: application/fhir+json' --data-binary @- \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

# An invitation code for Patient $1.
invite() {
  curl -sfS -X POST "$base/fhir/Patient/$1/\$invite" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/fhir+json' -H 'Accept: application/fhir+json' \
    --data-binary '{"resourceType":"Parameters"}' \
    | python3 -c '
import json, sys
p = json.load(sys.stdin)
code = [x["valueString"] for x in p.get("parameter", []) if x.get("name") == "code"]
assert len(code) == 1 and len(code[0]) == 8, f"$invite answered {p}"
print(code[0])'
}

# A patient with a few exercise sessions (Tasks), the name and birth date the code page asks.
patient() { # given family birthDate tasks
  local id
  id=$(create Patient <<EOF
{"resourceType":"Patient","identifier":[{"system":"urn:test:mrn","value":"smart-$2"}],
 "name":[{"family":"$2","given":["$1"]}],"birthDate":"$3"}
EOF
  )
  for n in $(seq 1 "$4"); do
    create Task >/dev/null <<EOF
{"resourceType":"Task","status":"requested","intent":"order","for":{"reference":"Patient/$id"},
 "description":"Exercise session $n"}
EOF
  done
  echo "$id"
}

# A public app (PKCE, no secret) registered for one redirect URI; prints its client id.
public_client() { # name redirect-uri
  "$bin" client add --database-url "$db" --tenant default --name "$1" --public \
    --redirect-uri "$2" --scope "launch/patient openid fhirUser offline_access patient/*.rs" \
    | awk 'END { if (NF) print $NF; else exit 1 }'
}

tasks=3
robin=$(patient Robin Okafor 1961-04-12 "$tasks")
sam=$(patient Sam Lindqvist 1975-09-30 1)
echo "Patients: Patient/$robin ($tasks Tasks), Patient/$sam"

if [ -n "$chromium_path" ]; then
  web_client=$(public_client "HEP test app" "$app_origin/index.html")
  robin_code=$(invite "$robin")
  rm -rf target/browser
  node .ci/browser/smart_launch.mjs --server "$base" --app-port "$app_port" \
    --client-id "$web_client" --invite "$robin_code" --patient "$robin" --tasks "$tasks" \
    --birth-date 1961-04-12 --app-name "HEP test app" --modules "$modules" --out target/browser \
    --chromium "$chromium_path"
else
  echo "chromium is not on this machine: the browser launch is skipped"
fi

native_client=$(public_client "HEP native test app" "http://127.0.0.1/callback")
sam_code=$(invite "$sam")
python3 .ci/native_launch.py --server "$base" --client-id "$native_client" \
  --invite "$sam_code" --patient "$sam" --birth-date 1975-09-30 --other-patient "$robin" \
  --app-name "HEP native test app"
