#!/usr/bin/env bash
# A full disk under the SQLite database, on a real small file system (a 24 MiB tmpfs):
# writes answer 503 "disk full" with Retry-After (never a 500) while reads go on,
# readiness fails, the log says so once; once space is freed, writes succeed again
# without a restart and nothing acknowledged is lost (.ci/disk_full.py does the steps and
# the checks). Needs root (mount); skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/hep-disk-full.XXXXXX)  # the server's log and pid: not on the tmpfs
mnt="$work/mnt"
mkdir "$mnt"
mounted=""
cleanup() {
  [ -f "$work/server.pid" ] && kill -9 "$(cat "$work/server.pid")" 2>/dev/null || true
  if [ -n "$mounted" ]; then
    # the killed server's files may take a moment to be closed
    for _ in $(seq 1 50); do umount "$mnt" 2>/dev/null && break; sleep 0.1; done
    mountpoint -q "$mnt" && umount -l "$mnt"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ] || ! mount -t tmpfs -o size=24m tmpfs "$mnt" 2>/dev/null; then
  echo "disk-full check skipped: needs root and a tmpfs mount"
  exit 0
fi
mounted=yes

cargo build --locked -q -p api --bin hep-server
python3 .ci/disk_full.py "$PWD/target/debug/hep-server" "$mnt" "$work"
