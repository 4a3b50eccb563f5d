#!/usr/bin/env bash
# epoll vs threadpool transport, same backend, same run. Usage: bench/transport/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -Wall -o "$tmp/workload" bench/cfs/workload.c
npm run --silent build
# The threadpool transport parks 4 reads on the pool: give the rest of Node some threads.
UV_THREADPOOL_SIZE=8 node dist/bench/transport/run.js "$tmp/workload"
