#!/usr/bin/env bash
# Quick start: installs what is missing, builds, starts ZooKeeper on loopback
# (scripts/zookeeper.sh) and mounts the volume /swarmvol/volumes/default in the
# foreground at $1 (default /mnt/swarmvol). Ctrl-C unmounts; ZooKeeper keeps
# running (bash scripts/zookeeper.sh stop). Extra arguments go to swarmvol mount.
set -euo pipefail
cd "$(dirname "$0")/.."
mountpoint=${1:-/mnt/swarmvol}
shift || true

bash scripts/install-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
bash scripts/zookeeper.sh start
mkdir -p "$mountpoint"
echo "swarmvol: mounting ZooKeeper 127.0.0.1:2181 /swarmvol/volumes/default at $mountpoint (stop with Ctrl-C or: umount $mountpoint)" >&2
exec bin/swarmvol mount --backend zookeeper --hosts 127.0.0.1:2181 --path /swarmvol/volumes/default "$@" "$mountpoint"
