// The ZooKeeper backend, first slice: a volume's subtree mounted read-only,
// coherent on every node. A znode with children is a directory, one without
// is a file whose bytes are the znode's data (docs/zookeeper-layout.md). One
// persistent recursive watch on the volume root drives invalidation of this
// process's cache and of the kernel's. Writes arrive with the next slice.

import { constants as C } from 'node:fs';
import type { Attr, Backend, DirEntry, KernelCache, Lookup, OpenRequest, OpenResult, RequestContext, StatfsOut } from '../../fs/backend.js';
import { FsError } from '../../fs/errors.js';
import { log } from '../../util/log.js';
import { ZkClient, type WatchEvent } from './client/client.js';
import { ErrorCode, EventType, type Stat, ZkError } from './client/protocol.js';

/** Names swarmvol keeps for itself in every directory; never listed, never created by users. */
export const RESERVED_NAMES = new Set(['.swarmvol', '.zdata']);

export interface ZooKeeperBackendOptions {
  /** Volume root, an absolute ZooKeeper path. */
  root: string;
  uid: number;
  gid: number;
  umask: number;
  /** Seconds the kernel may cache entries and attributes: long, since watches invalidate. */
  cacheTimeout: number;
}

export class ZkNode {
  /** Content fetched by an open, kept until the znode's data changes. */
  data: Buffer | undefined;
  /** Directory listing, kept until a child is created or deleted (the watch says so). */
  listing: DirEntry[] | undefined;
  constructor(
    /** Path relative to the volume root ("/" for the root). */
    public path: string,
    public stat: Stat,
    /** For a directory's `.zdata` file: the directory whose own znode data it shows. */
    readonly dataOf?: string,
  ) {}

  get isDir(): boolean {
    return !this.dataOf && (this.stat.numChildren > 0 || this.path === '/');
  }
}

/** The file that shows a directory's own znode data (trees made by other tools may have some). */
export const DIR_DATA_NAME = '.zdata';

export interface ZkHandle {
  node: ZkNode;
  data: Buffer;
}

function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

function parentOf(path: string): { dir: string; name: string } {
  const i = path.lastIndexOf('/');
  return { dir: i <= 0 ? '/' : path.slice(0, i), name: path.slice(i + 1) };
}

function msToTimespec(ms: bigint): { sec: number; nsec: number } {
  const n = Number(ms);
  return { sec: Math.floor(n / 1000), nsec: (n % 1000) * 1e6 };
}

/** ZooKeeper errors as errno: NONODE → ENOENT, NOAUTH → EACCES, lost connection → EIO. */
export function errnoFromZk(err: unknown): FsError {
  if (!(err instanceof ZkError)) return err instanceof FsError ? err : new FsError('EIO', String(err));
  switch (err.code) {
    case ErrorCode.NONODE:
      return new FsError('ENOENT');
    case ErrorCode.NOAUTH:
      return new FsError('EACCES', err.message);
    case ErrorCode.NODEEXISTS:
      return new FsError('EEXIST');
    case ErrorCode.NOTEMPTY:
      return new FsError('ENOTEMPTY');
    default:
      // The application only sees EIO: say why in the log.
      log.warn('ZooKeeper request failed', { path: err.path, error: err.message });
      return new FsError('EIO', err.message);
  }
}

export class ZooKeeperBackend implements Backend<ZkNode, ZkHandle> {
  readonly root: ZkNode;
  private readonly nodes = new Map<string, ZkNode>();
  private cache: KernelCache<ZkNode> | undefined;

  private constructor(
    private readonly zk: ZkClient,
    private readonly opts: ZooKeeperBackendOptions,
    rootStat: Stat,
  ) {
    this.root = new ZkNode('/', rootStat);
    this.nodes.set('/', this.root);
    zk.on('watch', (e: WatchEvent) => void this.onWatch(e));
    zk.on('session', (s: { expired: boolean }) => {
      if (!s.expired) return;
      // Events may have been missed: drop everything cached and let the kernel ask again.
      log.warn('ZooKeeper session expired; a new one is up, caches revalidated', { root: opts.root });
      void this.invalidateAll();
    });
  }

  /** Connects to the volume root (which must exist) and arms the watch. */
  static async open(zk: ZkClient, opts: ZooKeeperBackendOptions): Promise<ZooKeeperBackend> {
    const stat = await zk.exists(opts.root);
    if (!stat) throw new Error(`ZooKeeper path ${opts.root} does not exist`);
    const backend = new ZooKeeperBackend(zk, opts, stat);
    await zk.addWatch(opts.root);
    return backend;
  }

  attach(cache: KernelCache<ZkNode>): void {
    this.cache = cache;
  }

  forget(node: ZkNode): void {
    if (this.nodes.get(node.path) === node && node !== this.root) this.nodes.delete(node.path);
  }

  async close(): Promise<void> {
    this.zk.close();
  }

  private zkPath(path: string): string {
    return path === '/' ? this.opts.root : this.opts.root + path;
  }

  private attr(node: ZkNode): Attr {
    const s = node.stat;
    const dir = node.isDir;
    const mode = dir ? C.S_IFDIR | (0o777 & ~this.opts.umask) : C.S_IFREG | (0o666 & ~this.opts.umask);
    return {
      // czxid is a zxid (epoch << 32 | counter), far below 2^52: room for the .zdata twin.
      ino: (Number(s.czxid) || 1) + (node.dataOf ? 2 ** 52 : 0),
      size: dir ? 4096 : s.dataLength,
      atime: msToTimespec(s.mtime),
      mtime: msToTimespec(s.mtime),
      ctime: msToTimespec(s.mtime > s.ctime ? s.mtime : s.ctime),
      mode,
      nlink: dir ? 2 : 1,
      uid: this.opts.uid,
      gid: this.opts.gid,
      rdev: 0,
    };
  }

  private lookupResult(node: ZkNode): Lookup<ZkNode> {
    return { node, attr: this.attr(node), entryTimeout: this.opts.cacheTimeout, attrTimeout: this.opts.cacheTimeout };
  }

  /**
   * The node for `path` with a fresh stat. The same object comes back while the
   * znode keeps its czxid and type; a recreated znode or a type change is a new
   * object, hence a new kernel node id.
   */
  private remember(path: string, stat: Stat, dataOf?: string): ZkNode {
    const known = this.nodes.get(path);
    const fresh = new ZkNode(path, stat, dataOf);
    if (known && known.stat.czxid === stat.czxid && known.isDir === fresh.isDir) {
      if (known.stat.mzxid !== stat.mzxid) known.data = undefined;
      known.stat = stat;
      return known;
    }
    this.nodes.set(path, fresh);
    return fresh;
  }

  private async statOf(path: string): Promise<ZkNode | undefined> {
    let stat: Stat | null;
    try {
      stat = await this.zk.exists(this.zkPath(path));
    } catch (err) {
      throw errnoFromZk(err);
    }
    return stat ? this.remember(path, stat) : undefined;
  }

  // ---- Backend --------------------------------------------------------------------

  async lookup(_ctx: RequestContext, parent: ZkNode, name: string): Promise<Lookup<ZkNode> | undefined> {
    if (name === DIR_DATA_NAME) {
      const zdata = this.dirDataNode(parent);
      return zdata && this.lookupResult(zdata);
    }
    if (RESERVED_NAMES.has(name)) return undefined;
    const known = this.nodes.get(joinPath(parent.path, name));
    if (known) return this.lookupResult(known);
    const node = await this.statOf(joinPath(parent.path, name));
    return node && this.lookupResult(node);
  }

  /** The `.zdata` file of a directory whose znode holds data, else undefined. */
  private dirDataNode(dir: ZkNode): ZkNode | undefined {
    if (!dir.isDir || dir.stat.dataLength === 0) return undefined;
    return this.remember(joinPath(dir.path, DIR_DATA_NAME), { ...dir.stat, numChildren: 0 }, dir.path);
  }

  async getattr(_ctx: RequestContext, node: ZkNode): Promise<Attr> {
    return this.attr(node);
  }

  async readdir(_ctx: RequestContext, node: ZkNode): Promise<DirEntry[]> {
    if (node.listing) return node.listing;
    let children: string[];
    try {
      const r = await this.zk.getChildren(this.zkPath(node.path));
      children = r.children.filter((c) => !RESERVED_NAMES.has(c)).sort();
      this.remember(node.path, r.stat);
    } catch (err) {
      throw errnoFromZk(err);
    }
    // Stat every child at once (pipelined), so READDIRPLUS's lookups hit the cache.
    const stats = await Promise.all(children.map((c) => this.zk.exists(this.zkPath(joinPath(node.path, c))).catch(() => null)));
    const entries: DirEntry[] = [
      { name: '.', ino: Number(node.stat.czxid) || 1, mode: C.S_IFDIR },
      // Inode 0 would hide the entry (glibc skips it); the root's parent is outside the volume.
      { name: '..', ino: Number((this.nodes.get(parentOf(node.path).dir) ?? this.root).stat.czxid) || 1, mode: C.S_IFDIR },
    ];
    children.forEach((name, i) => {
      const stat = stats[i];
      if (!stat) return; // deleted meanwhile
      const child = this.remember(joinPath(node.path, name), stat);
      entries.push({ name, ino: Number(stat.czxid), mode: this.attr(child).mode });
    });
    const zdata = this.dirDataNode(this.nodes.get(node.path) ?? node);
    if (zdata) entries.push({ name: DIR_DATA_NAME, ino: this.attr(zdata).ino, mode: C.S_IFREG });
    node.listing = entries;
    return entries;
  }

  async open(_ctx: RequestContext, node: ZkNode, req: OpenRequest): Promise<OpenResult<ZkHandle>> {
    if (req.write || req.truncate) throw new FsError('EROFS');
    if (node.isDir) throw new FsError('EISDIR');
    if (!node.data) {
      try {
        const r = await this.zk.getData(this.zkPath(node.dataOf ?? node.path));
        this.remember(node.path, node.dataOf ? { ...r.stat, numChildren: 0 } : r.stat, node.dataOf).data = r.data;
        node.data = r.data;
      } catch (err) {
        throw errnoFromZk(err);
      }
    }
    // The content is fetched once per open: reads of one open file are consistent.
    return { handle: { node, data: node.data }, keepCache: true };
  }

  async read(_ctx: RequestContext, h: ZkHandle, offset: number, size: number): Promise<Buffer> {
    return h.data.subarray(Math.min(offset, h.data.length), Math.min(offset + size, h.data.length));
  }

  async statfs(): Promise<StatfsOut> {
    return { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  async flush(): Promise<void> {}
  async fsync(): Promise<void> {}
  async release(): Promise<void> {}

  // Read-only slice: every change is refused until writes land.
  async setattr(): Promise<Attr> {
    throw new FsError('EROFS');
  }
  async readlink(): Promise<string> {
    throw new FsError('EINVAL');
  }
  async symlink(): Promise<Lookup<ZkNode>> {
    throw new FsError('EROFS');
  }
  async mknod(): Promise<Lookup<ZkNode>> {
    throw new FsError('EROFS');
  }
  async mkdir(): Promise<Lookup<ZkNode>> {
    throw new FsError('EROFS');
  }
  async unlink(): Promise<void> {
    throw new FsError('EROFS');
  }
  async rmdir(): Promise<void> {
    throw new FsError('EROFS');
  }
  async rename(): Promise<void> {
    throw new FsError('EROFS');
  }
  async create(): Promise<{ entry: Lookup<ZkNode>; open: OpenResult<ZkHandle> }> {
    throw new FsError('EROFS');
  }
  async write(): Promise<number> {
    throw new FsError('EROFS');
  }

  // ---- invalidation ------------------------------------------------------------------

  private async onWatch(e: WatchEvent): Promise<void> {
    const root = this.opts.root;
    if (e.path !== root && !e.path.startsWith(root + '/')) return;
    const path = e.path === root ? '/' : e.path.slice(root.length);
    const node = this.nodes.get(path);
    const { dir, name } = parentOf(path);
    const parent = this.nodes.get(dir);
    if (e.type === EventType.NodeDataChanged && node) {
      node.data = undefined;
      // Refresh the stat so the size the kernel asks for next is right.
      const stat = await this.zk.exists(this.zkPath(path)).catch(() => null);
      if (stat) this.remember(path, stat);
      await this.cache?.invalidateNode(node);
      if (node.isDir) {
        // A directory's own data shows as its .zdata file, which may have come or gone.
        node.listing = undefined;
        const zdata = this.nodes.get(joinPath(path, DIR_DATA_NAME));
        if (zdata) {
          zdata.data = undefined;
          if (stat) zdata.stat = { ...stat, numChildren: 0 };
          await this.cache?.invalidateNode(zdata);
        }
        await this.cache?.invalidateEntry(node, DIR_DATA_NAME);
        await this.cache?.invalidateNode(node);
      }
      return;
    }
    if (e.type === EventType.NodeCreated || e.type === EventType.NodeDeleted) {
      if (node && e.type === EventType.NodeDeleted) {
        this.nodes.delete(path);
        if (parent) await this.cache?.entryDeleted(parent, node, name);
      } else if (parent && path !== '/') await this.cache?.invalidateEntry(parent, name);
      if (parent && path !== '/') {
        parent.listing = undefined;
        const stat = await this.zk.exists(this.zkPath(dir)).catch(() => null);
        if (stat && dir !== '/' && stat.numChildren > 0 !== parent.isDir) {
          // The parent gained its first child or lost its last: it changed type,
          // so the kernel must forget it and look it up again (a new node id).
          this.nodes.delete(dir);
          const up = parentOf(dir);
          const grand = this.nodes.get(up.dir);
          if (grand) {
            grand.listing = undefined;
            await this.cache?.invalidateEntry(grand, up.name);
          }
          return;
        }
        if (stat) parent.stat = stat;
        await this.cache?.invalidateNode(parent);
      }
    }
  }

  private async invalidateAll(): Promise<void> {
    for (const node of [...this.nodes.values()]) {
      node.data = undefined;
      node.listing = undefined;
      await this.cache?.invalidateNode(node);
      // Names may be gone too: make the kernel look each one up again.
      if (node === this.root) continue;
      const { dir, name } = parentOf(node.path);
      const parent = this.nodes.get(dir);
      if (parent) await this.cache?.invalidateEntry(parent, name);
    }
  }
}
