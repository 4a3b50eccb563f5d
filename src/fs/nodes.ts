// The node layer: turns the kernel's node ids and file handles into a
// backend's own node and handle objects. It counts lookups (a node id lives
// until the kernel forgets it, and is never reused), hands out handle
// numbers, pages directory listings, keeps local lock semantics, picks cache
// timeouts and lets the backend invalidate the kernel's caches.

import { constants as C } from 'node:fs';
import {
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
  OpenOut,
  RawFileSystem,
  RequestContext,
  SetattrIn,
  StatfsOut,
} from '../fuse/types.js';
import type { AttrChanges, Backend, DirEntry, KernelCache, Lookup, OpenRequest } from './backend.js';
import { FsError } from './errors.js';
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
}

export const defaultNodeLayerOptions: NodeLayerOptions = {
  entryTimeout: 1,
  attrTimeout: 1,
  negativeTimeout: 1,
  maxNameLength: 255,
  xattrs: true,
};

type XattrBackend<N extends object, H> = Required<Pick<Backend<N, H>, 'getxattr' | 'setxattr' | 'listxattr' | 'removexattr'>>;

class Inode<N> {
  lookups = 0;
  constructor(
    readonly nodeid: number,
    readonly node: N,
  ) {}
}

interface OpenFile<N, H> {
  inode: Inode<N>;
  handle: H;
}

interface OpenDir<N> {
  inode: Inode<N>;
  entries: DirEntry[] | undefined;
}

const O_ACCMODE = 3;

export class NodeFileSystem<N extends object, H> implements RawFileSystem, KernelCache<N> {
  private readonly opts: NodeLayerOptions;
  private readonly byId = new Map<number, Inode<N>>();
  private readonly byNode = new Map<N, Inode<N>>();
  private nextNodeId = ROOT_ID + 1;
  private readonly files = new Map<number, OpenFile<N, H>>();
  private readonly dirs = new Map<number, OpenDir<N>>();
  private nextFh = 1;
  readonly locks = new LockTable();
  private notifier: Notifier | undefined;

  constructor(
    private readonly backend: Backend<N, H>,
    options: Partial<NodeLayerOptions> = {},
  ) {
    this.opts = { ...defaultNodeLayerOptions, ...options };
    const root = new Inode(ROOT_ID, backend.root);
    root.lookups = 1;
    this.byId.set(ROOT_ID, root);
    this.byNode.set(backend.root, root);
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
    const inode = this.byNode.get(node);
    if (inode && this.notifier) await this.notifier.invalInode(inode.nodeid, 0, 0);
  }

  async invalidateEntry(parent: N, name: string): Promise<void> {
    const inode = this.byNode.get(parent);
    if (inode && this.notifier) await this.notifier.invalEntry(inode.nodeid, name);
  }

  async entryDeleted(parent: N, child: N, name: string): Promise<void> {
    const p = this.byNode.get(parent);
    const c = this.byNode.get(child);
    if (!p || !this.notifier) return;
    if (c) await this.notifier.delete(p.nodeid, c.nodeid, name);
    else await this.notifier.invalEntry(p.nodeid, name);
  }

  // ---- lifecycle ------------------------------------------------------------------

  init(_conn: ConnectionInfo): void {}

  destroy(): void {
    this.files.clear();
    this.dirs.clear();
    for (const inode of this.byId.values()) if (inode.nodeid !== ROOT_ID) this.backend.forget?.(inode.node);
    this.byId.clear();
    this.byNode.clear();
    void this.backend.close?.();
  }

  // ---- helpers ----------------------------------------------------------------------

  private inode(nodeid: number): Inode<N> {
    const inode = this.byId.get(nodeid);
    if (!inode) throw new FsError('ESTALE', `unknown node id ${nodeid}`);
    return inode;
  }

  private checkName(name: string): void {
    if (Buffer.byteLength(name) > this.opts.maxNameLength) throw new FsError('ENAMETOOLONG');
  }

  /** Registers one kernel reference to the looked-up node and builds the entry reply. */
  private entryOut(found: Lookup<N>): EntryOut {
    let inode = this.byNode.get(found.node);
    if (!inode) {
      inode = new Inode(this.nextNodeId++, found.node);
      this.byId.set(inode.nodeid, inode);
      this.byNode.set(found.node, inode);
    }
    inode.lookups++;
    return {
      nodeid: inode.nodeid,
      entryTimeout: found.entryTimeout ?? this.opts.entryTimeout,
      attrTimeout: found.attrTimeout ?? this.opts.attrTimeout,
      attr: found.attr,
    };
  }

  private attrOut(attr: Attr): AttrOut {
    return { attr, attrTimeout: this.opts.attrTimeout };
  }

  private file(fh: number): OpenFile<N, H> {
    const f = this.files.get(fh);
    if (!f) throw new FsError('EBADF', `unknown file handle ${fh}`);
    return f;
  }

  // ---- RawFileSystem ------------------------------------------------------------------

  async lookup(ctx: RequestContext, parent: number, name: string): Promise<EntryOut> {
    const dir = this.inode(parent);
    this.checkName(name);
    const found = await this.backend.lookup(ctx, dir.node, name);
    if (found) return this.entryOut(found);
    if (this.opts.negativeTimeout > 0) return { nodeid: 0, entryTimeout: this.opts.negativeTimeout, attrTimeout: 0 };
    throw new FsError('ENOENT');
  }

  forget(nodeid: number, nlookup: number): void {
    if (nodeid === ROOT_ID) return;
    const inode = this.byId.get(nodeid);
    if (!inode) return;
    inode.lookups -= nlookup;
    if (inode.lookups > 0) return;
    this.byId.delete(nodeid);
    this.byNode.delete(inode.node);
    this.backend.forget?.(inode.node);
  }

  async getattr(ctx: RequestContext, nodeid: number, fh: number | undefined): Promise<AttrOut> {
    const inode = this.inode(nodeid);
    const handle = fh !== undefined ? this.files.get(fh)?.handle : undefined;
    return this.attrOut(await this.backend.getattr(ctx, inode.node, handle));
  }

  async setattr(ctx: RequestContext, nodeid: number, s: SetattrIn): Promise<AttrOut> {
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
    const handle = v & Fattr.FH ? this.files.get(s.fh)?.handle : undefined;
    return this.attrOut(await this.backend.setattr(ctx, inode.node, changes, handle));
  }

  async readlink(ctx: RequestContext, nodeid: number): Promise<Buffer> {
    return Buffer.from(await this.backend.readlink(ctx, this.inode(nodeid).node), 'utf8');
  }

  async symlink(ctx: RequestContext, parent: number, name: string, target: string): Promise<EntryOut> {
    const dir = this.inode(parent);
    this.checkName(name);
    if (Buffer.byteLength(target) > 4095) throw new FsError('ENAMETOOLONG');
    return this.entryOut(await this.backend.symlink(ctx, dir.node, name, target));
  }

  async mknod(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number): Promise<EntryOut> {
    const dir = this.inode(parent);
    this.checkName(name);
    return this.entryOut(await this.backend.mknod(ctx, dir.node, name, mode, rdev));
  }

  async mkdir(ctx: RequestContext, parent: number, name: string, mode: number): Promise<EntryOut> {
    const dir = this.inode(parent);
    this.checkName(name);
    return this.entryOut(await this.backend.mkdir(ctx, dir.node, name, (mode & 0o7777) | C.S_IFDIR));
  }

  async unlink(ctx: RequestContext, parent: number, name: string): Promise<void> {
    this.checkName(name);
    await this.backend.unlink(ctx, this.inode(parent).node, name);
  }

  async rmdir(ctx: RequestContext, parent: number, name: string): Promise<void> {
    this.checkName(name);
    await this.backend.rmdir(ctx, this.inode(parent).node, name);
  }

  async rename(ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new FsError('EINVAL', 'unsupported rename flags');
    if (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE) throw new FsError('EINVAL');
    this.checkName(name);
    this.checkName(newName);
    await this.backend.rename(ctx, this.inode(parent).node, name, this.inode(newParent).node, newName, flags);
  }

  async link(ctx: RequestContext, nodeid: number, newParent: number, newName: string): Promise<EntryOut> {
    if (!this.backend.link) throw new FsError('EPERM', 'this backend has no hard links');
    this.checkName(newName);
    return this.entryOut(await this.backend.link(ctx, this.inode(nodeid).node, this.inode(newParent).node, newName));
  }

  async open(ctx: RequestContext, nodeid: number, flags: number, openFlags: number): Promise<OpenOut> {
    const inode = this.inode(nodeid);
    const result = await this.backend.open(ctx, inode.node, openRequest(flags, (openFlags & OPEN_KILL_SUIDGID) !== 0));
    const fh = this.nextFh++;
    this.files.set(fh, { inode, handle: result.handle });
    return { fh, openFlags: fopenFlags(result) };
  }

  async create(ctx: RequestContext, parent: number, name: string, mode: number, _umask: number, flags: number): Promise<{ entry: EntryOut; open: OpenOut }> {
    const dir = this.inode(parent);
    this.checkName(name);
    const r = await this.backend.create(ctx, dir.node, name, (mode & 0o7777) | C.S_IFREG, openRequest(flags, false));
    const entry = this.entryOut(r.entry);
    const fh = this.nextFh++;
    this.files.set(fh, { inode: this.byId.get(entry.nodeid)!, handle: r.open.handle });
    return { entry, open: { fh, openFlags: fopenFlags(r.open) } };
  }

  async read(ctx: RequestContext, _nodeid: number, fh: number, offset: number, size: number): Promise<Buffer> {
    return this.backend.read(ctx, this.file(fh).handle, offset, size);
  }

  async write(ctx: RequestContext, _nodeid: number, fh: number, offset: number, data: Buffer, writeFlags: number): Promise<number> {
    return this.backend.write(ctx, this.file(fh).handle, offset, data, (writeFlags & WRITE_KILL_SUIDGID) !== 0);
  }

  async flush(ctx: RequestContext, _nodeid: number, fh: number, lockOwner: bigint): Promise<void> {
    const f = this.file(fh);
    // close(2) drops the closing process's POSIX locks on the file, after its
    // writes are stored (the next holder, on any node, must read them).
    try {
      await this.backend.flush(ctx, f.handle);
    } finally {
      await this.releaseLocks(f.inode, lockOwner, false);
    }
  }

  async fsync(ctx: RequestContext, _nodeid: number, fh: number, datasync: boolean): Promise<void> {
    await this.backend.fsync(ctx, this.file(fh).handle, datasync);
  }

  async release(ctx: RequestContext, _nodeid: number, fh: number, _flags: number, releaseFlags: number, lockOwner: bigint): Promise<void> {
    const f = this.files.get(fh);
    if (!f) return;
    this.files.delete(fh);
    if (!(releaseFlags & RELEASE_FLOCK_UNLOCK)) return this.backend.release(ctx, f.handle);
    try {
      await this.backend.release(ctx, f.handle);
    } finally {
      await this.releaseLocks(f.inode, lockOwner, true);
    }
  }

  async opendir(_ctx: RequestContext, nodeid: number, _flags: number): Promise<OpenOut> {
    const inode = this.inode(nodeid);
    const fh = this.nextFh++;
    this.dirs.set(fh, { inode, entries: undefined });
    return { fh };
  }

  async readdir(ctx: RequestContext, _nodeid: number, fh: number, offset: number, sink: DirentSink): Promise<void> {
    const dir = this.dirs.get(fh);
    if (!dir) throw new FsError('EBADF');
    // A listing is a snapshot taken at offset 0 (opendir or rewinddir), so
    // offsets stay stable while entries are added or removed meanwhile.
    if (offset === 0 || !dir.entries) dir.entries = await this.backend.readdir(ctx, dir.inode.node);
    const entries = dir.entries;
    for (let i = offset; i < entries.length; i++) {
      const e = entries[i]!;
      // "." and ".." carry no lookup (the kernel ignores their entry in READDIRPLUS).
      if (!sink.plus || e.name === '.' || e.name === '..') {
        if (!sink.add(e.name, e.ino, e.mode, i + 1)) return;
        continue;
      }
      const found = await this.backend.lookup(ctx, dir.inode.node, e.name);
      // Removed since the snapshot: leave it out rather than show a ghost.
      if (!found) continue;
      const entry = this.entryOut(found);
      if (!sink.add(e.name, entry.attr!.ino, entry.attr!.mode, i + 1, entry)) {
        this.forget(entry.nodeid, 1);
        return;
      }
    }
  }

  async releasedir(_ctx: RequestContext, _nodeid: number, fh: number): Promise<void> {
    this.dirs.delete(fh);
  }

  async fsyncdir(): Promise<void> {}

  async statfs(ctx: RequestContext): Promise<StatfsOut> {
    return this.backend.statfs(ctx);
  }

  /** Only asked without default_permissions: check the mode bits ourselves. */
  async access(ctx: RequestContext, nodeid: number, mask: number): Promise<void> {
    const attr = await this.backend.getattr(ctx, this.inode(nodeid).node, undefined);
    if (!permits(attr, ctx, mask)) throw new FsError('EACCES');
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

  async setxattr(ctx: RequestContext, nodeid: number, name: string, value: Buffer, flags: number): Promise<void> {
    await this.xattrBackend().setxattr(ctx, this.inode(nodeid).node, name, value, flags);
  }

  async getxattr(ctx: RequestContext, nodeid: number, name: string): Promise<Buffer> {
    return this.xattrBackend().getxattr(ctx, this.inode(nodeid).node, name);
  }

  async listxattr(ctx: RequestContext, nodeid: number): Promise<string[]> {
    return this.xattrBackend().listxattr(ctx, this.inode(nodeid).node);
  }

  async removexattr(ctx: RequestContext, nodeid: number, name: string): Promise<void> {
    await this.xattrBackend().removexattr(ctx, this.inode(nodeid).node, name);
  }

  /** Drops `owner`'s locks on the file: in the backend's shared locks if it has them, else in this mount's table. */
  private async releaseLocks(inode: Inode<N>, owner: bigint, flock: boolean): Promise<void> {
    if (this.backend.releaseLocks) await this.backend.releaseLocks(inode.node, owner, flock);
    else this.locks.releaseOwner(inode.nodeid, owner, flock);
  }

  async getlk(ctx: RequestContext, nodeid: number, lk: LockIn): Promise<FileLock> {
    const inode = this.inode(nodeid);
    if (this.backend.getlk) return this.backend.getlk(ctx, inode.node, lk);
    return this.locks.test(nodeid, lk);
  }

  async setlk(ctx: RequestContext, nodeid: number, lk: LockIn, wait: boolean): Promise<void> {
    const inode = this.inode(nodeid);
    if (this.backend.setlk) return this.backend.setlk(ctx, inode.node, lk, wait);
    await this.locks.set(ctx, nodeid, lk, wait);
  }

  async fallocate(ctx: RequestContext, _nodeid: number, fh: number, offset: number, length: number, mode: number): Promise<void> {
    if (!this.backend.fallocate) throw new FsError('EOPNOTSUPP');
    await this.backend.fallocate(ctx, this.file(fh).handle, offset, length, mode);
  }

  async lseek(ctx: RequestContext, _nodeid: number, fh: number, offset: number, whence: number): Promise<number> {
    if (!this.backend.lseek) throw new FsError('ENOSYS');
    return this.backend.lseek(ctx, this.file(fh).handle, offset, whence);
  }

  async copyFileRange(ctx: RequestContext, _nodeIn: number, fhIn: number, offIn: number, _nodeOut: number, fhOut: number, offOut: number, len: number, flags: number): Promise<number> {
    if (!this.backend.copyFileRange) throw new FsError('ENOSYS');
    if (flags !== 0) throw new FsError('EINVAL');
    return this.backend.copyFileRange(ctx, this.file(fhIn).handle, offIn, this.file(fhOut).handle, offOut, len);
  }
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
