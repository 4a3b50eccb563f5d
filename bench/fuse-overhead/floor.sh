#!/usr/bin/env bash
# bench/fuse-overhead/floor.sh -- cold stat(2) and create + write + close
# latency, everything on one CPU: memfs_ll (C, libfuse) against constant-fs
# (swarmvol's transport and session answering constants: the floor of a
# Node.js daemon) and swarmvol's memory mount. Mounts are interleaved round by
# round; the best pass of all rounds is reported, with each target's ratio to
# memfs_ll.
#
# Must run as root (mounts, /proc/sys/vm/drop_caches), after `npm run build`.
#
# Environment (all optional):
#   N=5000        files stat'ed per pass
#   ROUNDS=3      fresh mounts per target
#   PASSES=4      measured passes of each workload per mount (after unmeasured
#                 ones: 2 of stat, 1 of create)
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

# per_op_us WORKLOAD DIR: one pass, microseconds per operation
per_op_us() {
	pin "$WORK/workload" "$1" "$2" "$N" | awk '/^RESULT/ { printf "%.2f", $4 * 1000000 / $3 }'
}

# stat_us DIR: one cold pass, microseconds per stat
stat_us() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	per_op_us stat "$1"
}

# keep_best KEY US: BEST[KEY] = min(BEST[KEY], US)
keep_best() {
	[[ -n $2 ]] || die "$1: a pass printed no result"
	if [[ -z ${BEST[$1]:-} ]] || awk -v a="$2" -v b="${BEST[$1]}" 'BEGIN { exit !(a < b) }'; then BEST[$1]=$2; fi
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
		# create + write 100 B + close, a new directory per pass (constant-fs
		# has c0..c999 already)
		for ((p = 0; p <= PASSES; p++)); do
			[[ $t == constant-fs ]] || mkdir "$MNT/c$p"
			us=$(per_op_us create "$MNT/c$p")
			((p > 0)) && keep_best "create $t" "$us"
		done
		dir=$MNT
		if [[ $t != constant-fs ]]; then # constant-fs has every name already
			dir=$MNT/files
			mkdir "$dir"
			pin "$WORK/workload" create "$dir" "$N" >/dev/null
		fi
		for ((p = 1; p <= PASSES + 2; p++)); do
			us=$(stat_us "$dir")
			((p > 2)) && keep_best "stat $t" "$us" # the first passes warm up the JIT
		done
		umount "$MNT"
		wait "$daemon" 2>/dev/null || true
		daemon=
	done
done

echo "$N files per pass, pinned to CPU $PIN_CPU, best of $ROUNDS mounts x $PASSES passes"
printf '%-12s %14s %12s %16s %12s\n' target 'us per stat' 'memfs_ll/it' 'us per create' 'memfs_ll/it'
for t in "${TARGETS[@]}"; do
	printf '%-12s %14s %12s %16s %12s\n' "$t" "${BEST[stat $t]}" "$(awk -v c="${BEST[stat memfs_ll]}" -v x="${BEST[stat $t]}" 'BEGIN { printf "%.2f", c / x }')" \
		"${BEST[create $t]}" "$(awk -v c="${BEST[create memfs_ll]}" -v x="${BEST[create $t]}" 'BEGIN { printf "%.2f", c / x }')"
done
