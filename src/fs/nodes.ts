// The node layer: turns the kernel's node ids and file handles into a
// backend's own node and handle objects. It counts lookups (a node id lives
// until the kernel forgets it, and is never reused), hands out handle
// numbers, pages directory listings, keeps local lock semantics, picks cache
// timeouts and lets the backend invalidate the kernel's caches.

import { constants as C } from 'node:fs';
import {
  F_UNLCK,
  Fattr,
  FopenFlag,
  OPEN_KILL_SUIDGID,
  RELEASE_FLOCK_UNLOCK,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  ROOT_ID,
  WRITE_KILL_SUIDGID,
} from '../fuse/kernel.js';
import type { Notifier } from '../fuse/session.js';
import type {
  Attr,
  AttrOut,
  ConnectionInfo,
  DirentSink,
  EntryOut,
  FileLock,
  LockIn,
  MaybePromise,
  OpenOut,
  RawFileSystem,
  RequestContext,
  SetattrIn,
  StatfsOut,
} from '../fuse/types.js';
import { PRELOAD_MAX, type AttrChanges, type Backend, type DirEntry, type KernelCache, type KernelNode, type Lookup, type OpenRequest, type OpenResult } from './backend.js';
import { FsError } from './errors.js';
import { IdTable } from './id-table.js';
import { MissedNames } from './missed-names.js';
import { andThen } from './maybe-promise.js';
import { LockTable } from './locks.js';

export interface CacheTimeouts {
  /** Seconds the kernel may trust a name -> node mapping. */
  entryTimeout: number;
  /** Seconds the kernel may trust attributes. */
  attrTimeout: number;
  /** Seconds the kernel may remember that a name does not exist (0: not at all). */
  negativeTimeout: number;
}

export interface NodeLayerOptions extends CacheTimeouts {
  /** Longest name accepted, bytes. */
  maxNameLength: number;
  /** Offer extended attributes (when the backend has them). */
  xattrs: boolean;
  /**
   * Keep a record of the names answered as missing, so that
   * invalidateMissingNames can drop them (the backend may lose track of its
   * store's changes, as ZooKeeper's does on a reconnect).
   */
  recordMisses: boolean;
}

export const defaultNodeLayerOptions: NodeLayerOptions = {
  entryTimeout: 1,
  attrTimeout: 1,
  negativeTimeout: 1,
  maxNameLength: 255,
  xattrs: true,
  recordMisses: false,
};

type XattrBackend<N extends KernelNode, H> = Required<Pick<Backend<N, H>, 'getxattr' | 'setxattr' | 'listxattr' | 'removexattr'>>;

interface OpenFile<N, H> {
  inode: N;
  handle: H;
  /** Owners that took fcntl locks through this open file (see release). */
  lockOwners?: Set<bigint>;
}

interface OpenDir<N> {
  inode: N;
  entries: DirEntry[] | undefined;
}

const O_ACCMODE = 3;
/** Names dropped at once by invalidateMissingNames. */
const MISSES_PER_BATCH = 64;
/** A negative entry the kernel does not keep. */
const UNCACHED_MISS: EntryOut = { nodeid: 0, entryTimeout: 0, attrTimeout: 0 };

export class NodeFileSystem<N extends KernelNode, H> implements RawFileSystem, KernelCache<N> {
  private readonly opts: NodeLayerOptions;
  private readonly byId = new IdTable<N>(ROOT_ID);
  /** Open files and directories by handle (fh 0 is never given out). */
  private readonly files = new IdTable<OpenFile<N, H>>(1);
  private readonly dirs = new IdTable<OpenDir<N>>(1);
  /** Open files through which fcntl locks were taken (see release). */
  private readonly lockingFiles = new Set<OpenFile<N, H>>();
  readonly locks = new LockTable();
  private notifier: Notifier | undefined;
  /** Names the kernel may remember as missing (see recordMisses). */
  private readonly misses: MissedNames | undefined;
  /** The backend's idle-time work (Backend.idleWork), if it has any. */
  readonly idleWork: (() => boolean) | undefined;

  constructor(
    private readonly backend: Backend<N, H>,
    options: Partial<NodeLayerOptions> = {},
  ) {
    this.opts = { ...defaultNodeLayerOptions, ...options };
    this.idleWork = backend.idleWork?.bind(backend);
    if (this.opts.recordMisses && this.opts.negativeTimeout > 0) {
      this.misses = new MissedNames((parent, name) => void this.notifier?.invalEntry(parent, name));
    }
    // The table's first id is ROOT_ID.
    const root = backend.root;
    root.kernelId = this.byId.allocate();
    root.kernelLookups = 1;
    this.byId.set(root.kernelId, root);
  }

  /** Connects kernel cache invalidation; the backend gets it through `attach`. */
  setNotifier(notifier: Notifier): void {
    this.notifier = notifier;
    this.backend.attach?.(this);
  }

  /** Node ids the kernel currently holds (root included); for tests and leak checks. */
  get liveNodes(): number {
    return this.byId.size;
  }

  get openHandles(): number {
    return this.files.size + this.dirs.size;
  }

  // ---- KernelCache ------------------------------------------------------------

  async invalidateNode(node: N): Promise<void> {
    if (node.kernelId !== 0 && this.notifier) await this.notifier.invalInode(node.kernelId, 0, 0);
  }

  async invalidateAttributes(node: N): Promise<void> {
    // A negative offset: the kernel drops the attributes and keeps the pages.
    if (node.kernelId !== 0 && this.notifier) await this.notifier.invalInode(node.kernelId, -1, 0);
  }

  async invalidateEntry(parent: N, name: string): Promise<void> {
    if (parent.kernelId !== 0 && this.notifier) await this.notifier.invalEntry(parent.kernelId, name);
  }

  async invalidateMissingNames(): Promise<void> {
    const notifier = this.notifier;
    if (!this.misses || !notifier) return;
    // In batches: each one holds a thread of the pool, which the rest of the process needs too.
    const names = this.misses.drain();
    for (let i = 0; i < names.length; i += MISSES_PER_BATCH) {
      await Promise.all(names.slice(i, i + MISSES_PER_BATCH).map(([parent, name]) => notifier.invalEntry(parent, name)));
    }
  }

  async entryDeleted(parent: N, child: N, name: string): Promise<void> {
    if (parent.kernelId === 0 || !this.notifier) return;
    if (child.kernelId !== 0) await this.notifier.delete(parent.kernelId, child.kernelId, name);
    else await this.notifier.invalEntry(parent.kernelId, name);
  }

  // ---- lifecycle ------------------------------------------------------------------

  init(_conn: ConnectionInfo): void {}

  destroy(): void {
    this.files.clear();
    this.dirs.clear();
    for (const node of this.byId.values()) {
      const root = node.kernelId === ROOT_ID;
      node.kernelId = 0;
      node.kernelLookups = 0;
      if (!root) this.backend.forget?.(node);
    }
    this.byId.clear();
    void this.backend.close?.();
  }

  // ---- helpers ----------------------------------------------------------------------

  private inode(nodeid: number): N {
    const inode = this.byId.get(nodeid);
    if (!inode) throw new FsError('ESTALE', `unknown node id ${nodeid}`);
    return inode;
  }

  private checkName(name: string): void {
    // A UTF-16 code unit takes at most 3 bytes of UTF-8: most names need no count.
    if (name.length * 3 > this.opts.maxNameLength && Buffer.byteLength(name) > this.opts.maxNameLength) throw new FsError('ENAMETOOLONG');
  }

  /** Registers one kernel reference to the looked-up node and builds the entry reply. */
  private readonly entryOut = (found: Lookup<N>): EntryOut => {
    const node = found.node;
    if (node.kernelId === 0) {
      node.kernelId = this.byId.allocate();
      node.kernelOpened = false;
      this.byId.set(node.kernelId, node);
    }
    node.kernelLookups++;
    return {
      nodeid: node.kernelId,
      generation: this.byId.generation(node.kernelId),
      entryTimeout: found.entryTimeout ?? this.opts.entryTimeout,
      attrTimeout: found.attrTimeout ?? this.opts.attrTimeout,
      attr: found.attr,
    };
  };

  private readonly attrOut = (attr: Attr): AttrOut => ({ attr, attrTimeout: this.opts.attrTimeout });

  /**
   * The open file `fh` names, if it is a file of `inode`: fchmod on a
   * directory sends the directory's handle, a number that may also be a
   * file's (directories and files are numbered apart).
   */
  private handleOf(inode: N, fh: number): H | undefined {
    const f = this.files.get(fh);
    return f && f.inode === inode ? f.handle : undefined;
  }

  private file(fh: number): OpenFile<N, H> {
    const f = this.files.get(fh);
    if (!f) throw new FsError('EBADF', `unknown file handle ${fh}`);
    return f;
  }

  // ---- RawFileSystem ------------------------------------------------------------------
  // A backend answers now or later (MaybePromise); so does every method here,
  // so that an answer the backend has at once reaches the session without a
  // promise. Bound arrow properties (entryOut, attrOut, lookupReply,
  // createReply) keep that path free of per-request closures.

  lookup(ctx: RequestContext, parent: number, name: string): MaybePromise<EntryOut> {
    const dir = this.inode(parent);
    this.checkName(name);
    const found = this.backend.lookup(ctx, dir, name);
    const misses = this.misses;
    if (!misses) return andThen(found, this.lookupReply);
    const drains = misses.drains;
    return andThen(found, (f) => {
      const entry = this.lookupReply(f);
      if (entry.nodeid !== 0) return entry;
      // Found missing from what the backend knew before it lost track (a reconnect during the
      // lookup): the drain is over, so the kernel must not keep this answer.
      if (misses.drains !== drains) return UNCACHED_MISS;
      misses.add(parent, name);
      return entry;
    });
  }

  private readonly lookupReply = (found: Lookup<N> | undefined): EntryOut => {
    if (found) return this.entryOut(found);
    if (this.opts.negativeTimeout > 0) return { nodeid: 0, entryTimeout: this.opts.negativeTimeout, attrTimeout: 0 };
    throw new FsError('ENOENT');
  };

  forget(nodeid: number, nlookup: number): void {
    if (nodeid === ROOT_ID) return;
    const node = this.byId.get(nodeid);
    if (!node) return;
    node.kernelLookups -= nlookup;
    if (node.kernelLookups > 0) return;
    this.byId.delete(nodeid);
    this.locks.forgetFile(nodeid);
    this.misses?.forgetParent(nodeid); // the kernel drops a directory's dentries before the directory
    node.kernelId = 0;
    node.kernelLookups = 0;
    this.backend.forget?.(node);
  }

  getattr(ctx: RequestContext, nodeid: number, fh: number | undefined): MaybePromise<AttrOut> {
    const inode = this.inode(nodeid);
    const handle = fh !== undefined ? this.handleOf(inode, fh) : undefined;
    return andThen(this.backend.getattr(ctx, inode, handle), this.attrOut);
  }

  setattr(ctx: RequestContext, nodeid: number, s: SetattrIn): MaybePromise<AttrOut> {
    const inode = this.inode(nodeid);
    const v = s.valid;
    const changes: AttrChanges = {};
    if (v & Fattr.MODE) changes.mode = s.mode;
    if (v & Fattr.UID) changes.uid = s.uid;
    if (v & Fattr.GID) changes.gid = s.gid;
    if (v & Fattr.SIZE) changes.size = s.size;
    if (v & Fattr.ATIME) changes.atime = v & Fattr.ATIME_NOW ? 'now' : s.atime;
    if (v & Fattr.MTIME) changes.mtime = v & Fattr.MTIME_NOW ? 'now' : s.mtime;
    if (v & Fattr.CTIME) changes.ctime = s.ctime;
    if (v & Fattr.KILL_SUIDGID) changes.killSuidgid = true;
    const handle = v & Fattr.FH ? this.handleOf(inode, s.fh) : undefined;
    return andThen(this.backend.setattr(ctx, inode, changes, handle), this.attrOut);
  }

  readlink(ctx: RequestContext, nodeid: number): MaybePromise<Buffer> {
    return andThen(this.backend.readlink(ctx, this.inode(nodeid)), (target) => Buffer.from(target, 'utf8'));
  }

  symlink(ctx: RequestContext, parent: number, name: string, target: string): MaybePromise<EntryOut> {
    const dir = this.inode(parent);
    this.checkName(name);
    if (Buffer.byteLength(target) > 4095) throw new FsError('ENAMETOOLONG');
    return andThen(this.backend.symlink(ctx, dir, name, target), this.entryOut);
  }

  mknod(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number): MaybePromise<EntryOut> {
    const dir = this.inode(parent);
    this.checkName(name);
    return andThen(this.backend.mknod(ctx, dir, name, mode, rdev), this.entryOut);
  }

  mkdir(ctx: RequestContext, parent: number, name: string, mode: number): MaybePromise<EntryOut> {
    const dir = this.inode(parent);
    this.checkName(name);
    return andThen(this.backend.mkdir(ctx, dir, name, (mode & 0o7777) | C.S_IFDIR), this.entryOut);
  }

  unlink(ctx: RequestContext, parent: number, name: string): MaybePromise<void> {
    this.checkName(name);
    return this.backend.unlink(ctx, this.inode(parent), name);
  }

  rmdir(ctx: RequestContext, parent: number, name: string): MaybePromise<void> {
    this.checkName(name);
    return this.backend.rmdir(ctx, this.inode(parent), name);
  }

  rename(ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): MaybePromise<void> {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new FsError('EINVAL', 'unsupported rename flags');
    if (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE) throw new FsError('EINVAL');
    this.checkName(name);
    this.checkName(newName);
    return this.backend.rename(ctx, this.inode(parent), name, this.inode(newParent), newName, flags);
  }

  link(ctx: RequestContext, nodeid: number, newParent: number, newName: string): MaybePromise<EntryOut> {
    if (!this.backend.link) throw new FsError('EPERM', 'this backend has no hard links');
    this.checkName(newName);
    return andThen(this.backend.link(ctx, this.inode(nodeid), this.inode(newParent), newName), this.entryOut);
  }

  open(ctx: RequestContext, nodeid: number, flags: number, openFlags: number): MaybePromise<OpenOut> {
    const inode = this.inode(nodeid);
    const opened = this.backend.open(ctx, inode, openRequest(flags, (openFlags & OPEN_KILL_SUIDGID) !== 0));
    // Not andThen: the closure it needs would be made on the answer-now path too.
    return opened instanceof Promise ? opened.then((r) => this.addFile(inode, r)) : this.addFile(inode, opened);
  }

  private addFile(inode: N, r: OpenResult<H>): OpenOut {
    const fh = this.files.allocate();
    this.files.set(fh, { inode, handle: r.handle });
    const out: OpenOut = { fh, openFlags: fopenFlags(r) };
    // The first open of a node the kernel has just learned of: its page cache
    // is empty and nothing can be reading or writing it, so the content can
    // go there before the open returns (see OpenOut.preload).
    if (!inode.kernelOpened && r.content && r.content.length > 0 && r.content.length <= PRELOAD_MAX && !r.directIo) {
      out.preload = { nodeid: inode.kernelId, data: r.content };
    }
    inode.kernelOpened = true;
    return out;
  }

  create(ctx: RequestContext, parent: number, name: string, mode: number, _umask: number, flags: number): MaybePromise<{ entry: EntryOut; open: OpenOut }> {
    const dir = this.inode(parent);
    this.checkName(name);
    return andThen(this.backend.create(ctx, dir, name, (mode & 0o7777) | C.S_IFREG, openRequest(flags, false)), this.createReply);
  }

  private readonly createReply = (r: { entry: Lookup<N>; open: OpenResult<H> }): { entry: EntryOut; open: OpenOut } => {
    const entry = this.entryOut(r.entry);
    return { entry, open: this.addFile(this.byId.get(entry.nodeid)!, r.open) };
  };

  read(ctx: RequestContext, _nodeid: number, fh: number, offset: number, size: number): MaybePromise<Buffer> {
    return this.backend.read(ctx, this.file(fh).handle, offset, size);
  }

  write(ctx: RequestContext, _nodeid: number, fh: number, offset: number, data: Buffer, writeFlags: number): MaybePromise<number> {
    return this.backend.write(ctx, this.file(fh).handle, offset, data, (writeFlags & WRITE_KILL_SUIDGID) !== 0);
  }

  /**
   * close(2) of one descriptor: commits the file, then drops the closing
   * process's POSIX locks on it, whether the commit worked or not (the next
   * holder, on any node, must read what was stored).
   */
  flush(ctx: RequestContext, _nodeid: number, fh: number, lockOwner: bigint): MaybePromise<void> {
    const f = this.file(fh);
    // FLUSH carries the closing process's owner: its locks go now, so no open file's last close owes it anything.
    if (this.lockingFiles.size > 0) this.forgetLockOwner(f.inode, lockOwner);
    return this.thenReleaseLocks(() => this.backend.flush(ctx, f.handle), f.inode, lockOwner, false);
  }

  fsync(ctx: RequestContext, _nodeid: number, fh: number, datasync: boolean): MaybePromise<void> {
    return this.backend.fsync(ctx, this.file(fh).handle, datasync);
  }

  /**
   * The last close of an open file. Its flock locks go (the kernel says so),
   * and so do the fcntl locks taken through it that are still held: those are
   * OFD locks (F_OFD_SETLK), owned by the open file, for which the kernel
   * sends no unlock. A process's own fcntl locks went at its close (FLUSH,
   * which also takes its owner off every open file's list).
   */
  release(ctx: RequestContext, _nodeid: number, fh: number, _flags: number, releaseFlags: number, lockOwner: bigint): MaybePromise<void> {
    const f = this.files.get(fh);
    if (!f) return;
    this.files.delete(fh);
    this.lockingFiles.delete(f);
    const flock = (releaseFlags & RELEASE_FLOCK_UNLOCK) !== 0;
    if (!flock && !f.lockOwners) return this.backend.release(ctx, f.handle);
    return this.thenRelease(
      () => this.backend.release(ctx, f.handle),
      async () => {
        // Every owner's, even if one fails: the kernel sends no second RELEASE.
        const owners: Array<[bigint, boolean]> = [...(f.lockOwners ?? [])].map((owner) => [owner, false]);
        if (flock) owners.unshift([lockOwner, true]);
        const released = await Promise.allSettled(owners.map(async ([owner, isFlock]) => this.releaseLocks(f.inode, owner, isFlock)));
        const failed = released.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
      },
    );
  }

  /** Runs `step`, then releases `owner`'s locks on the file however the step ended; the step's error wins. */
  private thenReleaseLocks(step: () => MaybePromise<void>, inode: N, owner: bigint, flock: boolean): MaybePromise<void> {
    return this.thenRelease(step, () => this.releaseLocks(inode, owner, flock));
  }

  /** Runs `step`, then `releaseLocks` however the step ended; the step's error wins. */
  private thenRelease(step: () => MaybePromise<void>, releaseLocks: () => MaybePromise<void>): MaybePromise<void> {
    let done: MaybePromise<void>;
    try {
      done = step();
    } catch (err) {
      return rethrowAfter(releaseLocks(), err);
    }
    if (!(done instanceof Promise)) return releaseLocks();
    return done.then(releaseLocks, (err: unknown) => rethrowAfter(releaseLocks(), err));
  }

  opendir(_ctx: RequestContext, nodeid: number, _flags: number): OpenOut {
    const inode = this.inode(nodeid);
    const fh = this.dirs.allocate();
    this.dirs.set(fh, { inode, entries: undefined });
    return { fh };
  }

  readdir(ctx: RequestContext, _nodeid: number, fh: number, offset: number, sink: DirentSink): MaybePromise<void> {
    const dir = this.dirs.get(fh);
    if (!dir) throw new FsError('EBADF');
    // A listing is a snapshot taken at offset 0 (opendir or rewinddir), so
    // offsets stay stable while entries are added or removed meanwhile.
    if (offset > 0 && dir.entries) return this.fillDir(ctx, dir, dir.entries, offset, sink);
    const listed = this.backend.readdir(ctx, dir.inode);
    if (listed instanceof Promise) {
      return listed.then((entries) => {
        dir.entries = entries;
        return this.fillDir(ctx, dir, entries, offset, sink);
      });
    }
    dir.entries = listed;
    return this.fillDir(ctx, dir, listed, offset, sink);
  }

  /** Adds entries from index `start` until the reply is full; synchronous while the backend's lookups are. */
  private fillDir(ctx: RequestContext, dir: OpenDir<N>, entries: DirEntry[], start: number, sink: DirentSink): MaybePromise<void> {
    for (let i = start; i < entries.length; i++) {
      const e = entries[i]!;
      // "." and ".." carry no lookup (the kernel ignores their entry in READDIRPLUS).
      if (!sink.plus || e.name === '.' || e.name === '..') {
        if (!sink.add(e.name, e.ino, e.mode, i + 1)) return;
        continue;
      }
      const found = this.backend.listedLookup?.(dir.inode, entries, i) ?? this.backend.lookup(ctx, dir.inode, e.name);
      if (found instanceof Promise) {
        return found.then((f) => {
          if (this.addPlus(sink, e, i, f)) return this.fillDir(ctx, dir, entries, i + 1, sink);
        });
      }
      if (!this.addPlus(sink, e, i, found)) return;
    }
  }

  /** Adds one READDIRPLUS entry; false when the reply is full. */
  private addPlus(sink: DirentSink, e: DirEntry, index: number, found: Lookup<N> | undefined): boolean {
    // Removed since the snapshot: leave it out rather than show a ghost.
    if (!found) return true;
    const entry = this.entryOut(found);
    if (sink.add(e.name, entry.attr!.ino, entry.attr!.mode, index + 1, entry)) return true;
    this.forget(entry.nodeid, 1);
    return false;
  }

  releasedir(_ctx: RequestContext, _nodeid: number, fh: number): void {
    this.dirs.delete(fh);
  }

  fsyncdir(ctx: RequestContext, nodeid: number): MaybePromise<void> {
    return this.backend.fsyncdir?.(ctx, this.inode(nodeid));
  }

  statfs(ctx: RequestContext): MaybePromise<StatfsOut> {
    return this.backend.statfs(ctx);
  }

  /** Only asked without default_permissions: check the mode bits ourselves. */
  access(ctx: RequestContext, nodeid: number, mask: number): MaybePromise<void> {
    return andThen(this.backend.getattr(ctx, this.inode(nodeid), undefined), (attr) => {
      if (!permits(attr, ctx, mask)) throw new FsError('EACCES');
    });
  }

  /**
   * Without xattrs we answer ENOSYS: the kernel then stops asking for good
   * (otherwise it asks for security.capability before each new file's first write).
   */
  private xattrBackend(): XattrBackend<N, H> {
    const b = this.backend;
    if (!this.opts.xattrs || !b.getxattr || !b.setxattr || !b.listxattr || !b.removexattr) throw new FsError('ENOSYS');
    return b as XattrBackend<N, H>;
  }

  setxattr(ctx: RequestContext, nodeid: number, name: string, value: Buffer, flags: number): MaybePromise<void> {
    return this.xattrBackend().setxattr(ctx, this.inode(nodeid), name, value, flags);
  }

  getxattr(ctx: RequestContext, nodeid: number, name: string): MaybePromise<Buffer> {
    return this.xattrBackend().getxattr(ctx, this.inode(nodeid), name);
  }

  listxattr(ctx: RequestContext, nodeid: number): MaybePromise<string[]> {
    return this.xattrBackend().listxattr(ctx, this.inode(nodeid));
  }

  removexattr(ctx: RequestContext, nodeid: number, name: string): MaybePromise<void> {
    return this.xattrBackend().removexattr(ctx, this.inode(nodeid), name);
  }

  /** `owner` holds no fcntl lock on `inode` any more: no open file's last close has to release it. */
  private forgetLockOwner(inode: N, owner: bigint): void {
    for (const f of this.lockingFiles) {
      if (f.inode !== inode || !f.lockOwners?.delete(owner)) continue;
      if (f.lockOwners.size === 0) {
        f.lockOwners = undefined;
        this.lockingFiles.delete(f);
      }
    }
  }

  /** Drops `owner`'s locks on the file: in the backend's shared locks if it has them, else in this mount's table. */
  private releaseLocks(inode: N, owner: bigint, flock: boolean): MaybePromise<void> {
    if (this.backend.releaseLocks) return this.backend.releaseLocks(inode, owner, flock);
    this.locks.releaseOwner(inode.kernelId, owner, flock);
  }

  getlk(ctx: RequestContext, nodeid: number, lk: LockIn): MaybePromise<FileLock> {
    const inode = this.inode(nodeid);
    if (this.backend.getlk) return this.backend.getlk(ctx, inode, lk);
    return this.locks.test(nodeid, lk);
  }

  setlk(ctx: RequestContext, nodeid: number, lk: LockIn, wait: boolean): MaybePromise<void> {
    const inode = this.inode(nodeid);
    if (!lk.flock && lk.lock.type !== F_UNLCK) {
      const f = this.files.get(lk.fh);
      if (f && f.inode === inode) {
        (f.lockOwners ??= new Set()).add(lk.owner);
        this.lockingFiles.add(f);
      }
    }
    if (this.backend.setlk) return this.backend.setlk(ctx, inode, lk, wait);
    return this.locks.set(ctx, nodeid, lk, wait);
  }

  fallocate(ctx: RequestContext, _nodeid: number, fh: number, offset: number, length: number, mode: number): MaybePromise<void> {
    if (!this.backend.fallocate) throw new FsError('EOPNOTSUPP');
    return this.backend.fallocate(ctx, this.file(fh).handle, offset, length, mode);
  }

  lseek(ctx: RequestContext, _nodeid: number, fh: number, offset: number, whence: number): MaybePromise<number> {
    if (!this.backend.lseek) throw new FsError('ENOSYS');
    return this.backend.lseek(ctx, this.file(fh).handle, offset, whence);
  }

  copyFileRange(ctx: RequestContext, _nodeIn: number, fhIn: number, offIn: number, _nodeOut: number, fhOut: number, offOut: number, len: number, flags: number): MaybePromise<number> {
    if (!this.backend.copyFileRange) throw new FsError('ENOSYS');
    if (flags !== 0) throw new FsError('EINVAL');
    return this.backend.copyFileRange(ctx, this.file(fhIn).handle, offIn, this.file(fhOut).handle, offOut, len);
  }
}

/** Throws `err` once `pending` settled (its own error, if any, instead). */
function rethrowAfter(pending: MaybePromise<void>, err: unknown): MaybePromise<never> {
  if (pending instanceof Promise) {
    return pending.then(() => {
      throw err;
    });
  }
  throw err;
}

function openRequest(flags: number, killSuidgid: boolean): OpenRequest {
  const acc = flags & O_ACCMODE;
  return {
    flags,
    read: acc === C.O_RDONLY || acc === C.O_RDWR,
    write: acc === C.O_WRONLY || acc === C.O_RDWR,
    truncate: (flags & C.O_TRUNC) !== 0,
    append: (flags & C.O_APPEND) !== 0,
    killSuidgid,
  };
}

function fopenFlags(r: { directIo?: boolean; keepCache?: boolean }): number {
  return (r.directIo ? FopenFlag.DIRECT_IO : 0) | (r.keepCache ? FopenFlag.KEEP_CACHE : 0);
}

/** Classic mode-bit check for access(2): mask is R_OK|W_OK|X_OK (F_OK = 0). */
export function permits(attr: Attr, who: { uid: number; gid: number }, mask: number): boolean {
  if (mask === 0) return true;
  if (who.uid === 0) {
    // root may do anything but execute a file that nobody may execute.
    return !(mask & C.X_OK) || (attr.mode & 0o170000) === C.S_IFDIR || (attr.mode & 0o111) !== 0;
  }
  let bits: number;
  if (who.uid === attr.uid) bits = (attr.mode >> 6) & 7;
  else if (who.gid === attr.gid) bits = (attr.mode >> 3) & 7;
  else bits = attr.mode & 7;
  return (bits & mask) === mask;
}
