// The typed surface of the raw protocol layer: what a request carries after
// decoding and what an operation answers before encoding.

export interface Timespec {
  sec: number;
  nsec: number;
}

/** Attributes as the kernel sees them (`struct fuse_attr`). */
export interface Attr {
  /** 64-bit inode number (a bigint where a number cannot hold it). */
  ino: number | bigint;
  size: number;
  /** 512-byte blocks; derived from size when omitted. */
  blocks?: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize?: number;
}

/** Who made a request, and a way to learn that it was interrupted. */
export interface RequestContext {
  readonly unique: number;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /**
   * Registers a callback for a FUSE INTERRUPT of this request. Returns a
   * function that unregisters it. Only requests that can wait long (SETLKW,
   * slow backend calls) need it.
   */
  onInterrupt(cb: () => void): () => void;
}

/** A positive or negative entry reply (LOOKUP and the create-like calls). */
export interface EntryOut {
  /** 0 for a negative entry that the kernel may cache for `entryTimeout`. */
  nodeid: number;
  generation?: number;
  /** Seconds. */
  entryTimeout: number;
  attrTimeout: number;
  attr?: Attr;
}

export interface AttrOut {
  attr: Attr;
  attrTimeout: number;
}

export interface OpenOut {
  fh: number;
  /** FOPEN_* bits. */
  openFlags?: number;
  /**
   * The file's whole content, for the kernel's page cache: the session stores
   * it (NOTIFY_STORE) before replying and replies with KEEP_CACHE. Only for a
   * node no open file refers to yet, so that no READ or WRITE of it can be
   * holding a page the store must lock (that would deadlock).
   */
  preload?: { nodeid: number; data: Buffer };
}

export interface SetattrIn {
  valid: number;
  fh: number;
  size: number;
  lockOwner: bigint;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  mode: number;
  uid: number;
  gid: number;
}

export interface StatfsOut {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

export interface FileLock {
  start: bigint;
  /** Inclusive; LOCK_OFFSET_MAX means "to the end". */
  end: bigint;
  /** F_RDLCK, F_WRLCK or F_UNLCK. */
  type: number;
  pid: number;
}

export interface LockIn {
  fh: number;
  owner: bigint;
  lock: FileLock;
  /** True for flock(2), false for fcntl(2) byte-range locks. */
  flock: boolean;
}

/**
 * Where READDIR/READDIRPLUS results are written. `add` returns false once the
 * reply is full; the entry was then not added and must be offered again at the
 * next offset.
 */
export interface DirentSink {
  readonly plus: boolean;
  add(name: string, ino: number | bigint, mode: number, nextOffset: number, entry?: EntryOut): boolean;
}

export interface ConnectionInfo {
  /** Protocol minor agreed with the kernel. */
  minor: number;
  maxWrite: number;
  maxReadahead: number;
  /** INIT flags agreed with the kernel (both words, as a bigint). */
  flags: bigint;
}

/**
 * A result now or later. The session answers a plain value in the read
 * callback, without a promise, a microtask or a closure: the memory backend
 * and cached lookups take that path.
 */
export type MaybePromise<T> = T | Promise<T>;

/**
 * The nodeid-level operations the session dispatches to. The node layer in
 * src/fs implements it on top of a backend. Every method may throw an FsError
 * or return a promise that rejects with one.
 */
export interface RawFileSystem {
  init(conn: ConnectionInfo): void;
  destroy(): void;
  /** One small step of work done while the channel polls for the next request and none is there; false when none is left. */
  readonly idleWork?: () => boolean;
  lookup(ctx: RequestContext, parent: number, name: string): MaybePromise<EntryOut>;
  forget(nodeid: number, nlookup: number): void;
  getattr(ctx: RequestContext, nodeid: number, fh: number | undefined): MaybePromise<AttrOut>;
  setattr(ctx: RequestContext, nodeid: number, changes: SetattrIn): MaybePromise<AttrOut>;
  readlink(ctx: RequestContext, nodeid: number): MaybePromise<Buffer>;
  symlink(ctx: RequestContext, parent: number, name: string, target: string): MaybePromise<EntryOut>;
  mknod(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number, umask: number): MaybePromise<EntryOut>;
  mkdir(ctx: RequestContext, parent: number, name: string, mode: number, umask: number): MaybePromise<EntryOut>;
  unlink(ctx: RequestContext, parent: number, name: string): MaybePromise<void>;
  rmdir(ctx: RequestContext, parent: number, name: string): MaybePromise<void>;
  rename(ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): MaybePromise<void>;
  link(ctx: RequestContext, nodeid: number, newParent: number, newName: string): MaybePromise<EntryOut>;
  open(ctx: RequestContext, nodeid: number, flags: number, openFlags: number): MaybePromise<OpenOut>;
  create(ctx: RequestContext, parent: number, name: string, mode: number, umask: number, flags: number): MaybePromise<{ entry: EntryOut; open: OpenOut }>;
  read(ctx: RequestContext, nodeid: number, fh: number, offset: number, size: number): MaybePromise<Buffer>;
  write(ctx: RequestContext, nodeid: number, fh: number, offset: number, data: Buffer, writeFlags: number): MaybePromise<number>;
  flush(ctx: RequestContext, nodeid: number, fh: number, lockOwner: bigint): MaybePromise<void>;
  fsync(ctx: RequestContext, nodeid: number, fh: number, datasync: boolean): MaybePromise<void>;
  release(ctx: RequestContext, nodeid: number, fh: number, flags: number, releaseFlags: number, lockOwner: bigint): MaybePromise<void>;
  opendir(ctx: RequestContext, nodeid: number, flags: number): MaybePromise<OpenOut>;
  readdir(ctx: RequestContext, nodeid: number, fh: number, offset: number, sink: DirentSink): MaybePromise<void>;
  releasedir(ctx: RequestContext, nodeid: number, fh: number): MaybePromise<void>;
  fsyncdir(ctx: RequestContext, nodeid: number, fh: number, datasync: boolean): MaybePromise<void>;
  statfs(ctx: RequestContext, nodeid: number): MaybePromise<StatfsOut>;
  access(ctx: RequestContext, nodeid: number, mask: number): MaybePromise<void>;
  setxattr(ctx: RequestContext, nodeid: number, name: string, value: Buffer, flags: number): MaybePromise<void>;
  getxattr(ctx: RequestContext, nodeid: number, name: string): MaybePromise<Buffer>;
  listxattr(ctx: RequestContext, nodeid: number): MaybePromise<string[]>;
  removexattr(ctx: RequestContext, nodeid: number, name: string): MaybePromise<void>;
  getlk(ctx: RequestContext, nodeid: number, lk: LockIn): MaybePromise<FileLock>;
  setlk(ctx: RequestContext, nodeid: number, lk: LockIn, wait: boolean): MaybePromise<void>;
  fallocate(ctx: RequestContext, nodeid: number, fh: number, offset: number, length: number, mode: number): MaybePromise<void>;
  lseek(ctx: RequestContext, nodeid: number, fh: number, offset: number, whence: number): MaybePromise<number>;
  copyFileRange(ctx: RequestContext, nodeIn: number, fhIn: number, offIn: number, nodeOut: number, fhOut: number, offOut: number, len: number, flags: number): MaybePromise<number>;
}
