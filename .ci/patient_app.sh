#!/usr/bin/env bash
# The patient app served at /app/, end to end in headless Chromium on a phone: a
# therapist's system makes a program over the API, the patient redeems the clinic's
# invitation, reports sessions online, offline and with a lost answer (sent exactly once),
# reads Week, My program and Progress, signs out, signs in again, and loses access when
# the clinic revokes it. Every screen is checked with axe-core and kept as a screenshot
# (target/app/NN-name.png); load figures go to target/app/figures.json.
# The test itself is .ci/browser/patient_app.mjs; this script builds and starts the
# server (SQLite in a temporary directory, the starter library, the app same-origin: no
# --cors-allowed-origins) and hands it a backend token.
# Usage: bash .ci/patient_app.sh   (from anywhere; needs node, npm and chromium)
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

chromium_path=$(command -v chromium || true)
if [ -z "$chromium_path" ]; then
  echo "patient_app.sh: chromium is not on this machine (apt-get install chromium); the app's browser test cannot run" >&2
  exit 1
fi

cargo build --locked -p api --bin hep-server
bin="$PWD/target/debug/hep-server"

# The browser tests' npm packages, installed under target/ (the checkout stays clean); the
# same directory and check as .ci/smart_launch.sh, so each reuses the other's install.
modules="$PWD/target/browser-node"
mkdir -p "$modules"
if ! cmp -s .ci/browser/package-lock.json "$modules/package-lock.json" || [ ! -d "$modules/node_modules" ]; then
  cp .ci/browser/package.json .ci/browser/package-lock.json "$modules/"
  (cd "$modules" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --silent --no-audit --no-fund)
fi

work=$(mktemp -d)
db="$work/hep.db"
port=$(free_port)
base="http://127.0.0.1:$port"

NO_COLOR=1 "$bin" --database-url "$db" --bind "127.0.0.1:$port" --export-dir "$work/exports" \
  --starter-library true >"$work/server.log" 2>&1 &
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
  echo "patient_app.sh: ${SECONDS}s"
  exit "$rc"
}
trap finish EXIT

for _ in $(seq 1 150); do
  curl -sf "$base/health/live" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "hep-server did not start"; exit 1; }
  sleep 0.2
done
curl -sf "$base/health/live" >/dev/null || { echo "hep-server is not live after 30s"; exit 1; }

# The therapist's system: a backend token of the clinic, for making the program and for
# every check of the server's state.
token=$("$bin" dev-token --database-url "$db" --scope "system/*.cruds")

rm -rf target/app
node .ci/browser/patient_app.mjs --server "$base" --token "$token" --modules "$modules" \
  --out target/app --chromium "$chromium_path"
