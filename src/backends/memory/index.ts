// The memory backend: a complete POSIX filesystem held in this process. It is
// the reference implementation of the Backend contract and the baseline for
// benchmarks. `external` changes the tree behind the kernel's back (as another
// node would) and invalidates the kernel's caches, to test that path.

import { constants as C } from 'node:fs';
import os from 'node:os';
import { PRELOAD_MAX, type AttrChanges, type Backend, type DirEntry, type KernelCache, type Lookup, type OpenRequest, type OpenResult, type RequestContext, type StatfsOut, type Timespec } from '../../fs/backend.js';
import type { Attr } from '../../fs/backend.js';
import { FsError } from '../../fs/errors.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE } from '../../fuse/kernel.js';
import { ChunkPool, FileData } from './file-data.js';

const S_IFMT = 0o170000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const XATTR_SIZE_MAX = 65536;
const FALLOC_FL_KEEP_SIZE = 1;
const FALLOC_FL_PUNCH_HOLE = 2;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;

export interface MemoryBackendOptions {
  /** Largest file, bytes (EFBIG beyond). */
  maxFileSize: number;
  /** Reported filesystem size, bytes (statfs). */
  capacity: number;
  /** Owner of the root directory. */
  rootUid: number;
  rootGid: number;
  rootMode: number;
}

function now(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
}

function isBefore(a: Timespec, b: Timespec): boolean {
  return a.sec < b.sec || (a.sec === b.sec && a.nsec < b.nsec);
}

export class MemNode {
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  nlink: number;
  data: FileData | undefined;
  children: Map<string, MemNode> | undefined;
  /**
   * Directories only: the entries as readdir answers them, built at the first
   * readdir after a change. Never modified once built, so an open directory's
   * snapshot stays as it was; a change makes a new one.
   */
  listing: DirEntry[] | undefined;
  /** Directories only: the directory holding this one. */
  parent: MemNode | undefined;
  target: string | undefined;
  xattrs: Map<string, Buffer> | undefined;
  kernelId = 0;
  kernelLookups = 0;
  kernelOpened = false;

  constructor(
    readonly ino: number,
    public mode: number,
    public uid: number,
    public gid: number,
    public rdev = 0,
    chunks?: ChunkPool,
  ) {
    this.atime = this.mtime = this.ctime = now();
    this.nlink = this.isDir ? 2 : 1;
    if (this.isDir) this.children = new Map();
    else if (this.isFile) this.data = new FileData(chunks);
  }

  get isDir(): boolean {
    return (this.mode & S_IFMT) === C.S_IFDIR;
  }
  get isFile(): boolean {
    return (this.mode & S_IFMT) === C.S_IFREG;
  }
  get isSymlink(): boolean {
    return (this.mode & S_IFMT) === C.S_IFLNK;
  }

  get size(): number {
    if (this.data) return this.data.size;
    if (this.target !== undefined) return Buffer.byteLength(this.target);
    if (this.children) return 4096;
    return 0;
  }

  attr(): Attr {
    return {
      ino: this.ino,
      size: this.size,
      blocks: this.data ? Math.ceil(this.data.allocated / 512) : this.children ? 8 : 0,
      atime: this.atime,
      mtime: this.mtime,
      ctime: this.ctime,
      mode: this.mode,
      nlink: this.nlink,
      uid: this.uid,
      gid: this.gid,
      rdev: this.rdev,
    };
  }

  touchModified(): void {
    this.mtime = this.ctime = now();
  }

  /** Clears set-user-ID, and set-group-ID where it means "setgid" (group-exec set). */
  killSuidgid(): void {
    if (!this.isFile) return;
    let mode = this.mode & ~S_ISUID;
    if (mode & C.S_IXGRP) mode &= ~S_ISGID;
    if (mode !== this.mode) {
      this.mode = mode;
      this.ctime = now();
    }
  }
}

export interface MemHandle {
  node: MemNode;
  append: boolean;
}

export class MemoryBackend implements Backend<MemNode, MemHandle> {
  readonly root: MemNode;
  private readonly opts: MemoryBackendOptions;
  private nextIno = 1;
  private cache: KernelCache<MemNode> | undefined;
  /** Live nodes and bytes of file contents, kept up to date for statfs. */
  private nodeCount = 1;
  private bytes = 0;
  /** The whole chunks of large files, one kept ready (idleWork). */
  private readonly chunks = new ChunkPool();

  constructor(options: Partial<MemoryBackendOptions> = {}) {
    this.opts = {
      maxFileSize: 2 ** 40,
      capacity: os.totalmem(),
      rootUid: 0,
      rootGid: 0,
      rootMode: 0o755,
      ...options,
    };
    this.root = new MemNode(this.nextIno++, C.S_IFDIR | this.opts.rootMode, this.opts.rootUid, this.opts.rootGid);
    this.root.parent = this.root;
  }

  attach(cache: KernelCache<MemNode>): void {
    this.cache = cache;
  }

  // ---- helpers ------------------------------------------------------------------------

  private dir(node: MemNode): Map<string, MemNode> {
    if (!node.children) throw new FsError('ENOTDIR');
    return node.children;
  }

  private child(parent: MemNode, name: string): MemNode {
    const found = this.dir(parent).get(name);
    if (!found) throw new FsError('ENOENT');
    return found;
  }

  private lookupResult(node: MemNode): Lookup<MemNode> {
    return { node, attr: node.attr() };
  }

  private newNode(owner: { uid: number; gid: number }, parent: MemNode, name: string, mode: number, rdev = 0): MemNode {
    const entries = this.dir(parent);
    if (name === '.' || name === '..') throw new FsError('EEXIST');
    if (entries.has(name)) throw new FsError('EEXIST');
    // BSD group semantics under a set-group-ID directory.
    const sgidParent = (parent.mode & S_ISGID) !== 0;
    const gid = sgidParent ? parent.gid : owner.gid;
    if (sgidParent && (mode & S_IFMT) === C.S_IFDIR) mode |= S_ISGID;
    const node = new MemNode(this.nextIno++, mode, owner.uid, gid, rdev, this.chunks);
    this.addEntry(parent, name, node);
    this.nodeCount++;
    return node;
  }

  private addEntry(parent: MemNode, name: string, node: MemNode): void {
    parent.children!.set(name, node);
    parent.listing = undefined;
    if (node.isDir) {
      node.parent = parent;
      node.listing = undefined; // its ".." changed
      parent.nlink++;
    }
    parent.touchModified();
  }

  private unlinkEntry(parent: MemNode, name: string, node: MemNode): void {
    parent.children!.delete(name);
    parent.listing = undefined;
    if (node.isDir) {
      parent.nlink--;
      node.nlink = 0;
    } else node.nlink--;
    if (node.nlink === 0) {
      this.nodeCount--;
      this.bytes -= node.data?.size ?? 0;
    }
    node.ctime = now();
    parent.touchModified();
  }

  /** Runs a change of a file's contents and keeps the byte count for statfs. */
  private resize(node: MemNode, change: (data: FileData) => void): void {
    const data = node.data!;
    const before = data.size;
    change(data);
    if (node.nlink > 0) this.bytes += data.size - before;
  }

  private checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0) throw new FsError('EINVAL');
    if (size > this.opts.maxFileSize) throw new FsError('EFBIG');
  }

  // ---- Backend ---------------------------------------------------------------------------

  lookup(_ctx: RequestContext, parent: MemNode, name: string): Lookup<MemNode> | undefined {
    const node = this.dir(parent).get(name);
    return node && this.lookupResult(node);
  }

  getattr(_ctx: RequestContext, node: MemNode): Attr {
    return node.attr();
  }

  setattr(_ctx: RequestContext, node: MemNode, ch: AttrChanges): Attr {
    const t = now();
    if (ch.size !== undefined) {
      if (node.isDir) throw new FsError('EISDIR');
      if (!node.data) throw new FsError('EINVAL');
      this.checkSize(ch.size);
      const size = ch.size;
      this.resize(node, (d) => d.truncate(size));
      node.mtime = t;
    }
    if (ch.killSuidgid) node.killSuidgid();
    if (ch.uid !== undefined || ch.gid !== undefined) {
      const changed = (ch.uid !== undefined && ch.uid !== node.uid) || (ch.gid !== undefined && ch.gid !== node.gid);
      if (ch.uid !== undefined) node.uid = ch.uid;
      if (ch.gid !== undefined) node.gid = ch.gid;
      if (changed && ch.mode === undefined) node.killSuidgid();
    }
    if (ch.mode !== undefined) node.mode = (node.mode & S_IFMT) | (ch.mode & 0o7777);
    if (ch.atime !== undefined) node.atime = ch.atime === 'now' ? t : ch.atime;
    if (ch.mtime !== undefined) node.mtime = ch.mtime === 'now' ? t : ch.mtime;
    node.ctime = ch.ctime ?? t;
    return node.attr();
  }

  readlink(_ctx: RequestContext, node: MemNode): string {
    if (node.target === undefined) throw new FsError('EINVAL');
    node.atime = now();
    return node.target;
  }

  symlink(ctx: RequestContext, parent: MemNode, name: string, target: string): Lookup<MemNode> {
    const node = this.newNode(ctx, parent, name, C.S_IFLNK | 0o777);
    node.target = target;
    return this.lookupResult(node);
  }

  mknod(ctx: RequestContext, parent: MemNode, name: string, mode: number, rdev: number): Lookup<MemNode> {
    const type = mode & S_IFMT;
    const allowed = [C.S_IFREG, C.S_IFIFO, C.S_IFSOCK, C.S_IFCHR, C.S_IFBLK];
    if (!allowed.includes(type)) throw new FsError('EINVAL', `mknod of type 0${type.toString(8)}`);
    return this.lookupResult(this.newNode(ctx, parent, name, mode, rdev));
  }

  mkdir(ctx: RequestContext, parent: MemNode, name: string, mode: number): Lookup<MemNode> {
    return this.lookupResult(this.newNode(ctx, parent, name, mode));
  }

  unlink(_ctx: RequestContext, parent: MemNode, name: string): void {
    const node = this.child(parent, name);
    if (node.isDir) throw new FsError('EISDIR');
    this.unlinkEntry(parent, name, node);
  }

  rmdir(_ctx: RequestContext, parent: MemNode, name: string): void {
    const node = this.child(parent, name);
    if (!node.isDir) throw new FsError('ENOTDIR');
    if (node.children!.size > 0) throw new FsError('ENOTEMPTY');
    this.unlinkEntry(parent, name, node);
  }

  rename(_ctx: RequestContext, parent: MemNode, name: string, newParent: MemNode, newName: string, flags: number): void {
    const node = this.child(parent, name);
    const target = this.dir(newParent).get(newName);
    if (flags & RENAME_NOREPLACE && target) throw new FsError('EEXIST');
    if (flags & RENAME_EXCHANGE) {
      if (!target) throw new FsError('ENOENT');
      if (node.isDir && this.isAncestor(node, newParent)) throw new FsError('EINVAL');
      if (target.isDir && this.isAncestor(target, parent)) throw new FsError('EINVAL');
      parent.children!.set(name, target);
      newParent.children!.set(newName, node);
      parent.listing = newParent.listing = node.listing = target.listing = undefined;
      if (node.isDir !== target.isDir && parent !== newParent) {
        // A directory moved each way changes both parents' link counts.
        const dirNode = node.isDir ? node : target;
        const from = node.isDir ? parent : newParent;
        const to = node.isDir ? newParent : parent;
        from.nlink--;
        to.nlink++;
        dirNode.parent = to;
      } else {
        if (node.isDir) node.parent = newParent;
        if (target.isDir) target.parent = parent;
      }
      node.ctime = target.ctime = now();
      parent.touchModified();
      newParent.touchModified();
      return;
    }
    if (target === node) return;
    if (node.isDir && this.isAncestor(node, newParent)) throw new FsError('EINVAL');
    if (target) {
      if (node.isDir && !target.isDir) throw new FsError('ENOTDIR');
      if (!node.isDir && target.isDir) throw new FsError('EISDIR');
      if (target.isDir && target.children!.size > 0) throw new FsError('ENOTEMPTY');
      this.unlinkEntry(newParent, newName, target);
    }
    parent.children!.delete(name);
    parent.listing = undefined;
    if (node.isDir) parent.nlink--;
    parent.touchModified();
    this.addEntry(newParent, newName, node);
    node.ctime = now();
  }

  /** True if `ancestor` is `node` or contains it. */
  private isAncestor(ancestor: MemNode, node: MemNode): boolean {
    for (let n = node; ; n = n.parent!) {
      if (n === ancestor) return true;
      if (n === this.root || !n.parent) return false;
    }
  }

  link(_ctx: RequestContext, node: MemNode, newParent: MemNode, newName: string): Lookup<MemNode> {
    if (node.isDir) throw new FsError('EPERM');
    if (this.dir(newParent).has(newName)) throw new FsError('EEXIST');
    node.nlink++;
    node.ctime = now();
    this.addEntry(newParent, newName, node);
    return this.lookupResult(node);
  }

  open(_ctx: RequestContext, node: MemNode, req: OpenRequest): OpenResult<MemHandle> {
    if (node.isDir && req.write) throw new FsError('EISDIR');
    if (req.truncate && req.write && node.data) {
      this.resize(node, (d) => d.truncate(0));
      node.touchModified();
      if (req.killSuidgid) node.killSuidgid();
    }
    const data = node.data;
    const content = req.read && data && data.size <= PRELOAD_MAX ? data.read(0, data.size) : undefined;
    return { handle: { node, append: req.append }, keepCache: true, content };
  }

  create(ctx: RequestContext, parent: MemNode, name: string, mode: number, req: OpenRequest): { entry: Lookup<MemNode>; open: OpenResult<MemHandle> } {
    const existing = this.dir(parent).get(name);
    // The kernel sends CREATE without O_EXCL for a name it believes absent; it may exist by now.
    const node = existing ?? this.newNode(ctx, parent, name, mode);
    if (existing) {
      if (req.flags & C.O_EXCL) throw new FsError('EEXIST');
      if (existing.isDir) throw new FsError('EISDIR');
    }
    const open = this.open(ctx, node, existing ? req : { ...req, truncate: false });
    return { entry: this.lookupResult(node), open };
  }

  read(_ctx: RequestContext, h: MemHandle, offset: number, size: number): Buffer {
    const node = h.node;
    if (!node.data) throw new FsError(node.isDir ? 'EISDIR' : 'EINVAL');
    // relatime: update atime only when it is older than the last change.
    if (!isBefore(node.mtime, node.atime)) node.atime = now();
    return node.data.read(offset, size);
  }

  write(_ctx: RequestContext, h: MemHandle, offset: number, data: Buffer, killSuidgid: boolean): number {
    const node = h.node;
    if (!node.data) throw new FsError('EINVAL');
    this.checkSize(offset + data.length);
    this.resize(node, (d) => d.write(offset, data));
    node.touchModified();
    if (killSuidgid) node.killSuidgid();
    return data.length;
  }

  flush(): void {}
  fsync(): void {}
  release(): void {}

  fallocate(_ctx: RequestContext, h: MemHandle, offset: number, length: number, mode: number): void {
    const data = h.node.data;
    if (!data) throw new FsError('ENODEV');
    if (mode === 0 || mode === FALLOC_FL_KEEP_SIZE) {
      this.checkSize(offset + length);
      if (mode === 0 && offset + length > data.size) {
        this.resize(h.node, (d) => d.truncate(offset + length));
        h.node.ctime = now();
      }
      return;
    }
    if (mode === (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
      data.punchHole(offset, length);
      h.node.touchModified();
      return;
    }
    throw new FsError('EOPNOTSUPP');
  }

  lseek(_ctx: RequestContext, h: MemHandle, offset: number, whence: number): number {
    const data = h.node.data;
    if (!data) throw new FsError('EINVAL');
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw new FsError('EINVAL');
    if (offset >= data.size) throw new FsError('ENXIO');
    if (whence === SEEK_HOLE) return data.nextHole(offset);
    const next = data.nextData(offset);
    if (next < 0) throw new FsError('ENXIO');
    return next;
  }

  copyFileRange(ctx: RequestContext, from: MemHandle, fromOffset: number, to: MemHandle, toOffset: number, length: number): number {
    if (!from.node.data || !to.node.data) throw new FsError('EINVAL');
    const chunk = Buffer.from(from.node.data.read(fromOffset, Math.min(length, 1 << 30)));
    if (chunk.length === 0) return 0;
    return this.write(ctx, to, toOffset, chunk, false);
  }

  readdir(_ctx: RequestContext, node: MemNode): DirEntry[] {
    const listing = node.listing ?? (node.listing = listingOf(node, this.dir(node)));
    if (!isBefore(node.mtime, node.atime)) node.atime = now();
    return listing;
  }

  /** A listing is dropped at every change of its directory's entries: while it is the current one, its entries name their nodes (a READDIRPLUS then looks no name up). */
  listedLookup(parent: MemNode, entries: DirEntry[], index: number): Lookup<MemNode> | undefined {
    if (parent.listing !== entries) return undefined;
    const child = (entries[index] as Listed).node;
    return child && this.lookupResult(child);
  }

  idleWork(): boolean {
    return this.chunks.prepare();
  }

  statfs(): StatfsOut {
    const bsize = 4096;
    const blocks = Math.floor(this.opts.capacity / bsize);
    const used = Math.min(blocks, Math.ceil(this.bytes / bsize));
    return { blocks, bfree: blocks - used, bavail: blocks - used, files: 1 << 30, ffree: (1 << 30) - this.nodeCount, bsize, namelen: 255, frsize: bsize };
  }

  getxattr(_ctx: RequestContext, node: MemNode, name: string): Buffer {
    const value = node.xattrs?.get(name);
    if (!value) throw new FsError('ENODATA');
    return value;
  }

  setxattr(_ctx: RequestContext, node: MemNode, name: string, value: Buffer, flags: number): void {
    checkXattrName(name);
    if (name.startsWith('user.') && !node.isFile && !node.isDir) throw new FsError('EPERM');
    if (value.length > XATTR_SIZE_MAX) throw new FsError('E2BIG');
    const exists = node.xattrs?.has(name) ?? false;
    if (flags & XATTR_CREATE && exists) throw new FsError('EEXIST');
    if (flags & XATTR_REPLACE && !exists) throw new FsError('ENODATA');
    (node.xattrs ??= new Map()).set(name, value);
    node.ctime = now();
  }

  listxattr(_ctx: RequestContext, node: MemNode): string[] {
    return [...(node.xattrs?.keys() ?? [])];
  }

  removexattr(_ctx: RequestContext, node: MemNode, name: string): void {
    if (!node.xattrs?.delete(name)) throw new FsError('ENODATA');
    node.ctime = now();
  }

  // ---- changes behind the kernel's back (as another node would make them) ----

  readonly external = {
    /** Replaces a file's contents (creating it if needed) and invalidates the kernel's caches. */
    writeFile: async (path: string, data: Buffer): Promise<void> => {
      const { parent, name } = this.resolveParent(path);
      let node = parent.children!.get(name);
      if (!node) {
        node = this.newNode({ uid: 0, gid: 0 }, parent, name, C.S_IFREG | 0o644);
        await this.cache?.invalidateEntry(parent, name);
        await this.cache?.invalidateNode(parent);
      }
      if (!node.data) throw new FsError('EISDIR');
      this.resize(node, (d) => {
        d.truncate(0);
        d.write(0, data);
      });
      node.touchModified();
      await this.cache?.invalidateNode(node);
    },
    /** Removes a file or empty directory and tells the kernel. */
    remove: async (path: string): Promise<void> => {
      const { parent, name } = this.resolveParent(path);
      const node = this.child(parent, name);
      if (node.isDir && node.children!.size > 0) throw new FsError('ENOTEMPTY');
      this.unlinkEntry(parent, name, node);
      await this.cache?.entryDeleted(parent, node, name);
      await this.cache?.invalidateNode(parent);
    },
  };

  private resolveParent(path: string): { parent: MemNode; name: string } {
    const parts = path.split('/').filter(Boolean);
    const name = parts.pop();
    if (!name) throw new FsError('EINVAL', 'path names no entry');
    let node = this.root;
    for (const p of parts) node = this.child(node, p);
    this.dir(node);
    return { parent: node, name };
  }
}

function checkXattrName(name: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > 255) throw new FsError('ERANGE');
  if (name.startsWith('system.')) throw new FsError('EOPNOTSUPP');
  if (!/^(user|trusted|security)\./.test(name)) throw new FsError('EOPNOTSUPP');
}

/**
 * A directory's entries as readdir answers them. The loop is forEach with one
 * module-level callback, not a for-of in readdir: V8 compiles that small
 * function once, where a loop of thousands of entries in readdir was compiled
 * on the stack (OSR), 5 to 15 ms on the compiler thread, again after every
 * deoptimization.
 */
function listingOf(dir: MemNode, children: Map<string, MemNode>): DirEntry[] {
  const listing: Listing = { entries: new Array<DirEntry>(children.size + 2), next: 2 };
  listing.entries[0] = new Listed('.', dir.ino, C.S_IFDIR, undefined);
  listing.entries[1] = new Listed('..', dir.parent!.ino, C.S_IFDIR, undefined);
  children.forEach(addListed, listing);
  return listing.entries;
}

/** A listing entry. */
class Listed implements DirEntry {
  /**
   * One entry that lives as long as the class. V8 holds the map (hidden
   * class) of an object only weakly once no object has it: when no listing
   * existed, a full collection freed the map, and with it the optimized code
   * that read entries (the node layer's fillDir and addPlus: 43 ms to
   * compile again, during the next `ls -l`).
   */
  static readonly keepsShapeAlive = new Listed('', 0, 0, undefined);

  constructor(
    readonly name: string,
    readonly ino: number,
    readonly mode: number,
    /** The child itself ("." and ".." have none here: the node layer gives them no lookup). */
    readonly node: MemNode | undefined,
  ) {}
}

interface Listing {
  entries: DirEntry[];
  next: number;
}

function addListed(this: Listing, child: MemNode, name: string): void {
  this.entries[this.next++] = new Listed(name, child.ino, child.mode & S_IFMT, child);
}
