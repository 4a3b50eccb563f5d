// The contract a storage backend implements. Backends speak in their own node
// objects (stable identity while the node exists: the node layer keys the
// kernel's node ids on it) and open-file handles; the node layer in nodes.ts
// does node ids, lookup counts, handle numbers, directory offsets, locks and
// cache timeouts. Every method answers a value at once or a promise of it
// (an answer at once skips the promise machinery: see MaybePromise), and may
// throw an FsError or reject with one; anything else is EIO.

import type { Attr, FileLock, LockIn, MaybePromise, RequestContext, StatfsOut, Timespec } from '../fuse/types.js';

export type { Attr, FileLock, LockIn, MaybePromise, RequestContext, StatfsOut, Timespec };

/** A node found or made, with its attributes and optional per-reply cache timeouts (seconds). */
export interface Lookup<N> {
  node: N;
  attr: Attr;
  entryTimeout?: number;
  attrTimeout?: number;
}

export interface DirEntry {
  name: string;
  ino: number | bigint;
  /** Only the S_IFMT bits are used. */
  mode: number;
}

/** Attribute changes of a SETATTR; absent fields are unchanged. */
export interface AttrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: Timespec | 'now';
  mtime?: Timespec | 'now';
  ctime?: Timespec;
  /** Clear set-user-ID/set-group-ID bits (the kernel left this to us: HANDLE_KILLPRIV_V2). */
  killSuidgid?: boolean;
}

/** Open flags the backend cares about, decoded from O_* bits. */
export interface OpenRequest {
  /** The raw O_* flags. */
  flags: number;
  read: boolean;
  write: boolean;
  truncate: boolean;
  append: boolean;
  /** Clear suid/sgid if truncating (HANDLE_KILLPRIV_V2). */
  killSuidgid: boolean;
}

export interface OpenResult<H> {
  handle: H;
  /** Bypass the page cache for this open file (FOPEN_DIRECT_IO). */
  directIo?: boolean;
  /** Keep the page cache from earlier opens (FOPEN_KEEP_CACHE): only if the backend invalidates it on remote change. */
  keepCache?: boolean;
  /**
   * The file's whole content as this open sees it, when the backend holds it
   * already and it is at most PRELOAD_MAX bytes. On the first open of a node
   * the node layer has it stored in the kernel's page cache before the open
   * returns, so the reads that follow cost no request. A view is fine: it is
   * written before any other request is served.
   */
  content?: Buffer;
}

/** Largest content worth storing in the page cache at open (a read the caller may not make costs only this copy). */
export const PRELOAD_MAX = 64 * 1024;

/**
 * How a backend tells the kernel that something changed behind its back.
 * Each method resolves once the kernel has processed the notification. A
 * FUSE request's handler must not wait for that: the kernel may hold a lock
 * for a notification (a directory's, for DELETE; a page's, for data) that
 * the request waiting for our reply holds. Request paths fire and forget;
 * only work no request waits for (applying another node's changes, a lock
 * grant) may wait.
 */
export interface KernelCache<N> {
  /** The attributes and data of `node` changed. */
  invalidateNode(node: N): Promise<void>;
  /** The attributes of `node` changed, its content did not. */
  invalidateAttributes(node: N): Promise<void>;
  /** `name` in `parent` now names something else, or nothing, or something new. */
  invalidateEntry(parent: N, name: string): Promise<void>;
  /** `name` in `parent`, which was `child`, was removed. */
  entryDeleted(parent: N, child: N, name: string): Promise<void>;
  /** Names the kernel remembers as missing may exist now (the backend lost track of its store's changes). */
  invalidateMissingNames(): Promise<void>;
}

/**
 * What every backend node carries for the node layer: the kernel's id for it
 * and the kernel's reference count, kept on the node itself (as go-fuse's
 * nodes embed an Inode). A request that names a node then costs no hash
 * lookup, and the kernel learning a node (thousands in a cold `ls -l`)
 * allocates nothing that the garbage collector must then copy and promote.
 * A backend declares the fields with these initial values, so that all its
 * nodes share one shape, and never reads or writes them.
 */
export interface KernelNode {
  /** The node id the kernel knows this node by; 0 while it holds none. */
  kernelId: number;
  /** The kernel's lookup count on kernelId. */
  kernelLookups: number;
  /** A file was opened on the node since the kernel learned its id (the page cache may then hold data). */
  kernelOpened: boolean;
}

export interface Backend<N extends KernelNode, H = unknown> {
  readonly root: N;
  /** Called once the kernel cache notifier is available (after mount). */
  attach?(cache: KernelCache<N>): void;
  /** The kernel forgot `node`: the backend may drop what it keeps for it. */
  forget?(node: N): void;
  /** Called when the filesystem is unmounted. */
  close?(): Promise<void>;

  /** Resolves undefined when `name` does not exist (the common negative path costs no exception). */
  lookup(ctx: RequestContext, parent: N, name: string): MaybePromise<Lookup<N> | undefined>;
  getattr(ctx: RequestContext, node: N, handle: H | undefined): MaybePromise<Attr>;
  setattr(ctx: RequestContext, node: N, changes: AttrChanges, handle: H | undefined): MaybePromise<Attr>;
  readlink(ctx: RequestContext, node: N): MaybePromise<string>;
  symlink(ctx: RequestContext, parent: N, name: string, target: string): MaybePromise<Lookup<N>>;
  mknod(ctx: RequestContext, parent: N, name: string, mode: number, rdev: number): MaybePromise<Lookup<N>>;
  mkdir(ctx: RequestContext, parent: N, name: string, mode: number): MaybePromise<Lookup<N>>;
  unlink(ctx: RequestContext, parent: N, name: string): MaybePromise<void>;
  rmdir(ctx: RequestContext, parent: N, name: string): MaybePromise<void>;
  /** flags: RENAME_NOREPLACE and/or RENAME_EXCHANGE. */
  rename(ctx: RequestContext, parent: N, name: string, newParent: N, newName: string, flags: number): MaybePromise<void>;
  /** Hard links; a backend without them leaves this out (EPERM). */
  link?(ctx: RequestContext, node: N, newParent: N, newName: string): MaybePromise<Lookup<N>>;

  open(ctx: RequestContext, node: N, req: OpenRequest): MaybePromise<OpenResult<H>>;
  create(ctx: RequestContext, parent: N, name: string, mode: number, req: OpenRequest): MaybePromise<{ entry: Lookup<N>; open: OpenResult<H> }>;
  read(ctx: RequestContext, handle: H, offset: number, size: number): MaybePromise<Buffer>;
  /**
   * Returns the number of bytes taken. `data` is a view of the kernel's request
   * buffer, valid only until this call first yields (awaits): copy what you keep
   * (the channel may read the next queued request into it at once).
   */
  write(ctx: RequestContext, handle: H, offset: number, data: Buffer, killSuidgid: boolean): MaybePromise<number>;
  /** close(2) of one descriptor: commit what is buffered. */
  flush(ctx: RequestContext, handle: H): MaybePromise<void>;
  fsync(ctx: RequestContext, handle: H, datasync: boolean): MaybePromise<void>;
  /** The last descriptor is gone. */
  release(ctx: RequestContext, handle: H): MaybePromise<void>;
  fallocate?(ctx: RequestContext, handle: H, offset: number, length: number, mode: number): MaybePromise<void>;
  /** SEEK_DATA / SEEK_HOLE; without it the kernel's default applies. */
  lseek?(ctx: RequestContext, handle: H, offset: number, whence: number): MaybePromise<number>;
  copyFileRange?(ctx: RequestContext, from: H, fromOffset: number, to: H, toOffset: number, length: number): MaybePromise<number>;

  /** A snapshot of the directory's entries, "." and ".." first. */
  readdir(ctx: RequestContext, node: N): MaybePromise<DirEntry[]>;
  /**
   * Optional: the lookup of `entries[index]`, a snapshot this backend's
   * readdir returned for `parent`, when the backend knows it without a
   * lookup by name (the memory backend: while that snapshot is still the
   * directory's current listing). undefined: the node layer looks the name up.
   */
  listedLookup?(parent: N, entries: DirEntry[], index: number): Lookup<N> | undefined;
  /** fsync(2) of a directory: its entries are durable when this returns (a backend that stores them at once needs none). */
  fsyncdir?(ctx: RequestContext, node: N): MaybePromise<void>;
  statfs(ctx: RequestContext): MaybePromise<StatfsOut>;
  /**
   * Optional: one small step of preparatory work, done while the daemon polls
   * for the kernel's next request (the busy poll) and none has come yet.
   * Returns false when there is nothing (left) to do. A step must take a few
   * tens of microseconds at most (a request that comes meanwhile waits for it
   * to end) and must not change anything a request can see: the memory
   * backend faults in the pages of the chunk a sequential writer will need
   * next, 8 pages (15-20 µs) per step.
   */
  idleWork?(): boolean;

  /**
   * Locks shared with other mounts of the same store (other nodes). A backend
   * without them gets the node layer's locks, local to this mount.
   */
  getlk?(ctx: RequestContext, node: N, lk: LockIn): MaybePromise<FileLock>;
  setlk?(ctx: RequestContext, node: N, lk: LockIn, wait: boolean): MaybePromise<void>;
  /** Drops every lock `owner` holds on `node`: fcntl locks on close, flock locks on the last close. */
  releaseLocks?(node: N, owner: bigint, flock: boolean): MaybePromise<void>;

  getxattr?(ctx: RequestContext, node: N, name: string): MaybePromise<Buffer>;
  setxattr?(ctx: RequestContext, node: N, name: string, value: Buffer, flags: number): MaybePromise<void>;
  listxattr?(ctx: RequestContext, node: N): MaybePromise<string[]>;
  removexattr?(ctx: RequestContext, node: N, name: string): MaybePromise<void>;
}
