/*
 * workload: the client side of bench/fuse-overhead.
 *
 * One binary drives every target (swarmvol, memfs_ll, tmpfs) so the cost of
 * the client is identical.  Each subcommand prints exactly one line
 *
 *   RESULT <name> <ops> <seconds> [<bytes>]
 *
 * on stdout (seconds with nanosecond-clock precision, bytes only for data
 * workloads) and exits non-zero on the first error (message on stderr).
 *
 *   create DIR N                 open(O_CREAT|O_WRONLY) + write 100 B + close, f0..fN-1
 *   stat DIR N                   stat() f0..fN-1
 *   lsl DIR                      readdir all + lstat each entry (like ls -l)
 *   read DIR N                   open + read to EOF + close, f0..fN-1
 *   unlink DIR N                 unlink f0..fN-1
 *   seqwrite FILE BYTES BLOCK    O_CREAT|O_TRUNC, write BYTES in BLOCK chunks, close
 *   seqread FILE BYTES BLOCK     read up to BYTES in BLOCK chunks, close
 *   randread FILE COUNT BLOCK    COUNT preads of BLOCK at random BLOCK-aligned offsets
 *   parallel-create DIR N CLIENTS  CLIENTS processes, each creating N/CLIENTS
 *                                files in DIR/cK; the clock runs from the common
 *                                start signal until the last client is done
 *   run NAME OPS CMD [ARG...]    time an external command (fork+exec+wait),
 *                                report it as NAME with OPS operations; fails
 *                                if the command fails (used for tar, rm -rf)
 *
 * Build: gcc -O2 -Wall -o workload workload.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;
	fprintf(stderr, "workload: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(e));
	exit(1);
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long parse_num(const char *s, const char *what)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0) {
		fprintf(stderr, "workload: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static void result(const char *name, long long ops, double secs, long long bytes)
{
	if (bytes >= 0)
		printf("RESULT %s %lld %.6f %lld\n", name, ops, secs, bytes);
	else
		printf("RESULT %s %lld %.6f\n", name, ops, secs);
	fflush(stdout);
}

static int open_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		die("open %s", dir);
	return fd;
}

static void write_all(int fd, const char *buf, size_t len, const char *what)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write %s", what);
		}
		buf += w;
		len -= (size_t)w;
	}
}

static void create_files(int dfd, const char *dir, long long n)
{
	char name[64], data[100];
	memset(data, 'x', sizeof(data));
	for (long long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%lld", i);
		int fd = openat(dfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			die("create %s/%s", dir, name);
		write_all(fd, data, sizeof(data), name);
		if (close(fd) < 0)
			die("close %s/%s", dir, name);
	}
}

/*
 * Files are addressed relative to an O_DIRECTORY fd, so the directory path is
 * resolved once and every operation costs one lookup of the final component,
 * exactly like `cd DIR; for f in ...`.
 */
static int cmd_create(const char *dir, long long n)
{
	int dfd = open_dir(dir);
	double t0 = mono();
	create_files(dfd, dir, n);
	double t1 = mono();
	close(dfd);
	result("create", n, t1 - t0, -1);
	return 0;
}

static int cmd_stat(const char *dir, long long n)
{
	char name[64];
	struct stat st;
	int dfd = open_dir(dir);
	double t0 = mono();
	for (long long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%lld", i);
		if (fstatat(dfd, name, &st, 0) < 0)
			die("stat %s/%s", dir, name);
	}
	double t1 = mono();
	close(dfd);
	result("stat", n, t1 - t0, -1);
	return 0;
}

static int cmd_lsl(const char *dir)
{
	struct stat st;
	long long n = 0;
	double t0 = mono();
	DIR *d = opendir(dir);
	if (!d)
		die("opendir %s", dir);
	int dfd = dirfd(d);
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				die("readdir %s", dir);
			break;
		}
		if (de->d_name[0] == '.' &&
		    (de->d_name[1] == 0 || (de->d_name[1] == '.' && de->d_name[2] == 0)))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die("lstat %s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	double t1 = mono();
	result("lsl", n, t1 - t0, -1);
	return 0;
}

static int cmd_read(const char *dir, long long n)
{
	char name[64];
	static char buf[65536];
	long long bytes = 0;
	int dfd = open_dir(dir);
	double t0 = mono();
	for (long long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%lld", i);
		int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open %s/%s", dir, name);
		for (;;) {
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r < 0) {
				if (errno == EINTR)
					continue;
				die("read %s/%s", dir, name);
			}
			if (r == 0)
				break;
			bytes += r;
		}
		close(fd);
	}
	double t1 = mono();
	close(dfd);
	result("read", n, t1 - t0, bytes);
	return 0;
}

static int cmd_unlink(const char *dir, long long n)
{
	char name[64];
	int dfd = open_dir(dir);
	double t0 = mono();
	for (long long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%lld", i);
		if (unlinkat(dfd, name, 0) < 0)
			die("unlink %s/%s", dir, name);
	}
	double t1 = mono();
	close(dfd);
	result("unlink", n, t1 - t0, -1);
	return 0;
}

static char *alloc_block(size_t block, char fill)
{
	char *buf;
	if (posix_memalign((void **)&buf, 4096, block ? block : 1) != 0) {
		errno = ENOMEM;
		die("alloc %zu", block);
	}
	memset(buf, fill, block);
	return buf;
}

static int cmd_seqwrite(const char *file, long long bytes, long long block)
{
	char *buf = alloc_block((size_t)block, 'w');
	long long done = 0, ops = 0;
	double t0 = mono();
	int fd = open(file, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open %s", file);
	while (done < bytes) {
		size_t len = (size_t)(bytes - done < block ? bytes - done : block);
		/* vary the content a little so nothing can dedupe it */
		memcpy(buf, &done, sizeof(done));
		write_all(fd, buf, len, file);
		done += (long long)len;
		ops++;
	}
	if (close(fd) < 0)
		die("close %s", file);
	double t1 = mono();
	free(buf);
	result("seqwrite", ops, t1 - t0, done);
	return 0;
}

static int cmd_seqread(const char *file, long long bytes, long long block)
{
	char *buf = alloc_block((size_t)block, 0);
	long long done = 0, ops = 0;
	double t0 = mono();
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s", file);
	while (done < bytes) {
		size_t len = (size_t)(bytes - done < block ? bytes - done : block);
		ssize_t r = read(fd, buf, len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("read %s", file);
		}
		if (r == 0)
			break;
		done += r;
		ops++;
	}
	close(fd);
	double t1 = mono();
	free(buf);
	if (done < bytes)
		fprintf(stderr, "workload: seqread: short file (%lld of %lld bytes)\n",
			done, bytes);
	result("seqread", ops, t1 - t0, done);
	return 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) /* xorshift64*, fixed seed: same offsets every run */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static int cmd_randread(const char *file, long long count, long long block)
{
	char *buf = alloc_block((size_t)block, 0);
	long long bytes = 0;
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s", file);
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("fstat %s", file);
	uint64_t nblocks = (uint64_t)st.st_size / (uint64_t)block;
	if (nblocks == 0) {
		fprintf(stderr, "workload: randread: %s smaller than one block\n", file);
		return 1;
	}
	/* measure the file system, not kernel readahead */
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	double t0 = mono();
	for (long long i = 0; i < count; i++) {
		off_t off = (off_t)((rng() % nblocks) * (uint64_t)block);
		ssize_t r = pread(fd, buf, (size_t)block, off);
		if (r < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			die("pread %s", file);
		}
		if (r != block) {
			fprintf(stderr, "workload: randread: short read at %lld\n",
				(long long)off);
			return 1;
		}
		bytes += r;
	}
	double t1 = mono();
	close(fd);
	free(buf);
	result("randread", count, t1 - t0, bytes);
	return 0;
}

static int cmd_parallel_create(const char *dir, long long n, long long clients)
{
	if (clients < 1) {
		fprintf(stderr, "workload: CLIENTS must be >= 1\n");
		return 2;
	}
	long long per = n / clients;
	int ready[2], go[2];
	if (pipe(ready) < 0 || pipe(go) < 0)
		die("pipe");
	pid_t *pids = calloc((size_t)clients, sizeof(*pids));
	for (long long c = 0; c < clients; c++) {
		char sub[4096];
		snprintf(sub, sizeof(sub), "%s/c%lld", dir, c);
		if (mkdir(sub, 0755) < 0 && errno != EEXIST)
			die("mkdir %s", sub);
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			int dfd = open_dir(sub);
			char b = 'r';
			if (write(ready[1], &b, 1) != 1)
				_exit(1);
			if (read(go[0], &b, 1) < 0) /* EOF = go */
				_exit(1);
			create_files(dfd, sub, per);
			_exit(0);
		}
		pids[c] = pid;
	}
	close(ready[1]);
	close(go[0]);
	for (long long c = 0; c < clients; c++) {
		char b;
		if (read(ready[0], &b, 1) != 1) {
			fprintf(stderr, "workload: a client failed to start\n");
			return 1;
		}
	}
	double t0 = mono();
	close(go[1]); /* release every client at once */
	int failed = 0;
	for (long long c = 0; c < clients; c++) {
		int status;
		if (waitpid(pids[c], &status, 0) < 0)
			die("waitpid");
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	}
	double t1 = mono();
	free(pids);
	if (failed) {
		fprintf(stderr, "workload: a client failed\n");
		return 1;
	}
	result("parallel-create", per * clients, t1 - t0, -1);
	return 0;
}

static int cmd_run(const char *name, long long ops, char **argv)
{
	double t0 = mono();
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "workload: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	double t1 = mono();
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "workload: run %s: command failed (status %d)\n", name, status);
		return 1;
	}
	result(name, ops, t1 - t0, -1);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: workload create|stat|read|unlink DIR N\n"
		"       workload lsl DIR\n"
		"       workload seqwrite|seqread FILE BYTES BLOCK\n"
		"       workload randread FILE COUNT BLOCK\n"
		"       workload parallel-create DIR N CLIENTS\n"
		"       workload run NAME OPS CMD [ARG...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	const char *cmd = argv[1], *path = argv[2];
	if (!strcmp(cmd, "run")) {
		if (argc < 5)
			usage();
		return cmd_run(argv[2], parse_num(argv[3], "OPS"), argv + 4);
	}
	if (!strcmp(cmd, "lsl") && argc == 3)
		return cmd_lsl(path);
	if (argc == 4) {
		long long n = parse_num(argv[3], "N");
		if (!strcmp(cmd, "create"))
			return cmd_create(path, n);
		if (!strcmp(cmd, "stat"))
			return cmd_stat(path, n);
		if (!strcmp(cmd, "read"))
			return cmd_read(path, n);
		if (!strcmp(cmd, "unlink"))
			return cmd_unlink(path, n);
	}
	if (argc == 5) {
		long long a = parse_num(argv[3], "count"), b = parse_num(argv[4], "size");
		if (!strcmp(cmd, "seqwrite") && b > 0)
			return cmd_seqwrite(path, a, b);
		if (!strcmp(cmd, "seqread") && b > 0)
			return cmd_seqread(path, a, b);
		if (!strcmp(cmd, "randread") && b > 0)
			return cmd_randread(path, a, b);
		if (!strcmp(cmd, "parallel-create"))
			return cmd_parallel_create(path, a, b);
	}
	usage();
	return 2;
}
