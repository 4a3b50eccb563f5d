#!/usr/bin/env bash
# Installs the Debian packages swarmvol's tests and quick start need, if missing.
# Safe to run again: it only calls apt-get when something is absent.
set -euo pipefail

packages=(
  fuse3          # /dev/fuse tools (fusermount3) and the fuse kernel setup
  libfuse3-dev   # the C reference filesystem in bench/
  pkg-config
  gcc
  libc6-dev
  make
  python3        # tests call renameat2/fcntl/xattrs through python3
  util-linux     # mount, umount, setpriv, flock
  util-linux-extra  # fincore: tests check what the kernel's page cache holds
  stress-ng
  fio
  git
  tar
  diffutils
  procps
  zookeeper              # the store the ZooKeeper backend's tests run against (on loopback)
  default-jre-headless   # ZooKeeper's runtime
  docker.io              # dockerd and the docker CLI: the plugin's tests run a real daemon
  busybox-static         # the tests' container image (imported, nothing is pulled)
  debootstrap            # the managed plugin's Debian base, built without a registry
  sqlite3                # the lock tests run sqlite3 from two nodes on one database
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The fuse module is built in or loadable on every kernel we run on; make sure /dev/fuse exists.
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -e /dev/fuse ] || { echo "install-deps: /dev/fuse is missing (load the fuse module)" >&2; exit 1; }
