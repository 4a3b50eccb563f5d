#!/usr/bin/env bash
# bench/fuse-overhead/floor.sh -- latency of a cold stat(2), of create + write
# + close, and of cold 128 KiB sequential and 4 KiB random reads, everything
# on one CPU: memfs_ll (C, libfuse) against constant-fs
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
#                 ones: 2 of stat, 1 of create, 1 of each read)
#   SEQ_MB=256    size of the file read sequentially (and at random)
#   RAND_COUNT=20000  4 KiB random reads per pass
#   PIN_CPU=0     the CPU every daemon and client runs on
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
N=${N:-5000}
ROUNDS=${ROUNDS:-3}
PASSES=${PASSES:-4}
PIN_CPU=${PIN_CPU:-0}
SEQ_MB=${SEQ_MB:-256}
RAND_COUNT=${RAND_COUNT:-20000}
SEQ_BYTES=$((SEQ_MB * 1048576))

die() { echo "floor.sh: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "must run as root (mount, drop_caches)"
for v in N ROUNDS PASSES SEQ_MB RAND_COUNT; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"; done
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

# per_op_us WORKLOAD ARGS...: one pass, microseconds per operation
per_op_us() {
	pin "$WORK/workload" "$@" | awk '/^RESULT/ { printf "%.2f", $4 * 1000000 / $3 }'
}

# cold_us WORKLOAD ARGS...: the same after dropping the kernel's caches
cold_us() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	per_op_us "$@"
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
		constant-fs) pin node "$REPO/dist/bench/fuse-overhead/constant-fs.js" "$MNT" "$SEQ_BYTES" >"$WORK/$t.log" 2>&1 & ;;
		swarmvol) pin node "$REPO/dist/src/cli/main.js" mount --backend memory --max-write 128k --no-xattrs "$MNT" >"$WORK/$t.log" 2>&1 & ;;
		esac
		daemon=$!
		for _ in $(seq 100); do grep -q " $MNT " /proc/mounts && break; sleep 0.1; done
		grep -q " $MNT " /proc/mounts || die "$t did not mount: $(tail -n 3 "$WORK/$t.log")"
		# create + write 100 B + close, a new directory per pass (constant-fs
		# has c0..c999 already)
		for ((p = 0; p <= PASSES; p++)); do
			[[ $t == constant-fs ]] || mkdir "$MNT/c$p"
			us=$(per_op_us create "$MNT/c$p" "$N")
			((p > 0)) && keep_best "create $t" "$us"
		done
		dir=$MNT
		if [[ $t != constant-fs ]]; then # constant-fs has every name already
			dir=$MNT/files
			mkdir "$dir"
			pin "$WORK/workload" create "$dir" "$N" >/dev/null
		fi
		for ((p = 1; p <= PASSES + 2; p++)); do
			us=$(cold_us stat "$dir" "$N")
			((p > 2)) && keep_best "stat $t" "$us" # the first passes warm up the JIT
		done
		# constant-fs has seq.dat already (zeros)
		[[ $t == constant-fs ]] || pin "$WORK/workload" seqwrite "$MNT/seq.dat" "$SEQ_BYTES" 131072 >/dev/null
		for ((p = 0; p <= PASSES; p++)); do
			us=$(cold_us seqread "$MNT/seq.dat" "$SEQ_BYTES" 131072)
			((p > 0)) && keep_best "seqread $t" "$us"
			us=$(cold_us randread "$MNT/seq.dat" "$RAND_COUNT" 4096)
			((p > 0)) && keep_best "randread $t" "$us"
		done
		umount "$MNT"
		wait "$daemon" 2>/dev/null || true
		daemon=
	done
done

echo "pinned to CPU $PIN_CPU, best of $ROUNDS mounts x $PASSES passes; microseconds per operation, (memfs_ll / it)"
echo "stat: cold, $N files; create: + write 100 B + close, $N files; seqread: cold, 128 KiB read(2)s of $SEQ_MB MiB; randread: cold, $RAND_COUNT 4 KiB preads"
printf '%-10s' workload
for t in "${TARGETS[@]}"; do printf ' %20s' "$t"; done
printf '\n'
for w in stat create seqread randread; do
	printf '%-10s' "$w"
	for t in "${TARGETS[@]}"; do
		printf ' %20s' "$(awk -v c="${BEST[$w memfs_ll]}" -v x="${BEST[$w $t]}" 'BEGIN { printf "%.2f (%.2f)", x, c / x }')"
	done
	printf '\n'
done
