/*
 * fsx.c - random-operation file exerciser for swarmvol (data-corruption check).
 *
 * Written for this project in the spirit of xfstests' fsx: a single file is
 * hammered with random reads, writes, truncates, mmap reads/writes, O_APPEND
 * writes, fallocate, fsync and close/reopen cycles while an in-memory model of
 * the expected contents is kept.  Every read is compared against the model and
 * the file size is checked with fstat() after every operation.
 *
 * Build:  gcc -O2 -Wall -Wextra -o fsx test/tools/fsx.c
 * Usage:  fsx [-N numops] [-S seed] [-l maxlen] [-o maxoplen] [-M] [-R] [-W] [-v] FILE
 *
 * Exit status: 0 success, 1 data/size mismatch, 2 unexpected syscall error or
 * bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif

typedef unsigned long long u64;

enum optype {
	OP_READ,
	OP_WRITE,
	OP_MAPREAD,
	OP_MAPWRITE,
	OP_TRUNCATE,
	OP_APPEND,
	OP_FALLOC,
	OP_FSYNC,
	OP_REOPEN,
	OP_NTYPES
};

static const char *const opnames[OP_NTYPES] = {
	"read", "write", "mapread", "mapwrite", "truncate",
	"append", "fallocate", "fsync", "reopen",
};

/* Relative weights of the randomly chosen operations (reopen is scheduled). */
static const unsigned opweight[OP_NTYPES] = {
	[OP_READ] = 25, [OP_WRITE] = 25, [OP_MAPREAD] = 12, [OP_MAPWRITE] = 12,
	[OP_TRUNCATE] = 8, [OP_APPEND] = 8, [OP_FALLOC] = 8, [OP_FSYNC] = 2,
	[OP_REOPEN] = 0,
};

enum { FA_ALLOC, FA_KEEP, FA_PUNCH, FA_NMODES };
static const char *const fa_names[FA_NMODES] = { "alloc", "keep_size", "punch_hole" };
static const int fa_flags[FA_NMODES] = {
	0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
};

#define LOGSZ 1024	/* history kept (used to identify who wrote a byte) */
#define LOGSHOW 50	/* history printed on failure */
#define CHECK_EVERY 1000

struct logent {
	u64 op;
	int type;
	const char *note;
	size_t off, len;
	size_t size_before, size_after;
	int done;
};

/* configuration */
static const char *fname;
static const char *progname = "fsx";
static u64 numops = 100000;
static u64 seed;
static size_t maxlen = 256 * 1024;
static size_t maxoplen = 64 * 1024;
static int mmap_read = 1, mmap_write = 1, verbose;
static int opt_M, opt_R, opt_W;

/* state */
static int fd = -1, afd = -1;
static size_t pagesize;
static size_t alloclen;		/* model size: maxlen rounded up + one page */
static unsigned char *good;	/* expected contents; zero beyond filesize */
static u64 *owner;		/* op number that last wrote each byte, 0 = zero */
static unsigned char *pbuf;	/* pattern buffer */
static unsigned char *rbuf;	/* read buffer (alloclen bytes) */
static size_t filesize;
static u64 curop;
static int fa_ok[FA_NMODES] = { 1, 1, 1 };
static struct logent logbuf[LOGSZ];
static u64 nlog;
static u64 opcount[OP_NTYPES];
static u64 rng_state;

/* ---------------------------------------------------------------- random */

static u64 rnd(void)
{
	/* splitmix64: small, fast and identical on every platform */
	u64 z = (rng_state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static size_t rndbelow(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

/* ---------------------------------------------------------------- pattern */

/*
 * Data byte written by operation `op` at file offset `off`.  Never zero, so
 * holes/lost writes stand out; consecutive offsets differ, so shifted data is
 * detected; ops less than 255 apart write different bytes at the same offset.
 */
static unsigned char pat(u64 op, size_t off)
{
	return (unsigned char)(1 + (op * 131 + off + (off >> 8) * 7 + (off >> 16) * 3) % 255);
}

static void fill_pattern(unsigned char *buf, u64 op, size_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(op, off + i);
}

static void model_write(const unsigned char *buf, size_t off, size_t len)
{
	memcpy(good + off, buf, len);
	for (size_t i = 0; i < len; i++)
		owner[off + i] = curop;
	if (off + len > filesize)
		filesize = off + len;
}

static void model_zero(size_t off, size_t len)
{
	memset(good + off, 0, len);
	for (size_t i = 0; i < len; i++)
		owner[off + i] = 0;
}

/* ---------------------------------------------------------------- log */

static struct logent *log_start(int type, size_t off, size_t len)
{
	struct logent *e = &logbuf[nlog % LOGSZ];

	nlog++;
	e->op = curop;
	e->type = type;
	e->note = NULL;
	e->off = off;
	e->len = len;
	e->size_before = filesize;
	e->size_after = filesize;
	e->done = 0;
	opcount[type]++;
	return e;
}

static void print_ent(FILE *f, const struct logent *e)
{
	fprintf(f, "%9llu %-9s", e->op, opnames[e->type]);
	switch (e->type) {
	case OP_FSYNC:
	case OP_REOPEN:
		fprintf(f, " %-33s", "");
		break;
	case OP_TRUNCATE:
		fprintf(f, " to  0x%06zx %-20s", e->off, "");
		break;
	default:
		fprintf(f, " off 0x%06zx len 0x%05zx (%6zu)", e->off, e->len, e->len);
		break;
	}
	fprintf(f, "  size 0x%06zx -> ", e->size_before);
	if (e->done)
		fprintf(f, "0x%06zx", e->size_after);
	else
		fprintf(f, "(in progress)");
	if (e->note)
		fprintf(f, "  [%s]", e->note);
	fputc('\n', f);
}

static void log_finish(struct logent *e)
{
	e->size_after = filesize;
	e->done = 1;
	if (verbose)
		print_ent(stdout, e);
}

static const struct logent *log_find_op(u64 op)
{
	u64 n = nlog < LOGSZ ? nlog : LOGSZ;

	for (u64 i = 1; i <= n; i++) {
		const struct logent *e = &logbuf[(nlog - i) % LOGSZ];
		if (e->op == op)
			return e;
	}
	return NULL;
}

static void dump_log(void)
{
	u64 n = nlog < LOGSHOW ? nlog : LOGSHOW;

	if (n == 0)
		return;
	fprintf(stderr, "fsx: last %llu operations (oldest first):\n", n);
	fprintf(stderr, "%9s %-9s %-32s  %s\n", "op", "type", " offset/length", "size before -> after");
	for (u64 i = n; i >= 1; i--)
		print_ent(stderr, &logbuf[(nlog - i) % LOGSZ]);
}

static void print_repro(void)
{
	fprintf(stderr, "fsx: seed %llu; reproduce with: %s -S %llu -N %llu -l %zu -o %zu%s%s%s FILE\n",
		seed, progname, seed, numops, maxlen, maxoplen,
		opt_M ? " -M" : "", opt_R ? " -R" : "", opt_W ? " -W" : "");
}

/* ---------------------------------------------------------------- failures */

static void cur_op_desc(void)
{
	if (nlog) {
		fprintf(stderr, "fsx: current operation:\n");
		print_ent(stderr, &logbuf[(nlog - 1) % LOGSZ]);
	}
}

static void __attribute__((noreturn)) fail_sys(const char *call)
{
	int err = errno;

	fflush(stdout);
	fprintf(stderr, "\nfsx: *** UNEXPECTED ERROR *** %s failed at op %llu: %s (errno %d)\n",
		call, curop, strerror(err), err);
	cur_op_desc();
	dump_log();
	print_repro();
	exit(2);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
fail_mismatch_generic(const char *what, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "\nfsx: *** MISMATCH *** during %s (op %llu): ", what, curop);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	dump_log();
	print_repro();
	exit(1);
}

/* Most recent data-writing op in the history whose pattern explains `val` at `off`. */
static const struct logent *who_wrote(size_t off, unsigned char val)
{
	u64 n = nlog < LOGSZ ? nlog : LOGSZ;

	for (u64 i = 1; i <= n; i++) {
		const struct logent *e = &logbuf[(nlog - i) % LOGSZ];
		if (e->type != OP_WRITE && e->type != OP_MAPWRITE && e->type != OP_APPEND)
			continue;
		if (off < e->off || off >= e->off + e->len)
			continue;
		if (pat(e->op, off) == val)
			return e;
	}
	return NULL;
}

static void __attribute__((noreturn)) report_mismatch(const char *what, size_t fileoff,
						      const unsigned char *exp,
						      const unsigned char *act, size_t len)
{
	size_t first = 0, ndiff = 0;

	for (size_t i = len; i-- > 0;) {
		if (exp[i] != act[i]) {
			first = i;
			ndiff++;
		}
	}
	size_t bad = fileoff + first;

	fflush(stdout);
	fprintf(stderr, "\nfsx: *** DATA MISMATCH *** during %s (op %llu)\n", what, curop);
	fprintf(stderr, "fsx: first bad byte at file offset 0x%zx (%zu); %zu of %zu bytes in [0x%zx, 0x%zx) differ\n",
		bad, bad, ndiff, len, fileoff, fileoff + len);

	fprintf(stderr, "fsx: expected 0x%02x: ", exp[first]);
	if (bad >= filesize) {
		fprintf(stderr, "beyond EOF (size 0x%zx), must read as zero\n", filesize);
	} else if (owner[bad] == 0) {
		fprintf(stderr, "zero (hole / extended by truncate or fallocate / punched)\n");
	} else {
		const struct logent *e = log_find_op(owner[bad]);
		fprintf(stderr, "written by op %llu", owner[bad]);
		if (e)
			fprintf(stderr, " (%s off 0x%zx len 0x%zx)", opnames[e->type], e->off, e->len);
		fputc('\n', stderr);
	}

	fprintf(stderr, "fsx: actual   0x%02x: ", act[first]);
	if (act[first] == 0) {
		fprintf(stderr, "zero (lost write? hole where data was expected?)\n");
	} else {
		const struct logent *e = who_wrote(bad, act[first]);
		if (e)
			fprintf(stderr, "matches the pattern of op %llu (%s off 0x%zx len 0x%zx)%s\n",
				e->op, opnames[e->type], e->off, e->len,
				e->op != owner[bad] ? " -> stale or misplaced data" : "");
		else
			fprintf(stderr, "not the pattern of any of the last %d ops covering this offset (foreign/garbage data)\n",
				LOGSZ);
	}

	size_t start = bad & ~(size_t)15;
	fprintf(stderr, "fsx: 16 bytes of context from file offset 0x%zx ('--' = outside the checked range):\n", start);
	fprintf(stderr, "  offset   ");
	for (int j = 0; j < 16; j++)
		fprintf(stderr, " +%x", j);
	fprintf(stderr, "\n  expected:");
	for (size_t j = 0; j < 16; j++) {
		size_t p = start + j;
		if (p >= fileoff && p < fileoff + len)
			fprintf(stderr, " %02x", exp[p - fileoff]);
		else
			fprintf(stderr, " --");
	}
	fprintf(stderr, "\n  actual:  ");
	for (size_t j = 0; j < 16; j++) {
		size_t p = start + j;
		if (p >= fileoff && p < fileoff + len)
			fprintf(stderr, " %02x", act[p - fileoff]);
		else
			fprintf(stderr, " --");
	}
	fprintf(stderr, "\n  differ:  ");
	for (size_t j = 0; j < 16; j++) {
		size_t p = start + j;
		int d = p >= fileoff && p < fileoff + len && exp[p - fileoff] != act[p - fileoff];
		fprintf(stderr, " %s", d ? "^^" : "  ");
	}
	fputc('\n', stderr);
	dump_log();
	print_repro();
	exit(1);
}

static void check_buf(const char *what, size_t off, const unsigned char *actual, size_t len)
{
	if (memcmp(good + off, actual, len) != 0)
		report_mismatch(what, off, good + off, actual, len);
}

static void sigbus_handler(int sig)
{
	(void)sig;
	/* Synchronous fault inside our own memcmp/memcpy: stdio is not busy. */
	fflush(stdout);
	fprintf(stderr, "\nfsx: *** UNEXPECTED ERROR *** SIGBUS at op %llu while accessing an mmap "
		"(I/O error, or file shorter than the model size 0x%zx?)\n", curop, filesize);
	cur_op_desc();
	dump_log();
	print_repro();
	_exit(2);
}

/* ---------------------------------------------------------------- io helpers */

static size_t pread_full(int f, unsigned char *buf, size_t len, size_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(f, buf + done, len - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail_sys("pread");
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return done;
}

static void pwrite_full(int f, const unsigned char *buf, size_t len, size_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pwrite(f, buf + done, len - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail_sys("pwrite");
		}
		if (r == 0) {
			errno = EIO;
			fail_sys("pwrite (returned 0)");
		}
		done += (size_t)r;
	}
}

static void open_files(int create)
{
	fd = open(fname, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0644);
	if (fd < 0)
		fail_sys("open(O_RDWR)");
	afd = open(fname, O_WRONLY | O_APPEND);
	if (afd < 0)
		fail_sys("open(O_WRONLY|O_APPEND)");
}

static void check_size(const char *what)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		fail_sys("fstat");
	if ((u64)st.st_size != (u64)filesize)
		fail_mismatch_generic(what, "fstat size is 0x%llx, model size is 0x%llx",
				      (u64)st.st_size, (u64)filesize);
}

static void full_check(const char *what)
{
	/* Ask for more than the model holds so an over-long file is noticed too. */
	size_t got = pread_full(fd, rbuf, alloclen, 0);

	if (got != filesize)
		fail_mismatch_generic(what, "whole-file read returned 0x%llx bytes, model size is 0x%llx",
				      (u64)got, (u64)filesize);
	check_buf(what, 0, rbuf, got);
}

/* ---------------------------------------------------------------- operations */

static size_t pick_len(void)
{
	if (rnd() % 4 == 0)
		return 1 + rndbelow(maxoplen < 64 ? maxoplen : 64);
	return 1 + rndbelow(maxoplen);
}

/* Sometimes use page-aligned offset and length to exercise whole-page paths. */
static void maybe_align(size_t *off, size_t *len)
{
	if (rnd() % 8 == 0) {
		*off &= ~(pagesize - 1);
		if (*len >= pagesize)
			*len &= ~(pagesize - 1);
	}
}

static void do_read(void)
{
	size_t off, len = pick_len();

	if (filesize == 0 || rnd() % 16 == 0)
		off = filesize + rndbelow(pagesize);	/* at or beyond EOF */
	else
		off = rndbelow(filesize);
	maybe_align(&off, &len);
	if (off + len > alloclen)
		len = alloclen - off;

	struct logent *e = log_start(OP_READ, off, len);
	size_t expect = off < filesize ? (filesize - off < len ? filesize - off : len) : 0;
	size_t got = pread_full(fd, rbuf, len, off);
	if (got != expect)
		fail_mismatch_generic("read", "%s: got 0x%llx bytes, expected 0x%llx",
				      got < expect ? "short read" : "read past model EOF",
				      (u64)got, (u64)expect);
	check_buf("read", off, rbuf, got);
	log_finish(e);
}

static void do_write(void)
{
	size_t off = rndbelow(maxlen), len = pick_len();

	maybe_align(&off, &len);
	if (off + len > maxlen)
		len = maxlen - off;

	struct logent *e = log_start(OP_WRITE, off, len);
	if (off > filesize)
		e->note = "hole";
	fill_pattern(pbuf, curop, off, len);
	pwrite_full(fd, pbuf, len, off);
	model_write(pbuf, off, len);
	log_finish(e);
}

static void do_truncate(void)
{
	size_t newsize;

	if (filesize < maxlen && rnd() % 2)
		newsize = filesize + 1 + rndbelow(maxlen - filesize);
	else
		newsize = rndbelow(filesize + 1);

	struct logent *e = log_start(OP_TRUNCATE, newsize, 0);
	e->note = newsize > filesize ? "up" : newsize < filesize ? "down" : "same";
	if (ftruncate(fd, (off_t)newsize) < 0)
		fail_sys("ftruncate");
	if (newsize < filesize)
		model_zero(newsize, filesize - newsize);
	filesize = newsize;
	log_finish(e);
}

static void pick_map_range(size_t *offp, size_t *lenp, int to_eof_ok)
{
	size_t off = rndbelow(filesize), len = pick_len();

	if (to_eof_ok && rnd() % 4 == 0) {
		/* end exactly at EOF so the partial EOF page gets checked */
		len = filesize - off;
		if (len > maxoplen) {
			off = filesize - maxoplen;
			len = maxoplen;
		}
	}
	maybe_align(&off, &len);
	if (off + len > filesize)
		len = filesize - off;
	*offp = off;
	*lenp = len;
}

static void do_mapread(void)
{
	size_t off, len;

	pick_map_range(&off, &len, 1);
	struct logent *e = log_start(OP_MAPREAD, off, len);
	size_t pg = off & ~(pagesize - 1);
	size_t mlen = (off + len - pg + pagesize - 1) & ~(pagesize - 1);
	unsigned char *p = mmap(NULL, mlen, PROT_READ, MAP_SHARED, fd, (off_t)pg);
	if (p == MAP_FAILED)
		fail_sys("mmap(PROT_READ, MAP_SHARED)");
	check_buf("mapread", off, p + (off - pg), len);
	if (pg + mlen > filesize) {
		/* the rest of the page containing EOF must be zero-filled */
		e->note = "eof page";
		check_buf("mapread (tail of EOF page beyond file size)", filesize,
			  p + (filesize - pg), pg + mlen - filesize);
	}
	if (munmap(p, mlen) < 0)
		fail_sys("munmap");
	log_finish(e);
}

static void do_mapwrite(void)
{
	size_t off, len;

	pick_map_range(&off, &len, 1);
	struct logent *e = log_start(OP_MAPWRITE, off, len);
	size_t pg = off & ~(pagesize - 1);
	size_t mlen = off + len - pg;
	unsigned char *p = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)pg);
	if (p == MAP_FAILED)
		fail_sys("mmap(PROT_READ|PROT_WRITE, MAP_SHARED)");
	fill_pattern(pbuf, curop, off, len);
	memcpy(p + (off - pg), pbuf, len);
	if (msync(p, mlen, MS_SYNC) < 0)
		fail_sys("msync(MS_SYNC)");
	if (munmap(p, mlen) < 0)
		fail_sys("munmap");
	model_write(pbuf, off, len);
	log_finish(e);
}

static void do_append(void)
{
	size_t len = pick_len();

	if (len > maxlen - filesize)
		len = maxlen - filesize;
	struct logent *e = log_start(OP_APPEND, filesize, len);
	size_t off = filesize;

	/* O_APPEND must ignore the descriptor offset: park it at 0 first */
	if (lseek(afd, 0, SEEK_SET) < 0)
		fail_sys("lseek(append fd)");
	fill_pattern(pbuf, curop, off, len);
	size_t done = 0;
	while (done < len) {
		ssize_t r = write(afd, pbuf + done, len - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail_sys("write(O_APPEND)");
		}
		if (r == 0) {
			errno = EIO;
			fail_sys("write(O_APPEND) (returned 0)");
		}
		done += (size_t)r;
	}
	off_t pos = lseek(afd, 0, SEEK_CUR);
	if (pos < 0)
		fail_sys("lseek(append fd)");
	if ((u64)pos != (u64)(off + len))
		fail_mismatch_generic("append", "O_APPEND fd offset after write is 0x%llx, expected EOF 0x%llx",
				      (u64)pos, (u64)(off + len));
	model_write(pbuf, off, len);
	/* read it back through the other descriptor: did it land at EOF? */
	size_t got = pread_full(fd, rbuf, len, off);
	if (got != len)
		fail_mismatch_generic("append", "read-back got 0x%llx bytes, expected 0x%llx",
				      (u64)got, (u64)len);
	check_buf("append read-back", off, rbuf, len);
	log_finish(e);
}

static int falloc_any(void)
{
	return fa_ok[FA_ALLOC] || fa_ok[FA_KEEP] || (fa_ok[FA_PUNCH] && filesize > 0);
}

static void do_falloc(void)
{
	int mode;

	do
		mode = (int)rndbelow(FA_NMODES);
	while (!fa_ok[mode] || (mode == FA_PUNCH && filesize == 0));

	size_t off, len = pick_len();
	if (mode == FA_PUNCH) {
		off = rndbelow(filesize);
		maybe_align(&off, &len);
		if (off + len > filesize)
			len = filesize - off;
	} else {
		off = rndbelow(maxlen);
		maybe_align(&off, &len);
		if (off + len > maxlen)
			len = maxlen - off;
	}

	struct logent *e = log_start(OP_FALLOC, off, len);
	e->note = fa_names[mode];
	if (fallocate(fd, fa_flags[mode], (off_t)off, (off_t)len) < 0) {
		if (errno == EOPNOTSUPP || errno == ENOSYS) {
			printf("fsx: fallocate %s not supported (%s), no longer trying it\n",
			       fa_names[mode], strerror(errno));
			if (errno == ENOSYS)
				fa_ok[FA_ALLOC] = fa_ok[FA_KEEP] = fa_ok[FA_PUNCH] = 0;
			fa_ok[mode] = 0;
			e->note = "unsupported, disabled";
			log_finish(e);
			return;
		}
		fail_sys("fallocate");
	}
	if (mode == FA_ALLOC && off + len > filesize)
		filesize = off + len;	/* model is already zero there */
	else if (mode == FA_PUNCH)
		model_zero(off, len);
	log_finish(e);
}

static void do_fsync(void)
{
	struct logent *e = log_start(OP_FSYNC, 0, 0);

	if (rnd() % 2) {
		e->note = "fsync";
		if (fsync(fd) < 0)
			fail_sys("fsync");
	} else {
		e->note = "fdatasync";
		if (fdatasync(fd) < 0)
			fail_sys("fdatasync");
	}
	log_finish(e);
}

static void do_reopen(void)
{
	struct logent *e = log_start(OP_REOPEN, 0, 0);

	if (close(fd) < 0)
		fail_sys("close");
	if (close(afd) < 0)
		fail_sys("close(append fd)");
	fd = afd = -1;
	open_files(0);
	log_finish(e);
}

static int applicable(int t)
{
	switch (t) {
	case OP_MAPREAD:
		return mmap_read && filesize > 0;
	case OP_MAPWRITE:
		return mmap_write && filesize > 0;
	case OP_APPEND:
		return filesize < maxlen;
	case OP_FALLOC:
		return falloc_any();
	case OP_REOPEN:
		return 0;
	default:
		return 1;
	}
}

static int pick_op(void)
{
	unsigned total = 0;

	for (int t = 0; t < OP_NTYPES; t++)
		total += opweight[t];
	for (;;) {
		unsigned r = (unsigned)(rnd() % total);
		int t = 0;
		while (r >= opweight[t])
			r -= opweight[t++];
		if (applicable(t))
			return t;
	}
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [-N numops] [-S seed] [-l maxlen] [-o maxoplen] [-M] [-R] [-W] [-v] FILE\n"
		"  -N numops   number of operations (default 100000)\n"
		"  -S seed     random seed (default: derived from the time; always printed)\n"
		"  -l maxlen   maximum file size (default 256k; k/m/g suffixes accepted)\n"
		"  -o maxoplen maximum length of one read/write (default 64k)\n"
		"  -M          no mmap operations at all\n"
		"  -R          no mmap reads\n"
		"  -W          no mmap writes\n"
		"  -v          log every operation\n"
		"exit status: 0 ok, 1 data/size mismatch, 2 unexpected error or usage\n",
		progname);
	exit(2);
}

static u64 parse_num(const char *s, int allow_suffix)
{
	char *end;

	errno = 0;
	u64 v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		usage();
	if (allow_suffix && *end) {
		u64 mul;
		switch (*end) {
		case 'k': case 'K': mul = 1ULL << 10; break;
		case 'm': case 'M': mul = 1ULL << 20; break;
		case 'g': case 'G': mul = 1ULL << 30; break;
		default: usage();
		}
		end++;
		if (v > UINT64_MAX / mul)
			usage();
		v *= mul;
	}
	if (*end)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	int c, have_seed = 0;

	progname = argv[0];
	while ((c = getopt(argc, argv, "N:S:l:o:MRWvh")) != -1) {
		switch (c) {
		case 'N': numops = parse_num(optarg, 0); break;
		case 'S': seed = parse_num(optarg, 0); have_seed = 1; break;
		case 'l': maxlen = (size_t)parse_num(optarg, 1); break;
		case 'o': maxoplen = (size_t)parse_num(optarg, 1); break;
		case 'M': opt_M = 1; mmap_read = mmap_write = 0; break;
		case 'R': opt_R = 1; mmap_read = 0; break;
		case 'W': opt_W = 1; mmap_write = 0; break;
		case 'v': verbose = 1; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || maxlen == 0 || maxoplen == 0 || maxlen > (1ULL << 30))
		usage();
	fname = argv[optind];
	if (maxoplen > maxlen)
		maxoplen = maxlen;
	if (!have_seed) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = ((u64)ts.tv_sec * 1000003ULL) ^ (u64)ts.tv_nsec ^ ((u64)getpid() << 16);
		seed %= 1000000000ULL;	/* keep it short enough to type */
	}
	rng_state = seed;
	setvbuf(stdout, NULL, _IOLBF, 0);

	long ps = sysconf(_SC_PAGESIZE);
	pagesize = ps > 0 ? (size_t)ps : 4096;
	alloclen = ((maxlen + pagesize - 1) & ~(pagesize - 1)) + pagesize;
	good = calloc(alloclen, 1);
	owner = calloc(alloclen, sizeof(*owner));
	pbuf = malloc(alloclen);
	rbuf = malloc(alloclen);
	if (!good || !owner || !pbuf || !rbuf) {
		fprintf(stderr, "fsx: out of memory\n");
		return 2;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sigbus_handler;
	sigaction(SIGBUS, &sa, NULL);

	printf("fsx: seed %llu, file %s, %llu ops, maxlen %zu, maxoplen %zu, mmap read %s, mmap write %s\n",
	       seed, fname, numops, maxlen, maxoplen, mmap_read ? "on" : "off", mmap_write ? "on" : "off");

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	open_files(1);
	filesize = 0;
	check_size("initial open");

	u64 next_reopen = 500 + rndbelow(1001);
	for (curop = 1; curop <= numops; curop++) {
		int t = curop == next_reopen ? OP_REOPEN : pick_op();

		switch (t) {
		case OP_READ: do_read(); break;
		case OP_WRITE: do_write(); break;
		case OP_MAPREAD: do_mapread(); break;
		case OP_MAPWRITE: do_mapwrite(); break;
		case OP_TRUNCATE: do_truncate(); break;
		case OP_APPEND: do_append(); break;
		case OP_FALLOC: do_falloc(); break;
		case OP_FSYNC: do_fsync(); break;
		case OP_REOPEN:
			do_reopen();
			next_reopen = curop + 500 + rndbelow(1001);
			break;
		}
		check_size(opnames[t]);
		if (curop % CHECK_EVERY == 0) {
			if (verbose)
				printf("%9llu full-file check (size 0x%06zx)\n", curop, filesize);
			full_check("periodic whole-file check");
		}
	}
	curop = numops;
	full_check("final whole-file check");
	check_size("final check");
	if (close(fd) < 0)
		fail_sys("close");
	if (close(afd) < 0)
		fail_sys("close(append fd)");

	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("fsx: %.2f s, %.0f ops/s; read %llu write %llu mapread %llu mapwrite %llu truncate %llu "
	       "append %llu fallocate %llu fsync %llu reopen %llu\n",
	       secs, secs > 0 ? (double)numops / secs : 0.0,
	       opcount[OP_READ], opcount[OP_WRITE], opcount[OP_MAPREAD], opcount[OP_MAPWRITE],
	       opcount[OP_TRUNCATE], opcount[OP_APPEND], opcount[OP_FALLOC], opcount[OP_FSYNC],
	       opcount[OP_REOPEN]);
	printf("fsx: %llu operations, 0 mismatches, seed %llu\n", numops, seed);
	return 0;
}
