// The contract a storage backend implements. Backends speak in their own node
// objects (stable identity while the node exists: the node layer keys the
// kernel's node ids on it) and open-file handles; the node layer in nodes.ts
// does node ids, lookup counts, handle numbers, directory offsets, locks and
// cache timeouts. Every method may throw an FsError; anything else is EIO.

import type { Attr, FileLock, LockIn, RequestContext, StatfsOut, Timespec } from '../fuse/types.js';

export type { Attr, FileLock, LockIn, RequestContext, StatfsOut, Timespec };

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
}

/** How a backend tells the kernel that something changed behind its back. */
export interface KernelCache<N> {
  /** The attributes and data of `node` changed. */
  invalidateNode(node: N): Promise<void>;
  /** `name` in `parent` now names something else, or nothing, or something new. */
  invalidateEntry(parent: N, name: string): Promise<void>;
  /** `name` in `parent`, which was `child`, was removed. */
  entryDeleted(parent: N, child: N, name: string): Promise<void>;
}

export interface Backend<N extends object, H = unknown> {
  readonly root: N;
  /** Called once the kernel cache notifier is available (after mount). */
  attach?(cache: KernelCache<N>): void;
  /** The kernel forgot `node`: the backend may drop what it keeps for it. */
  forget?(node: N): void;
  /** Called when the filesystem is unmounted. */
  close?(): Promise<void>;

  /** Resolves undefined when `name` does not exist (the common negative path costs no exception). */
  lookup(ctx: RequestContext, parent: N, name: string): Promise<Lookup<N> | undefined>;
  getattr(ctx: RequestContext, node: N, handle: H | undefined): Promise<Attr>;
  setattr(ctx: RequestContext, node: N, changes: AttrChanges, handle: H | undefined): Promise<Attr>;
  readlink(ctx: RequestContext, node: N): Promise<string>;
  symlink(ctx: RequestContext, parent: N, name: string, target: string): Promise<Lookup<N>>;
  mknod(ctx: RequestContext, parent: N, name: string, mode: number, rdev: number): Promise<Lookup<N>>;
  mkdir(ctx: RequestContext, parent: N, name: string, mode: number): Promise<Lookup<N>>;
  unlink(ctx: RequestContext, parent: N, name: string): Promise<void>;
  rmdir(ctx: RequestContext, parent: N, name: string): Promise<void>;
  /** flags: RENAME_NOREPLACE and/or RENAME_EXCHANGE. */
  rename(ctx: RequestContext, parent: N, name: string, newParent: N, newName: string, flags: number): Promise<void>;
  /** Hard links; a backend without them leaves this out (EPERM). */
  link?(ctx: RequestContext, node: N, newParent: N, newName: string): Promise<Lookup<N>>;

  open(ctx: RequestContext, node: N, req: OpenRequest): Promise<OpenResult<H>>;
  create(ctx: RequestContext, parent: N, name: string, mode: number, req: OpenRequest): Promise<{ entry: Lookup<N>; open: OpenResult<H> }>;
  read(ctx: RequestContext, handle: H, offset: number, size: number): Promise<Buffer>;
  /**
   * Returns the number of bytes taken. `data` is a view of the kernel's request
   * buffer, valid only until this call first yields (awaits): copy what you keep.
   */
  write(ctx: RequestContext, handle: H, offset: number, data: Buffer, killSuidgid: boolean): Promise<number>;
  /** close(2) of one descriptor: commit what is buffered. */
  flush(ctx: RequestContext, handle: H): Promise<void>;
  fsync(ctx: RequestContext, handle: H, datasync: boolean): Promise<void>;
  /** The last descriptor is gone. */
  release(ctx: RequestContext, handle: H): Promise<void>;
  fallocate?(ctx: RequestContext, handle: H, offset: number, length: number, mode: number): Promise<void>;
  /** SEEK_DATA / SEEK_HOLE; without it the kernel's default applies. */
  lseek?(ctx: RequestContext, handle: H, offset: number, whence: number): Promise<number>;
  copyFileRange?(ctx: RequestContext, from: H, fromOffset: number, to: H, toOffset: number, length: number): Promise<number>;

  /** A snapshot of the directory's entries, "." and ".." first. */
  readdir(ctx: RequestContext, node: N): Promise<DirEntry[]>;
  statfs(ctx: RequestContext): Promise<StatfsOut>;

  /**
   * Locks shared with other mounts of the same store (other nodes). A backend
   * without them gets the node layer's locks, local to this mount.
   */
  getlk?(ctx: RequestContext, node: N, lk: LockIn): Promise<FileLock>;
  setlk?(ctx: RequestContext, node: N, lk: LockIn, wait: boolean): Promise<void>;
  /** Drops every lock `owner` holds on `node`: fcntl locks on close, flock locks on the last close. */
  releaseLocks?(node: N, owner: bigint, flock: boolean): Promise<void>;

  getxattr?(ctx: RequestContext, node: N, name: string): Promise<Buffer>;
  setxattr?(ctx: RequestContext, node: N, name: string, value: Buffer, flags: number): Promise<void>;
  listxattr?(ctx: RequestContext, node: N): Promise<string[]>;
  removexattr?(ctx: RequestContext, node: N, name: string): Promise<void>;
}
