#!/usr/bin/env bash
# bench/fuse-overhead/floor.sh -- cold stat(2) latency, everything on one CPU:
# memfs_ll (C, libfuse) against constant-fs (swarmvol's transport and session
# answering constants: the floor of a Node.js daemon) and swarmvol's memory
# mount. Mounts are interleaved round by round; the best of the cold passes
# of all rounds is reported, with each target's ratio to memfs_ll.
#
# Must run as root (mounts, /proc/sys/vm/drop_caches), after `npm run build`.
#
# Environment (all optional):
#   N=5000        files stat'ed per pass
#   ROUNDS=3      fresh mounts per target
#   PASSES=4      measured cold passes per mount (after 2 unmeasured ones)
#   PIN_CPU=0     the CPU every daemon and client runs on
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
N=${N:-5000}
ROUNDS=${ROUNDS:-3}
PASSES=${PASSES:-4}
PIN_CPU=${PIN_CPU:-0}

die() { echo "floor.sh: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "must run as root (mount, drop_caches)"
for v in N ROUNDS PASSES; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"; done
[[ $PIN_CPU =~ ^[0-9]+$ ]] || die "PIN_CPU must be a CPU number (got '$PIN_CPU')"
[[ -f $REPO/dist/bench/fuse-overhead/constant-fs.js ]] || die "run 'npm run build' first"
pkg-config --exists fuse3 || die "libfuse3-dev (pkg-config fuse3) not installed"

WORK=$(mktemp -d /tmp/fuse-floor.XXXXXX)
MNT=$WORK/mnt
mkdir -p "$MNT"
daemon=
cleanup() {
	if grep -q " $MNT " /proc/mounts; then umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true; fi
	[[ -n $daemon ]] && wait "$daemon" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
gcc -O2 -Wall -o "$WORK/memfs_ll" "$REPO/bench/cfs/memfs_ll.c" $(pkg-config --cflags --libs fuse3) -lpthread
gcc -O2 -Wall -o "$WORK/workload" "$REPO/bench/cfs/workload.c"
pin() { taskset -c "$PIN_CPU" "$@"; }

# stat_us DIR: one cold pass, microseconds per stat
stat_us() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	pin "$WORK/workload" stat "$1" "$N" | awk '/^RESULT/ { printf "%.2f", $4 * 1000000 / $3 }'
}

declare -A BEST=()
TARGETS=(memfs_ll constant-fs swarmvol)
for ((round = 1; round <= ROUNDS; round++)); do
	for t in "${TARGETS[@]}"; do
		case $t in
		memfs_ll) pin "$WORK/memfs_ll" "$MNT" >"$WORK/$t.log" 2>&1 & ;;
		constant-fs) pin node "$REPO/dist/bench/fuse-overhead/constant-fs.js" "$MNT" >"$WORK/$t.log" 2>&1 & ;;
		swarmvol) pin node "$REPO/dist/src/cli/main.js" mount --backend memory --max-write 128k --no-xattrs "$MNT" >"$WORK/$t.log" 2>&1 & ;;
		esac
		daemon=$!
		for _ in $(seq 100); do grep -q " $MNT " /proc/mounts && break; sleep 0.1; done
		grep -q " $MNT " /proc/mounts || die "$t did not mount: $(tail -n 3 "$WORK/$t.log")"
		dir=$MNT
		if [[ $t != constant-fs ]]; then # constant-fs has every name already
			dir=$MNT/files
			mkdir "$dir"
			pin "$WORK/workload" create "$dir" "$N" >/dev/null
		fi
		for ((p = 1; p <= PASSES + 2; p++)); do
			us=$(stat_us "$dir")
			[[ -n $us ]] || die "$t: the stat pass printed no result"
			((p > 2)) || continue # the first passes warm up the JIT
			if [[ -z ${BEST[$t]:-} ]] || awk -v a="$us" -v b="${BEST[$t]}" 'BEGIN { exit !(a < b) }'; then BEST[$t]=$us; fi
		done
		umount "$MNT"
		wait "$daemon" 2>/dev/null || true
		daemon=
	done
done

echo "cold stat of $N files, pinned to CPU $PIN_CPU, best of $ROUNDS mounts x $PASSES passes"
printf '%-12s %12s %12s\n' target 'us per stat' 'memfs_ll/it'
for t in "${TARGETS[@]}"; do
	printf '%-12s %12s %12s\n' "$t" "${BEST[$t]}" "$(awk -v c="${BEST[memfs_ll]}" -v x="${BEST[$t]}" 'BEGIN { printf "%.2f", c / x }')"
done
