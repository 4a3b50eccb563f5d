#!/usr/bin/env bash
# Builds the managed plugin and creates it in Docker (docker plugin create).
#   packaging/plugin/build.sh [--name swarmvol] [--base IMAGE] [--host-node]
# --base IMAGE  root filesystem base (default node:20-bookworm-slim).
# --host-node   copy this host's node binary in (for a base without Node.js).
# --debootstrap make a Debian bookworm base with debootstrap (no registry
#               needed; implies --host-node).
# Then: mkdir -p /var/lib/swarmvol/plugin-state
#       docker plugin set NAME ZK_HOSTS=zk1:2181,zk2:2181,zk3:2181
#       docker plugin enable NAME
set -euo pipefail
cd "$(dirname "$0")/../.."
name=swarmvol
base=node:20-bookworm-slim
host_node=0
debootstrap=0
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --host-node) host_node=1; shift ;;
    --debootstrap) debootstrap=1; host_node=1; shift ;;
    *) echo "build.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done

if [ "$debootstrap" = 1 ]; then
  base=swarmvol-base:bookworm
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    root=$(mktemp -d)
    echo "build.sh: debootstrap bookworm (about 30 s)" >&2
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
    tar -C "$root" -c . | docker import - "$base" >/dev/null
    rm -rf "$root"
  fi
fi

npm run --silent build
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/node-bin" "$ctx/swarmvol"
cp -r dist package.json bin "$ctx/swarmvol/"
rm -rf "$ctx/swarmvol/dist/test" "$ctx/swarmvol/dist/bench"
[ "$host_node" = 1 ] && cp "$(command -v node)" "$ctx/node-bin/node"
cp packaging/plugin/Dockerfile "$ctx/"
docker build -q --network none --build-arg BASE="$base" -t "$name-rootfs" "$ctx" >/dev/null

plugin=$(mktemp -d)
cid=$(docker create "$name-rootfs" true)
mkdir -p "$plugin/rootfs"
docker export "$cid" | tar -C "$plugin/rootfs" -x
docker rm "$cid" >/dev/null
cp packaging/plugin/config.json "$plugin/"
docker plugin rm -f "$name" >/dev/null 2>&1 || true
docker plugin create "$name" "$plugin" >/dev/null
rm -rf "$plugin"
echo "build.sh: created plugin $name (docker plugin set $name ZK_HOSTS=...; docker plugin enable $name)" >&2
