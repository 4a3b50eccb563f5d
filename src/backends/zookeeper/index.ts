// The ZooKeeper backend in hybrid mode: a volume's subtree as a read-write
// filesystem, the same on every node (docs/zookeeper-layout.md). A znode with
// children is a directory, one without is a file whose bytes are the znode's
// data; types and attributes the Stat cannot hold live in each directory's
// hidden marker. One persistent recursive watch on the volume root drives
// invalidation of this process's cache and of the kernel's; the events our
// own changes cause are recognised and cost nothing.

import { createHash } from 'node:crypto';
import { constants as C } from 'node:fs';
import { PRELOAD_MAX, type Attr, type AttrChanges, type Backend, type DirEntry, type FileLock, type KernelCache, type LockIn, type Lookup, type MaybePromise, type OpenRequest, type OpenResult, type RequestContext, type StatfsOut } from '../../fs/backend.js';
import { FsError } from '../../fs/errors.js';
import { andThen } from '../../fs/maybe-promise.js';
import { log } from '../../util/log.js';
import { F_UNLCK } from '../../fuse/kernel.js';
import { createIfMissing, ZkClient, type WatchEvent } from './client/client.js';
import { type Acl, ErrorCode, EventType, type MultiOp, type MultiResult, type Stat, ZkError, ZkMultiError } from './client/protocol.js';
import {
  attrOf,
  decodeMeta,
  type Defaults,
  DIR_DATA_ORDINAL,
  type DirMeta,
  encodeMeta,
  type EntryMeta,
  joinPath,
  inoOf,
  isUnder,
  kindOf,
  type Kind,
  largeFileEntry,
  largeFileSize,
  plainFileEntry,
  resolveThisTxn,
  CHUNKS_NAME,
  EPOCH_NAME,
  LOCKS_NAME,
  MARKER_NAME,
  MAX_ORDINAL,
  metaFor,
  NO_MARKER,
  typeBits,
  parentOf,
  pruneMeta,
  rulesFor,
  sameAttributes,
  storableName,
  SELF_KEY,
  type Mode,
  type ModeRules,
} from './layout.js';
import { ChunkStore, chunkNames, chunkSizeFor, decodeManifest, encodeManifest, inlineLimit, type Manifest, newGeneration, REQUEST_HEADROOM } from './chunks.js';
import { ZkLocks } from './locks.js';
import { isConnectionLoss } from './owned.js';
import { type ChunkPlan, OpenFile } from './open-file.js';
import { BatchReads, type Listed, maxBatchOps } from './batch-reads.js';
import { DirEpoch } from './dir-epoch.js';
import { ChangeLog } from './change-log.js';
import { VolumeQuota } from './quota.js';
import { DEFAULT_READ_AHEAD, inSuccession, LIST_AHEAD_AFTER, LIST_AHEAD_DIRS, LIST_AHEAD_ENTRIES, LIST_AHEAD_WINDOW, READ_AHEAD_AFTER, READ_AHEAD_UNCLAIMED_BYTES, ReadAhead, readerOrder, type Succession } from './read-ahead.js';
import { countNodes, createOps, czxidsOf, deleteOps, movedMeta, type Subtree, subtreeBytes, subtreeNode } from './subtree.js';

export { DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_REQUEST, largestFileSize, MAX_JUTE_MAXBUFFER } from './chunks.js';
export { DIR_DATA_NAME, LOCKS_NAME, MODES, RESERVED_NAMES, type Mode } from './layout.js';

export interface ZooKeeperBackendOptions extends Defaults {
  /** Volume root, an absolute ZooKeeper path. */
  root: string;
  /** Seconds the kernel may cache entries and attributes: long, since watches invalidate. */
  cacheTimeout: number;
  /** ACL of the znodes swarmvol creates. */
  acl: Acl[];
  /** Largest file: files above one znode's limit are stored in chunks (hybrid mode). */
  maxFileSize: number;
  /** Largest request the server takes (its jute.maxbuffer): bounds a rename's multi. */
  maxRequest: number;
  /** How znodes map to files (docs/zookeeper-layout.md). */
  mode: Mode;
  /** Sets the volume's quota in bytes (stored in ZooKeeper for every node); absent: whatever was set before. */
  quota?: number;
  /** Most files fetched ahead once a directory is read file by file (read-ahead.ts); 0: never. Default 1,024. */
  readAhead?: number;
}

const MAX_RETRIES = 20;

/** An entry of a listing this backend keeps, naming the child's node when the listing cached it (see listedLookup). */
interface ListedEntry extends DirEntry {
  node?: ZkNode;
}

/** How recent a create must be for setting its times to now to need nothing (touch of a new file). */
const JUST_CREATED_MS = 1000;
/** The data version of a znode this mount creates (created empty, its data set in the same transaction: see storeEntry). */
const CREATED_VERSION = 1;
const STATFS_BLOCK = 4096;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

export class ZkNode {
  /** Content matching `stat.mzxid`, kept until the znode's data changes. */
  data: Buffer | undefined;
  /** Directory listing, kept until a child is created or deleted; its entries name the children's nodes (ListedEntry). */
  listing: DirEntry[] | undefined;
  /** The names in this directory, complete: a name not in it does not exist (no request to say so). */
  names: Set<string> | undefined;
  /** Shared by this process's open handles of the file. */
  file: OpenFile | undefined;
  /** A change reported by the watch: refetch the Stat before trusting it. */
  stale = false;
  /**
   * Directory: seen with its marker. If the marker is gone, so is this
   * directory (removed or replaced on another node): nothing is written in it
   * any more (a child or a new marker would turn a file of that name into a
   * directory).
   */
  marked = false;
  /** Directory without a marker (made by another tool): a child it had when last checked (mapToWriteIn), which proves it a directory (dirGuard). */
  seenChild: string | undefined;
  /** Removed by this process: buffered writes have nowhere to go and are dropped, as on a local disk. */
  unlinked = false;
  /** A file created here whose znode its first commit makes (createLater); until then it exists in this process only. */
  pending: PendingCreate | undefined;
  /** The inode number of a file created here until its znode is made (and ZooKeeper gives it a czxid). */
  ino: bigint | undefined;
  /** Open handles of this file in this process (one shared empty set until the first open: most nodes are only listed). */
  handles: ReadonlySet<ZkHandle> = NO_HANDLES;
  /** Directory: bumped whenever its entries change; a listing fetched across a change is not kept. */
  entriesVersion = 0;
  /** Bumped whenever a rename of ours moves it: a write prepared at its path is sent only if it did not move meanwhile (even there and back). */
  moves = 0;
  /** Directory: distinct files fetched cold in a row (READ_AHEAD_GAP_MS apart at most), since its last read-ahead. */
  coldReads: Succession | undefined;
  /** Directory: distinct subdirectories listed cold in a row, since its last list-ahead. */
  coldLists: Succession | undefined;
  /** While its content, fetched ahead (read-ahead, or along with a listing), is unused: the bytes counted for it against READ_AHEAD_UNCLAIMED_BYTES. */
  unclaimedBytes = 0;
  /** The version (mzxid) the kernel's page cache may hold for this file, if any. */
  kernelCached: bigint | undefined;
  /** The lock keys (lockKey) this node had when it was last locked, including keys from before a rename under which locks still live here. */
  lockKeys: string[] | undefined;
  kernelId = 0;
  kernelLookups = 0;
  kernelOpened = false;
  constructor(
    /** Path relative to the volume root ("/" for the root). */
    public path: string,
    public stat: Stat,
    readonly kind: Kind,
    /** For a directory's `.zdata` file: the directory whose own znode data it shows (a rename moves it along). */
    public dataOf?: string,
  ) {}

  addHandle(h: ZkHandle): void {
    if (this.handles === NO_HANDLES) this.handles = new Set([h]);
    else (this.handles as Set<ZkHandle>).add(h);
  }

  removeHandle(h: ZkHandle): void {
    if (this.handles.size <= 1 && this.handles.has(h)) this.handles = NO_HANDLES;
    else (this.handles as Set<ZkHandle>).delete(h);
  }
}

const NO_HANDLES: ReadonlySet<ZkHandle> = new Set();

/** What the first commit of a file created here needs to make its znode. */
interface PendingCreate {
  parent: ZkNode;
  /** Its attributes, when they differ from the volume defaults. */
  meta: EntryMeta | undefined;
  /** The create under way (by a commit, or by an operation that needs the znode); true if it stored the content given. */
  creating: Promise<boolean> | undefined;
  /** A write was refused for the quota: the file is never stored (nothing partial), every commit fails with it. */
  refused: FsError | undefined;
}

/** What our rename re-created: the czxid of the new znodes, and the old czxids of those moved from `from` and (an exchange) from `to`, by path below. */
interface MovedZnodes {
  czxid: bigint;
  from: ReadonlyMap<string, bigint>;
  to: ReadonlyMap<string, bigint> | undefined;
}

/** Inode numbers given to files created here before they have a czxid: bit 63, never set by one from a czxid below epoch 2,048. */
const PROVISIONAL_INO = 1n << 63n;

interface InFlight {
  count: number;
  held: WatchEvent[];
  /** Events our own writes caused (type and path), each the echo of one held event. */
  echoes: Map<string, number>;
}

const echoKey = (e: WatchEvent) => `${e.type} ${e.path}`;

export interface ZkHandle {
  node: ZkNode;
  file: OpenFile;
  /** O_APPEND: every write goes to the end of the content as this node knows it now. */
  append: boolean;
  /** Opened to write (or to truncate), or created the file: its flush and close commit; a reader's never do (nor report a writer's errors). */
  writes: boolean;
  /** Opened by the create that made the file, at this time (ms): the znode's mtime is that moment. */
  created?: number;
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
    case ErrorCode.BADARGUMENTS:
      return new FsError('EINVAL', err.message);
    default:
      // The application only sees EIO; the session logs this reason with it.
      return new FsError('EIO', err.message);
  }
}

/** NONODE as undefined: a missing znode is an answer, not an error. */
function missing(err: unknown): undefined {
  if (err instanceof ZkError && err.code === ErrorCode.NONODE) return undefined;
  throw err;
}

/**
 * Whether the map has the entry of a znode newer than `stat`'s under `name`:
 * another node replaced it (by a symlink, say). An older one is a leftover
 * of a znode removed by another tool, which the next write of the map drops.
 */
function replacedPerMap(map: DirMeta, name: string, stat: Stat): boolean {
  const entry = map.entries.get(name);
  return entry !== undefined && entry.z > Number(stat.czxid);
}

/**
 * Whether a failed transaction lost a race (a version or existence check) and
 * is worth retrying on fresh state. A delete that found children another node
 * just made is one too: a rename of that directory moves them as well, and
 * rmdir or unlink then tells ENOTEMPTY or EISDIR from what is there.
 */
/** A write built from a node's path, which a rename of ours moved before it was sent: built again from the new path. */
class MovedByRename extends FsError {
  constructor(path: string) {
    super('ESTALE', `${path} kept being moved by renames on this node`);
  }
}

/** What a transaction was built from changed before it was sent: it is built again, from a fresh read. */
class ChangedMeanwhile extends FsError {
  constructor(path: string) {
    super('ESTALE', `${path} kept changing while this node stored it`);
  }
}

/** A rename's directory moved (a rename of ours moved an ancestor) while it was prepared: rename starts again from where it is now. Not a lost race of the transaction: `retrying` passes it on. */
class DirectoryMoved extends FsError {
  constructor(path: string) {
    super('ESTALE', `the directory of ${path} kept being moved by renames on this node`);
  }
}

function lostRace(err: unknown): boolean {
  if (err instanceof MovedByRename || err instanceof ChangedMeanwhile) return true;
  if (!(err instanceof ZkError)) return false;
  if (err.code === ErrorCode.BADVERSION) return true;
  if (!(err instanceof ZkMultiError)) return false;
  if (err.code === ErrorCode.NOTEMPTY || (err.code === ErrorCode.NONODE && err.failedOp === 'check')) return true;
  return (err.code === ErrorCode.NODEEXISTS || err.code === ErrorCode.NONODE) && (err.path ?? '').endsWith(`/${MARKER_NAME}`);
}

/** A plain content switch whose reply a lost connection took: what it was checked against, and what it wrote. */
interface LostPlainCommit {
  read: Stat;
  data: Buffer;
  snapshot: ChunkPlan['snapshot'];
  /** The large version it replaced, whose chunks it recorded as garbage. */
  old?: Manifest;
}

/**
 * Whether a lost plain switch was applied, judged on the file read after
 * (`cur`, plain): the very next version, holding what was sent, was; a later
 * one starting with what was sent (non-empty) was another node's append to
 * it. Anything else was written by another node over the version read,
 * this switch refused or never received: it is written again, as after
 * any version conflict.
 */
function lostPlainOutcome(sent: LostPlainCommit, cur: { data: Buffer; stat: Stat }): 'stored' | 'stored, then extended' | 'not stored' {
  if (cur.stat.czxid !== sent.read.czxid) return 'not stored';
  if (cur.stat.version === sent.read.version + 1 && cur.data.equals(sent.data)) return 'stored';
  const extended = cur.stat.version > sent.read.version + 1 && sent.data.length > 0 && cur.data.length > sent.data.length;
  return extended && cur.data.subarray(0, sent.data.length).equals(sent.data) ? 'stored, then extended' : 'not stored';
}

/**
 * Whether `src` and `dst`, read at an exchange's two names, are what an
 * exchange of `sentSrc` and `sentDst` made: both re-created by one
 * transaction since, each with what the other held.
 */
function exchangedSince(sentSrc: Subtree, sentDst: Subtree, src: Subtree, dst: Subtree): boolean {
  return src.stat.czxid === dst.stat.czxid && src.stat.czxid !== sentSrc.stat.czxid && src.data.equals(sentDst.data) && dst.data.equals(sentSrc.data);
}

/**
 * The Stat of a setData in a multi's results, if it has one: its mzxid and
 * mtime are the transaction's zxid and time, shared by all its ops (the
 * czxid and ctime of every znode it created).
 */
function transactionStat(results: MultiResult[]): Stat | undefined {
  const written = results.find((r) => r.op === 'setData');
  return written?.op === 'setData' ? written.stat : undefined;
}

/**
 * What a file's locks are keyed by, the same on every node: its znode's czxid
 * and a hash of its path. The czxid alone is shared by every znode one rename
 * made (all the files of a moved directory); a path changes only by a rename,
 * which makes a new znode anyway (see docs/zookeeper-layout.md, "Locks").
 */
function lockKey(node: ZkNode): string {
  return `${node.stat.czxid}.${createHash('sha256').update(node.path).digest('hex').slice(0, 16)}`;
}

/** The Stat of a leaf znode created with `data`, never written, by the transaction `txn` (see transactionStat). */
function createdLeafStat(txn: Stat, data: Buffer): Stat {
  const { mzxid: zxid, mtime: time } = txn;
  return { czxid: zxid, mzxid: zxid, pzxid: zxid, ctime: time, mtime: time, version: 0, cversion: 0, aversion: 0, ephemeralOwner: 0n, dataLength: data.length, numChildren: 0 };
}

function now(): [number, number] {
  const ms = Date.now();
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6];
}

export class ZooKeeperBackend implements Backend<ZkNode, ZkHandle> {
  readonly root: ZkNode;
  private readonly nodes = new Map<string, ZkNode>();
  /** Files created here whose znode is not made yet (createLater); a rename moves them, so not keyed by path. */
  private readonly pendingCreates = new Set<ZkNode>();
  private provisionalInos = 0n;
  /** Attribute maps by directory path (relative), kept until the watch reports a change. */
  private readonly metas = new Map<string, DirMeta>();
  /** Maps dropped when their change was reported, until it is applied: what changed is what differs from them. */
  private readonly supersededMetas = new Map<string, DirMeta>();
  /** Absolute paths our own changes are touching: their watch events are ours, held until we know. */
  private readonly inflight = new Map<string, InFlight>();
  /** Subtrees a rename of ours is moving: events anywhere under them are held too. */
  private readonly inflightTrees = new Map<string, InFlight>();
  /** Our renames in flight (the ZooKeeper paths of their two subtrees), until they have moved our nodes. */
  private readonly renames = new Set<{ trees: string[]; done: Promise<void> }>();
  /** How many of our renames have ended (moved our nodes or failed): a read that saw one end keeps nothing. */
  private renamesEnded = 0;
  private cache: KernelCache<ZkNode> | undefined;
  private readonly rules: ModeRules;
  /** file mode: directories made here that have no entry yet (ZooKeeper would call them files). */
  private readonly pinnedDirs = new Set<string>();
  /** flock/fcntl locks shared with every other mount of the volume. */
  private readonly locks: ZkLocks;
  /** Watch events being applied: a lock grant waits for them (what the last holder stored must be what we read). */
  private readonly applying = new Set<Promise<void>>();
  /** Chunks of large files (hybrid mode only: the size lives in the attribute map). */
  private readonly chunks: ChunkStore;
  /** Fetches ahead the files of directories being read one by one; undefined when turned off. */
  private readonly readAhead: ReadAhead | undefined;
  /** Lists ahead the directories of a tree being walked; undefined when read-ahead is off. */
  private readonly listAhead: ReadAhead | undefined;
  /** Files whose content was fetched ahead and not used yet, oldest first, and the bytes they hold. */
  private readonly unclaimed = new Set<ZkNode>();
  private unclaimedBytes = 0;
  /** Events that came in while reads were in flight (a reply older than an event must not be cached). */
  private readonly changes = new ChangeLog();
  /** Open files asked about after a reconnect (changed during the outage?): opens wait for the answer before sharing them. */
  private readonly reconnectChecks = new Map<ZkNode, Promise<void>>();
  private readonly inline: number;
  private readonly chunkSize: number;
  /** Listings' Stats and read-ahead in multiReads. */
  private readonly batch: BatchReads;

  private constructor(
    private readonly zk: ZkClient,
    private readonly opts: ZooKeeperBackendOptions,
    rootStat: Stat,
    private readonly quota: VolumeQuota,
    /** Hybrid mode: the transactions that trust attribute maps are fenced against directories re-created meanwhile. */
    private readonly epoch: DirEpoch | undefined,
  ) {
    this.rules = rulesFor(opts.mode);
    this.root = new ZkNode('/', rootStat, 'dir');
    this.nodes.set('/', this.root);
    this.locks = new ZkLocks(zk, joinPath(opts.root, LOCKS_NAME), opts.acl);
    this.chunks = new ChunkStore(zk, joinPath(opts.root, CHUNKS_NAME), opts.acl);
    this.inline = inlineLimit(opts.maxRequest);
    this.chunkSize = chunkSizeFor(opts.maxRequest);
    this.batch = new BatchReads(zk, maxBatchOps(opts.maxRequest));
    if ((opts.readAhead ?? DEFAULT_READ_AHEAD) > 0) {
      this.readAhead = new ReadAhead((path) => this.fetchAhead(path));
      this.listAhead = new ReadAhead((path) => this.listAheadOne(path), LIST_AHEAD_WINDOW, Infinity);
    }
    zk.on('watch', (e: WatchEvent) => this.onWatch(e));
    zk.on('applied', (caused: WatchEvent[]) => this.ownWrites(caused));
    // A new connection, in the same session or a new one: the volume's watch is armed again, but
    // ZooKeeper does not report to a persistent watch what changed while the connection was down.
    // Drop everything cached and let the kernel ask again.
    zk.on('session', (s: { expired: boolean }) => {
      if (s.expired) log.warn('ZooKeeper session expired; a new one is up, caches revalidated', { root: opts.root });
      else log.info('reconnected to ZooKeeper; caches revalidated (changes made meanwhile are not reported)', { root: opts.root });
      this.changes.lostTrack();
      this.epoch?.forget();
      void this.invalidateAll();
      if (s.expired) void this.chunks.repin();
    });
  }

  /** Opens the volume root, creating it (and its parents) if missing, and arms the watch. */
  static async open(zk: ZkClient, opts: ZooKeeperBackendOptions, create: boolean): Promise<ZooKeeperBackend> {
    let stat = await zk.exists(opts.root);
    if (!stat && create) {
      await ensurePath(zk, opts.root, opts.acl, opts.mode === 'hybrid');
      stat = await zk.exists(opts.root);
      log.info('created the volume root in ZooKeeper', { path: opts.root });
    }
    if (!stat) throw new Error(`ZooKeeper path ${opts.root} does not exist`);
    const quota = await VolumeQuota.setup(zk, opts.root, opts.quota, opts.acl);
    if (quota.limit !== undefined) log.info('volume quota', { bytes: quota.limit, used: (await quota.usage()).bytes });
    const epoch = opts.mode === 'hybrid' ? await DirEpoch.setup(zk, joinPath(opts.root, EPOCH_NAME), opts.acl) : undefined;
    const backend = new ZooKeeperBackend(zk, opts, stat, quota, epoch);
    await zk.addWatch(opts.root);
    if (create && backend.rules.markers) backend.chunks.start();
    return backend;
  }

  attach(cache: KernelCache<ZkNode>): void {
    this.cache = cache;
  }

  forget(node: ZkNode): void {
    if (node === this.root) return;
    if (this.nodes.get(node.path) === node) this.nodes.delete(node.path);
    if (node.pending && node.handles.size === 0) this.forgetPending(node);
    this.claim(node);
    // Its parent's kept listing may still name it (ListedEntry): what it holds goes now, not with that listing.
    if (!node.file) node.data = undefined;
    node.listing = undefined;
    node.names = undefined;
  }

  async close(): Promise<void> {
    this.chunks.close();
    this.zk.close();
  }

  private zkPath(path: string): string {
    return path === '/' ? this.opts.root : this.opts.root + path;
  }

  /** The volume path (relative, "/" for the root) of the znode `zkPath`; undefined outside the volume. */
  private relativePath(zkPath: string): string | undefined {
    const root = this.opts.root;
    if (zkPath === root) return '/';
    return zkPath.startsWith(root + '/') ? zkPath.slice(root.length) : undefined;
  }

  // ---- state ----------------------------------------------------------------------

  /** The attribute map of directory `dir` (relative path): at once when cached (no promise), else read from its marker. */
  private loadMeta(dir: string): MaybePromise<DirMeta> {
    return this.cachedMeta(dir) ?? this.fetchMeta(dir);
  }

  /** The attribute map of `dir` if known without a request (a mode without markers has none to read). */
  private cachedMeta(dir: string): DirMeta | undefined {
    return this.metas.get(dir) ?? (this.rules.markers ? undefined : NO_MARKER);
  }

  /**
   * The attribute map's znode. A read that classifies an entry (file,
   * directory, symlink) from its Stat and this map watches both: a map read
   * just before a symlink's creation, which writes the map, would make the
   * new symlink a file.
   */
  private markerZkPath(dir: string): string {
    return this.zkPath(joinPath(dir, MARKER_NAME));
  }

  private async fetchMeta(dir: string): Promise<DirMeta> {
    // Read through the change log: a map read just before another node's write, whose event
    // came in meanwhile, must not be cached after that event (it would stay, stale).
    const zkPath = this.markerZkPath(dir);
    const meta = await this.readFresh([zkPath], async () => {
      try {
        const r = await this.zk.getData(zkPath);
        return decodeMeta(r.data, r.stat.version, r.stat.mzxid);
      } catch (err) {
        if (!(err instanceof ZkError && err.code === ErrorCode.NONODE)) throw errnoFromZk(err);
        return NO_MARKER;
      }
    });
    this.keepMeta(dir, meta);
    return meta;
  }

  private keepMeta(dir: string, meta: DirMeta): void {
    this.metas.set(dir, meta);
    this.supersededMetas.delete(dir);
    const node = meta.marker ? this.nodes.get(dir) : undefined;
    if (node) node.marked = true;
  }

  /**
   * The attribute map of directory `dir` for a transaction that writes in it,
   * which must check that the directory is still there: writes the map
   * (version-checked) or checks its marker, or in a directory without one a
   * child of it (see dirGuard). ESTALE if the directory had a marker and has
   * none now, or has been re-created or emptied since it was looked up:
   * removed or replaced on another node (the kernel looks the path up again).
   */
  private async mapToWriteIn(dir: string, dirNode = this.nodes.get(dir)): Promise<DirMeta> {
    const meta = await this.loadMeta(dir);
    if (meta.marker) {
      if (dirNode) dirNode.marked = true;
      return meta;
    }
    let replaced = dirNode?.marked === true;
    if (!replaced && dirNode && this.rules.markers && dir !== '/') {
      // No marker: a directory made by another tool, or ours replaced before we saw its marker. Its czxid
      // tells; one of its children, checked in the transaction, proves it still a directory then (dirGuard).
      // The child seen last time serves until a transaction here loses a race (retrying forgets it).
      const zkPath = this.zkPath(dir);
      const seen = dirNode.seenChild;
      let now: { stat: Stat; children: string[] } | null;
      try {
        if (seen === undefined) now = await this.zk.getChildren(zkPath);
        else {
          const stat = await this.zk.exists(zkPath);
          now = stat && { stat, children: stat.numChildren > 0 ? [seen] : [] };
        }
      } catch (err) {
        if (!(err instanceof ZkError && err.code === ErrorCode.NONODE)) throw errnoFromZk(err);
        now = null;
      }
      replaced = now?.stat.czxid !== dirNode.stat.czxid || now.children.length === 0;
      dirNode.seenChild = now?.children[0];
    }
    if (replaced && dirNode) {
      dirNode.stale = true;
      throw new FsError('ESTALE', `the directory ${dir} was removed or replaced on another node`);
    }
    return meta;
  }

  /**
   * The op that fails a transaction writing in directory `dir` (its map
   * `meta`, from mapToWriteIn) if `dir` is no longer a directory: a check
   * of its marker; in a directory without one (made by another tool), of a
   * child it had just before (a znode with a child is a directory: creating
   * the marker, or an entry, under what became a file would make it one).
   * None when the transaction writes the map of a directory with a marker:
   * that setData is version-checked.
   */
  private dirGuard(dir: ZkNode, meta: DirMeta, writesMap: boolean): MultiOp[] {
    if (meta.marker) return writesMap ? [] : [{ op: 'check', path: this.markerZkPath(dir.path), version: -1 }];
    const child = dir.seenChild;
    return child === undefined ? [] : [{ op: 'check', path: this.zkPath(joinPath(dir.path, child)), version: -1 }];
  }

  /** Where a node's attributes live: its parent's map under its name (the root: its own, under "."). */
  private metaKey(path: string): { dir: string; name: string } {
    return path === '/' ? { dir: '/', name: SELF_KEY } : parentOf(path);
  }

  private entryMeta(node: ZkNode): MaybePromise<EntryMeta | undefined> {
    if (node.dataOf) return undefined;
    if (node.pending) return node.pending.meta;
    const { dir, name } = this.metaKey(node.path);
    return andThen(this.loadMeta(dir), (meta) => metaFor(meta, name, node.stat));
  }

  /**
   * The node for `path` with a fresh stat. The same object comes back while the
   * znode keeps its czxid and kind; a re-created znode or a kind change is a new
   * object, hence a new kernel node id.
   */
  private remember(path: string, stat: Stat, meta: EntryMeta | undefined, dataOf?: string): ZkNode {
    const known = this.nodes.get(path);
    // A file created here stays itself until its first commit, whatever another node made under its name meanwhile.
    if (known?.pending) return known;
    const kind = dataOf ? 'file' : this.kindAt(path, stat, meta);
    if (known && known.stat.czxid === stat.czxid && known.kind === kind) {
      if (known.stat.mzxid !== stat.mzxid) this.dropData(known);
      known.stat = stat;
      known.stale = false;
      return known;
    }
    const fresh = new ZkNode(path, stat, kind, dataOf);
    this.nodes.set(path, fresh);
    return fresh;
  }

  /** What the entry at `path` is, from its Stat and attributes (a directory pinned as one stays one). */
  private kindAt(path: string, stat: Stat, meta: EntryMeta | undefined): Kind {
    return this.pinnedDirs.has(path) ? 'dir' : kindOf(stat, meta, path === '/', this.opts.mode);
  }

  /**
   * Runs `read` (of the znodes `zkPaths`) again while the watch reported a
   * change of one of them during it: its reply may predate that change.
   */
  private async readFresh<T>(zkPaths: string[], read: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const { value, changed } = await this.changes.read(zkPaths, read);
      if (!changed.includes(true)) return value;
      if (attempt >= MAX_RETRIES) throw new FsError('EIO', `${zkPaths[0]} keeps changing; could not read one version of it`);
    }
  }

  /**
   * readFresh for a read whose result our nodes keep; undefined if a rename
   * of ours moving one of `zkPaths` was in flight at its start or end, or
   * any rename of ours ended meanwhile (readFresh may have sent it again
   * after one began). Such a read may be served after the rename's
   * transaction while our nodes are still at their old paths, or they may
   * have moved while it was out: kept, what it found at a path would pass
   * for what is there now (a file node would hold the target of the symlink
   * an exchange put in its old place: both have the transaction's czxid).
   * The caller starts again, from the nodes' new paths, once the rename is
   * over.
   */
  private async readUnmoved<T>(zkPaths: string[], read: () => Promise<T>): Promise<{ value: T } | undefined> {
    const before = this.renameOver(zkPaths);
    const moves = this.renamesEnded;
    const value = await this.readFresh(zkPaths, read);
    const after = this.renameOver(zkPaths);
    if (!before && !after && this.renamesEnded === moves) return { value };
    await Promise.all([before, after]);
    return undefined;
  }

  /** Our renames in flight that move one of `zkPaths` (ZooKeeper paths), settled once our nodes have moved; undefined if none. */
  private renameOver(zkPaths: readonly string[]): Promise<unknown> | undefined {
    if (this.renames.size === 0) return undefined;
    const moving = [...this.renames].filter((r) => zkPaths.some((p) => r.trees.some((t) => isUnder(p, t))));
    return moving.length > 0 ? Promise.all(moving.map((r) => r.done)) : undefined;
  }

  /** Re-reads a node's Stat after the watch said it changed; ENOENT if it is gone or became something else. */
  private async refresh(node: ZkNode): Promise<ZkNode> {
    if (!node.stale || node.pending) return node;
    const target = node.dataOf ?? node.path;
    const { dir, name } = this.metaKey(target);
    let stat: Stat | null;
    let meta: DirMeta;
    try {
      const zkPath = this.zkPath(target);
      const read = await this.readUnmoved([zkPath, this.markerZkPath(dir)], () => Promise.all([this.zk.exists(zkPath), this.loadMeta(dir)]));
      if (!read) return await this.refresh(node);
      [stat, meta] = read.value;
    } catch (err) {
      throw errnoFromZk(err);
    }
    if (!stat) throw new FsError('ENOENT');
    if (node.dataOf) {
      node.stat = { ...stat, numChildren: 0 };
      node.stale = false;
      return node;
    }
    const now = this.remember(node.path, stat, metaFor(meta, name, stat));
    if (now !== node) throw new FsError('ENOENT', 'replaced by another node');
    return now;
  }

  /** A node's attributes: at once when its directory's attribute map is cached. */
  private attr(node: ZkNode): MaybePromise<Attr> {
    return andThen(this.entryMeta(node), (meta) => this.attrWith(node, meta));
  }

  private attrWith(node: ZkNode, meta: EntryMeta | undefined, name = this.metaKey(node.path).name): Attr {
    const size = node.kind === 'dir' ? 4096 : (node.file?.size ?? largeFileSize(meta, node.stat) ?? node.stat.dataLength);
    const a = attrOf(node.kind, node.stat, meta, this.opts, size, name);
    if (node.dataOf) a.ino = inoOf(node.stat.czxid, undefined, '', DIR_DATA_ORDINAL);
    if (node.ino !== undefined) a.ino = node.ino;
    return a;
  }

  private lookupResult(node: ZkNode): MaybePromise<Lookup<ZkNode>> {
    return andThen(this.attr(node), (attr) => this.lookupWith(node, attr));
  }

  private lookupWith(node: ZkNode, attr: Attr): Lookup<ZkNode> {
    return { node, attr, entryTimeout: this.opts.cacheTimeout, attrTimeout: this.opts.cacheTimeout };
  }

  /** Another node changed a directory's entries: what we knew of them is stale. */
  private entriesChanged(dir: ZkNode): void {
    dir.entriesVersion++;
    dir.listing = undefined;
    dir.names = undefined;
  }

  /** We changed a directory's entries: the listing is re-read, the name set follows. */
  private entriesChangedHere(dir: ZkNode, added: string | undefined, removed: string | undefined): void {
    dir.entriesVersion++;
    dir.listing = undefined;
    if (removed !== undefined) dir.names?.delete(removed);
    if (added !== undefined) dir.names?.add(added);
  }

  /**
   * Runs a change to ZooKeeper. Watch events for `paths` (and anything under
   * `trees`) that arrive meanwhile are held until it is over; then those its
   * own writes caused are dropped (they tell us nothing new), and the rest,
   * other nodes' changes, are applied after the caller has updated the
   * caches. Counting matters: another node's change can arrive in the same
   * read as our reply, and must not pass for ours.
   */
  private async change<T>(paths: string[], run: () => Promise<T>, trees: string[] = []): Promise<T> {
    const claims: Array<[Map<string, InFlight>, string]> = [...paths.map((p) => [this.inflight, p] as [Map<string, InFlight>, string]), ...trees.map((p) => [this.inflightTrees, p] as [Map<string, InFlight>, string])];
    for (const [map, p] of claims) {
      const f = map.get(p);
      if (f) f.count++;
      else map.set(p, { count: 1, held: [], echoes: new Map() });
    }
    try {
      return await run();
    } finally {
      for (const [map, p] of claims) {
        const f = map.get(p)!;
        if (--f.count > 0) continue;
        map.delete(p);
        const others = f.held.filter((e) => {
          const key = echoKey(e);
          const echoes = f.echoes.get(key) ?? 0;
          if (echoes > 0) f.echoes.set(key, echoes - 1);
          return echoes === 0;
        });
        // Once the caller has recorded its change in the caches (its code right after this returns): these undo that.
        if (others.length > 0) this.track(new Promise((resolve) => setImmediate(resolve)).then(() => Promise.all(others.map((e) => this.applyEvent(e)))).then(() => undefined));
      }
    }
  }

  /** Which change in flight claims `path` (its events are held), if any. */
  private claimOf(path: string): InFlight | undefined {
    const ours = this.inflight.get(path);
    if (ours) return ours;
    for (const [root, f] of this.inflightTrees) if (isUnder(path, root)) return f;
    return undefined;
  }

  /** Our write succeeded: the events it caused on claimed paths are echoes to drop. */
  private ownWrites(caused: WatchEvent[]): void {
    for (const e of caused) {
      const f = this.claimOf(e.path);
      if (!f) continue;
      const key = echoKey(e);
      f.echoes.set(key, (f.echoes.get(key) ?? 0) + 1);
    }
  }

  /**
   * Runs `attempt` again while it loses races on version checks (another node
   * changed the same map or file), and after a lost connection while the
   * operation timeout lasts. After a lost connection the previous attempt may
   * or may not have been applied: `afterLoss` tells the attempt to accept the
   * state it would itself have made.
   */
  /** `dirs`: the directories whose cached maps a lost race drops (a function when a rename of ours may move them between attempts). */
  /** `epoch`: the directory epoch the attempt's transaction is fenced at (see multiFenced). */
  private async retrying<T>(attempt: (afterLoss: boolean, epoch: number) => Promise<T>, dirs: readonly string[] | (() => readonly string[])): Promise<T> {
    const deadline = Date.now() + this.zk.opts.operationTimeoutMs;
    let afterLoss = false;
    for (let i = 0; ; i++) {
      let epoch = 0;
      try {
        epoch = (await this.epoch?.current()) ?? 0;
        return await attempt(afterLoss, epoch);
      } catch (err) {
        const lost = err instanceof ZkError && err.code === ErrorCode.CONNECTIONLOSS && Date.now() < deadline;
        if ((!lostRace(err) && !lost) || i >= MAX_RETRIES) throw errnoFromZk(err);
        afterLoss ||= lost;
        // Failed on the epoch alone: the maps it trusted that changed were dropped by their own events.
        if (this.epoch?.failed(err, epoch)) continue;
        for (const d of typeof dirs === 'function' ? dirs() : dirs) {
          this.metas.delete(d);
          const dir = this.nodes.get(d);
          if (dir) dir.seenChild = undefined;
        }
      }
    }
  }

  /**
   * Sends a transaction that trusts what this node knows of directories
   * (their maps' versions, their markers): applied only if no directory was
   * removed or re-created since `epoch` (see dir-epoch.ts). `bump`: it removes
   * or re-creates one itself. The results are the ops' own.
   */
  private async multiFenced(ops: MultiOp[], epoch: number, bump = false): Promise<MultiResult[]> {
    if (!this.epoch) return this.zk.multi(ops);
    const reports = this.epoch.reportCount;
    const results = await this.zk.multi([...ops, this.epoch.fence(epoch, bump)]);
    this.epoch.committed(epoch, bump, reports);
    return results.slice(0, -1);
  }

  /**
   * The op that stores directory `dir`'s map after `edit`; `fresh` names entries
   * created in the same transaction. Creates the marker if the directory has none,
   * which also keeps a directory made by another tool a directory once emptied.
   */
  private metaOp(dir: string, base: DirMeta, entries: Map<string, EntryMeta>, fresh: ReadonlySet<string> = new Set()): MultiOp {
    const path = this.markerZkPath(dir);
    const data = encodeMeta(entries, fresh);
    if (data.length > this.opts.maxRequest / 2) throw new FsError('ENOSPC', `the attribute map of ${dir} is full (${data.length} bytes)`);
    return base.marker ? { op: 'setData', path, data, version: base.version } : { op: 'create', path, data, acl: this.opts.acl };
  }

  /**
   * After a transaction: the map we wrote is the map (setData gave its
   * version), or re-read it: also when another node's write of it was
   * reported meanwhile (more events for it than our own writes caused).
   */
  private metaWritten(dir: string, entries: Map<string, EntryMeta>, fresh: ReadonlySet<string>, result: MultiResult | undefined): void {
    const markerPath = this.markerZkPath(dir);
    const claim = this.claimOf(markerPath);
    const reported = claim?.held.filter((e) => e.path === markerPath).length ?? 0;
    const ours = [EventType.NodeCreated, EventType.NodeDataChanged, EventType.NodeDeleted].reduce((n, type) => n + (claim?.echoes.get(echoKey({ type, path: markerPath })) ?? 0), 0);
    if (result?.op !== 'setData' || reported > ours) {
      this.metas.delete(dir);
      return;
    }
    const txn = Number(result.stat.mzxid);
    const resolved = new Map<string, EntryMeta>();
    for (const [name, meta] of entries) {
      const m = resolveThisTxn(meta, txn);
      resolved.set(name, fresh.has(name) ? { ...m, z: txn, ...(m.mz !== undefined ? { mz: txn } : {}) } : m);
    }
    this.keepMeta(dir, { marker: true, version: result.stat.version, entries: resolved });
  }

  /** Attributes a new entry needs stored: owner and mode when they differ from the volume defaults. */
  private async newMeta(ctx: RequestContext, parent: ZkNode, kind: Kind, perms: number): Promise<EntryMeta | undefined> {
    if (!this.rules.markers) return undefined; // zookeeper-fuse's layouts keep no attributes
    const parentAttr = await this.attr(parent);
    const setgidDir = (parentAttr.mode & S_ISGID) !== 0;
    if (setgidDir && kind === 'dir') perms |= S_ISGID;
    const meta: EntryMeta = { z: 0, m: perms & 0o7777, u: ctx.uid, g: setgidDir ? parentAttr.gid : ctx.gid };
    if (kind === 'symlink') meta.t = 'l';
    return pruneMeta(meta, kind, this.opts);
  }

  private checkName(name: string): void {
    if (this.rules.reserved.has(name)) throw new FsError('EPERM', `${name} is reserved by swarmvol`);
    if (Buffer.byteLength(name) > 255) throw new FsError('ENAMETOOLONG');
    if (!storableName(name)) {
      throw new FsError('EINVAL', 'ZooKeeper cannot store this name: control characters, characters outside the Basic Multilingual Plane (emoji) and private-use characters are not allowed in znode names');
    }
  }

  private checkCreate(name: string, kind: Kind): void {
    this.checkName(name);
    if (kind === 'symlink' && !this.rules.markers) throw new FsError('EPERM', `no symlinks in ${this.opts.mode} mode (hybrid mode has them)`);
    if (kind === 'file' && this.opts.mode === 'dir') throw new FsError('EPERM', `in dir mode every znode is a directory: mkdir it, and write its data to ${this.rules.dataName}`);
  }

  /** Creates an entry (file, symlink or directory with its marker) now. */
  private async createEntry(ctx: RequestContext, parent: ZkNode, name: string, kind: Kind, perms: number, data: Buffer): Promise<ZkNode> {
    this.checkCreate(name, kind);
    const meta = await this.newMeta(ctx, parent, kind, perms);
    // A new directory is known empty, unless another node made something in it before we heard back
    // (its events came in before our reply's continuation ran, with no node here to apply them to).
    const since = kind === 'dir' ? this.changes.begin() : undefined;
    let stat: Stat;
    let path: string;
    let emptyNow = kind === 'dir';
    try {
      stat = await this.storeEntry(parent, name, kind, meta, data);
      // Where the directory is now: a rename of ours may have moved it while the entry was made.
      path = joinPath(parent.path, name);
      if (since !== undefined) emptyNow = !this.changes.changedBelow(this.zkPath(path), since, MARKER_NAME);
    } finally {
      if (since !== undefined) this.changes.end(since);
    }
    this.entriesChangedHere(parent, name, undefined);
    if (kind === 'dir' && this.opts.mode === 'file') this.pinnedDirs.add(path);
    const node = this.remember(path, stat, meta && { ...meta, z: Number(stat.czxid) });
    if (emptyNow && this.rules.markers) this.keepMeta(path, { marker: true, version: 0, entries: new Map() });
    node.data = data;
    if (emptyNow) node.names = new Set();
    return node;
  }

  /**
   * Makes an entry's znode (a directory's with its marker) in one transaction
   * with its attributes. The znode is created empty and its data set in the
   * same transaction: a multi's create answers without a Stat, its setData
   * with one (so a new znode is at data version CREATED_VERSION). The
   * transaction checks that the parent is still the directory we know
   * (mapToWriteIn). EEXIST if the name is taken. After a lost connection, an
   * entry made since that is not what the attempt makes is not ours: EEXIST too.
   */
  private async storeEntry(parent: ZkNode, name: string, kind: Kind, meta: EntryMeta | undefined, data: Buffer): Promise<Stat> {
    const before = this.zk.lastSeenZxid;
    // Only what this request writes is claimed: another node's change of the parent's attribute
    // map (a symlink made there) must reach the cache.
    const zkPathNow = this.zkPath(joinPath(parent.path, name));
    const claimed = [zkPathNow, ...(kind === 'dir' ? [`${zkPathNow}/${MARKER_NAME}`] : []), ...(meta ? [this.markerZkPath(parent.path)] : [])];
    return this.change(claimed, () =>
      this.retrying(async (afterLoss, epoch) => {
        if (afterLoss) {
          // The attempt cut off by the lost connection may have created it: a znode made since is ours,
          // if a file, only with exactly this content (else another node made it meanwhile).
          const existing = await this.zk.getData(this.zkPath(joinPath(parent.path, name))).catch(missing);
          if (existing && existing.stat.czxid > before) {
            // Ours only if it is what the attempt made: a file with exactly this content, a symlink with this
            // target (never written again), a directory with its marker. Else another node made it meanwhile,
            // or replaced ours: taking a file for the directory made here would answer MKDIR with a file.
            const ours =
              kind === 'file'
                ? existing.stat.version === CREATED_VERSION && existing.data.equals(data)
                : kind === 'symlink'
                  ? existing.stat.version === 0 && existing.stat.numChildren === 0 && existing.data.equals(data)
                  : !this.rules.markers || existing.stat.numChildren > 0;
            if (!ours) throw new FsError('EEXIST');
            this.metas.delete(parent.path);
            return existing.stat;
          }
        }
        // The directory's path when the attempt starts, after any rename of ours moving it: one moving it
        // before the transaction is sent starts the attempt again (MovedByRename). The guard, the create
        // and the map must name one directory, and an exchange leaves the other directory, with a marker
        // of the same version, at the old path.
        await this.renameOver([this.zkPath(parent.path)]);
        const dir = parent.path;
        const moves = parent.moves;
        const base = await this.mapToWriteIn(dir, parent);
        const zkPath = this.zkPath(joinPath(dir, name));
        const marker = `${zkPath}/${MARKER_NAME}`;
        const ops = this.dirGuard(parent, base, meta !== undefined);
        // A symlink is made with its target, at data version 0, and never written again: no file's
        // version-checked write (a file is at version 1 or more) can land on it.
        const symlink = kind === 'symlink';
        ops.push({ op: 'create', path: zkPath, data: symlink ? data : Buffer.alloc(0), acl: this.opts.acl });
        if (kind === 'dir' && this.rules.markers) ops.push({ op: 'create', path: marker, data: Buffer.alloc(0), acl: this.opts.acl });
        // After the marker's create: the Stat counts it.
        const created = symlink ? -1 : ops.push({ op: 'setData', path: zkPath, data, version: CREATED_VERSION - 1 }) - 1;
        let entries: Map<string, EntryMeta> | undefined;
        const fresh = new Set([name]);
        if (meta) {
          entries = new Map(base.entries).set(name, meta);
          ops.push(this.metaOp(dir, base, entries, fresh));
        }
        if (parent.path !== dir || parent.moves !== moves || this.renameOver([this.zkPath(dir)])) throw new MovedByRename(joinPath(dir, name));
        const results = await this.multiFenced(ops, epoch);
        if (entries) this.metaWritten(dir, entries, fresh, results[results.length - 1]);
        if (symlink) {
          // Its Stat follows from the transaction's (no setData in it, in a directory without a map yet: asked).
          const txn = transactionStat(results);
          const stat = txn ? createdLeafStat(txn, data) : await this.zk.exists(zkPath);
          if (!stat) throw new FsError('ENOENT');
          return stat;
        }
        const result = results[created];
        if (result?.op !== 'setData') throw new FsError('EIO', 'unexpected multi result');
        return result.stat;
      }, () => [parent.path]),
    );
  }

  /**
   * A new file whose znode its first commit makes, with the content: one
   * request where a create at open and a setData at close took two. Until
   * then the file exists in this process only; whatever needs its znode
   * (renames, removals, locks, attribute changes) makes it first
   * (materialize). See canCreateLater for when.
   */
  private async createLater(ctx: RequestContext, parent: ZkNode, name: string, perms: number): Promise<ZkNode> {
    this.checkCreate(name, 'file');
    const meta = await this.newMeta(ctx, parent, 'file', perms);
    const path = joinPath(parent.path, name);
    const t = Date.now();
    const stat: Stat = { czxid: 0n, mzxid: 0n, ctime: t, mtime: t, version: 0, cversion: 0, aversion: 0, ephemeralOwner: 0n, dataLength: 0, numChildren: 0, pzxid: 0n };
    const node = new ZkNode(path, stat, 'file');
    node.pending = { parent, meta, creating: undefined, refused: undefined };
    node.ino = PROVISIONAL_INO | ++this.provisionalInos;
    node.data = Buffer.alloc(0);
    this.nodes.set(path, node);
    this.pendingCreates.add(node);
    this.entriesChangedHere(parent, name, undefined);
    return node;
  }

  /**
   * Whether a new file can be created by its first commit: a whole file being
   * written (O_TRUNC, as `>`, open(..., 'w') and writeFile do), without O_EXCL,
   * under a name known to be free. Its inode number changes at that commit,
   * so not for files opened to be kept open and updated (SQLite opens its
   * database without O_TRUNC and takes a changed inode number for a moved file).
   */
  private canCreateLater(parent: ZkNode, name: string, req: OpenRequest): boolean {
    if (!this.rules.markers || !req.truncate || req.flags & C.O_EXCL) return false;
    if (!parent.names || parent.stale || parent.names.has(name)) return false;
    const known = this.nodes.get(joinPath(parent.path, name));
    return known === undefined || known.stale;
  }

  /**
   * Starts `create` as the create under way of a file created here: an
   * unlink or a materialize meanwhile waits for it rather than racing it. If
   * it fails, none is under way any more and the next commit tries again.
   */
  private startCreate(node: ZkNode, create: () => Promise<boolean>): Promise<boolean> {
    const p = node.pending!;
    p.creating = create().catch((err: unknown) => {
      if (node.pending === p) p.creating = undefined;
      throw err;
    });
    return p.creating;
  }

  /**
   * Makes the znode of a file created here (createLater) with `data` (its
   * content if `content`, else empty); true once stored. False if another
   * node made a file of that name meanwhile: the node then stands for that
   * znode, and the caller's commit replaces its content (the last commit
   * wins, as between any two writers).
   */
  private async createPending(node: ZkNode, data: Buffer, content: boolean): Promise<boolean> {
    const p = node.pending!;
    const gone = () => new FsError('ENOENT', `the directory of ${node.path} was removed or replaced on another node; this file was not stored`);
    for (let attempt = 0; ; attempt++) {
      // Where the file is now: a rename of ours may move its directory between attempts.
      const { dir, name } = parentOf(node.path);
      if (this.nodes.get(dir) !== p.parent) throw gone();
      let stat: Stat;
      try {
        stat = await this.storeEntry(p.parent, name, 'file', p.meta, data);
      } catch (err) {
        if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ESTALE')) throw gone();
        if (!(err instanceof FsError && err.code === 'EEXIST')) throw err;
        let existing: Stat | null;
        let map: DirMeta;
        try {
          const zkPath = this.zkPath(node.path);
          // With the map read now, not the cached one: the event of a symlink made there meanwhile may
          // still be held (by our own change's claim) or unapplied, and the symlink would pass for a file
          // whose content this one replaces.
          const read = await this.readUnmoved([zkPath, this.markerZkPath(dir)], () => Promise.all([this.zk.exists(zkPath), this.fetchMeta(dir)]));
          // A rename of ours moved it meanwhile: again, from where it is now.
          if (!read) {
            if (attempt >= MAX_RETRIES) throw new MovedByRename(node.path);
            continue;
          }
          [existing, map] = read.value;
        } catch (e) {
          throw errnoFromZk(e);
        }
        if (!existing) {
          if (attempt >= MAX_RETRIES) throw new FsError('EIO', `${node.path} keeps being created and removed on another node; this file was not stored`);
          continue; // removed again meanwhile
        }
        const kind = this.kindAt(node.path, existing, metaFor(map, name, existing));
        if (kind !== 'file') {
          throw new FsError(kind === 'dir' ? 'EISDIR' : 'EEXIST', `another node made a ${kind === 'dir' ? 'directory' : 'symlink'} named ${node.path} meanwhile; this file was not stored`);
        }
        this.dropData(node);
        node.stat = existing;
        // Opened with O_TRUNC: what is open here replaces that content, even if nothing was written.
        if (node.file) node.file.dirty = true;
        await this.settled(node);
        this.entriesChangedHere(p.parent, undefined, undefined);
        return false;
      }
      if (content) this.stored(node, stat, data);
      else {
        node.stat = stat;
        node.data = data;
      }
      await this.settled(node);
      this.entriesChangedHere(p.parent, name, undefined);
      return true;
    }
  }

  /** A file created here has its znode: from now on it is like any other, with the inode number from its czxid (the same on every node; the kernel asks again). */
  private async settled(node: ZkNode): Promise<void> {
    this.forgetPending(node);
    node.ino = undefined;
    await this.cache?.invalidateAttributes(node);
  }

  private forgetPending(node: ZkNode): void {
    node.pending = undefined;
    this.pendingCreates.delete(node);
  }

  /** Makes the znode of a file created here (createLater) now, empty if its content is not committed yet. */
  private async materialize(node: ZkNode | undefined): Promise<void> {
    const p = node?.pending;
    if (!node || !p) return;
    await (p.creating ?? this.startCreate(node, () => this.createPending(node, Buffer.alloc(0), false)));
  }

  /** Materializes every file created here at or under `path` (before a rename or removal that ZooKeeper must see whole). */
  private async materializeUnder(path: string): Promise<void> {
    await Promise.all([...this.pendingCreates].filter((node) => isUnder(node.path, path)).map((node) => this.materialize(node)));
  }

  // ---- reading --------------------------------------------------------------------

  /** Answered from the cache at once when it can be (no promise): a known node, or a name known to be missing. */
  lookup(_ctx: RequestContext, parent: ZkNode, name: string): MaybePromise<Lookup<ZkNode> | undefined> {
    return this.lookupIn(parent, name);
  }

  private lookupIn(parent: ZkNode, name: string): MaybePromise<Lookup<ZkNode> | undefined> {
    if (name === this.rules.dataName) {
      const withData = (dir: ZkNode) => {
        const zdata = this.dirDataNode(dir);
        return zdata && this.lookupResult(zdata);
      };
      // Whether it exists follows the directory's own data, which a stale Stat may not show yet (a listing would).
      return parent.stale ? this.refresh(parent).then(withData) : withData(parent);
    }
    if (this.rules.reserved.has(name) || !storableName(name)) return undefined;
    const path = joinPath(parent.path, name);
    const known = this.nodes.get(path);
    if (known && !known.stale) return this.lookupResult(known);
    if (!known && parent.names && !parent.stale && !parent.names.has(name)) return undefined;
    return this.lookupRemote(parent, name, path, known);
  }

  private async lookupRemote(parent: ZkNode, name: string, path: string, known: ZkNode | undefined): Promise<Lookup<ZkNode> | undefined> {
    const ahead = this.readAhead?.take(path);
    if (ahead) {
      await ahead;
      // A rename of ours moved the directory meanwhile: the name is looked up where it is now.
      if (joinPath(parent.path, name) !== path) return this.lookupIn(parent, name);
      const fetched = this.nodes.get(path);
      if (fetched && !fetched.stale && (fetched.data || fetched.kind === 'dir')) return this.lookupResult(fetched);
      known = fetched;
    }
    // The content comes along (ZooKeeper data is small): the open that usually follows costs no request.
    let found: { data: Buffer; stat: Stat } | undefined;
    let map: DirMeta;
    try {
      const zkPath = this.zkPath(path);
      const read = await this.readUnmoved([zkPath, this.markerZkPath(parent.path)], () => Promise.all([this.zk.getData(zkPath).catch(missing), this.loadMeta(parent.path)]));
      if (!read) return await this.lookupIn(parent, name);
      [found, map] = read.value;
    } catch (err) {
      throw errnoFromZk(err);
    }
    if (!found) {
      if (known) this.nodes.delete(path);
      // Learn the directory's names once: later lookups of missing names (creating files) cost nothing.
      if (!parent.names) {
        const names = await this.zk.getChildren(this.zkPath(parent.path)).catch(() => undefined);
        if (names) parent.names = this.namesIn(parent, names.children);
      }
      return undefined;
    }
    const node = this.remember(path, found.stat, metaFor(map, name, found.stat));
    node.data = found.data;
    if (node.kind !== 'dir') this.readCold(parent, name);
    return this.lookupResult(node);
  }

  /**
   * A file of `dir` was fetched cold. After READ_AHEAD_AFTER of them in quick
   * succession, the directory is being read file by file: its other files
   * are fetched ahead.
   */
  private readCold(dir: ZkNode, name: string): void {
    if (!this.readAhead) return;
    const read = inSuccession(dir, name, 'coldReads', READ_AHEAD_AFTER);
    if (!read) return;
    void this.readAheadIn(dir, read).catch((err: unknown) => log.debug('read-ahead failed', { path: dir.path, error: (err as Error).message }));
  }

  /** Reads ahead the files of `dir` not known yet, in the order the reader of `read` (its cold reads so far) follows. */
  private async readAheadIn(dir: ZkNode, read: readonly string[]): Promise<void> {
    const children = dir.names && !dir.stale ? [...dir.names] : (await this.zk.getChildren(this.zkPath(dir.path))).children;
    const paths: string[] = [];
    const limit = this.opts.readAhead ?? DEFAULT_READ_AHEAD;
    for (const name of readerOrder(children, read)) {
      if (paths.length >= limit) break;
      if (this.rules.reserved.has(name)) continue;
      const path = joinPath(dir.path, name);
      const known = this.nodes.get(path);
      if (known && !known.stale && (known.data || known.file || known.kind === 'dir')) continue;
      paths.push(path);
    }
    this.readAhead!.schedule(paths);
  }

  /** One file read ahead: what a lookup of it would fetch, kept as a lookup would keep it. Returns its size. */
  private async fetchAhead(path: string): Promise<number> {
    const { dir, name } = parentOf(path);
    const zkPath = this.zkPath(path);
    const renamingBefore = this.renameOver([zkPath]);
    const moves = this.renamesEnded;
    const {
      value: [found, map],
      changed: [changed, metaChanged],
    } = await this.changes.read([zkPath, this.markerZkPath(dir)], () => Promise.all([this.batch.getData(zkPath), this.loadMeta(dir)]));
    // Gone, changed meanwhile or being renamed here (the lookup will read it), or open here (an open file's content is its own business).
    if (!found || changed || metaChanged || renamingBefore || this.renameOver([zkPath]) || this.renamesEnded !== moves || this.nodes.get(path)?.file) return 0;
    const node = this.remember(path, found.stat, metaFor(map, name, found.stat));
    this.keepUnclaimed(node, found.data);
    return found.data.length;
  }

  /**
   * Keeps content fetched ahead of any read, within READ_AHEAD_UNCLAIMED_BYTES
   * for all such files: past it, the oldest lose their content (a read
   * fetches it again). A read that uses it claims it (`claim`).
   */
  private keepUnclaimed(node: ZkNode, data: Buffer): void {
    node.data = data;
    if (this.unclaimed.delete(node)) this.unclaimedBytes -= node.unclaimedBytes;
    // The node itself counts too, so that empty files are bounded in number.
    node.unclaimedBytes = data.length + 256;
    this.unclaimed.add(node);
    this.unclaimedBytes += node.unclaimedBytes;
    for (const old of this.unclaimed) {
      if (this.unclaimedBytes <= READ_AHEAD_UNCLAIMED_BYTES) break;
      this.claim(old);
      if (!old.file) old.data = undefined;
    }
  }

  /**
   * What this process holds of `node` may be an older version: it is read
   * again. Descriptors already open keep reading the version they opened
   * (see open); new opens, and a lock grant, get the new one.
   */
  private superseded(node: ZkNode): void {
    this.dropData(node);
    node.stale = true;
    node.kernelCached = undefined;
    if (node.file && !node.file.dirty) {
      node.file.stale = true;
      node.file = undefined;
    }
  }

  private dropData(node: ZkNode): void {
    node.data = undefined;
    this.claim(node);
  }

  /** Content fetched ahead is being used (or dropped): it no longer counts against the read-ahead budget. */
  private claim(node: ZkNode): void {
    if (this.unclaimed.delete(node)) this.unclaimedBytes -= node.unclaimedBytes;
  }

  /** The file showing a directory's own data (`.zdata` when it has some; dir mode: `_zoo_data_`, always). */
  private dirDataNode(dir: ZkNode): ZkNode | undefined {
    const name = this.rules.dataName;
    if (!name || dir.kind !== 'dir' || (dir.stat.dataLength === 0 && !this.rules.dataAlways)) return undefined;
    return this.remember(joinPath(dir.path, name), { ...dir.stat, numChildren: 0 }, undefined, dir.path);
  }

  getattr(_ctx: RequestContext, node: ZkNode): MaybePromise<Attr> {
    if (!node.stale) return this.attr(node);
    return this.refresh(node).then((fresh) => this.attr(fresh));
  }

  readdir(_ctx: RequestContext, node: ZkNode): MaybePromise<DirEntry[]> {
    if (node.listing && !node.stale) return node.listing;
    const queued = this.listAhead?.take(node.path);
    if (queued) return queued.then(() => (node.listing && !node.stale ? node.listing : this.list(node)));
    if (node !== this.root) {
      const { dir, name } = parentOf(node.path);
      const parent = this.nodes.get(dir);
      if (parent) this.listedCold(parent, name);
    }
    return this.list(node);
  }

  /**
   * READDIRPLUS of the listing kept for `parent` names its children's nodes.
   * While the listing is kept (any change of the directory's entries drops
   * it, and so does a rename of ours moving a child out) and the directory is
   * the node at its path, a child that is neither stale nor replaced is what
   * a lookup by name would answer: no path is built, no name looked up.
   */
  listedLookup(parent: ZkNode, entries: DirEntry[], index: number): Lookup<ZkNode> | undefined {
    // A directory dropped from the nodes (replaced, or emptied into a file by another node) no longer
    // hears of its children's moves: its listing may name a node that is elsewhere now.
    if (parent.listing !== entries || parent.stale || this.nodes.get(parent.path) !== parent) return undefined;
    const { node: child, name } = entries[index] as ListedEntry;
    if (!child || child.stale || child.pending || this.nodes.get(child.path) !== child) return undefined;
    const map = this.cachedMeta(parent.path);
    if (!map) return undefined;
    return this.lookupWith(child, this.attrWith(child, metaFor(map, name, child.stat), name));
  }

  /**
   * A subdirectory of `parent` is listed cold. After LIST_AHEAD_AFTER of them
   * in quick succession, the tree is being walked (ls -R, find, du, tar c):
   * the parent's other subdirectories are listed ahead.
   */
  private listedCold(parent: ZkNode, name: string): void {
    if (!this.listAhead) return;
    if (!inSuccession(parent, name, 'coldLists', LIST_AHEAD_AFTER)) return;
    this.listSiblingsAhead(parent, name);
  }

  /**
   * Lists ahead the subdirectories of `parent` not listed yet, those after
   * `current` (in name order) first: LIST_AHEAD_WINDOW listings at a time, at
   * most LIST_AHEAD_DIRS directories and LIST_AHEAD_ENTRIES entries.
   */
  private listSiblingsAhead(parent: ZkNode, current: string): void {
    const listing = parent.listing;
    if (!listing) return;
    const at = listing.findIndex((e) => e.name === current);
    const ordered = at < 0 ? listing : [...listing.slice(at + 1), ...listing.slice(0, at)];
    const paths: string[] = [];
    let entries = 0;
    for (const e of ordered) {
      if (e.mode !== C.S_IFDIR || e.name === '.' || e.name === '..') continue;
      const path = joinPath(parent.path, e.name);
      const dir = this.nodes.get(path);
      if (!dir || dir.kind !== 'dir' || (dir.listing && !dir.stale)) continue;
      entries += dir.stat.numChildren;
      if (paths.length >= LIST_AHEAD_DIRS || entries > LIST_AHEAD_ENTRIES) break;
      paths.push(path);
    }
    this.listAhead!.schedule(paths);
  }

  private async listAheadOne(path: string): Promise<number> {
    const dir = this.nodes.get(path);
    if (dir && dir.kind === 'dir' && !(dir.listing && !dir.stale)) await this.list(dir);
    return 0;
  }

  private async list(node: ZkNode): Promise<DirEntry[]> {
    // The attribute map is watched over the whole listing: if it changes, entries are classified
    // with the map read before and are neither cached nor kept (lookups read them again).
    const since = this.changes.begin();
    try {
      return await this.listWatched(node, since);
    } finally {
      this.changes.end(since);
    }
  }

  private async listWatched(node: ZkNode, since: number): Promise<DirEntry[]> {
    let children: string[];
    let map: DirMeta;
    // An entry change reported while the listing is fetched may be missing from it: then it is not kept.
    const version = node.entriesVersion;
    // Nor is a listing during which a rename of ours ended: it may have read one path and kept under another.
    const moves = this.renamesEnded;
    try {
      const [r, m] = await Promise.all([this.zk.getChildren(this.zkPath(node.path)), this.loadMeta(node.path)]);
      children = r.children.filter((c) => !this.rules.reserved.has(c)).sort();
      if (node.entriesVersion === version) node.names = this.namesIn(node, children);
      map = m;
      if (r.stat.czxid === node.stat.czxid && this.renamesEnded === moves) {
        node.stat = r.stat;
        node.stale = false;
      }
    } catch (err) {
      throw errnoFromZk(err);
    }
    const up = this.nodes.get(parentOf(node.path).dir) ?? this.root;
    const entries: DirEntry[] = [
      { name: '.', ino: (await this.attr(node)).ino, mode: C.S_IFDIR },
      { name: '..', ino: (await this.attr(up)).ino, mode: C.S_IFDIR },
    ];
    // Stat every child in a few multiReads, so READDIRPLUS's lookups hit the cache. Nothing
    // may be awaited between the end of this read and caching its replies: an event coming
    // in meanwhile would no longer be noted, and an older reply would be cached after it.
    const paths = children.map((c) => joinPath(node.path, c));
    const zkPaths = paths.map((p) => this.zkPath(p));
    let stats: Array<Listed | null>;
    let changed: boolean[];
    const movingBefore = zkPaths.map((p) => this.renameOver([p]) !== undefined);
    try {
      ({ value: stats, changed } = await this.changes.read(zkPaths, () => this.batch.statMany(zkPaths, this.opts.mode !== 'dir')));
    } catch (err) {
      throw errnoFromZk(err);
    }
    const current = node.entriesVersion === version && !this.changes.changedSince(this.markerZkPath(node.path), since) && this.renamesEnded === moves;
    children.forEach((name, i) => {
      const listed = stats[i];
      if (!listed) return; // deleted meanwhile
      const { stat, data } = listed;
      const meta = metaFor(map, name, stat);
      const path = paths[i]!;
      if (current && !changed[i] && !movingBefore[i] && !this.renameOver([zkPaths[i]!])) {
        const child = this.remember(path, stat, meta);
        // The content came along: a read (or readlink) of it after the listing costs no request.
        if (data && child.kind !== 'dir' && !child.data && !child.file) this.keepUnclaimed(child, data);
        const entry: ListedEntry = { name, ino: child.ino ?? inoOf(stat.czxid, meta, name), mode: typeBits(child.kind), node: child };
        entries.push(entry);
        return;
      }
      // A child changed meanwhile (or the entries did, or a rename of ours is moving it) is listed but not cached: its lookup reads it again.
      const known = this.nodes.get(path);
      const kind = known?.pending ? 'file' : this.kindAt(path, stat, meta);
      entries.push({ name, ino: known?.ino ?? inoOf(stat.czxid, meta, name), mode: typeBits(kind) });
    });
    // Files created here whose znode their first commit makes.
    const stored = new Set(children);
    for (const p of this.pendingIn(node)) {
      const name = parentOf(p.path).name;
      if (!stored.has(name)) entries.push({ name, ino: p.ino!, mode: C.S_IFREG });
    }
    const zdata = this.dirDataNode(node);
    if (zdata) entries.push({ name: this.rules.dataName!, ino: inoOf(zdata.stat.czxid, undefined, '', DIR_DATA_ORDINAL), mode: C.S_IFREG });
    if (current) node.listing = entries;
    return entries;
  }

  /** The names in `dir`: its children in ZooKeeper (reserved ones left out), and the files created here not stored yet. */
  private namesIn(dir: ZkNode, children: string[]): Set<string> {
    const names = new Set(children.filter((c) => !this.rules.reserved.has(c)));
    for (const p of this.pendingIn(dir)) names.add(parentOf(p.path).name);
    return names;
  }

  /** The files created here in `dir` whose znode is not made yet. */
  private pendingIn(dir: ZkNode): ZkNode[] {
    if (this.pendingCreates.size === 0) return [];
    return [...this.pendingCreates].filter((p) => parentOf(p.path).dir === dir.path);
  }

  /** A node's committed content, from cache or ZooKeeper. */
  private async content(node: ZkNode, reading = false): Promise<Buffer> {
    if (node.data && !node.stale) return this.used(node, node.data);
    const ahead = node.dataOf ? undefined : this.readAhead?.take(node.path);
    if (ahead) {
      await ahead;
      if (node.data && !node.stale) return this.used(node, node.data);
    }
    try {
      const zkPath = this.zkPath(node.dataOf ?? node.path);
      const read = await this.readUnmoved([zkPath], () => this.zk.getData(zkPath));
      if (!read) return await this.content(node, reading);
      const r = read.value;
      if (!node.dataOf && node.stat.czxid !== 0n && r.stat.czxid !== node.stat.czxid) {
        // Another znode under this name: what the kernel asks about was removed on another node and
        // the name reused (a symlink's target must not become a file's content). ESTALE makes the
        // kernel look the name up again.
        node.stale = true;
        throw new FsError('ESTALE', `${node.path} was replaced on another node`);
      }
      node.stat = node.dataOf ? { ...r.stat, numChildren: 0 } : r.stat;
      node.stale = false;
      node.data = r.data;
      this.claim(node);
      if (reading && !node.dataOf) {
        const { dir, name } = parentOf(node.path);
        const parent = this.nodes.get(dir);
        if (parent) this.readCold(parent, name);
      }
      return r.data;
    } catch (err) {
      throw errnoFromZk(err);
    }
  }

  /** Content about to be read: if it was fetched ahead, it is claimed. */
  private used(node: ZkNode, data: Buffer): Buffer {
    this.claim(node);
    return data;
  }

  async readlink(_ctx: RequestContext, node: ZkNode): Promise<string> {
    if (node.kind !== 'symlink') throw new FsError('EINVAL');
    return (await this.content(node)).toString('utf8');
  }

  async open(_ctx: RequestContext, node: ZkNode, req: OpenRequest, justCreated = false): Promise<OpenResult<ZkHandle>> {
    if (node.kind === 'dir') throw new FsError('EISDIR');
    const check = this.reconnectChecks.get(node);
    if (check) await check;
    let file = node.file;
    let keepCache = true;
    let content: Buffer | undefined;
    if (!file) {
      // Opening to write starts from the latest committed content, even if the
      // watch has not told us yet of a close on another node (no lost update).
      if ((req.write || req.truncate) && !justCreated && !node.pending) await this.revalidate(node);
      file = this.adopt(node, await this.loadFile(node, !req.write && !req.truncate));
      // The kernel keeps its pages only if they hold this very version: a read
      // through an older open may have refilled them after an invalidation.
      keepCache = node.kernelCached === node.stat.mzxid;
      node.kernelCached = node.stat.mzxid;
      if (req.read && !req.truncate) content = file.whole(PRELOAD_MAX);
    }
    // The kernel's pages are shared by every descriptor: while one still reads an older
    // version (and refills pages with it), this open reads past them, and vouches for none.
    const directIo = this.readsOlderVersion(node);
    if (directIo) {
      keepCache = false;
      node.kernelCached = undefined;
      content = undefined;
    }
    file.opens++;
    if (req.truncate && file.size > 0) await file.truncate(0);
    // The kernel's page cache stays valid across opens: the watch invalidates it on any change.
    const handle: ZkHandle = { node, file, append: req.append, writes: req.write || req.truncate };
    node.addHandle(handle);
    return { handle, keepCache, content, directIo };
  }

  /** Whether large files can live at this node (hybrid mode keeps their size in the attribute map; a .zdata file is a directory's data). */
  private chunkable(node: ZkNode): boolean {
    return this.rules.markers && !node.dataOf;
  }

  /** The manifest in a node's content, if it is a large file's. */
  private async manifestOf(node: ZkNode, data: Buffer): Promise<Manifest | undefined> {
    if (!this.chunkable(node)) return undefined;
    const manifest = decodeManifest(data);
    if (!manifest) return undefined;
    let meta = await this.entryMeta(node);
    if (largeFileSize(meta, node.stat) === undefined) {
      // The map may predate the manifest by a watch event: ask again before calling it plain bytes.
      this.metas.delete(this.metaKey(node.path).dir);
      meta = await this.entryMeta(node);
    }
    return largeFileSize(meta, node.stat) === manifest.size ? manifest : undefined;
  }

  /**
   * A file's committed content as an OpenFile. A large file's version is
   * pinned before it is used: the pin goes first, then ZooKeeper confirms the
   * version is still the current one (a commit elsewhere would see the pin
   * and keep its chunks), else the new version is read. `reading`: opened
   * only to read (a cold one counts towards the directory's read-ahead).
   */
  private async loadFile(node: ZkNode, reading = false): Promise<OpenFile> {
    const maxSize = this.chunkable(node) ? this.opts.maxFileSize : Math.min(this.opts.maxFileSize, this.inline);
    const options = { chunkSize: this.chunkSize, maxSize, load: (name: string) => this.chunks.load(name) };
    for (let attempt = 0; ; attempt++) {
      const data = await this.content(node, reading);
      const manifest = await this.manifestOf(node, data);
      if (!manifest) return new OpenFile(options, data);
      const seen = node.stat.mzxid;
      let pin: { path: string; confirmed: Stat | null };
      try {
        pin = await this.chunks.pin(manifest, () => this.zk.exists(this.zkPath(node.path)));
      } catch (err) {
        throw errnoFromZk(err);
      }
      const stat = pin.confirmed;
      if (stat?.mzxid === seen) return new OpenFile(options, manifest, pin.path);
      void this.chunks.unpin(pin.path).catch(() => undefined);
      if (!stat) throw new FsError('ENOENT');
      if (attempt >= MAX_RETRIES) throw new FsError('EIO', `${node.path} keeps changing; could not read one version of it`);
      this.dropData(node);
      node.stale = true;
    }
  }

  /** Makes `loaded` the node's shared open content, unless another open loaded one meanwhile (then that one, and `loaded` goes). */
  private adopt(node: ZkNode, loaded: OpenFile): OpenFile {
    const file = node.file ?? loaded;
    if (file !== loaded) this.dispose(loaded);
    node.file = file;
    return file;
  }

  /** One open handle fewer on `file`; after the last, its version's pin goes (the last reader of a replaced version collects its chunks). */
  private closeFile(node: ZkNode, file: OpenFile): void {
    if (--file.opens > 0) return;
    if (node.file === file) node.file = undefined;
    this.dispose(file);
  }

  private dispose(file: OpenFile): void {
    if (file.pin) this.unpinLater(file.pin);
    file.pin = undefined;
  }

  private unpinLater(pin: string): void {
    void this.chunks.unpin(pin).catch((err: unknown) => log.warn('could not drop a large file pin; the version it pins is collected once the session of this mount ends', { error: (err as Error).message }));
  }

  /** Asks ZooKeeper whether the content changed; if so, drops it here and in the kernel. */
  private async revalidate(node: ZkNode): Promise<void> {
    let stat: Stat | null;
    try {
      stat = await this.zk.exists(this.zkPath(node.dataOf ?? node.path));
    } catch (err) {
      throw errnoFromZk(err);
    }
    if (!stat) throw new FsError('ENOENT');
    if (stat.mzxid === node.stat.mzxid && !node.stale) return;
    this.dropContent(node);
  }

  /** Drops a file's content, here and in the kernel: ZooKeeper holds a newer version. */
  private dropContent(node: ZkNode): void {
    this.dropData(node);
    node.stale = true;
    // An open's reply then goes without KEEP_CACHE, which drops the pages anyway.
    node.kernelCached = undefined;
    void this.cache?.invalidateNode(node);
  }

  async read(_ctx: RequestContext, h: ZkHandle, offset: number, size: number): Promise<Buffer> {
    return h.file.read(offset, size).catch((err: unknown) => {
      throw errnoFromZk(err);
    });
  }

  /** Whether a descriptor of `node` still reads a version that a change replaced (see open). */
  private readsOlderVersion(node: ZkNode): boolean {
    for (const h of node.handles) if (h.file.stale) return true;
    return false;
  }

  async statfs(): Promise<StatfsOut> {
    const limit = this.quota.limit;
    if (limit === undefined) return { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: STATFS_BLOCK, namelen: 255, frsize: STATFS_BLOCK };
    let used;
    try {
      used = await this.quota.usage();
    } catch (err) {
      throw errnoFromZk(err);
    }
    // df: size = the quota, used = the bytes the volume's znodes hold.
    const blocks = Math.ceil(limit / STATFS_BLOCK);
    const free = Math.max(0, blocks - Math.ceil(used.bytes / STATFS_BLOCK));
    return { blocks, bfree: free, bavail: free, files: used.count + 1_000_000, ffree: 1_000_000, bsize: STATFS_BLOCK, namelen: 255, frsize: STATFS_BLOCK };
  }

  // ---- writing --------------------------------------------------------------------

  async write(_ctx: RequestContext, h: ZkHandle, offset: number, data: Buffer): Promise<number> {
    // The kernel computed an O_APPEND offset from a size it may have cached before another node's change.
    const at = h.append ? h.file.size : offset;
    const growth = at + data.length - h.file.storedSize;
    if (!this.quota.fitsByLastUsage(growth)) {
      // `data` is only valid until we await: keep a copy while ZooKeeper is asked.
      data = Buffer.from(data);
      await this.checkQuota(h.node, h.file, growth);
    }
    try {
      return await h.file.write(offset, data, h.append);
    } catch (err) {
      throw errnoFromZk(err);
    }
  }

  /** EDQUOT if `growth` more bytes would pass the quota; the open file is then refused as a whole (nothing partial is stored). */
  private async checkQuota(node: ZkNode, file: OpenFile, growth: number): Promise<void> {
    try {
      await this.quota.check(growth);
    } catch (err) {
      const e = errnoFromZk(err);
      if (e.code === 'EDQUOT') {
        file.refused = e;
        if (node.pending) node.pending.refused = e;
        // New opens read what is stored, not this refused content.
        if (node.file === file) node.file = undefined;
      }
      throw e;
    }
  }

  /**
   * Stores an open file's content (commits of one file are serialized); the
   * reply makes it durable in ZooKeeper. A small file is one setData; a large
   * file's changed chunks are stored first, then one transaction switches its
   * manifest (docs/zookeeper-layout.md, "Large files").
   */
  private commit(node: ZkNode, file: OpenFile): Promise<void> {
    const run = file.committing
      .catch(() => undefined)
      .then(async () => {
        if (file.refused) throw file.refused;
        if (node.pending?.refused) throw node.pending.refused;
        // A file created here is stored by its first commit even if nothing was written.
        if (!file.dirty && !node.pending) return;
        file.dirty = false;
        if (node.unlinked) return; // removed by this process: nothing to keep, as on a local disk
        try {
          // Not stored by it: a large file (its znode made empty) or one another node made meanwhile (opened with O_TRUNC: replaced).
          if (node.pending && (await this.commitCreate(node, file))) return;
          const plain = await this.commitPlain(node, file);
          if (plain !== true) await this.commitVersion(node, file, plain || undefined);
        } catch (err) {
          file.dirty = true;
          if (err instanceof ZkError && err.code === ErrorCode.NONODE) {
            throw new FsError('ESTALE', `${node.path} was removed or renamed on another node; this content was not stored`);
          }
          throw errnoFromZk(err);
        }
      });
    file.committing = run;
    return run;
  }

  /**
   * The first commit of a file created here: its znode made with the content
   * in one request. False when the content is not stored by it: a large file
   * (its znode is made empty, then the usual commit stores the chunks), or a
   * name taken meanwhile by another node (the usual commit replaces that).
   */
  private async commitCreate(node: ZkNode, file: OpenFile): Promise<boolean> {
    const p = node.pending!;
    if (!p.creating && file.size <= this.inline) {
      return this.startCreate(node, async () => {
        const { data, snapshot } = await file.contentBytes();
        if (!(await this.createFits(node, data.length))) {
          await this.createPending(node, Buffer.alloc(0), false);
          return false;
        }
        await this.checkQuota(node, file, data.length);
        const stored = await this.createPending(node, data, true);
        if (stored) file.committed(snapshot, undefined, data.length);
        return stored;
      });
    }
    await this.materialize(node);
    return false;
  }

  /** Whether a new file of `size` bytes fits in the one request that creates it (with its directory's attribute map, if it has attributes). */
  private async createFits(node: ZkNode, size: number): Promise<boolean> {
    if (size > this.inline) return false;
    const p = node.pending!;
    if (!p.meta) return true;
    const { name } = parentOf(node.path);
    const base = await this.loadMeta(p.parent.path);
    return size + encodeMeta(new Map(base.entries).set(name, p.meta), new Set([name])).length <= this.inline;
  }

  /**
   * The one-request commit of a small file that was small before; false when the file is (or was, or became
   * meanwhile) a large one, or what was sent when a lost connection took the reply (commitVersion tells).
   */
  private async commitPlain(node: ZkNode, file: OpenFile): Promise<boolean | LostPlainCommit> {
    // Judged on this one Stat and checked against its version: a large version written meanwhile, elsewhere or
    // by another descriptor here, makes the setData fail instead of being overwritten with its chunks uncollected.
    const known = node.stat;
    const checked = this.chunkable(node);
    if (checked && (file.base || file.size > this.inline || largeFileSize(await this.entryMeta(node), known) !== undefined)) return false;
    // At version 0 (made by another tool, never written here) its version is a symlink's: commitVersion looks first.
    if (checked && known.version < CREATED_VERSION) return false;
    // The watch said it changed: another node may have put something else under its name, which
    // a version check alone does not see (a new znode starts at the same version). commitVersion looks.
    if (node.stale) return false;
    const at = node.dataOf ?? node.path;
    const moves = node.moves;
    const { dir, name } = parentOf(node.path);
    // Taken before the map is read: the map's version check means something only while the directory stays the one it was.
    const epoch = (await this.epoch?.current()) ?? 0;
    const map = checked ? await this.loadMeta(dir) : NO_MARKER;
    if (replacedPerMap(map, name, known)) return false;
    const { data, snapshot } = await file.contentBytes();
    const target = this.zkPath(at);
    await this.checkQuota(node, file, data.length - known.dataLength);
    // A rename of ours moved it, or is moving it, meanwhile: commitVersion writes it where it is. Removed
    // here meanwhile (a file made again under the name would be at the version known): commitVersion drops it.
    if ((node.dataOf ?? node.path) !== at || node.moves !== moves || this.renameOver([target]) || node.stale || node.unlinked) return false;
    let stat: Stat;
    const started = Date.now();
    try {
      if (!map.marker) stat = await this.change([target], () => this.zk.setData(target, data, checked ? known.version : -1));
      else {
        // Checked against the map we know too: if another node replaced the file by a symlink since
        // (which writes the map), the version check alone could pass, on the new znode.
        const ops: MultiOp[] = [{ op: 'setData', path: target, data, version: known.version }, { op: 'check', path: this.markerZkPath(dir), version: map.version }];
        const [result] = await this.change([target], () => this.multiFenced(ops, epoch));
        if (result?.op !== 'setData') throw new FsError('EIO', 'unexpected multi result');
        stat = result.stat;
      }
    } catch (err) {
      this.epoch?.failed(err, epoch);
      // Cut off by a lost connection (not timed out waiting for one): applied or not, commitVersion
      // reads what is stored, tells, and writes again if need be, with retries while the operation timeout lasts.
      if (err instanceof ZkError && err.code === ErrorCode.CONNECTIONLOSS && Date.now() - started < this.zk.opts.operationTimeoutMs) {
        return checked ? { read: known, data, snapshot } : false;
      }
      if (checked && err instanceof ZkError && err.code === ErrorCode.BADVERSION) {
        if (err instanceof ZkMultiError && err.failedIndex === 1) this.metas.delete(dir);
        return false;
      }
      throw err;
    }
    this.stored(node, stat, data);
    file.committed(snapshot, undefined, data.length);
    return true;
  }

  /**
   * After a commit: the node holds what was stored; the kernel's pages are
   * what it wrote through us, this version. Its attributes are not: the
   * kernel may hold a getattr's answer from before the commit (size and times
   * of the buffer) for an hour, and our own change comes back as no event.
   * A file created here is told by `settled` instead.
   */
  private stored(node: ZkNode, stat: Stat, data: Buffer): void {
    node.stat = node.dataOf ? { ...stat, numChildren: 0 } : stat;
    node.stale = false;
    node.data = data;
    node.kernelCached = stat.mzxid;
    if (!node.pending) void this.cache?.invalidateAttributes(node);
    if (node.dataOf) {
      const dir = this.nodes.get(node.dataOf);
      if (dir) {
        dir.stat = stat;
        void this.cache?.invalidateAttributes(dir);
      }
    }
  }

  /**
   * The commit that reads the stored version first: a large file's new chunks,
   * then one multi that switches the znode's content (a manifest or plain
   * bytes) checked against that version, records its size in the attribute
   * map, and records the chunks the old version used and the new one does not
   * as garbage (collected once nobody reads the old version).
   */
  private async commitVersion(node: ZkNode, file: OpenFile, lostPlain?: LostPlainCommit): Promise<void> {
    /** The chunks the current attempt stored (each attempt writes its own generation: a cut-off attempt's chunks are never trusted). */
    let attempt: { gen: string; names: string[] } | undefined;
    let switched = false;
    /** A large switch sent whose reply a lost connection took: it may be what is stored, until an attempt finds out. */
    let unresolved: { gen: string; manifest: Manifest; snapshot: ChunkPlan['snapshot']; pin: string; old: Manifest | undefined; session: bigint } | undefined;
    const finish = (stat: Stat, data: Buffer, manifest: Manifest | undefined, snapshot: ChunkPlan['snapshot'], pin: string | undefined, old: Manifest | undefined) => {
      this.stored(node, stat, data);
      committed(manifest, snapshot, pin, old, data.length);
    };
    const committed = (manifest: Manifest | undefined, snapshot: ChunkPlan['snapshot'], pin: string | undefined, old: Manifest | undefined, size: number) => {
      switched = true;
      const oldPin = file.pin;
      file.pin = pin;
      if (pin && manifest) this.chunks.pinned(pin, manifest);
      file.committed(snapshot, manifest, manifest?.size ?? size);
      if (oldPin) this.unpinLater(oldPin);
      if (old) this.chunks.collectLater(old.g);
    };
    const claimedDir = parentOf(node.path).dir;
    try {
      await this.change([this.zkPath(node.path), this.markerZkPath(claimedDir)], () =>
        this.retrying(async (_afterLoss, epoch) => {
          // Every path of an attempt is the node's when it starts; a rename of ours moving it
          // before the write is sent makes it start again (MovedByRename), after that rename.
          await this.renameOver([this.zkPath(node.path)]);
          const last = unresolved;
          const at = node.path;
          const moves = node.moves;
          const target = this.zkPath(at);
          const { dir, name } = parentOf(at);
          const marker = this.markerZkPath(dir);
          // Whether the unresolved switch was applied: the pin it made of its version (ephemeral, a name only this
          // mount makes, deleted only by it) is there. After a session expiry took the pin, the pending record
          // tells, if the switch stored chunks: only the switch deletes it (or the sweep, 10 minutes on).
          const lastApplied = async () => {
            if (!last) return false;
            if (this.zk.session.id === last.session) return (await this.zk.exists(last.pin)) !== null;
            return attempt !== undefined && attempt.names.length > 0 && !(await this.chunks.isPending(last.gen));
          };
          // Applied, then changed by another node before the connection came back: stored, and what is there now is not ours.
          // Its chunks stay: the version that replaced it may use some.
          const appliedThenChanged = (applied: NonNullable<typeof last>) => {
            unresolved = undefined;
            this.metas.delete(dir);
            committed(applied.manifest, applied.snapshot, applied.pin, applied.old, 0);
            this.dropContent(node);
          };
          let cur: { data: Buffer; stat: Stat };
          let base: DirMeta;
          try {
            [cur, base] = await this.readFresh([target, marker], () => Promise.all([this.zk.getData(target), this.loadMeta(dir)]));
          } catch (err) {
            // Removed or renamed on another node.
            if (err instanceof ZkError && err.code === ErrorCode.NONODE && (await lastApplied())) return appliedThenChanged(last!);
            throw err;
          }
          // Events for the file from here to the transaction's send tell that what was read is old.
          const since = this.changes.begin();
          try {
            const curMeta = metaFor(base, name, cur.stat);
            // Whatever czxid this node took (a rename of ours, a file another node made first), its content goes to a file only.
            if (!node.dataOf && this.kindAt(node.path, cur.stat, curMeta) !== 'file') {
              if (await lastApplied()) return appliedThenChanged(last!);
              // Another node made a directory or a symlink under this name: this file's content must not become its data.
              throw new FsError('ESTALE', `${node.path} was replaced on another node by a ${cur.stat.numChildren > 0 ? 'directory' : 'symlink'}; this content was not stored`);
            }
            const curManifest = largeFileSize(curMeta, cur.stat) !== undefined ? decodeManifest(cur.data) : undefined;
            // Read after the reconnect's sync: the lost write, if it is ever applied, shows (ZkClient.sessionReady).
            const sent = lostPlain;
            lostPlain = undefined;
            if (sent && !curManifest) {
              const outcome = lostPlainOutcome(sent, cur);
              if (outcome === 'stored') {
                this.metas.delete(dir);
                return finish(cur.stat, cur.data, undefined, sent.snapshot, undefined, sent.old);
              }
              if (outcome === 'stored, then extended') {
                // Another node appended to it: writing it again would take that acknowledged append away.
                this.metas.delete(dir);
                committed(undefined, sent.snapshot, undefined, sent.old, sent.data.length);
                return this.dropContent(node);
              }
              // Applied after all, then changed otherwise: the garbage it recorded goes now, not at the sweep.
              if (sent.old) this.chunks.collectLater(sent.old.g);
            }
            if (last && curManifest?.g === last.gen) {
              // The attempt cut off by a lost connection switched it.
              unresolved = undefined;
              this.metas.delete(dir);
              return finish(cur.stat, cur.data, last.manifest, last.snapshot, last.pin, last.old);
            }
            if (await lastApplied()) return appliedThenChanged(last!);
            // The previous attempt did not switch: its chunks go.
            if (attempt && attempt.names.length > 0) this.chunks.abandon(attempt.gen, attempt.names, last?.pin);
            unresolved = undefined;
            attempt = { gen: newGeneration(), names: [] };
            const gen = attempt.gen;
            let data: Buffer;
            let manifest: Manifest | undefined;
            let snapshot: ChunkPlan['snapshot'];
            if (file.size <= this.inline) {
              ({ data, snapshot } = await file.contentBytes());
              await this.checkQuota(node, file, data.length - cur.data.length);
            } else {
              const plan = await file.chunkPlan(gen, chunkNames(curManifest));
              ({ manifest, snapshot } = plan);
              data = encodeManifest(manifest);
              // The old chunks stay until collected: the new ones count in full.
              await this.checkQuota(node, file, plan.uploads.reduce((n, u) => n + u.data.length, 0) + data.length - cur.data.length);
              if (plan.uploads.length > 0) {
                attempt.names = plan.uploads.map((u) => u.name);
                await this.chunks.upload(gen, plan.uploads, attempt.names);
              }
            }
            const ops: MultiOp[] = [{ op: 'setData', path: target, data, version: cur.stat.version }];
            // The size of a large file lives beside its other attributes, valid for this very version.
            const rest = plainFileEntry(curMeta ?? { z: Number(cur.stat.czxid) });
            const next = manifest ? largeFileEntry(rest, manifest.size) : pruneMeta(rest, 'file', this.opts);
            const entries = new Map(base.entries);
            if (next) entries.set(name, next);
            else entries.delete(name);
            const metaChanged = JSON.stringify(curMeta) !== JSON.stringify(next);
            // The file was told from a symlink with this map: it must still be the map (its write checks that too).
            if (metaChanged) ops.push(this.metaOp(dir, base, entries));
            else if (base.marker && !node.dataOf) ops.push({ op: 'check', path: marker, version: base.version });
            const garbage = [...chunkNames(curManifest)].filter((n) => !chunkNames(manifest).has(n));
            if (curManifest && garbage.length > 0) ops.push(this.chunks.garbage(curManifest.g, garbage));
            if (attempt.names.length > 0) ops.push(this.chunks.pendingDone(gen));
            const pin = manifest && this.chunks.newPin(manifest);
            if (pin) ops.push(pin.op);
            const old = garbage.length > 0 ? curManifest : undefined;
            // Changed since it was read (a watch event: written, removed or re-created, here or elsewhere; or
            // events missed over a reconnect), unless still the znode read at the version read: a znode
            // re-created meanwhile may be at that version, which the switch's check alone would pass.
            if (this.changes.changedSince(target, since) && !(await this.stillAsRead(target, cur.stat))) throw new ChangedMeanwhile(at);
            // Removed by this process while its chunks were stored: nothing to keep, as on a local disk (they go).
            if (node.unlinked) return;
            if (node.path !== at || node.moves !== moves || this.renameOver([target])) throw new MovedByRename(at);
            const session = this.zk.session.id;
            let results: MultiResult[];
            try {
              results = await this.multiFenced(ops, epoch);
            } catch (err) {
              if (manifest && pin && isConnectionLoss(err)) unresolved = { gen, manifest, snapshot, pin: pin.path, old, session };
              else if (!manifest && isConnectionLoss(err)) lostPlain = { read: cur.stat, data, snapshot, old };
              throw err;
            }
            if (metaChanged) this.metaWritten(dir, entries, new Set(), results[1]);
            const first = results[0];
            if (first?.op !== 'setData') throw new FsError('EIO', 'unexpected multi result');
            finish(first.stat, data, manifest, snapshot, pin?.path, old);
            if (manifest && first.stat.czxid !== cur.stat.czxid) {
              // Another node removed the file and made it again (at the data version read) just before the
              // switch reached the server, its events not here yet: the map names the old znode.
              // Best effort: the content is stored either way.
              await this.adoptSwitch(dir, name, first.stat, manifest.size).catch((err: unknown) => {
                log.warn('a large file made again on another node may read as its manifest; write it again', { path: at, error: (err as Error).message });
              });
              this.dropContent(node);
            }
          } finally {
            this.changes.end(since);
          }
        }, [claimedDir]),
      );
    } finally {
      // Failed as far as this node knows; a switch sent, its reply lost, may have been applied all the same (abandon tells).
      if (!switched && attempt && attempt.names.length > 0) this.chunks.abandon(attempt.gen, attempt.names, unresolved?.pin);
      else if (!switched && unresolved) void this.chunks.dropPin(unresolved.pin).catch(() => undefined);
    }
  }

  /**
   * Gives the entry of `name` in `dir` to the znode a large switch landed on
   * (`stat`), made after the commit last looked: the map written with the
   * switch names the znode it replaced, and this one would otherwise read as
   * the manifest's text. Nothing to do once the file was written again (that
   * write stored its own entry). Its other attributes are the new znode's
   * own: the defaults when the switch was written (a create that set any
   * would have written the map, and the switch's version check of the map
   * would have failed), or what another node set since.
   */
  private async adoptSwitch(dir: string, name: string, stat: Stat, size: number): Promise<void> {
    const target = this.zkPath(joinPath(dir, name));
    await this.retrying(async (_afterLoss, epoch) => {
      const base = await this.mapToWriteIn(dir);
      // Attributes another node gave the new znode since (a chmod) stay.
      const current = base.entries.get(name);
      const own = current?.z === Number(stat.czxid) ? plainFileEntry(current) : { z: Number(stat.czxid) };
      const entries = new Map(base.entries).set(name, { ...own, s: size, sm: Number(stat.mzxid) });
      try {
        const results = await this.multiFenced([{ op: 'check', path: target, version: stat.version }, this.metaOp(dir, base, entries)], epoch);
        this.metaWritten(dir, entries, new Set(), results[1]);
      } catch (err) {
        if (!(err instanceof ZkMultiError && err.failedIndex === 0)) throw err;
      }
    }, [dir]);
  }

  /** Whether `zkPath` is still the znode `read` describes, at its version (it may have been changed and changed back in between: not at the same version). */
  private async stillAsRead(zkPath: string, read: Stat): Promise<boolean> {
    const now = await this.zk.exists(zkPath);
    return now !== null && now.czxid === read.czxid && now.version === read.version;
  }

  async flush(_ctx: RequestContext, h: ZkHandle): Promise<void> {
    if (h.writes) await this.commit(h.node, h.file);
  }

  async fsync(_ctx: RequestContext, h: ZkHandle): Promise<void> {
    if (h.writes || h.node.pending) await this.commit(h.node, h.file);
  }

  /** fsync(2) of a directory: the files created in it here get their znodes. */
  async fsyncdir(_ctx: RequestContext, dir: ZkNode): Promise<void> {
    await Promise.all(this.pendingIn(dir).map((node) => this.materialize(node)));
  }

  async release(_ctx: RequestContext, h: ZkHandle): Promise<void> {
    const node = h.node;
    let failed: Error | undefined;
    try {
      // The last close of a file created here stores it, whichever descriptor that is.
      if (h.writes || (node.pending && node.handles.size === 1)) await this.commit(node, h.file);
    } catch (err) {
      failed = err as Error;
    }
    node.removeHandle(h);
    this.closeFile(node, h.file);
    if (h.file.stale && !this.readsOlderVersion(node)) {
      // The last descriptor of an older version: whatever pages it left go too.
      node.kernelCached = undefined;
      void this.cache?.invalidateNode(node);
    }
    if (!failed) return;
    // Releases are not ordered: whichever failed one finds no other descriptor left drops the file never stored.
    if (node.pending && node.handles.size === 0) await this.dropPending(node);
    // What this open wrote was not stored: the kernel's pages and attributes (its size) must not keep it either.
    node.kernelCached = undefined;
    void this.cache?.invalidateNode(node);
    if (!h.file.refused) log.error('content lost: the last close could not store it', { path: node.path, error: failed.message });
  }

  /** A file created here that could not be stored, closed for the last time: it never existed. */
  private async dropPending(node: ZkNode): Promise<void> {
    const { name } = parentOf(node.path);
    const parent = await this.discardPending(node);
    if (parent) void this.cache?.entryDeleted(parent, node, name);
  }

  /**
   * Forgets a file created here whose znode is not made (its commits then
   * store nothing) and returns its directory; undefined if it has its znode.
   * A create under way (a commit, or a rename, lock or fsync of the
   * directory that needed the znode) decides first: if it made it, the
   * file stays.
   */
  private async discardPending(node: ZkNode): Promise<ZkNode | undefined> {
    while (node.pending?.creating) await node.pending.creating.catch(() => undefined);
    const p = node.pending;
    if (!p) return undefined;
    this.forgetPending(node);
    node.unlinked = true;
    if (this.nodes.get(node.path) === node) this.nodes.delete(node.path);
    // Not just this name: another node may have made one meanwhile (why a commit failed, say).
    this.entriesChanged(p.parent);
    return p.parent;
  }

  async create(ctx: RequestContext, parent: ZkNode, name: string, mode: number, req: OpenRequest): Promise<{ entry: Lookup<ZkNode>; open: OpenResult<ZkHandle> }> {
    if (name === this.rules.dataName) {
      // Writing a directory's own data through a .zdata that does not show yet (the data is empty).
      const zdata = this.remember(joinPath(parent.path, name), { ...parent.stat, numChildren: 0 }, undefined, parent.path);
      return { entry: await this.lookupResult(zdata), open: await this.open(ctx, zdata, req) };
    }
    if (this.canCreateLater(parent, name, req)) {
      const node = await this.createLater(ctx, parent, name, mode & 0o7777);
      const open = await this.open(ctx, node, req, true);
      // Its close stores the file, even if opened read-only (other descriptors' never do).
      open.handle.writes = true;
      return { entry: await this.lookupResult(node), open };
    }
    let node: ZkNode;
    try {
      node = await this.createEntry(ctx, parent, name, 'file', mode & 0o7777, Buffer.alloc(0));
    } catch (err) {
      // Made meanwhile on another node: without O_EXCL, open(O_CREAT) opens it.
      if (!(err instanceof FsError && err.code === 'EEXIST') || req.flags & C.O_EXCL) throw err;
      const found = await this.lookup(ctx, parent, name);
      if (!found) throw err;
      // A symlink is followed by the kernel, not here: ESTALE makes it look the name up again.
      if (found.node.kind === 'symlink') throw new FsError('ESTALE', `${found.node.path} became a symlink on another node`);
      return { entry: found, open: await this.open(ctx, found.node, req) };
    }
    const open = await this.open(ctx, node, req, true);
    open.handle.created = Date.now();
    return { entry: await this.lookupResult(node), open };
  }

  async mknod(ctx: RequestContext, parent: ZkNode, name: string, mode: number): Promise<Lookup<ZkNode>> {
    if ((mode & C.S_IFMT) !== C.S_IFREG) throw new FsError('EPERM', 'only regular files, directories and symlinks can be stored in ZooKeeper');
    return this.lookupResult(await this.createEntry(ctx, parent, name, 'file', mode & 0o7777, Buffer.alloc(0)));
  }

  async mkdir(ctx: RequestContext, parent: ZkNode, name: string, mode: number): Promise<Lookup<ZkNode>> {
    return this.lookupResult(await this.createEntry(ctx, parent, name, 'dir', mode & 0o7777, Buffer.alloc(0)));
  }

  async symlink(ctx: RequestContext, parent: ZkNode, name: string, target: string): Promise<Lookup<ZkNode>> {
    if (Buffer.byteLength(target) >= 4096) throw new FsError('ENAMETOOLONG');
    return this.lookupResult(await this.createEntry(ctx, parent, name, 'symlink', 0o777, Buffer.from(target, 'utf8')));
  }

  /**
   * `touch` (times set to now) in zookeeper-fuse's modes, which store no
   * times: the znode's data written back as it is makes ZooKeeper's mtime
   * now, on every node. A write meanwhile made it newer anyway.
   */
  private async touchData(node: ZkNode): Promise<Attr> {
    const zkPath = this.zkPath(node.dataOf ?? node.path);
    try {
      const { data, stat } = await this.zk.getData(zkPath);
      const after = await this.zk.setData(zkPath, data, stat.version);
      node.stat = node.dataOf ? { ...after, numChildren: 0 } : after;
      if (node.data) node.data = data;
    } catch (err) {
      if (!(err instanceof ZkError && err.code === ErrorCode.BADVERSION)) throw errnoFromZk(err);
      node.stale = true;
      node = await this.refresh(node);
    }
    return this.attr(node);
  }

  async setattr(_ctx: RequestContext, node: ZkNode, changes: AttrChanges, handle: ZkHandle | undefined): Promise<Attr> {
    node = await this.refresh(node);
    if (changes.size !== undefined) await this.truncate(node, changes.size, handle);
    const { mode, uid, gid, atime, mtime } = changes;
    // touch of a new file: times set to now while the create is still open. Its first commit stamps it
    // later still, or the znode, never written since, was made within the last second: nothing to store.
    const onlyNow = mode === undefined && uid === undefined && gid === undefined && !changes.killSuidgid && (atime === undefined || atime === 'now') && (mtime === undefined || mtime === 'now');
    if (onlyNow && (node.pending || this.justCreated(node))) return this.attr(node);
    await this.materialize(node);
    const killSuidgid = changes.killSuidgid === true && changes.mode === undefined;
    // Times pinned now must survive the commit of content written before (cp -p sets them before close).
    if ((atime !== undefined || mtime !== undefined) && node.file?.dirty) await this.commit(node, node.file);
    if (onlyNow && (atime === 'now' || mtime === 'now') && !this.rules.markers) return this.touchData(node);
    if ((mode !== undefined || uid !== undefined || gid !== undefined || atime !== undefined || mtime !== undefined) && !this.rules.markers) {
      throw new FsError('EPERM', `${this.opts.mode} mode stores no modes, owners or times (hybrid mode does)`);
    }
    if (mode !== undefined || uid !== undefined || gid !== undefined || atime !== undefined || mtime !== undefined || (killSuidgid && this.rules.markers)) {
      await this.setMeta(node, async (current, attr) => {
        const m: EntryMeta = { ...current };
        if (mode !== undefined) m.m = mode & 0o7777;
        else if (killSuidgid && attr.mode & (S_ISUID | S_ISGID)) m.m = attr.mode & 0o7777 & ~(S_ISUID | S_ISGID);
        if (uid !== undefined) m.u = uid;
        if (gid !== undefined) m.g = gid;
        if (atime !== undefined || mtime !== undefined) {
          const t = now();
          const pick = (v: typeof atime, cur: { sec: number; nsec: number }): [number, number] => (v === 'now' ? t : v ? [v.sec, v.nsec] : [cur.sec, cur.nsec]);
          m.mt = pick(mtime, attr.mtime);
          m.at = pick(atime, attr.atime);
          m.mz = Number(node.stat.mzxid);
        }
        m.ct = now();
        return m;
      });
    }
    return this.attr(node);
  }

  /** Made by a create of this process less than a second ago, still open, and never written since. */
  private justCreated(node: ZkNode): boolean {
    if (node.stat.version > CREATED_VERSION) return false;
    const now = Date.now();
    for (const h of node.handles) if (h.created !== undefined && now - h.created < JUST_CREATED_MS) return true;
    return false;
  }

  /** Read-modify-write of a node's entry in its directory's map, retried when another node got there first. */
  private async setMeta(node: ZkNode, edit: (current: EntryMeta, attr: Attr) => Promise<EntryMeta>): Promise<void> {
    if (node.dataOf) throw new FsError('EPERM', `${this.rules.dataName} has the attributes of its directory`);
    await this.change([this.markerZkPath(this.metaKey(node.path).dir)], () =>
      this.retrying(async (_afterLoss, epoch) => {
        // The entry is the node's where it stands when the attempt starts, and a rename of ours moving
        // it before the transaction is sent starts it again (MovedByRename): an exchange gives both
        // entries the transaction's czxid, and the other's entry (a symlink) would get this node's
        // attributes and lose its type.
        await this.renameOver([this.zkPath(node.path)]);
        const at = node.path;
        const moves = node.moves;
        const { dir, name } = this.metaKey(at);
        const base = await this.mapToWriteIn(dir);
        // Its entry would replace the newer znode's (a symlink's would lose its type).
        if (replacedPerMap(base, name, node.stat)) {
          node.stale = true;
          throw new FsError('ESTALE', `${node.path} was replaced on another node`);
        }
        const attr = await this.attr(node);
        const current = metaFor(base, name, node.stat) ?? { z: Number(node.stat.czxid) };
        const next = pruneMeta(await edit(current, attr), node.kind, this.opts);
        // Nothing but the change time would change (chown to the same owner, as tar does): no write.
        if (sameAttributes(metaFor(base, name, node.stat), next)) return;
        const entries = new Map(base.entries);
        if (next) entries.set(name, { ...next, z: Number(node.stat.czxid) });
        else entries.delete(name);
        // In a directory without a marker, the entry itself proves it still a directory when the map is created (see dirGuard).
        const guard: MultiOp[] = base.marker ? [] : [{ op: 'check', path: this.zkPath(at), version: -1 }];
        if (node.path !== at || node.moves !== moves || this.renameOver([this.zkPath(at)])) throw new MovedByRename(at);
        const results = await this.multiFenced([...guard, this.metaOp(dir, base, entries)], epoch);
        this.metaWritten(dir, entries, new Set(), results[results.length - 1]);
      }, () => [this.metaKey(node.path).dir]),
    );
    // Not awaited: chmod holds this inode's lock until we reply (see KernelCache).
    if (node.kind === 'symlink' || node.kind === 'file' || node.kind === 'dir') void this.cache?.invalidateNode(node);
  }

  private async truncate(node: ZkNode, size: number, handle: ZkHandle | undefined): Promise<void> {
    if (node.kind === 'dir') throw new FsError('EISDIR');
    // ftruncate is committed with the writes at close; truncate(2) by name, now.
    if (handle) return handle.file.truncate(size);
    let file = node.file;
    if (!file) {
      await this.revalidate(node);
      file = this.adopt(node, await this.loadFile(node));
    }
    file.opens++;
    try {
      await file.truncate(size);
      await this.commit(node, file);
    } finally {
      this.closeFile(node, file);
    }
  }

  // ---- removing and renaming ------------------------------------------------------

  async unlink(_ctx: RequestContext, parent: ZkNode, name: string): Promise<void> {
    if (name === this.rules.dataName) {
      // Removing a directory's .zdata clears the directory's own data: where the directory is once no
      // rename of ours is moving it (an exchange leaves the other directory at the old path).
      // An unconditional setData: after a lost connection it is simply sent again.
      parent.stat = await this.retrying(async () => {
        let target: string;
        do {
          await this.renameOver([this.zkPath(parent.path)]);
          target = this.zkPath(parent.path);
        } while (this.renameOver([target]));
        // Its Stat is the directory's: the .zdata it shows is gone, and the kernel, which drops the
        // directory's attributes after an unlink, gets the new ones (our own change comes back as no event).
        return this.change([target], () => this.zk.setData(target, Buffer.alloc(0)));
      }, []);
      this.entriesChangedHere(parent, undefined, undefined);
      const zdata = this.nodes.get(joinPath(parent.path, name));
      if (zdata) this.nodes.delete(zdata.path);
      return;
    }
    this.checkName(name);
    const target = this.nodes.get(joinPath(parent.path, name));
    // A file created here with no znode yet: nothing to remove in ZooKeeper.
    if (target && (await this.discardPending(target))) return;
    await this.remove(parent, name, 'file');
  }

  async rmdir(_ctx: RequestContext, parent: ZkNode, name: string): Promise<void> {
    this.checkName(name);
    // Files created in it here make it non-empty in ZooKeeper too.
    await this.materializeUnder(joinPath(parent.path, name));
    await this.remove(parent, name, 'dir');
  }

  /** Deletes an entry (a directory with its marker) and its attributes in one transaction. */
  private async remove(parent: ZkNode, name: string, want: 'file' | 'dir'): Promise<void> {
    let path = joinPath(parent.path, name);
    const claimedPath = this.zkPath(path);
    /** The generations whose garbage records the attempts sent (one whose reply a lost connection took may be applied). */
    const collect = new Set<string>();
    await this.change([claimedPath, `${claimedPath}/${MARKER_NAME}`, this.markerZkPath(parent.path)], () =>
      this.retrying(async (afterLoss, epoch) => {
        // Every path of an attempt is the directory's when it starts; a rename of ours moving it
        // before the transaction is sent makes it start again (MovedByRename), after that rename.
        await this.renameOver([this.zkPath(parent.path)]);
        const dir = parent.path;
        const moves = parent.moves;
        path = joinPath(dir, name);
        const zkPath = this.zkPath(path);
        const marker = `${zkPath}/${MARKER_NAME}`;
        const ops: MultiOp[] = [];
        let stat: Stat | null;
        let base: DirMeta;
        try {
          [stat, base] = await Promise.all([this.zk.exists(zkPath), this.mapToWriteIn(dir, parent)]);
          // A map naming a newer znode here than the Stat is read after a rename replaced the file
          // (the map read again on hearing of it): the Stat is the replaced file's, and its data
          // version, which the delete checks, may be the new one's too (a rename writes each
          // file once). Read it again, no older than the map, so a large file is known as one.
          if (stat && (base.entries.get(name)?.z ?? 0) > Number(stat.czxid)) stat = await this.zk.exists(zkPath);
        } catch (err) {
          throw errnoFromZk(err);
        }
        if (!stat && afterLoss) return; // the attempt cut off by the lost connection did it
        if (!stat) throw new FsError('ENOENT');
        const isDir = stat.numChildren > 0 || this.opts.mode === 'dir' || this.pinnedDirs.has(path);
        if (want === 'file' && isDir) throw new FsError('EISDIR');
        if (want === 'dir') {
          // File mode: a directory emptied of its children is a file by the mode's rule, but the
          // kernel asks to remove it as the directory it showed (rm -r), as zookeeper-fuse does.
          if (!isDir && this.opts.mode !== 'file') throw new FsError('ENOTDIR');
          const { children } = await this.zk.getChildren(zkPath);
          if (children.some((c) => c !== MARKER_NAME)) throw new FsError('ENOTEMPTY');
          // Its own data shows as a file in it (.zdata, _zoo_data_): remove that first, as any file.
          if (this.rules.dataName !== undefined && stat.dataLength > 0) throw new FsError('ENOTEMPTY');
          if (children.includes(MARKER_NAME)) ops.push({ op: 'delete', path: marker });
        }
        if (want === 'file' && largeFileSize(metaFor(base, name, stat), stat) !== undefined) {
          // A large file: its chunks become garbage in the same transaction (checked against the manifest read).
          const r = await this.zk.getData(zkPath);
          const manifest = r.stat.mzxid === stat.mzxid ? decodeManifest(r.data) : undefined;
          if (manifest) {
            ops.push(this.chunks.garbage(manifest.g, chunkNames(manifest)));
            collect.add(manifest.g);
          }
          stat = r.stat;
        }
        ops.push({ op: 'delete', path: zkPath, version: stat.version });
        let entries: Map<string, EntryMeta> | undefined;
        // Keep the parent's map tidy, and give a parent made by another tool a marker: it stays a
        // directory when emptied. The volume's top gets one too: the marker's create fails if a
        // commit of ours gave it a map meanwhile, which may have made this file large.
        if (this.rules.markers && (base.entries.has(name) || !base.marker)) {
          entries = new Map(base.entries);
          entries.delete(name);
          ops.push(this.metaOp(dir, base, entries));
        } else if (want === 'file' && base.marker) {
          // The map told a plain file from a large one: it must still be the map (a commit of ours
          // in flight may just have made the file large), else the chunks would be left behind.
          ops.push({ op: 'check', path: this.markerZkPath(dir), version: base.version });
        }
        if (parent.path !== dir || parent.moves !== moves || this.renameOver([zkPath])) throw new MovedByRename(path);
        // Removing a directory raises the epoch: one made again at this path must not pass for it.
        const results = await this.multiFenced(ops, epoch, want === 'dir');
        if (entries) this.metaWritten(dir, entries, new Set(), results[results.length - 1]);
      }, () => [parent.path]),
    );
    for (const gen of collect) this.chunks.collectLater(gen);
    this.entriesChangedHere(parent, undefined, name);
    this.pinnedDirs.delete(path);
    const node = this.nodes.get(path);
    if (node) {
      node.unlinked = true;
      this.nodes.delete(path);
    }
    this.metas.delete(path);
  }

  /** Reads a znode and everything under it (one request per znode, pipelined by level). */
  private async readSubtree(path: string, parentMeta: DirMeta): Promise<Subtree | undefined> {
    const zkPath = this.zkPath(path);
    const name = parentOf(path).name;
    let r: { data: Buffer; stat: Stat };
    try {
      r = await this.zk.getData(zkPath);
    } catch (err) {
      if (err instanceof ZkError && err.code === ErrorCode.NONODE) return undefined;
      throw err;
    }
    if (r.stat.ephemeralOwner !== 0n) throw new FsError('EBUSY', `${path} is an ephemeral znode (owned by a session) and cannot be moved`);
    if (r.stat.numChildren === 0) return { ...subtreeNode(zkPath, name, r.data, r.stat, parentMeta, undefined, this.opts.mode), children: [] };
    const { children } = await this.zk.getChildren(zkPath);
    let own = NO_MARKER;
    if (children.includes(MARKER_NAME)) {
      const m = await this.zk.getData(`${zkPath}/${MARKER_NAME}`);
      own = decodeMeta(m.data, m.stat.version, m.stat.mzxid);
    }
    const subs = await Promise.all(children.filter((c) => c !== MARKER_NAME).map((c) => this.readSubtree(joinPath(path, c), own)));
    return { ...subtreeNode(zkPath, name, r.data, r.stat, parentMeta, own, this.opts.mode), children: subs.filter((s): s is Subtree => s !== undefined) };
  }

  async rename(_ctx: RequestContext, parent: ZkNode, name: string, newParent: ZkNode, newName: string, flags: number): Promise<void> {
    this.checkName(name);
    this.checkName(newName);
    const NOREPLACE = 1;
    const EXCHANGE = 2;
    if (flags & ~(NOREPLACE | EXCHANGE) || (flags & NOREPLACE && flags & EXCHANGE)) throw new FsError('EINVAL');
    // Another rename of ours moving either directory (one of their ancestors) while this one is
    // prepared starts it again, after that rename, from where they are then: an exchange leaves the
    // other tree at the old paths, with the same czxids and versions, and this rename would move
    // what the kernel did not ask to move.
    for (let attempt = 0; ; attempt++) {
      await this.renameOver([this.zkPath(parent.path), this.zkPath(newParent.path)]);
      try {
        return await this.renameAt(parent, parent.path, name, newParent, newParent.path, newName, flags);
      } catch (err) {
        if (!(err instanceof DirectoryMoved) || attempt >= MAX_RETRIES) throw err;
      }
    }
  }

  /** rename with `parent` at `dir` and `newParent` at `newDir`; DirectoryMoved if a rename of ours moves either before the transaction is sent. */
  private async renameAt(parent: ZkNode, dir: string, name: string, newParent: ZkNode, newDir: string, newName: string, flags: number): Promise<void> {
    const EXCHANGE = 2;
    const NOREPLACE = 1;
    const from = joinPath(dir, name);
    const to = joinPath(newDir, newName);
    if (from === to) return;
    const exchange = (flags & EXCHANGE) !== 0;
    const moves = [parent.moves, newParent.moves];
    const movedAway = () => parent.path !== dir || newParent.path !== newDir || parent.moves !== moves[0] || newParent.moves !== moves[1] || this.renameOver([this.zkPath(dir), this.zkPath(newDir)]) !== undefined;
    // The transaction moves znodes: files created here, on either side, get theirs first.
    await Promise.all([this.materializeUnder(from), this.materializeUnder(to)]);
    if (movedAway()) throw new DirectoryMoved(from);
    const markers = [dir, newDir].map((d) => this.markerZkPath(d));
    let moved = false;
    let movedZnodes: MovedZnodes | undefined;
    /** What the last attempt sent to be moved: if a lost connection cut its reply off, what the retry finds moved. */
    let sentSrc: Subtree | undefined;
    let sentDst: Subtree | undefined;
    /** The generations whose garbage records the attempts sent (one whose reply a lost connection took may be applied). */
    const collect = new Set<string>();
    const trees = [this.zkPath(from), this.zkPath(to)];
    // What is read meanwhile under the two names is not kept until our nodes have moved (renameOver).
    let settle!: () => void;
    const renaming = { trees, done: new Promise<void>((resolve) => (settle = resolve)) };
    this.renames.add(renaming);
    try {
      await this.change(markers, () =>
        this.retrying(async (afterLoss, epoch) => {
          const [fromMeta, toMeta] = await Promise.all([this.mapToWriteIn(dir, parent), this.mapToWriteIn(newDir, newParent)]);
          const [src, dst] = await Promise.all([this.readSubtree(from, fromMeta), this.readSubtree(to, toMeta)]);
          // Read at the old paths, the subtrees may be what an exchange put there.
          if (movedAway()) throw new DirectoryMoved(from);
          if (!src && dst && afterLoss && !exchange) {
            // The attempt cut off by the lost connection did it: what is at `to` now is what it made.
            moved = true;
            if (sentSrc) movedZnodes = { czxid: dst.stat.czxid, from: czxidsOf(sentSrc), to: undefined };
            return;
          }
          if (exchange && afterLoss && sentSrc && sentDst && src && dst && exchangedSince(sentSrc, sentDst, src, dst)) {
            // An exchange cut off the same way did it (sending it again would swap them back).
            moved = true;
            movedZnodes = { czxid: src.stat.czxid, from: czxidsOf(sentSrc), to: czxidsOf(sentDst) };
            return;
          }
          if (!src) throw new FsError('ENOENT');
          if (exchange && !dst) throw new FsError('ENOENT');
          // What the kernel asks to move must be what is there: if another node replaced it, this node's view is behind.
          this.checkCurrent(from, src);
          if (exchange) this.checkCurrent(to, dst!);
          if (dst && flags & NOREPLACE) throw new FsError('EEXIST');
          if (dst && !exchange) {
            if (src.kind === 'dir' && dst.kind !== 'dir') throw new FsError('ENOTDIR');
            if (src.kind !== 'dir' && dst.kind === 'dir') throw new FsError('EISDIR');
            // A directory's own data shows as a file in it (.zdata, _zoo_data_): not empty either.
            if (dst.kind === 'dir' && (dst.children.length > 0 || (this.rules.dataName !== undefined && dst.stat.dataLength > 0))) throw new FsError('ENOTEMPTY');
          }
          const bytes = subtreeBytes(src) + (dst ? subtreeBytes(dst) : 0);
          if (bytes > this.opts.maxRequest - REQUEST_HEADROOM) {
            // EXDEV: mv and friends then copy and delete, entry by entry.
            throw new FsError('EXDEV', `renaming ${from} (${countNodes(src)} znodes, about ${bytes} bytes) exceeds what one ZooKeeper transaction takes (${this.opts.maxRequest} bytes)`);
          }
          if (countNodes(src) + (dst ? countNodes(dst) : 0) > MAX_ORDINAL) {
            throw new FsError('EXDEV', `renaming ${from} moves more than ${MAX_ORDINAL} entries in one ZooKeeper transaction`);
          }
          const sameDir = dir === newDir;
          const ops: MultiOp[] = [...this.dirGuard(parent, fromMeta, true), ...(sameDir ? [] : this.dirGuard(newParent, toMeta, true)), ...deleteOps(src)];
          if (dst) ops.push(...deleteOps(dst));
          const replaced = dst && !exchange && largeFileSize(dst.meta, dst.stat) !== undefined ? decodeManifest(dst.data) : undefined;
          if (replaced) {
            // A large file replaced by the rename: its chunks become garbage in the same transaction.
            ops.push(this.chunks.garbage(replaced.g, chunkNames(replaced)));
            collect.add(replaced.g);
          }
          const encode = this.rules.markers ? (e: Map<string, EntryMeta>, fresh: ReadonlySet<string>) => encodeMeta(e, fresh) : undefined;
          // Ordinal 0 is never used: the moved entries' inode numbers come from 1 up.
          const ordinals = { next: 1 };
          const srcMeta = movedMeta(src, this.opts, ordinals.next++);
          const dstMeta = exchange && dst ? movedMeta(dst, this.opts, ordinals.next++) : undefined;
          ops.push(...createOps(src, this.zkPath(to), this.opts.acl, this.opts, encode, ordinals));
          if (exchange && dst) ops.push(...createOps(dst, this.zkPath(from), this.opts.acl, this.opts, encode, ordinals));
          // The moved entries' attributes (with their mtimes pinned) follow them to their new names.
          const fromEntries = new Map(fromMeta.entries);
          const toEntries = sameDir ? fromEntries : new Map(toMeta.entries);
          const fromFresh = new Set<string>();
          const toFresh = sameDir ? fromFresh : new Set<string>();
          fromEntries.delete(name);
          toEntries.delete(newName);
          toEntries.set(newName, srcMeta);
          toFresh.add(newName);
          if (dstMeta) {
            fromEntries.set(name, dstMeta);
            fromFresh.add(name);
          }
          const metaDirs: Array<[string, DirMeta, Map<string, EntryMeta>, Set<string>]> = [[newDir, toMeta, toEntries, toFresh]];
          if (!sameDir) metaDirs.push([dir, fromMeta, fromEntries, fromFresh]);
          if (!this.rules.markers) metaDirs.length = 0;
          for (const [dir, base, entries, fresh] of metaDirs) ops.push(this.metaOp(dir, base, entries, fresh));
          if (movedAway()) throw new DirectoryMoved(from);
          sentSrc = src;
          sentDst = dst;
          let results: MultiResult[];
          try {
            // Moving or replacing a directory re-creates it: the epoch rises (see dir-epoch.ts).
            results = await this.multiFenced(ops, epoch, src.kind === 'dir' || dst?.kind === 'dir');
          } catch (err) {
            // Refused: not applied, whatever a later attempt finds.
            if (!isConnectionLoss(err)) sentSrc = sentDst = undefined;
            throw err;
          }
          metaDirs.forEach(([dir, , entries, fresh], i) => this.metaWritten(dir, entries, fresh, results[results.length - metaDirs.length + i]));
          // Without a setData in it, what the rename made is not known: the nodes are looked up again.
          const txn = transactionStat(results);
          if (txn) movedZnodes = { czxid: txn.mzxid, from: czxidsOf(src), to: dst && exchange ? czxidsOf(dst) : undefined };
          moved = true;
        }, [dir, newDir]),
        trees,
      );
      if (!moved) return;
      for (const gen of collect) this.chunks.collectLater(gen);
      this.entriesChangedHere(parent, exchange ? name : undefined, name);
      this.entriesChangedHere(newParent, newName, undefined);
      this.moveNodes(from, to, exchange, movedZnodes);
    } finally {
      this.renames.delete(renaming);
      this.renamesEnded++;
      settle();
    }
  }

  /**
   * ESTALE if our node at `path` stands for another znode than `now` (read
   * there just now): another node replaced it. The kernel then looks the
   * name up again (the node is stale, so ZooKeeper is asked) and retries.
   */
  private checkCurrent(path: string, now: Subtree): void {
    const node = this.nodes.get(path);
    if (!node || node.pending || node.stat.czxid === now.stat.czxid) return;
    node.stale = true;
    throw new FsError('ESTALE', `${path} was replaced on another node`);
  }

  /**
   * Our rename moved znodes: the kernel's nodes follow to the new paths. A
   * node takes the czxid of the re-created znode only if it stood for the very
   * znode moved (the czxid read by the rename, `moved`): a node whose view was
   * behind (another node had replaced that entry, and the rename moved the
   * replacement) must not pass for what the rename put there.
   */
  private moveNodes(from: string, to: string, exchange: boolean, moved: MovedZnodes | undefined): void {
    const moves: Array<[ZkNode, string, string, ReadonlyMap<string, bigint> | undefined]> = [];
    for (const [p, node] of this.nodes) {
      if (isUnder(p, from)) moves.push([node, to, p.slice(from.length), moved?.from]);
      else if (isUnder(p, to)) {
        if (exchange) moves.push([node, from, p.slice(to.length), moved?.to]);
        else node.unlinked = true;
      }
    }
    for (const [p] of [...this.nodes]) if (isUnder(p, from) || isUnder(p, to)) this.nodes.delete(p);
    for (const [p] of [...this.metas]) if (isUnder(p, from) || isUnder(p, to)) this.metas.delete(p);
    for (const [node, root, below, before] of moves) {
      node.path = root + below;
      node.moves++;
      this.nodes.set(node.path, node);
      // A directory's .zdata stands for the directory's znode.
      const znode = node.dataOf === undefined ? below : below.slice(0, below.lastIndexOf('/'));
      if (node.dataOf !== undefined) node.dataOf = root + znode;
      if (node.pending) continue; // no znode was moved for it: nothing to re-read
      if (moved && before?.get(znode) === node.stat.czxid) node.stat = { ...node.stat, czxid: moved.czxid };
      node.stale = true;
      this.entriesChanged(node);
      // Re-created znodes: new inode numbers and ctimes, which the kernel would otherwise keep.
      void this.cache?.invalidateAttributes(node);
    }
  }

  // ---- invalidation ------------------------------------------------------------------

  private onWatch(e: WatchEvent): void {
    if (e.path === this.epoch?.path) return this.epoch.changed();
    this.changes.record(e.path);
    if (isUnder(e.path, this.locks.dir)) return this.locks.notify();
    if (isUnder(e.path, this.chunks.dir)) return; // large files change through their manifests
    if (this.rules.markers && e.path.endsWith(`/${MARKER_NAME}`)) {
      // A map changed: the cached one goes now, even while the event is held (our own write's echo
      // is cached again by metaWritten), so that no lookup meanwhile classifies entries with it.
      const path = this.relativePath(e.path);
      const dir = path === undefined ? undefined : parentOf(path).dir;
      const cached = dir === undefined ? undefined : this.metas.get(dir);
      if (cached) {
        this.supersededMetas.set(dir!, cached);
        this.metas.delete(dir!);
      }
    }
    const ours = this.claimOf(e.path);
    if (ours) ours.held.push(e);
    else this.track(this.applyEvent(e));
  }

  private track(applying: Promise<void>): void {
    this.applying.add(applying);
    void applying.finally(() => this.applying.delete(applying));
  }

  // ---- locks ---------------------------------------------------------------------------

  // Locks are keyed by czxid: a file created here gets its znode before its first lock (until then nobody holds one).

  async getlk(_ctx: RequestContext, node: ZkNode, lk: LockIn): Promise<FileLock> {
    if (node.pending) return { start: 0n, end: 0n, type: F_UNLCK, pid: 0 };
    const { current, old } = this.lockKeysOf(node);
    for (const key of old) {
      const found = await this.locks.test(key, lk);
      if (found.type !== F_UNLCK) return found;
    }
    return this.locks.test(current, lk);
  }

  async setlk(ctx: RequestContext, node: ZkNode, lk: LockIn, wait: boolean): Promise<void> {
    if (node.pending && lk.lock.type === F_UNLCK) return;
    await this.materialize(node);
    const { current, old } = this.lockKeysOf(node);
    // An owner that locked the file before a rename keeps its locks' key: its unlocks and changes must find them.
    // Locks under the file's other keys on this mount conflict all the same.
    const key = old.find((k) => this.locks.usedBy(k, lk)) ?? current;
    const aliases = [current, ...old].filter((k) => k !== key);
    const hooks = {
      beforeRelease: async () => {
        if (node.file?.dirty) await this.commit(node, node.file);
      },
      // ZooKeeper sends the events of changes made before the unlock ahead of
      // the reply that shows the lock free: once they are applied, this node's
      // caches and the kernel's hold what the last holder stored.
      afterAcquire: async () => {
        while (this.applying.size > 0) await Promise.all([...this.applying]);
        await this.refreshHandles(node);
      },
    };
    await this.locks.set(ctx, key, lk, wait, hooks, aliases);
  }

  /** After a lock grant: descriptors still reading an older version move to the latest content (NFS revalidates on lock too). */
  private async refreshHandles(node: ZkNode): Promise<void> {
    const behind = [...node.handles].filter((h) => h.file.stale && !h.file.dirty);
    if (behind.length === 0) return;
    const check = this.reconnectChecks.get(node);
    if (check) await check;
    let file = node.file;
    if (!file) {
      let loaded: OpenFile;
      try {
        loaded = await this.loadFile(node);
      } catch (err) {
        if (err instanceof FsError && err.code === 'ENOENT') return; // removed elsewhere: keep what we read, as on a local disk
        throw err;
      }
      file = this.adopt(node, loaded);
    }
    for (const h of behind) {
      if (h.file === file) continue;
      file.opens++;
      this.closeFile(node, h.file);
      h.file = file;
    }
    await this.cache?.invalidateNode(node);
  }

  releaseLocks(node: ZkNode, owner: bigint, flock: boolean): MaybePromise<void> {
    if (node.pending) return; // never locked: setlk makes the znode first
    // Every close sends this: with no lock held on the mount it is answered at once, without a lock key (a hash) or a promise.
    if (!this.locks.holdsAny()) return;
    return this.releaseHeld(node, owner, flock);
  }

  private async releaseHeld(node: ZkNode, owner: bigint, flock: boolean): Promise<void> {
    const { current, old } = this.lockKeysOf(node);
    const released = await Promise.allSettled([current, ...old].map((key) => this.locks.release(key, owner, flock)));
    const failed = released.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * A node's lock key, and the keys it had before a rename under which locks
   * still live here. New locks go under the current key, the one other
   * nodes use; an owner's locks from before stay under theirs until released.
   */
  private lockKeysOf(node: ZkNode): { current: string; old: string[] } {
    const current = lockKey(node);
    const old = (node.lockKeys ?? []).filter((k) => k !== current && this.locks.inUse(k));
    node.lockKeys = [...old, current];
    return { current, old };
  }

  /** A change made by someone else: drop exactly what it makes stale, here and in the kernel. */
  private async applyEvent(e: WatchEvent): Promise<void> {
    const path = this.relativePath(e.path);
    if (path === undefined) return;
    const { dir, name } = parentOf(path);
    try {
      if (name === MARKER_NAME && this.rules.markers) return await this.metaChanged(dir);
      const node = this.nodes.get(path);
      const parent = this.nodes.get(dir);
      if (node?.pending) {
        // Another node made (or removed) the name of a file created here: our first commit replaces it.
        if (parent) this.entriesChanged(parent);
        return;
      }
      // This process's caches are marked stale before the kernel is told (an
      // await): a lookup answered in between from the old listing would
      // leave the kernel an answer that no later event corrects.
      if (e.type === EventType.NodeDataChanged) {
        if (!node) return;
        this.superseded(node);
        // A directory's own data shows as its .zdata file, which may have come or gone.
        const zdata = node.kind === 'dir' && this.rules.dataName ? this.nodes.get(joinPath(path, this.rules.dataName)) : undefined;
        if (node.kind === 'dir') this.entriesChanged(node);
        if (zdata) this.superseded(zdata);
        await this.cache?.invalidateNode(node);
        if (zdata) await this.cache?.invalidateNode(zdata);
        if (node.kind === 'dir' && this.rules.dataName) await this.cache?.invalidateEntry(node, this.rules.dataName);
        return;
      }
      if (e.type !== EventType.NodeCreated && e.type !== EventType.NodeDeleted) return;
      const deleted = node && e.type === EventType.NodeDeleted ? node : undefined;
      if (deleted) {
        this.nodes.delete(path);
        this.metas.delete(path);
        deleted.stale = true;
      }
      if (parent && path !== '/') this.entriesChanged(parent);
      if (deleted) {
        if (parent) await this.cache?.entryDeleted(parent, deleted, name);
      } else if (parent && path !== '/') await this.cache?.invalidateEntry(parent, name);
      if (!parent || path === '/') return;
      if (dir === '/' || this.metas.get(dir)?.marker) return; // a directory with a marker stays one
      const stat = await this.zk.exists(this.zkPath(dir));
      if (stat && !this.pinnedDirs.has(dir) && kindOf(stat, undefined, false, this.opts.mode) === 'dir' !== (parent.kind === 'dir')) {
        // The parent gained its first child or lost its last: it changed kind,
        // so the kernel must forget it and look it up again (a new node id).
        this.nodes.delete(dir);
        const up = parentOf(dir);
        const grand = this.nodes.get(up.dir);
        if (grand) {
          this.entriesChanged(grand);
          await this.cache?.invalidateEntry(grand, up.name);
        }
      }
    } catch (err) {
      log.warn('could not apply a ZooKeeper change; caches dropped', { path, error: (err as Error).message });
      await this.invalidateAll();
    }
  }

  /** Another node changed the attribute map of `dir`: refresh the entries whose attributes or kind changed. */
  private async metaChanged(dir: string): Promise<void> {
    const old = this.metas.get(dir) ?? this.supersededMetas.get(dir);
    this.metas.delete(dir);
    this.supersededMetas.delete(dir);
    const fresh = await this.loadMeta(dir);
    const names = new Set([...(old?.entries.keys() ?? []), ...fresh.entries.keys()]);
    if (!old) for (const p of this.nodes.keys()) if (p !== '/' && parentOf(p).dir === dir) names.add(parentOf(p).name);
    const parent = this.nodes.get(dir);
    for (const name of names) {
      if (old && JSON.stringify(old.entries.get(name)) === JSON.stringify(fresh.entries.get(name))) continue;
      const path = name === SELF_KEY ? '/' : joinPath(dir, name);
      const node = this.nodes.get(path);
      if (!node) continue;
      if (kindOf(node.stat, metaFor(fresh, name, node.stat), path === '/', this.opts.mode) !== node.kind) {
        this.nodes.delete(path);
        if (parent) await this.cache?.invalidateEntry(parent, name);
      } else await this.cache?.invalidateNode(node);
    }
    if (parent) this.entriesChanged(parent);
  }

  /**
   * A file still open here when the connection came back: its descriptors
   * read the version they opened either way, but if that is still the
   * latest, later opens share it (and the page cache) instead of reading
   * around it until the last of them closes. Until ZooKeeper answers, opens
   * wait (see open).
   */
  private recheckOpenFile(node: ZkNode): void {
    const { file } = node;
    const version = node.stat.mzxid; // the version `file` holds: the node was not stale
    this.dropData(node);
    node.stale = true;
    node.kernelCached = undefined;
    const check = this.zk
      .exists(this.zkPath(node.dataOf ?? node.path))
      .then(
        (stat) => stat?.mzxid === version,
        () => false,
      )
      .then((unchanged) => {
        if (this.reconnectChecks.get(node) === check) this.reconnectChecks.delete(node);
        if (unchanged || node.file !== file) return; // an event, a commit or a close dealt with it meanwhile
        this.superseded(node);
        void this.cache?.invalidateNode(node);
      });
    this.reconnectChecks.set(node, check);
  }

  private async invalidateAll(): Promise<void> {
    this.readAhead?.clear();
    this.listAhead?.clear();
    this.metas.clear();
    // Our caches first, at once: a lookup answered after this asks ZooKeeper.
    const known = [...this.nodes.values()].filter((node) => !node.pending); // a pending file is known to this process only
    for (const node of known) {
      if (node.file && !node.file.dirty && !node.stale) this.recheckOpenFile(node);
      else this.superseded(node);
      this.entriesChanged(node);
    }
    // Then the kernel's, names it found missing included (only it knows those).
    await this.cache?.invalidateMissingNames();
    for (const node of known) {
      await this.cache?.invalidateNode(node);
      if (node === this.root) continue;
      const { dir, name } = parentOf(node.path);
      const parent = this.nodes.get(dir);
      if (parent) await this.cache?.invalidateEntry(parent, name);
    }
  }
}

/** Creates `path` and any missing parents; the last one as a directory with its marker. */
async function ensurePath(zk: ZkClient, path: string, acl: Acl[], marker: boolean): Promise<void> {
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i < parts.length; i++) {
    const p = '/' + parts.slice(0, i).join('/');
    await createIfMissing(zk, p, Buffer.alloc(0), acl);
  }
  const ops: MultiOp[] = [{ op: 'create', path, data: Buffer.alloc(0), acl }];
  if (marker) ops.push({ op: 'create', path: `${path}/${MARKER_NAME}`, data: Buffer.alloc(0), acl });
  await zk
    .multi(ops)
    .catch((err: unknown) => {
      if (!(err instanceof ZkError && err.code === ErrorCode.NODEEXISTS)) throw err;
    });
}
