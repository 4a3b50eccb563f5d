// Constants of the Linux FUSE kernel protocol (include/uapi/linux/fuse.h).
// Only what swarmvol speaks; sizes are for protocol minor >= 23.

export const KERNEL_VERSION = 7;
/** The newest minor we understand; we answer min(kernel, this). */
export const KERNEL_MINOR = 45;
/** The oldest minor we accept: 7.31 brought the struct sizes we rely on. */
export const MIN_KERNEL_MINOR = 31;
export const ROOT_ID = 1;

export const enum Op {
  LOOKUP = 1,
  FORGET = 2,
  GETATTR = 3,
  SETATTR = 4,
  READLINK = 5,
  SYMLINK = 6,
  MKNOD = 8,
  MKDIR = 9,
  UNLINK = 10,
  RMDIR = 11,
  RENAME = 12,
  LINK = 13,
  OPEN = 14,
  READ = 15,
  WRITE = 16,
  STATFS = 17,
  RELEASE = 18,
  FSYNC = 20,
  SETXATTR = 21,
  GETXATTR = 22,
  LISTXATTR = 23,
  REMOVEXATTR = 24,
  FLUSH = 25,
  INIT = 26,
  OPENDIR = 27,
  READDIR = 28,
  RELEASEDIR = 29,
  FSYNCDIR = 30,
  GETLK = 31,
  SETLK = 32,
  SETLKW = 33,
  ACCESS = 34,
  CREATE = 35,
  INTERRUPT = 36,
  BMAP = 37,
  DESTROY = 38,
  IOCTL = 39,
  POLL = 40,
  NOTIFY_REPLY = 41,
  BATCH_FORGET = 42,
  FALLOCATE = 43,
  READDIRPLUS = 44,
  RENAME2 = 45,
  LSEEK = 46,
  COPY_FILE_RANGE = 47,
  SETUPMAPPING = 48,
  REMOVEMAPPING = 49,
  SYNCFS = 50,
  TMPFILE = 51,
  STATX = 52,
  COPY_FILE_RANGE_64 = 53,
}

/** INIT flags, low word (`flags`). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  ATOMIC_O_TRUNC: 1 << 3,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  FLOCK_LOCKS: 1 << 10,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  EXPLICIT_INVAL_DATA: 1 << 25,
  HANDLE_KILLPRIV_V2: 1 << 28,
  SETXATTR_EXT: 1 << 29,
  INIT_EXT: 1 << 30,
} as const;

/** INIT flags of the second word (`flags2`, with INIT_EXT): bit 32 + n of the protocol's 64-bit flags. */
export const InitFlag2 = {
  /** mmap(MAP_SHARED) of a file opened with FOPEN_DIRECT_IO (through the page cache) instead of ENODEV (7.39). */
  DIRECT_IO_ALLOW_MMAP: 1 << 4,
} as const;

/** SETATTR `valid` bits. */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

/** `open_out.open_flags`. */
export const FopenFlag = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
} as const;

export const OPEN_KILL_SUIDGID = 1 << 0;
export const WRITE_KILL_SUIDGID = 1 << 2;
export const RELEASE_FLUSH = 1 << 0;
export const RELEASE_FLOCK_UNLOCK = 1 << 1;
export const GETATTR_FH = 1 << 0;
export const LK_FLOCK = 1 << 0;
export const FSYNC_FDATASYNC = 1 << 0;

export const RENAME_NOREPLACE = 1 << 0;
export const RENAME_EXCHANGE = 1 << 1;
export const RENAME_WHITEOUT = 1 << 2;

export const enum Notify {
  POLL = 1,
  INVAL_INODE = 2,
  INVAL_ENTRY = 3,
  STORE = 4,
  RETRIEVE = 5,
  DELETE = 6,
}

/** INVAL_ENTRY flag (protocol 7.38): expire the dentry without taking the directory's lock. */
export const NOTIFY_EXPIRE_ONLY = 1 << 0;
export const EXPIRE_ONLY_MINOR = 38;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 128;
export const ATTR_OUT_SIZE = 104;
export const OPEN_OUT_SIZE = 16;
/** fuse_notify_store_out: nodeid, offset, size, padding. */
export const NOTIFY_STORE_OUT_SIZE = 24;
export const INIT_OUT_SIZE = 64;
export const STATFS_OUT_SIZE = 80;
/** `fuse_lk_out`: one `fuse_file_lock`. */
export const FILE_LOCK_SIZE = 24;
export const DIRENT_HEADER_SIZE = 24;
export const WRITE_IN_SIZE = 40;
/** The kernel refuses a read buffer smaller than this. */
export const MIN_READ_BUFFER = 8192;
export const PAGE_SIZE = 4096;

/** Lock types as in <fcntl.h>. */
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;

/** Largest offset a byte-range lock can name (OFFSET_MAX). */
export const LOCK_OFFSET_MAX = 0x7fffffffffffffffn;
