#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and mounts a swarmvol volume in
# the foreground at $1 (default /mnt/swarmvol). Ctrl-C unmounts.
set -euo pipefail
cd "$(dirname "$0")/.."
mountpoint=${1:-/mnt/swarmvol}
shift || true

bash scripts/install-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
mkdir -p "$mountpoint"
echo "swarmvol: mounting at $mountpoint (stop with Ctrl-C or: umount $mountpoint)" >&2
exec bin/swarmvol mount --backend memory "$@" "$mountpoint"
