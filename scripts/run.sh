#!/usr/bin/env bash
# Quick start: installs what is missing (Debian packages, npm packages), builds,
# starts ZooKeeper on loopback (scripts/zookeeper.sh) as the default store,
# starts dockerd if none answers, and runs the swarmvol volume plugin in legacy
# mode in the foreground (socket /run/docker/plugins/swarmvol.sock). Then, from
# another shell:
#   docker volume create -d swarmvol v && docker run --rm -v v:/data debian ls /data
# Stop with Ctrl-C (volume mounts in use keep serving until their containers
# stop); bash scripts/zookeeper.sh stop stops ZooKeeper.
#
# With --mount DIR it mounts the volume /swarmvol/volumes/default at DIR
# instead (no Docker needed); extra arguments go to swarmvol mount.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
bash scripts/zookeeper.sh start

if [ "${1:-}" = --mount ]; then
  mountpoint=${2:?usage: scripts/run.sh --mount DIR [swarmvol mount options]}
  shift 2
  mkdir -p "$mountpoint"
  echo "swarmvol: mounting ZooKeeper 127.0.0.1:2181 /swarmvol/volumes/default at $mountpoint (stop with Ctrl-C or: umount $mountpoint)" >&2
  exec bin/swarmvol mount --backend zookeeper --hosts 127.0.0.1:2181 --path /swarmvol/volumes/default "$@" "$mountpoint"
fi

if ! docker version >/dev/null 2>&1; then
  if command -v systemctl >/dev/null && systemctl start docker 2>/dev/null; then
    echo "swarmvol: started docker.service" >&2
  else
    mkdir -p /var/log
    nohup dockerd >>/var/log/swarmvol-dockerd.log 2>&1 &
    echo "swarmvol: started dockerd (log /var/log/swarmvol-dockerd.log)" >&2
  fi
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
fi

echo "swarmvol: plugin on /run/docker/plugins/swarmvol.sock, volumes in ZooKeeper 127.0.0.1:2181 under /swarmvol/volumes" >&2
echo "swarmvol: try: docker volume create -d swarmvol v && docker run --rm -v v:/data <image> ls /data   (Ctrl-C stops the plugin)" >&2
ZK_HOSTS=${ZK_HOSTS:-127.0.0.1:2181} exec bin/swarmvol serve "$@"
