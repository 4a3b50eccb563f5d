#!/usr/bin/env bash
# Runs every test (the README's test command is `npm test`, which runs this).
# On a fresh Debian machine as root it installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
npm run --silent lint

# C tools the tests drive (built fresh, never committed).
mkdir -p build
gcc -O2 -Wall -Wextra -o build/fsx test/tools/fsx.c

# Unit tests and real-mount tests; files run one at a time so timings are not disturbed.
node --test --test-concurrency=1 dist/test/
