/*
 * memfs_ll: an in-memory read-write filesystem on libfuse3's low-level API.
 *
 * Reference point for bench/fuse-overhead: it is what a compiled,
 * multi-threaded FUSE daemon with an O(1) directory index costs, so the
 * TypeScript implementation can be compared against "FUSE done in C"
 * rather than only against tmpfs.
 *
 * Build:
 *   gcc -O2 -Wall -o memfs_ll memfs_ll.c $(pkg-config --cflags --libs fuse3) -lpthread
 * Run (foreground, until unmounted or SIGINT/SIGTERM):
 *   memfs_ll [--entry-timeout S] [--attr-timeout S] [--negative-timeout S]
 *            [--threads N] [--debug] MOUNTPOINT
 *
 * Design notes
 *  - Node ids handed to the kernel are node pointers (root is FUSE_ROOT_ID).
 *    A node lives while it is linked (nlink > 0) or the kernel still holds
 *    lookup references (nlookup > 0); it is freed when both reach zero.
 *  - One global reader/writer lock.  Operations that only read the tree
 *    (lookup, getattr, read, readdir, readdirplus, readlink, statfs, opendir)
 *    take it shared; the lookup counts they bump are updated atomically.
 *    Everything that changes the tree takes it exclusively.  forget and
 *    release of directory handles are exclusive, so a node can never be
 *    freed under a shared-lock holder.
 *  - Directories: a chained hash table (name -> entry) for O(1) lookup plus a
 *    slot array in insertion order for readdir.  The readdir offset is the
 *    slot position, so it stays valid while entries come and go; removed
 *    entries leave holes that are compacted only when no handle on the
 *    directory is open (compaction renumbers positions).
 *  - Regular files: one contiguous growable buffer (capacity doubles).
 *    Holes (write past EOF, truncate up) are materialised as zeroes.
 *  - Capacity is bounded like tmpfs: half of physical RAM by default.
 *  - atime follows "relatime" rules on read.
 *  - No xattrs (ENOSYS), no locks (kernel-local), no writeback cache, no
 *    splice.
 *  - libfuse before 3.17.1 never passes FUSE_PARALLEL_DIROPS to the kernel
 *    even when the file system asks for it (libfuse commit c9905341), so
 *    lookups/readdirs in one directory would be serialised by the kernel.
 *    We route /dev/fuse I/O through fuse_session_custom_io() and set the
 *    flag in the INIT reply ourselves when the kernel offered it.
 */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE

#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define NAME_MAX_LEN 255
#define BOGO_DIRENT_SIZE 20 /* like tmpfs: directory st_size = entries * 20 */

/* ------------------------------------------------------------------ */
/* data structures                                                    */

struct node;

struct dent {
	struct dent *hnext; /* hash chain */
	struct node *node;
	uint64_t hash;
	size_t slot;        /* index in dir.slots */
	size_t namelen;
	char name[];        /* NUL terminated */
};

struct dirdata {
	struct dent **buckets;
	size_t nbuckets;     /* power of two, 0 = not allocated yet */
	size_t count;        /* live entries */
	struct dent **slots; /* insertion order, NULL = hole */
	size_t nslots;       /* used length of slots[] (live + holes) */
	size_t slots_cap;
	size_t holes;
	atomic_uint open_handles;
	struct node *parent;
};

struct node {
	uint64_t ino;
	uint64_t generation;
	atomic_uint_fast64_t nlookup;
	mode_t mode;
	nlink_t nlink;
	uid_t uid;
	gid_t gid;
	dev_t rdev;
	struct timespec atime, mtime, ctime;
	uint64_t size; /* regular: bytes; symlink: strlen(target) */
	union {
		struct {
			char *data;
			size_t cap;
		} f;
		struct dirdata d;
		char *link;
	} u;
};

static struct {
	pthread_rwlock_t lock;
	struct node *root;
	uint64_t next_ino;
	uint64_t ninodes;
	uint64_t bytes_used;  /* file buffer capacity + symlink targets */
	uint64_t bytes_limit;
	double entry_timeout, attr_timeout, negative_timeout;
} fs;

#define RDLOCK() pthread_rwlock_rdlock(&fs.lock)
#define WRLOCK() pthread_rwlock_wrlock(&fs.lock)
#define UNLOCK() pthread_rwlock_unlock(&fs.lock)

/* ------------------------------------------------------------------ */
/* INIT reply fix-up for FUSE_PARALLEL_DIROPS (see header comment)    */

/* the leading parts of the kernel ABI structs (linux/fuse.h) we touch */
struct k_in_header { uint32_t len, opcode; uint64_t unique; };
struct k_out_header { uint32_t len; int32_t error; uint64_t unique; };
struct k_init_out_head { uint32_t major, minor, max_readahead, flags; };
#define K_FUSE_INIT 26
#define K_FUSE_PARALLEL_DIROPS (1u << 18)

static atomic_uint_fast64_t init_unique = UINT64_MAX;
static atomic_int init_patched;
static int want_parallel_dirops; /* set by op_init before the reply is sent */
static int debug_mode;

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	ssize_t r = read(fd, buf, len);
	if (r >= (ssize_t)sizeof(struct k_in_header) && !atomic_load(&init_patched)) {
		const struct k_in_header *h = buf;
		if (h->opcode == K_FUSE_INIT)
			atomic_store(&init_unique, h->unique);
	}
	return r;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (!atomic_load(&init_patched) && want_parallel_dirops && count >= 2 &&
	    iov[0].iov_len == sizeof(struct k_out_header) &&
	    iov[1].iov_len >= sizeof(struct k_init_out_head)) {
		const struct k_out_header *oh = iov[0].iov_base;
		const struct k_init_out_head *io = iov[1].iov_base;
		if (oh->unique == atomic_load(&init_unique) && oh->error == 0 &&
		    io->major == 7) {
			/* copy the reply, patch the flag, send it as one write */
			char msg[1024];
			size_t tot = 0;
			for (int i = 0; i < count; i++)
				tot += iov[i].iov_len;
			if (tot <= sizeof(msg)) {
				size_t o = 0;
				for (int i = 0; i < count; i++) {
					memcpy(msg + o, iov[i].iov_base, iov[i].iov_len);
					o += iov[i].iov_len;
				}
				struct k_init_out_head *p =
					(struct k_init_out_head *)(msg + sizeof(struct k_out_header));
				p->flags |= K_FUSE_PARALLEL_DIROPS;
				atomic_store(&init_patched, 1);
				if (debug_mode)
					fprintf(stderr, "memfs_ll: INIT reply flags 0x%08x "
						"(FUSE_PARALLEL_DIROPS added)\n", p->flags);
				return write(fd, msg, tot);
			}
		}
	}
	return writev(fd, iov, count);
}

/* ------------------------------------------------------------------ */
/* helpers                                                            */

static inline struct node *N(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? fs.root : (struct node *)(uintptr_t)ino;
}

static inline fuse_ino_t NID(const struct node *n)
{
	return n == fs.root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

static inline void now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static inline int ts_le(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

static uint64_t hash_name(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

static void fill_stat(const struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mode = n->mode;
	st->st_nlink = n->nlink;
	st->st_uid = n->uid;
	st->st_gid = n->gid;
	st->st_rdev = n->rdev;
	if (S_ISDIR(n->mode))
		st->st_size = (off_t)(n->u.d.count + 2) * BOGO_DIRENT_SIZE;
	else
		st->st_size = (off_t)n->size;
	st->st_blksize = 4096;
	if (S_ISREG(n->mode))
		st->st_blocks = (blkcnt_t)((n->size + 4095) / 4096) * 8;
	st->st_atim = n->atime;
	st->st_mtim = n->mtime;
	st->st_ctim = n->ctime;
}

static void fill_entry(const struct node *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = NID(n);
	e->generation = n->generation;
	e->attr_timeout = fs.attr_timeout;
	e->entry_timeout = fs.entry_timeout;
	fill_stat(n, &e->attr);
}

/* ------------------------------------------------------------------ */
/* directory index                                                    */

static struct dent *dir_find(struct node *dir, const char *name)
{
	struct dirdata *d = &dir->u.d;
	if (d->nbuckets == 0)
		return NULL;
	size_t len = strlen(name);
	uint64_t h = hash_name(name, len);
	for (struct dent *e = d->buckets[h & (d->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->namelen == len && memcmp(e->name, name, len) == 0)
			return e;
	return NULL;
}

static int dir_grow_buckets(struct dirdata *d)
{
	size_t nb = d->nbuckets ? d->nbuckets * 2 : 16;
	struct dent **b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < d->nbuckets; i++) {
		struct dent *e = d->buckets[i], *next;
		for (; e; e = next) {
			next = e->hnext;
			size_t k = e->hash & (nb - 1);
			e->hnext = b[k];
			b[k] = e;
		}
	}
	free(d->buckets);
	d->buckets = b;
	d->nbuckets = nb;
	return 0;
}

/* Renumber positions; only legal when no directory handle is open. */
static void dir_compact(struct dirdata *d)
{
	size_t j = 0;
	for (size_t i = 0; i < d->nslots; i++) {
		struct dent *e = d->slots[i];
		if (e) {
			e->slot = j;
			d->slots[j++] = e;
		}
	}
	d->nslots = j;
	d->holes = 0;
	if (d->slots_cap > 64 && d->nslots < d->slots_cap / 4) {
		size_t nc = d->slots_cap / 2;
		struct dent **s = realloc(d->slots, nc * sizeof(*s));
		if (s) {
			d->slots = s;
			d->slots_cap = nc;
		}
	}
}

static void dir_maybe_compact(struct dirdata *d)
{
	if (atomic_load(&d->open_handles) != 0)
		return;
	/* drop trailing holes cheaply, compact when holes dominate */
	while (d->nslots > 0 && d->slots[d->nslots - 1] == NULL) {
		d->nslots--;
		d->holes--;
	}
	if (d->holes > 16 && d->holes > d->count)
		dir_compact(d);
}

static int dir_add(struct node *dir, const char *name, struct node *n)
{
	struct dirdata *d = &dir->u.d;
	size_t len = strlen(name);
	if (d->count + 1 > d->nbuckets) {
		int r = dir_grow_buckets(d);
		if (r)
			return r;
	}
	if (d->nslots == d->slots_cap) {
		size_t nc = d->slots_cap ? d->slots_cap * 2 : 16;
		struct dent **s = realloc(d->slots, nc * sizeof(*s));
		if (!s)
			return -ENOMEM;
		d->slots = s;
		d->slots_cap = nc;
	}
	struct dent *e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return -ENOMEM;
	memcpy(e->name, name, len + 1);
	e->namelen = len;
	e->hash = hash_name(name, len);
	e->node = n;
	e->slot = d->nslots;
	d->slots[d->nslots++] = e;
	size_t k = e->hash & (d->nbuckets - 1);
	e->hnext = d->buckets[k];
	d->buckets[k] = e;
	d->count++;
	return 0;
}

static void dir_remove(struct node *dir, struct dent *e)
{
	struct dirdata *d = &dir->u.d;
	struct dent **pp = &d->buckets[e->hash & (d->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	d->slots[e->slot] = NULL;
	d->holes++;
	d->count--;
	free(e);
	dir_maybe_compact(d);
}

/* ------------------------------------------------------------------ */
/* node lifecycle                                                     */

static struct node *node_new(mode_t mode, const struct fuse_ctx *ctx,
			     struct node *parent)
{
	struct node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->ino = fs.next_ino++;
	n->generation = n->ino;
	n->mode = mode;
	n->nlink = S_ISDIR(mode) ? 2 : 1;
	n->uid = ctx ? ctx->uid : 0;
	n->gid = ctx ? ctx->gid : 0;
	if (parent && (parent->mode & S_ISGID)) {
		n->gid = parent->gid;
		if (S_ISDIR(mode))
			n->mode |= S_ISGID;
	}
	now(&n->atime);
	n->mtime = n->ctime = n->atime;
	if (S_ISDIR(mode))
		n->u.d.parent = parent ? parent : n;
	fs.ninodes++;
	return n;
}

static void node_free(struct node *n)
{
	if (S_ISREG(n->mode)) {
		fs.bytes_used -= n->u.f.cap;
		free(n->u.f.data);
	} else if (S_ISDIR(n->mode)) {
		/* only empty directories are ever freed */
		free(n->u.d.buckets);
		free(n->u.d.slots);
	} else if (S_ISLNK(n->mode)) {
		fs.bytes_used -= n->size + 1;
		free(n->u.link);
	}
	fs.ninodes--;
	free(n);
}

/* caller holds the write lock */
static void node_maybe_free(struct node *n)
{
	if (n != fs.root && n->nlink == 0 && atomic_load(&n->nlookup) == 0)
		node_free(n);
}

/* Resize a regular file's buffer so that it can hold `need` bytes. */
static int file_reserve(struct node *n, uint64_t need)
{
	if (need <= n->u.f.cap)
		return 0;
	uint64_t nc = n->u.f.cap ? n->u.f.cap : 64;
	while (nc < need) {
		if (nc > (UINT64_MAX >> 1))
			return -EFBIG;
		nc <<= 1;
	}
	/* big files: grow by at most 1/8 beyond the need once past 64 MiB */
	if (nc > need && need > (64u << 20)) {
		uint64_t alt = need + need / 8;
		if (alt < nc)
			nc = alt;
	}
	if (nc > (uint64_t)SSIZE_MAX)
		return -EFBIG;
	if (fs.bytes_used - n->u.f.cap + nc > fs.bytes_limit) {
		nc = need; /* try exact fit before giving up */
		if (fs.bytes_used - n->u.f.cap + nc > fs.bytes_limit)
			return -ENOSPC;
	}
	char *p = realloc(n->u.f.data, nc);
	if (!p)
		return -ENOSPC;
	fs.bytes_used += nc - n->u.f.cap;
	n->u.f.data = p;
	n->u.f.cap = nc;
	return 0;
}

static int file_truncate(struct node *n, uint64_t size)
{
	if (size > n->size) {
		int r = file_reserve(n, size);
		if (r)
			return r;
		memset(n->u.f.data + n->size, 0, size - n->size);
	} else if (size == 0) {
		fs.bytes_used -= n->u.f.cap;
		free(n->u.f.data);
		n->u.f.data = NULL;
		n->u.f.cap = 0;
	} else if (size < n->u.f.cap / 4 && n->u.f.cap > 65536) {
		char *p = realloc(n->u.f.data, size);
		if (p) {
			fs.bytes_used -= n->u.f.cap - size;
			n->u.f.data = p;
			n->u.f.cap = size;
		}
	}
	n->size = size;
	return 0;
}

/* is `n` equal to `anc` or below it? (directories only) */
static int is_descendant(struct node *n, struct node *anc)
{
	for (;;) {
		if (n == anc)
			return 1;
		if (n == fs.root)
			return 0;
		n = n->u.d.parent;
	}
}

static int check_name(const char *name)
{
	size_t l = strlen(name);
	if (l == 0)
		return -ENOENT;
	if (l > NAME_MAX_LEN)
		return -ENAMETOOLONG;
	return 0;
}

/* Reply to an entry-creating request; undo the lookup reference if the
 * kernel did not take the reply (interrupted request). */
static void reply_entry_ref(fuse_req_t req, struct fuse_entry_param *e,
			    struct node *n)
{
	if (fuse_reply_entry(req, e) != 0) {
		WRLOCK();
		atomic_fetch_sub(&n->nlookup, 1);
		node_maybe_free(n);
		UNLOCK();
	}
}

/* ------------------------------------------------------------------ */
/* operations                                                         */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = 131072;
	conn->max_read = 131072; /* must equal the max_read mount option */
	unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS |
			FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO |
			FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_AUTO_INVAL_DATA;
	conn->want |= want & conn->capable;
	want_parallel_dirops = (conn->want & FUSE_CAP_PARALLEL_DIROPS) != 0;
	conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_READ |
				  FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r = check_name(name);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	RDLOCK();
	struct node *p = N(parent);
	if (!S_ISDIR(p->mode)) {
		UNLOCK();
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	struct dent *d = dir_find(p, name);
	if (!d) {
		UNLOCK();
		if (fs.negative_timeout > 0) {
			memset(&e, 0, sizeof(e));
			e.entry_timeout = fs.negative_timeout;
			fuse_reply_entry(req, &e);
		} else {
			fuse_reply_err(req, ENOENT);
		}
		return;
	}
	struct node *n = d->node;
	atomic_fetch_add(&n->nlookup, 1);
	fill_entry(n, &e);
	UNLOCK();
	reply_entry_ref(req, &e, n);
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n = N(ino);
	uint64_t old = atomic_fetch_sub(&n->nlookup, nlookup);
	if (old < nlookup) { /* kernel bug or ours: clamp */
		fprintf(stderr, "memfs_ll: forget underflow on ino %llu\n",
			(unsigned long long)n->ino);
		atomic_store(&n->nlookup, 0);
	}
	node_maybe_free(n);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	WRLOCK();
	forget_one(ino, nlookup);
	UNLOCK();
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	WRLOCK();
	for (size_t i = 0; i < count; i++)
		forget_one(forgets[i].ino, forgets[i].nlookup);
	UNLOCK();
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct stat st;
	RDLOCK();
	fill_stat(N(ino), &st);
	UNLOCK();
	fuse_reply_attr(req, &st, fs.attr_timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	(void)fi;
	struct stat st;
	struct timespec ts;
	int r = 0;
	now(&ts);
	WRLOCK();
	struct node *n = N(ino);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (S_ISDIR(n->mode))
			r = EISDIR;
		else if (!S_ISREG(n->mode))
			r = EINVAL;
		else if (attr->st_size < 0)
			r = EINVAL;
		else {
			r = -file_truncate(n, (uint64_t)attr->st_size);
			if (!r)
				n->mtime = ts;
		}
		if (r)
			goto out;
	}
	if (to_set & FUSE_SET_ATTR_MODE)
		n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		n->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		n->gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		n->atime = ts;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		n->atime = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		n->mtime = ts;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		n->mtime = attr->st_mtim;
	if (to_set & FUSE_SET_ATTR_CTIME)
		n->ctime = attr->st_ctim;
	else
		n->ctime = ts;
out:
	if (!r)
		fill_stat(n, &st);
	UNLOCK();
	if (r)
		fuse_reply_err(req, r);
	else
		fuse_reply_attr(req, &st, fs.attr_timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	RDLOCK();
	struct node *n = N(ino);
	if (!S_ISLNK(n->mode)) {
		UNLOCK();
		fuse_reply_err(req, EINVAL);
		return;
	}
	char *copy = strdup(n->u.link);
	UNLOCK();
	if (!copy) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fuse_reply_readlink(req, copy);
	free(copy);
}

/* Common part of mknod/mkdir/symlink/create: caller holds the write lock.
 * Returns the new node (with one lookup reference) or NULL with *err. */
static struct node *make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
			      mode_t mode, dev_t rdev, const char *link, int *err)
{
	struct node *p = N(parent);
	int r = check_name(name);
	if (r) {
		*err = -r;
		return NULL;
	}
	if (!S_ISDIR(p->mode)) {
		*err = ENOTDIR;
		return NULL;
	}
	if (p->nlink == 0) { /* removed directory */
		*err = ENOENT;
		return NULL;
	}
	if (dir_find(p, name)) {
		*err = EEXIST;
		return NULL;
	}
	char *target = NULL;
	size_t tlen = 0;
	if (link) {
		tlen = strlen(link);
		if (fs.bytes_used + tlen + 1 > fs.bytes_limit) {
			*err = ENOSPC;
			return NULL;
		}
		target = strdup(link);
		if (!target) {
			*err = ENOMEM;
			return NULL;
		}
	}
	struct node *n = node_new(mode, fuse_req_ctx(req), p);
	if (!n) {
		free(target);
		*err = ENOMEM;
		return NULL;
	}
	n->rdev = rdev;
	if (link) {
		n->u.link = target;
		n->size = tlen;
		fs.bytes_used += tlen + 1;
	}
	r = dir_add(p, name, n);
	if (r) {
		n->nlink = 0;
		node_free(n);
		*err = -r;
		return NULL;
	}
	if (S_ISDIR(mode))
		p->nlink++;
	p->mtime = p->ctime = n->ctime;
	atomic_store(&n->nlookup, 1);
	return n;
}

static void reply_new(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, dev_t rdev, const char *link)
{
	struct fuse_entry_param e;
	int err = 0;
	WRLOCK();
	struct node *n = make_node(req, parent, name, mode, rdev, link, &err);
	if (n)
		fill_entry(n, &e);
	UNLOCK();
	if (!n)
		fuse_reply_err(req, err);
	else
		reply_entry_ref(req, &e, n);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	if ((mode & S_IFMT) == 0)
		mode |= S_IFREG;
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		break;
	default:
		fuse_reply_err(req, EINVAL);
		return;
	}
	reply_new(req, parent, name, mode, S_ISCHR(mode) || S_ISBLK(mode) ? rdev : 0, NULL);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	reply_new(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	if (strlen(link) >= PATH_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	reply_new(req, parent, name, S_IFLNK | 0777, 0, link);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct fuse_entry_param e;
	int r = check_name(newname);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	WRLOCK();
	struct node *n = N(ino), *p = N(newparent);
	if (S_ISDIR(n->mode))
		r = EPERM;
	else if (!S_ISDIR(p->mode))
		r = ENOTDIR;
	else if (p->nlink == 0 || n->nlink == 0)
		r = ENOENT;
	else if (dir_find(p, newname))
		r = EEXIST;
	else if ((r = -dir_add(p, newname, n)) == 0) {
		n->nlink++;
		now(&n->ctime);
		p->mtime = p->ctime = n->ctime;
		atomic_fetch_add(&n->nlookup, 1);
		fill_entry(n, &e);
	}
	UNLOCK();
	if (r)
		fuse_reply_err(req, r);
	else
		reply_entry_ref(req, &e, n);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int r = 0;
	WRLOCK();
	struct node *p = N(parent);
	struct dent *d = S_ISDIR(p->mode) ? dir_find(p, name) : NULL;
	if (!S_ISDIR(p->mode))
		r = ENOTDIR;
	else if (!d)
		r = ENOENT;
	else if (S_ISDIR(d->node->mode))
		r = EISDIR;
	else {
		struct node *n = d->node;
		dir_remove(p, d);
		n->nlink--;
		now(&n->ctime);
		p->mtime = p->ctime = n->ctime;
		node_maybe_free(n);
	}
	UNLOCK();
	fuse_reply_err(req, r);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int r = 0;
	WRLOCK();
	struct node *p = N(parent);
	struct dent *d = S_ISDIR(p->mode) ? dir_find(p, name) : NULL;
	if (!S_ISDIR(p->mode))
		r = ENOTDIR;
	else if (!d)
		r = ENOENT;
	else if (!S_ISDIR(d->node->mode))
		r = ENOTDIR;
	else if (d->node->u.d.count != 0)
		r = ENOTEMPTY;
	else {
		struct node *n = d->node;
		dir_remove(p, d);
		n->nlink = 0;
		n->u.d.parent = p;
		p->nlink--;
		now(&n->ctime);
		p->mtime = p->ctime = n->ctime;
		node_maybe_free(n);
	}
	UNLOCK();
	fuse_reply_err(req, r);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	int r = 0;
	struct timespec ts;

	if ((flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((r = check_name(newname)) != 0) {
		fuse_reply_err(req, -r);
		return;
	}
	now(&ts);
	WRLOCK();
	struct node *sp = N(parent), *dp = N(newparent);
	if (!S_ISDIR(sp->mode) || !S_ISDIR(dp->mode)) {
		r = ENOTDIR;
		goto out;
	}
	if (sp->nlink == 0 || dp->nlink == 0) { /* removed directory */
		r = ENOENT;
		goto out;
	}
	struct dent *sd = dir_find(sp, name);
	struct dent *dd = dir_find(dp, newname);
	if (!sd) {
		r = ENOENT;
		goto out;
	}
	struct node *sn = sd->node, *dn = dd ? dd->node : NULL;
	int sdir = S_ISDIR(sn->mode), ddir = dn && S_ISDIR(dn->mode);

	if (flags & RENAME_EXCHANGE) {
		if (!dd) {
			r = ENOENT;
			goto out;
		}
		if (sd == dd)
			goto out;
		if ((sdir && sp != dp && is_descendant(dp, sn)) ||
		    (ddir && sp != dp && is_descendant(sp, dn))) {
			r = EINVAL;
			goto out;
		}
		sd->node = dn;
		dd->node = sn;
		if (sp != dp) {
			if (sdir) {
				sn->u.d.parent = dp;
				sp->nlink--;
				dp->nlink++;
			}
			if (ddir) {
				dn->u.d.parent = sp;
				dp->nlink--;
				sp->nlink++;
			}
		}
		sn->ctime = dn->ctime = ts;
		sp->mtime = sp->ctime = dp->mtime = dp->ctime = ts;
		goto out;
	}

	if (dn == sn) { /* same name, or two links to the same inode */
		if (flags & RENAME_NOREPLACE)
			r = EEXIST;
		goto out;
	}
	if (dd && (flags & RENAME_NOREPLACE)) {
		r = EEXIST;
		goto out;
	}
	if (sdir && is_descendant(dp, sn)) {
		r = EINVAL;
		goto out;
	}
	if (dd) {
		if (sdir && !ddir) {
			r = ENOTDIR;
			goto out;
		}
		if (!sdir && ddir) {
			r = EISDIR;
			goto out;
		}
		if (ddir && dn->u.d.count != 0) {
			r = ENOTEMPTY;
			goto out;
		}
	}
	if (!dd && (r = -dir_add(dp, newname, sn)) != 0)
		goto out;
	if (dd) {
		/* replace in place: the target entry keeps its readdir slot */
		dd->node = sn;
		if (ddir) {
			dn->nlink = 0;
			dp->nlink--;
		} else {
			dn->nlink--;
		}
		dn->ctime = ts;
	}
	dir_remove(sp, sd);
	if (sdir && sp != dp) {
		sn->u.d.parent = dp;
		sp->nlink--;
		dp->nlink++;
	}
	sn->ctime = ts;
	sp->mtime = sp->ctime = dp->mtime = dp->ctime = ts;
	if (dn)
		node_maybe_free(dn);
out:
	UNLOCK();
	fuse_reply_err(req, r);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int r = 0;
	if (fi->flags & O_TRUNC && (fi->flags & O_ACCMODE) != O_RDONLY) {
		WRLOCK();
		struct node *n = N(ino);
		if (S_ISREG(n->mode) && n->size != 0) {
			r = -file_truncate(n, 0);
			now(&n->mtime);
			n->ctime = n->mtime;
		}
		UNLOCK();
	}
	if (r) {
		fuse_reply_err(req, r);
		return;
	}
	fi->keep_cache = 0;
	fi->direct_io = 0;
	fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int err = 0;
	WRLOCK();
	struct node *n = make_node(req, parent, name, S_IFREG | (mode & 07777), 0,
				   NULL, &err);
	if (!n && err == EEXIST && !(fi->flags & O_EXCL)) {
		/* lost a race with another creator: open the existing file */
		struct dent *d = dir_find(N(parent), name);
		n = d->node;
		if (S_ISDIR(n->mode)) {
			err = EISDIR;
			n = NULL;
		} else {
			err = 0;
			if (fi->flags & O_TRUNC && S_ISREG(n->mode) && n->size) {
				err = -file_truncate(n, 0);
				now(&n->mtime);
				n->ctime = n->mtime;
			}
			if (err)
				n = NULL;
			else
				atomic_fetch_add(&n->nlookup, 1);
		}
	}
	if (n)
		fill_entry(n, &e);
	UNLOCK();
	if (!n) {
		fuse_reply_err(req, err);
		return;
	}
	fi->keep_cache = 0;
	fi->direct_io = 0;
	if (fuse_reply_create(req, &e, fi) != 0) {
		WRLOCK();
		atomic_fetch_sub(&n->nlookup, 1);
		node_maybe_free(n);
		UNLOCK();
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	struct timespec ts;
	now(&ts);
	RDLOCK();
	struct node *n = N(ino);
	uint64_t fsz = n->size;
	size_t len = 0;
	if (off >= 0 && (uint64_t)off < fsz)
		len = (fsz - (uint64_t)off < size) ? (size_t)(fsz - (uint64_t)off) : size;
	/* relatime: update atime if it is not newer than mtime/ctime, or a day old */
	int touch = ts_le(&n->atime, &n->mtime) || ts_le(&n->atime, &n->ctime) ||
		    ts.tv_sec - n->atime.tv_sec >= 86400;
	/* Reply while holding the shared lock: the kernel copies straight from
	 * the file buffer, writers to this FS wait for the copy. */
	fuse_reply_buf(req, len ? n->u.f.data + off : NULL, len);
	UNLOCK();
	if (touch) {
		/* the open file pins the node: it cannot be freed meanwhile */
		WRLOCK();
		n->atime = ts;
		UNLOCK();
	}
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	int r = 0;
	if (off < 0 || (uint64_t)off + size < (uint64_t)off) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	WRLOCK();
	struct node *n = N(ino);
	uint64_t end = (uint64_t)off + size;
	if (!S_ISREG(n->mode)) {
		r = EINVAL;
	} else if ((r = -file_reserve(n, end)) == 0) {
		if ((uint64_t)off > n->size)
			memset(n->u.f.data + n->size, 0, (uint64_t)off - n->size);
		memcpy(n->u.f.data + off, buf, size);
		if (end > n->size)
			n->size = end;
		now(&n->mtime);
		n->ctime = n->mtime;
	}
	UNLOCK();
	if (r)
		fuse_reply_err(req, r);
	else
		fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino; (void)fi;
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino; (void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino; (void)datasync; (void)fi;
	fuse_reply_err(req, 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			 off_t length, struct fuse_file_info *fi)
{
	(void)fi;
	int r = 0;
	if (mode != 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (offset < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	WRLOCK();
	struct node *n = N(ino);
	uint64_t end = (uint64_t)offset + (uint64_t)length;
	if (!S_ISREG(n->mode))
		r = ENODEV;
	else if (end > n->size) {
		r = -file_truncate(n, end);
		if (!r)
			now(&n->ctime);
	}
	UNLOCK();
	fuse_reply_err(req, r);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	RDLOCK();
	struct node *n = N(ino);
	if (!S_ISDIR(n->mode)) {
		UNLOCK();
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	atomic_fetch_add(&n->u.d.open_handles, 1);
	UNLOCK();
	fi->fh = 0;
	fi->cache_readdir = 0;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0) {
		WRLOCK();
		atomic_fetch_sub(&n->u.d.open_handles, 1);
		dir_maybe_compact(&n->u.d);
		UNLOCK();
	}
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	WRLOCK();
	struct node *n = N(ino);
	atomic_fetch_sub(&n->u.d.open_handles, 1);
	dir_maybe_compact(&n->u.d);
	UNLOCK();
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	(void)ino; (void)datasync; (void)fi;
	fuse_reply_err(req, 0);
}

/*
 * Readdir positions: 0 = ".", 1 = "..", 2 + i = slot i.  The offset stored
 * with an entry is the position of the next one.  Holes are skipped.
 */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       int plus)
{
	if (size > 1 << 20)
		size = 1 << 20;
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	RDLOCK();
	struct node *dir = N(ino);
	struct dirdata *d = &dir->u.d;
	uint64_t pos = off < 0 ? 0 : (uint64_t)off;
	/* a removed directory lists nothing (its ".." may be gone) */
	for (; dir->nlink != 0;) {
		const char *name;
		struct node *n;
		if (pos == 0) {
			name = ".";
			n = dir;
		} else if (pos == 1) {
			name = "..";
			n = d->parent;
		} else {
			uint64_t i = pos - 2;
			while (i < d->nslots && d->slots[i] == NULL)
				i++;
			if (i >= d->nslots)
				break;
			pos = i + 2;
			name = d->slots[i]->name;
			n = d->slots[i]->node;
		}
		size_t rem = size - used, sz;
		if (!plus) {
			struct stat st;
			memset(&st, 0, sizeof(st));
			st.st_ino = n->ino;
			st.st_mode = n->mode;
			sz = fuse_add_direntry(req, buf + used, rem, name, &st,
					       (off_t)(pos + 1));
			if (sz > rem)
				break;
		} else {
			struct fuse_entry_param e;
			if (pos < 2) {
				/* no node id: the kernel takes no reference */
				memset(&e, 0, sizeof(e));
				e.attr.st_ino = n->ino;
				e.attr.st_mode = n->mode;
			} else {
				fill_entry(n, &e);
			}
			sz = fuse_add_direntry_plus(req, buf + used, rem, name, &e,
						    (off_t)(pos + 1));
			if (sz > rem)
				break;
			if (pos >= 2)
				atomic_fetch_add(&n->nlookup, 1);
		}
		used += sz;
		pos++;
	}
	UNLOCK();
	/* If the reply is lost (interrupt), the lookup references taken by
	 * readdirplus leak; the kernel does the same accounting as libfuse's
	 * own examples here, so keep it simple. */
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 1);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs sv;
	memset(&sv, 0, sizeof(sv));
	RDLOCK();
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = fs.bytes_limit / 4096;
	sv.f_bfree = sv.f_bavail =
		fs.bytes_used >= fs.bytes_limit ? 0 : (fs.bytes_limit - fs.bytes_used) / 4096;
	sv.f_files = 1ULL << 32;
	sv.f_ffree = sv.f_favail = sv.f_files - fs.ninodes;
	sv.f_namemax = NAME_MAX_LEN;
	UNLOCK();
	fuse_reply_statfs(req, &sv);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	(void)ino; (void)name; (void)value; (void)size; (void)flags;
	fuse_reply_err(req, ENOSYS);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino; (void)name; (void)size;
	fuse_reply_err(req, ENOSYS);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino; (void)size;
	fuse_reply_err(req, ENOSYS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino; (void)name;
	fuse_reply_err(req, ENOSYS);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
};

/* ------------------------------------------------------------------ */
/* main                                                               */

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--entry-timeout S] [--attr-timeout S] [--negative-timeout S]\n"
		"          [--threads N] [--debug] MOUNTPOINT\n"
		"Mounts with -o allow_other,default_permissions,fsname=memfs_ll,max_read=131072\n"
		"and serves requests in the foreground until unmounted or signalled.\n",
		prog);
}

static int parse_seconds(const char *opt, const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || v < 0) {
		fprintf(stderr, "memfs_ll: bad value for %s: '%s'\n", opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	const char *mountpoint = NULL;
	unsigned threads = 10;
	int debug = 0;

	fs.entry_timeout = fs.attr_timeout = fs.negative_timeout = 1.0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		double *dst = NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(argv[0]);
			return 0;
		} else if (!strcmp(a, "--debug") || !strcmp(a, "-d")) {
			debug = debug_mode = 1;
			continue;
		}
		static const struct { const char *name; size_t off; } topts[] = {
			{ "--entry-timeout", offsetof(__typeof__(fs), entry_timeout) },
			{ "--attr-timeout", offsetof(__typeof__(fs), attr_timeout) },
			{ "--negative-timeout", offsetof(__typeof__(fs), negative_timeout) },
			{ "--threads", 0 },
		};
		int matched = 0;
		for (size_t k = 0; k < sizeof(topts) / sizeof(topts[0]); k++) {
			size_t l = strlen(topts[k].name);
			if (strncmp(a, topts[k].name, l) != 0)
				continue;
			if (a[l] == '=')
				val = a + l + 1;
			else if (a[l] == 0 && i + 1 < argc)
				val = argv[++i];
			else
				continue;
			matched = 1;
			if (!strcmp(topts[k].name, "--threads")) {
				char *end;
				long t = strtol(val, &end, 10);
				if (*end || t < 1 || t > 1000) {
					fprintf(stderr, "memfs_ll: bad --threads '%s'\n", val);
					return 2;
				}
				threads = (unsigned)t;
			} else {
				dst = (double *)((char *)&fs + topts[k].off);
				if (parse_seconds(topts[k].name, val, dst))
					return 2;
			}
			break;
		}
		if (matched)
			continue;
		if (a[0] == '-' || mountpoint) {
			usage(argv[0]);
			return 2;
		}
		mountpoint = a;
	}
	if (!mountpoint) {
		usage(argv[0]);
		return 2;
	}

	struct sysinfo si;
	if (sysinfo(&si) == 0)
		fs.bytes_limit = (uint64_t)si.totalram * si.mem_unit / 2;
	else
		fs.bytes_limit = 1ULL << 32;

	pthread_rwlockattr_t la;
	pthread_rwlockattr_init(&la);
	pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs.lock, &la);
	pthread_rwlockattr_destroy(&la);

	fs.next_ino = 1;
	fs.root = node_new(S_IFDIR | 0755, NULL, NULL);
	if (!fs.root)
		return 1;
	fs.root->uid = getuid();
	fs.root->gid = getgid();
	atomic_store(&fs.root->nlookup, 1);

	char *fargv[5];
	int fargc = 0;
	fargv[fargc++] = argv[0];
	fargv[fargc++] = "-o";
	fargv[fargc++] = "allow_other,default_permissions,fsname=memfs_ll,max_read=131072";
	if (debug)
		fargv[fargc++] = "-d";
	fargv[fargc] = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(fargc, fargv);

	int ret = 1;
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		goto out_args;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, mountpoint) != 0)
		goto out_signals;
	static const struct fuse_custom_io cio = { .read = io_read, .writev = io_writev };
	if (fuse_session_custom_io(se, &cio, fuse_session_fd(se)) != 0)
		goto out_unmount;

	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	if (!cfg)
		goto out_unmount;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, threads);
	fuse_loop_cfg_set_idle_threads(cfg, threads < 10 ? threads : 10);
	/* 0 on unmount, the signal number on SIGINT/SIGTERM, -errno on error */
	ret = fuse_session_loop_mt(se, cfg) < 0;
	fuse_loop_cfg_destroy(cfg);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_args:
	fuse_opt_free_args(&args);
	return ret;
}
