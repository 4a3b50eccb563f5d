#!/usr/bin/env bash
# bench/fuse-overhead/run.sh -- swarmvol (TypeScript FUSE) vs a C libfuse3
# low-level in-memory FS (bench/cfs/memfs_ll.c) vs tmpfs.
#
# Must run as root (mounts, /proc/sys/vm/drop_caches).  See bench/README.md.
#
# Environment (all optional):
#   N=5000            files for the metadata workloads
#   SEQ_MB=1024       size of the sequential write/read file, MiB
#   RAND_COUNT=20000  4 KiB random preads
#   CLIENTS=4         processes for parallel-create
#   REPS=3            repetitions per target; the best run is reported
#   TARGETS="swarmvol cfs tmpfs"
#   CACHE_TIMEOUT=1   entry/attr/negative timeout (s) for both FUSE targets
#   SWARMVOL_CMD      command prefix that mounts swarmvol in the foreground;
#                     the script appends
#                       --entry-timeout T --attr-timeout T --negative-timeout T MNT
#                     default: bin/swarmvol mount --backend memory --max-write 128k --no-xattrs
#                     (the C filesystem's max_read and its lack of xattrs, so both
#                     get the same requests; see bench/README.md)
#                     It is eval'ed with the build dir first on PATH, so
#                     SWARMVOL_CMD=memfs_ll (or '$tmp/memfs_ll') benchmarks a
#                     second memfs_ll instance as a stand-in.
#   TAR_SRC           directory to tar for the untar workload (default: first
#                     of /usr/include /usr/share/perl5 ... with >= 3000 entries)
#   BENCH_JSON        also write the result table as JSON to this path
#   MOUNT_TIMEOUT=30  seconds to wait for a mount / an unmount
#   STEP_TIMEOUT=300  seconds any single workload step may take
#   KEEP_WORK=0       1 = keep the work dir (logs) after the run
#   WARMUP_N=3000     files in the unmeasured warm-up pass before each repetition
#   PIN_CPU           run everything (servers, clients, tar) on this one CPU:
#                     on a VM, wake-ups across vCPUs cost tens of microseconds and
#                     where the scheduler puts each thread decides the result;
#                     pinned, the rates compare the filesystems' own work
set -euo pipefail

if [[ -n ${PIN_CPU:-} && -z ${FUSE_OVERHEAD_PINNED:-} ]]; then
	[[ $PIN_CPU =~ ^[0-9]+$ ]] || { echo "PIN_CPU must be a CPU number (got '$PIN_CPU')" >&2; exit 1; }
	FUSE_OVERHEAD_PINNED=1 exec taskset -c "$PIN_CPU" "$0" "$@"
fi

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
CFS_SRC=$REPO/bench/cfs

N=${N:-5000}
SEQ_MB=${SEQ_MB:-1024}
RAND_COUNT=${RAND_COUNT:-20000}
CLIENTS=${CLIENTS:-4}
REPS=${REPS:-3}
TARGETS=${TARGETS:-swarmvol cfs tmpfs}
CACHE_TIMEOUT=${CACHE_TIMEOUT:-1}
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-30}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
KEEP_WORK=${KEEP_WORK:-0}
BENCH_JSON=${BENCH_JSON:-}
TAR_SRC=${TAR_SRC:-}
SEQ_BLOCK=131072

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- checks
[[ $EUID -eq 0 ]] || die "must run as root (mount, drop_caches)"
for v in N SEQ_MB RAND_COUNT CLIENTS REPS MOUNT_TIMEOUT STEP_TIMEOUT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
[[ $CACHE_TIMEOUT =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "CACHE_TIMEOUT must be a number"
[[ -c /dev/fuse ]] || die "/dev/fuse missing"
for t in gcc pkg-config tar timeout awk; do
	command -v "$t" >/dev/null || die "$t not found"
done
pkg-config --exists fuse3 || die "libfuse3-dev (pkg-config fuse3) not installed"
for t in $TARGETS; do
	case $t in swarmvol|cfs|tmpfs) ;; *) die "unknown target '$t'";; esac
done

if [[ -z ${SWARMVOL_CMD:-} ]]; then
	sv_js=$REPO/dist/src/cli/main.js
	SWARMVOL_CMD="node $sv_js mount --backend memory --max-write 128k --no-xattrs"
	if [[ " $TARGETS " == *" swarmvol "* && ! -f $sv_js ]]; then
		die "$sv_js not found: run 'npm run build' first, or set SWARMVOL_CMD (e.g. SWARMVOL_CMD=memfs_ll for the C stand-in), or TARGETS='cfs tmpfs'"
	fi
fi

# ---------------------------------------------------------------- work dir
WORK=$(mktemp -d /tmp/fuse-overhead.XXXXXX)
BUILD_DIR=$WORK/bin
tmp=$BUILD_DIR # so that SWARMVOL_CMD='$tmp/memfs_ll' works
LOG_DIR=$WORK/logs
SRC_MNT=$WORK/src # small tmpfs holding the tarball: immune to drop_caches
mkdir -p "$BUILD_DIR" "$LOG_DIR" "$SRC_MNT"

declare -A PID=() MNT=() MOPTS=()
STEP_PID=

is_mounted() { # exact mount point, read from the kernel table without touching the FS
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

mount_fstype() { # type of the topmost mount at $1 (empty if none)
	awk -v m="$1" '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") { t = $(i + 1); break } } END { print t }' \
		/proc/self/mountinfo
}

fuse_conn_of() { # FUSE connection id (= minor device number) of the mount at $1
	awk -v m="$1" '$5 == m { split($3, d, ":"); c = d[2] } END { print c }' /proc/self/mountinfo
}

proc_alive() { # running and not a zombie
	local st
	[[ -n ${1:-} ]] || return 1
	st=$(sed -n 's/.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

wait_exit() { # pid seconds -> 0 when the process is gone
	local pid=$1 deadline=$((SECONDS + $2))
	while proc_alive "$pid"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
	wait "$pid" 2>/dev/null || true
	return 0
}

unmount_path() { # robust unmount of whatever is mounted at $1 (top first)
	local m=$1 i conn
	for i in 1 2 3; do
		is_mounted "$m" || return 0
		timeout 20 umount "$m" 2>/dev/null && continue
		sleep 0.5
	done
	is_mounted "$m" || return 0
	# still there: busy or the daemon is wedged.  Abort the FUSE connection
	# (fails pending requests instead of hanging) and detach lazily.
	conn=$(fuse_conn_of "$m")
	if [[ $(mount_fstype "$m") == fuse* && -n $conn && -w /sys/fs/fuse/connections/$conn/abort ]]; then
		echo 1 >"/sys/fs/fuse/connections/$conn/abort" 2>/dev/null || true
	fi
	timeout 20 umount -l "$m" 2>/dev/null || true
	! is_mounted "$m"
}

stop_target() {
	local t=$1 m=${MNT[$1]:-} p=${PID[$1]:-}
	[[ -n $m ]] || return 0
	if [[ -n $p ]] && proc_alive "$p" && is_mounted "$m"; then
		timeout 20 umount "$m" 2>>"$LOG_DIR/umount.log" || log "$t: umount failed: $(tail -n 1 "$LOG_DIR/umount.log" 2>/dev/null)"
		if ! wait_exit "$p" "$MOUNT_TIMEOUT"; then
			log "$t: daemon $p still running after umount, sending SIGTERM"
			kill -TERM "$p" 2>/dev/null || true
			wait_exit "$p" 10 || { log "$t: SIGKILL $p"; kill -KILL "$p" 2>/dev/null || true; wait_exit "$p" 5 || true; }
		fi
	elif [[ -n $p ]] && proc_alive "$p"; then
		kill -TERM "$p" 2>/dev/null || true
		wait_exit "$p" 10 || { kill -KILL "$p" 2>/dev/null || true; wait_exit "$p" 5 || true; }
	fi
	unmount_path "$m" || log "WARNING: could not unmount $m"
	rmdir "$m" 2>/dev/null || true
	unset "MNT[$t]" "PID[$t]"
}

cleanup() {
	local rc=$? t m
	trap - EXIT INT TERM
	if [[ -n ${STEP_PID:-} ]] && proc_alive "$STEP_PID"; then
		log "stopping the running workload step"
		kill -TERM "$STEP_PID" 2>/dev/null || true
		wait_exit "$STEP_PID" 15 || { kill -KILL -- "-$STEP_PID" 2>/dev/null || true; wait_exit "$STEP_PID" 5 || true; }
	fi
	for t in "${!MNT[@]}"; do stop_target "$t" || true; done
	# anything else of ours still mounted below $WORK (deepest first)
	while read -r m; do
		[[ -n $m ]] && { unmount_path "$m" || log "WARNING: could not unmount $m"; }
	done < <(awk -v w="$WORK/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
	if awk -v w="$WORK/" 'index($5, w) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
		log "WARNING: mounts left under $WORK; not removing it"
	elif [[ $KEEP_WORK == 1 || $rc -ne 0 ]]; then
		rm -rf --one-file-system "$WORK/src" "$WORK"/mnt-* 2>/dev/null || true
		log "work dir (logs) kept: $WORK"
	else
		rm -rf --one-file-system "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

drop_caches() {
	# For the FUSE targets the data lives in the daemon, so "cold" means an
	# empty kernel cache: dentries, inodes (-> FORGET) and page cache.
	timeout 120 sync || log "WARNING: sync timed out"
	echo 3 >/proc/sys/vm/drop_caches
}

# ---------------------------------------------------------------- build
log "building memfs_ll and workload in $BUILD_DIR"
# shellcheck disable=SC2046
gcc -O2 -Wall -o "$BUILD_DIR/memfs_ll" "$CFS_SRC/memfs_ll.c" $(pkg-config --cflags --libs fuse3) -lpthread
gcc -O2 -Wall -o "$BUILD_DIR/workload" "$CFS_SRC/workload.c"
WL=$BUILD_DIR/workload
export PATH="$BUILD_DIR:$PATH"

# ---------------------------------------------------------------- tarball
mount -t tmpfs -o mode=0755 fuse-overhead-src "$SRC_MNT"
if [[ -z $TAR_SRC ]]; then
	for c in /usr/include /usr/share/perl5 /usr/share/perl /usr/lib/python3 /usr/share/doc /usr/share/locale; do
		[[ -d $c ]] || continue
		cnt=$(find "$c" 2>/dev/null | head -n 3000 | wc -l || true)
		if ((cnt >= 3000)); then TAR_SRC=$c; break; fi
	done
	[[ -n $TAR_SRC ]] || die "no source tree with >= 3000 entries found; set TAR_SRC"
fi
[[ -d $TAR_SRC ]] || die "TAR_SRC=$TAR_SRC is not a directory"
TAR_SRC=$(cd "$TAR_SRC" && pwd -P)
TARBALL=$SRC_MNT/tree.tar
tar -C "$(dirname "$TAR_SRC")" -cf "$TARBALL" "$(basename "$TAR_SRC")" 2>"$LOG_DIR/tar-create.log" ||
	die "tar of $TAR_SRC failed: $(tail -n 3 "$LOG_DIR/tar-create.log")"
TAR_ENTRIES=$(tar -tf "$TARBALL" | wc -l)
TAR_MB=$(du -m "$TARBALL" | cut -f1)
log "untar source: $TAR_SRC ($TAR_ENTRIES entries, $TAR_MB MiB tar)"

# ---------------------------------------------------------------- mounting
wait_mounted() { # target mountpoint pid
	local t=$1 m=$2 p=$3 deadline=$((SECONDS + MOUNT_TIMEOUT)) ty
	while :; do
		ty=$(mount_fstype "$m")
		[[ $ty == fuse || $ty == fuse.* ]] && break
		if ! proc_alive "$p"; then
			wait "$p" 2>/dev/null || true
			die "$t: daemon exited before mounting; log:$(printf '\n'; tail -n 20 "$LOG_DIR/$t.log")"
		fi
		((SECONDS < deadline)) || die "$t: not mounted after ${MOUNT_TIMEOUT}s; log:$(printf '\n'; tail -n 20 "$LOG_DIR/$t.log")"
		sleep 0.05
	done
	# first request also waits for FUSE_INIT to be answered
	timeout "$MOUNT_TIMEOUT" stat -f "$m" >/dev/null || die "$t: mount at $m does not answer"
	MOPTS[$t]=$(awk -v m="$m" '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") { o = $(i + 3); break } } END { print o }' \
		/proc/self/mountinfo)
	log "$t: mounted at $m (type $ty, pid $p, options ${MOPTS[$t]})"
}

start_target() {
	local t=$1 m=$WORK/mnt-$1 p
	mkdir -p "$m"
	MNT[$t]=$m
	case $t in
	tmpfs)
		timeout "$MOUNT_TIMEOUT" mount -t tmpfs -o mode=0755 fuse-overhead-tmpfs "$m"
		;;
	cfs)
		"$BUILD_DIR/memfs_ll" --entry-timeout "$CACHE_TIMEOUT" --attr-timeout "$CACHE_TIMEOUT" \
			--negative-timeout "$CACHE_TIMEOUT" "$m" >"$LOG_DIR/$t.log" 2>&1 &
		p=$!
		PID[$t]=$p
		wait_mounted "$t" "$m" "$p"
		;;
	swarmvol)
		# eval: SWARMVOL_CMD is a shell command prefix (may reference $tmp / $BUILD_DIR / $REPO)
		(eval "exec $SWARMVOL_CMD --entry-timeout \"\$CACHE_TIMEOUT\" --attr-timeout \"\$CACHE_TIMEOUT\" --negative-timeout \"\$CACHE_TIMEOUT\" \"\$m\"") \
			>"$LOG_DIR/$t.log" 2>&1 </dev/null &
		p=$!
		PID[$t]=$p
		wait_mounted "$t" "$m" "$p"
		;;
	esac
}

# ---------------------------------------------------------------- workloads
# name|unit : unit "ops/s" = ops/seconds, "MB/s" = MiB/seconds
WORKLOADS=(create stat-cold lsl-cold read-cold unlink parallel-create untar rm-rf seqwrite seqread-cold randread-cold)
declare -A UNIT=(
	[create]="files/s" [stat-cold]="ops/s" [lsl-cold]="entries/s" [read-cold]="files/s"
	[unlink]="ops/s" [parallel-create]="files/s" [untar]="entries/s" [rm-rf]="entries/s"
	[seqwrite]="MB/s" [seqread-cold]="MB/s" [randread-cold]="IOPS"
)
declare -A BEST=() SAMPLES=()
CUR_TARGET=

# run_wl WORKLOAD EXPECT_OPS CMD... : run one workload step, check, record
run_wl() {
	local wl=$1 expect=$2 out name ops secs bytes rate
	shift 2
	# in the background + wait, so that SIGINT/SIGTERM reach the trap at
	# once; timeout(1) runs the step in its own process group and passes
	# signals on to all of it (tar included)
	timeout -k 10 "$STEP_TIMEOUT" "$WL" "$@" >"$LOG_DIR/step.out" 2>"$LOG_DIR/step.err" &
	STEP_PID=$!
	if ! wait "$STEP_PID"; then
		STEP_PID=
		die "$CUR_TARGET: $wl failed or timed out: $(cat "$LOG_DIR/step.err")"
	fi
	STEP_PID=
	out=$(cat "$LOG_DIR/step.out")
	read -r _ name ops secs bytes <<<"$(grep '^RESULT ' <<<"$out" | tail -n 1)"
	[[ -n ${secs:-} ]] || die "$CUR_TARGET: $wl: no RESULT line in: $out"
	if [[ $expect != - && $ops != "$expect" ]]; then
		die "$CUR_TARGET: $wl: $ops ops, expected $expect"
	fi
	if [[ ${UNIT[$wl]} == MB/s ]]; then
		[[ -n ${bytes:-} ]] || die "$CUR_TARGET: $wl: no byte count"
		rate=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0 ? b / 1048576 / s : 0) }')
	else
		rate=$(awk -v o="$ops" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0 ? o / s : 0) }')
	fi
	SAMPLES["$wl|$CUR_TARGET"]+="${SAMPLES["$wl|$CUR_TARGET"]:+ }$rate"
	local key="$wl|$CUR_TARGET"
	if [[ -z ${BEST[$key]:-} ]] || awk -v a="$rate" -v b="${BEST[$key]}" 'BEGIN { exit !(a > b) }'; then
		BEST[$key]=$rate
	fi
	printf '  %-16s %10s %-9s (%s ops in %ss)\n' "$wl" "$rate" "${UNIT[$wl]}" "$ops" "$secs" >&2
	LAST_BYTES=${bytes:-}
}

# A volume daemon runs for days: measure it warm. Every target gets the same
# unmeasured pass (a JIT compiler needs it; C and tmpfs lose nothing by it).
WARMUP_N=${WARMUP_N:-3000}
warm_up() {
	local w=$1 pass
	mkdir -p "$w"
	(
		# Three passes: V8 optimizes a function only after it ran many times.
		# The caches are dropped where the measured workloads drop them, so
		# that the cold paths (LOOKUP, READDIRPLUS, a first OPEN) are warmed
		# up too: without it the first cold `ls -l` ran interpreted code.
		for pass in 1 2 3; do
			"$WL" create "$w" "$WARMUP_N" && drop_caches && "$WL" stat "$w" "$WARMUP_N" && drop_caches &&
				"$WL" lsl "$w" && "$WL" lsl "$w" && drop_caches && "$WL" read "$w" "$WARMUP_N" &&
				"$WL" unlink "$w" "$WARMUP_N" || exit 1
		done
		"$WL" seqwrite "$w/seq" $((64 * 1048576)) "$SEQ_BLOCK" && "$WL" seqread "$w/seq" $((64 * 1048576)) "$SEQ_BLOCK" &&
			"$WL" randread "$w/seq" 5000 4096 && rm -rf "$w"
	) >"$LOG_DIR/warmup.out" 2>&1 || die "warm-up on $w failed: $(tail -n 3 "$LOG_DIR/warmup.out")"
}

# One repetition of every workload on a freshly mounted target.
bench_target() {
	local t=$1 rep=$2 m d seq_bytes=$((SEQ_MB * 1048576)) cnt
	CUR_TARGET=$t
	log "repetition $rep/$REPS: $t"
	start_target "$t"
	m=${MNT[$t]}
	{
		d=$m/r$rep
		mkdir -p "$d/files" "$d/par" "$d/untar"
		warm_up "$m/warmup"

		run_wl create "$N" create "$d/files" "$N"
		# cold stat: a remount would be the natural way, but the FUSE
		# targets keep their data in the daemon and tmpfs would lose it;
		# so drop the kernel's dentry/inode/page caches instead.
		drop_caches
		run_wl stat-cold "$N" stat "$d/files" "$N"
		drop_caches
		run_wl lsl-cold "$N" lsl "$d/files"
		drop_caches
		run_wl read-cold "$N" read "$d/files" "$N"
		[[ $LAST_BYTES == $((N * 100)) ]] || die "$t: read returned $LAST_BYTES bytes, expected $((N * 100))"
		run_wl unlink "$N" unlink "$d/files" "$N"

		run_wl parallel-create $(((N / CLIENTS) * CLIENTS)) parallel-create "$d/par" "$N" "$CLIENTS"
		timeout "$STEP_TIMEOUT" rm -rf "$d/par"

		run_wl untar "$TAR_ENTRIES" run untar "$TAR_ENTRIES" tar -x -C "$d/untar" -f "$TARBALL"
		if ((rep == 1)); then # correctness guard: the tree must be complete
			cnt=$(timeout "$STEP_TIMEOUT" find "$d/untar" -mindepth 1 | wc -l)
			[[ $cnt == "$TAR_ENTRIES" ]] || die "$t: untar produced $cnt entries, expected $TAR_ENTRIES"
		fi
		run_wl rm-rf "$TAR_ENTRIES" run rm-rf "$TAR_ENTRIES" rm -rf "$d/untar"

		run_wl seqwrite - seqwrite "$m/seq.dat" "$seq_bytes" "$SEQ_BLOCK"
		drop_caches
		run_wl seqread-cold - seqread "$m/seq.dat" "$seq_bytes" "$SEQ_BLOCK"
		[[ $LAST_BYTES == "$seq_bytes" ]] || die "$t: seqread returned $LAST_BYTES bytes, expected $seq_bytes"
		drop_caches
		run_wl randread-cold "$RAND_COUNT" randread "$m/seq.dat" "$RAND_COUNT" 4096
		rm -f "$m/seq.dat"
		rm -rf "$d"
	}
	stop_target "$t"
}

log "targets: $TARGETS; N=$N SEQ_MB=$SEQ_MB RAND_COUNT=$RAND_COUNT CLIENTS=$CLIENTS REPS=$REPS cache timeouts ${CACHE_TIMEOUT}s"
log "swarmvol command: $SWARMVOL_CMD"
T0=$SECONDS
# Repetitions are interleaved (rep 1 of every target, then rep 2, ...) so
# that slow phases of a busy machine hit all targets alike, and the target
# order rotates from one repetition to the next so that no target always
# runs first.  Every repetition starts from a fresh mount.
read -r -a TLIST <<<"$TARGETS"
for ((rep = 1; rep <= REPS; rep++)); do
	for ((k = 0; k < ${#TLIST[@]}; k++)); do
		bench_target "${TLIST[(k + rep - 1) % ${#TLIST[@]}]}" "$rep"
	done
done
ELAPSED=$((SECONDS - T0))

# ---------------------------------------------------------------- report
val() { printf '%s' "${BEST["$1|$2"]:-}"; }
ratio() { # a/b or empty
	awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.3f", a / b }'
}

echo
echo "fuse-overhead: best of $REPS, N=$N files, SEQ=$SEQ_MB MiB, untar $TAR_SRC ($TAR_ENTRIES entries), $(nproc) CPUs, kernel $(uname -r), ${PIN_CPU:+pinned to CPU $PIN_CPU}${PIN_CPU:-not pinned}"
echo "swarmvol = $SWARMVOL_CMD"
echo "rates: higher is better; ratio = swarmvol rate / other rate (1.0 = parity, 0.25 = 4x slower)"
printf '%-16s %-10s %12s %12s %12s %12s %14s\n' workload unit swarmvol cfs tmpfs swarmvol/cfs swarmvol/tmpfs
for wl in "${WORKLOADS[@]}"; do
	sv=$(val "$wl" swarmvol) cf=$(val "$wl" cfs) tf=$(val "$wl" tmpfs)
	r1=$(ratio "$sv" "$cf") r2=$(ratio "$sv" "$tf")
	printf '%-16s %-10s %12s %12s %12s %12s %14s\n' "$wl" "${UNIT[$wl]}" "${sv:--}" "${cf:--}" "${tf:--}" "${r1:--}" "${r2:--}"
done
echo "total benchmark time: ${ELAPSED}s"

if [[ -n $BENCH_JSON ]]; then
	json_str() { # JSON string literal
		local s=$1
		s=${s//\\/\\\\}
		s=${s//\"/\\\"}
		s=${s//$'\t'/\\t}
		s=${s//$'\n'/\\n}
		printf '"%s"' "$s"
	}
	json_num() { if [[ -n $1 ]]; then printf '%s' "$1"; else printf 'null'; fi; }
	{
		printf '{\n'
		printf '  "benchmark": "fuse-overhead",\n'
		printf '  "date": %s,\n' "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
		printf '  "host": {"kernel": %s, "cpus": %s},\n' "$(json_str "$(uname -r)")" "$(nproc)"
		printf '  "params": {"N": %s, "SEQ_MB": %s, "RAND_COUNT": %s, "CLIENTS": %s, "REPS": %s, "cache_timeout_s": %s, "seq_block": %s, "tar_source": %s, "tar_entries": %s},\n' \
			"$N" "$SEQ_MB" "$RAND_COUNT" "$CLIENTS" "$REPS" "$CACHE_TIMEOUT" "$SEQ_BLOCK" "$(json_str "$TAR_SRC")" "$TAR_ENTRIES"
		printf '  "swarmvol_cmd": %s,\n' "$(json_str "$SWARMVOL_CMD")"
		printf '  "mount_options": {"swarmvol": %s, "cfs": %s},\n' \
			"$( [[ -n ${MOPTS[swarmvol]:-} ]] && json_str "${MOPTS[swarmvol]}" || printf null)" \
			"$( [[ -n ${MOPTS[cfs]:-} ]] && json_str "${MOPTS[cfs]}" || printf null)"
		printf '  "targets": ['
		sep=
		for t in $TARGETS; do printf '%s%s' "$sep" "$(json_str "$t")"; sep=', '; done
		printf '],\n'
		printf '  "elapsed_s": %s,\n' "$ELAPSED"
		printf '  "results": [\n'
		sep=
		for wl in "${WORKLOADS[@]}"; do
			sv=$(val "$wl" swarmvol) cf=$(val "$wl" cfs) tf=$(val "$wl" tmpfs)
			printf '%s    {"workload": %s, "unit": %s,\n' "$sep" "$(json_str "$wl")" "$(json_str "${UNIT[$wl]}")"
			printf '     "best": {"swarmvol": %s, "cfs": %s, "tmpfs": %s},\n' "$(json_num "$sv")" "$(json_num "$cf")" "$(json_num "$tf")"
			printf '     "samples": {'
			s2=
			for t in swarmvol cfs tmpfs; do
				printf '%s"%s": [%s]' "$s2" "$t" "$(tr ' ' ',' <<<"${SAMPLES["$wl|$t"]:-}" | sed 's/,/, /g')"
				s2=', '
			done
			printf '},\n'
			printf '     "ratio_swarmvol_cfs": %s, "ratio_swarmvol_tmpfs": %s}' \
				"$(json_num "$(ratio "$sv" "$cf")")" "$(json_num "$(ratio "$sv" "$tf")")"
			sep=$',\n'
		done
		printf '\n  ]\n}\n'
	} >"$BENCH_JSON.tmp.$$"
	mv "$BENCH_JSON.tmp.$$" "$BENCH_JSON"
	log "JSON written to $BENCH_JSON"
fi
