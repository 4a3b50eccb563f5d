// An offline check of a volume's chunk store (swarmvol fsck): chunks no file
// uses and no record accounts for, and large files whose chunks are missing.
// Mounts collect garbage they recorded (gc/, pending/); a chunk that lost its
// record (a bug, a plain client overwriting a manifest) is found only by
// comparing the store with every manifest in the tree, which this does.
// It runs beside live mounts: a persistent watch, set before the walk, reports
// every manifest written or moved (a rename re-creates) while the walk reads.
// Why the order of its reads is safe: docs/zookeeper-layout.md, "Checking the store".

import type { WatchEvent, ZkClient } from './client/client.js';
import { ErrorCode, EventType, type Stat, ZkError } from './client/protocol.js';
import { ChunkStore, chunkNames, decodeManifest, runPipelined } from './chunks.js';
import { CHUNKS_NAME, decodeMeta, EPOCH_NAME, joinPath, largeFileSize, LOCKS_NAME, MARKER_NAME, metaFor, parentOf } from './layout.js';
import { againAfterLoss } from './owned.js';

export interface FsckOptions {
  /** Delete unreferenced chunks (and first run the mounts' sweep of recorded garbage and abandoned commits). */
  repair: boolean;
  /** Only chunks at least this old (server clock) are deleted: a margin over the commit protocol. */
  minAgeMs: number;
}

export interface FsckReport {
  /** Znodes of the tree read (files, directories, symlinks). */
  znodes: number;
  largeFiles: number;
  chunks: number;
  /** Chunks a large file uses. */
  used: number;
  /** Chunks recorded as garbage (gc/) or written by a commit still pending (pending/): the mounts' own to delete. */
  recorded: number;
  /** Chunks nothing uses or accounts for, with their size in bytes. */
  unreferenced: { name: string; bytes: number; ageMs: number }[];
  /** False when the volume kept changing too fast to judge them: nothing is deleted. */
  settled: boolean;
  /** Of those, deleted by this repair (others may have gone meanwhile). */
  deleted: number;
  /** Of those, kept by a repair: younger than minAgeMs. */
  young: number;
  /** Large files naming chunks that are not stored: their content is damaged. */
  damaged: { path: string; missing: string[] }[];
}

/** The walk saw the tree through a lost connection: watch events may be missing, so it starts again. */
class WalkInterrupted extends Error {
  constructor() {
    super('the connection to ZooKeeper was lost during the check three times; run it again');
  }
}

const RESERVED_AT_TOP = new Set([CHUNKS_NAME, LOCKS_NAME, EPOCH_NAME]);
const WALK_ATTEMPTS = 3;
/** Readings of the garbage records that may be taken while files keep changing, before giving up on judging. */
const GC_READINGS = 20;

export async function fsckVolume(zk: ZkClient, root: string, opts: FsckOptions): Promise<FsckReport> {
  const storeDir = joinPath(root, CHUNKS_NAME);
  if (opts.repair) {
    // What the mounts would collect on their own sweep, first (with their limit for a commit under
    // way: a shorter one would cut live commits short): what is left is what no record accounts for.
    await new ChunkStore(zk, storeDir, []).sweep();
  }
  let chunks: Map<string, Stat>;
  try {
    chunks = await listChunks(zk, storeDir);
  } catch (err) {
    if (err instanceof ZkError && err.code === ErrorCode.NONODE) chunks = new Map(); // no large file was ever written
    else throw err;
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await check(zk, root, storeDir, chunks, opts);
    } catch (err) {
      if (!(err instanceof WalkInterrupted) || attempt >= WALK_ATTEMPTS) throw err;
    }
  }
}

/** Every chunk with its Stat (size, creation time), read after the listing: what the walk must account for. */
async function listChunks(zk: ZkClient, storeDir: string): Promise<Map<string, Stat>> {
  const { children } = await zk.getChildren(`${storeDir}/c`);
  const chunks = new Map<string, Stat>();
  await runPipelined(children, async (name) => {
    const stat = await zk.exists(`${storeDir}/c/${name}`);
    if (stat) chunks.set(name, stat);
  });
  return chunks;
}

/** The tree as the walk and the watch's events showed it. */
interface Seen {
  /** Chunks named by any manifest read (each file's every reading counts: keeping too much is safe). */
  used: Set<string>;
  /** Each file's last manifest read. */
  manifests: Map<string, Set<string>>;
  znodes: number;
}

async function check(zk: ZkClient, root: string, storeDir: string, chunks: Map<string, Stat>, opts: FsckOptions): Promise<FsckReport> {
  const seen: Seen = { used: new Set(), manifests: new Map(), znodes: 0 };
  let interrupted = false;
  const reservedPaths = [...RESERVED_AT_TOP].map((name) => joinPath(root, name));
  const rereads: Promise<void>[] = [];
  let rereadsSent = 0;
  let rereadFailed: unknown;
  const readFile = async (path: string): Promise<Stat | undefined> => {
    let r: { data: Buffer; stat: Stat };
    try {
      r = await zk.getData(path);
    } catch (err) {
      if (err instanceof ZkError && err.code === ErrorCode.NONODE) return undefined; // moved or removed: its event follows
      throw err;
    }
    const m = decodeManifest(r.data);
    if (m) {
      const names = chunkNames(m);
      seen.manifests.set(path, names);
      for (const n of names) seen.used.add(n);
    }
    return r.stat;
  };
  const onWatch = (e: WatchEvent) => {
    // The chunk store, locks and epoch hold no manifest (and locks change often: a reading of gc/ would never settle).
    if (reservedPaths.some((r) => e.path === r || e.path.startsWith(`${r}/`))) return;
    if (e.type !== EventType.NodeCreated && e.type !== EventType.NodeDataChanged) return;
    rereadsSent++;
    rereads.push(
      readFile(e.path).then(
        () => undefined,
        (err: unknown) => void (rereadFailed ??= err),
      ),
    );
  };
  /** Waits for every reading the events asked for so far (and those they led to). */
  const drain = async () => {
    while (rereads.length > 0) await Promise.all(rereads.splice(0));
    if (rereadFailed) throw rereadFailed;
  };
  const onState = (state: string) => {
    if (state !== 'connected') interrupted = true;
  };
  zk.on('watch', onWatch);
  zk.on('state', onState);
  try {
    await zk.addWatch(root);
    const walk = async (path: string, top: boolean): Promise<void> => {
      const stat = await readFile(path);
      if (!stat) return;
      seen.znodes++;
      if (stat.numChildren === 0) return;
      let children: string[];
      try {
        ({ children } = await zk.getChildren(path));
      } catch (err) {
        if (err instanceof ZkError && err.code === ErrorCode.NONODE) return;
        throw err;
      }
      const below = children.filter((c) => !(top && RESERVED_AT_TOP.has(c))).map((c) => joinPath(path, c));
      await runPipelined(below, (p) => walk(p, false));
    };
    await walk(root, true);
    // A chunk listed before the walk whose commit was under way then has its pending record
    // still, or its switch was applied before this reading, and the switch's event came
    // before its reply: the manifest is read again before anything below is sent.
    const pending = await readRecords(zk, storeDir, 'pending');
    await drain();
    // A file whose manifest was last read after another commit dropped a chunk: that commit's
    // garbage record must be in the reading of gc/. It is, if every reading the events asked
    // for was sent before it; else gc/ is read again.
    let garbage: Set<string> = new Set();
    let settled = false;
    for (let reading = 0; reading < GC_READINGS && !settled; reading++) {
      const sentBefore = rereadsSent;
      garbage = (await readRecords(zk, storeDir, 'gc')).names;
      await drain();
      settled = rereadsSent === sentBefore;
    }
    if (interrupted) throw new WalkInterrupted();
    return await judge(zk, storeDir, chunks, seen, { recorded: new Set([...pending.names, ...garbage]), pendingGens: pending.gens, settled }, opts);
  } finally {
    zk.off('watch', onWatch);
    zk.off('state', onState);
  }
}

/** The records of `dir` (gc/ or pending/): their generations, and the chunks they list. */
async function readRecords(zk: ZkClient, storeDir: string, dir: 'gc' | 'pending'): Promise<{ gens: Set<string>; names: Set<string> }> {
  const gens = new Set<string>();
  const names = new Set<string>();
  let records: string[];
  try {
    records = (await zk.getChildren(`${storeDir}/${dir}`)).children;
  } catch (err) {
    if (err instanceof ZkError && err.code === ErrorCode.NONODE) return { gens, names };
    throw err;
  }
  await runPipelined(records, async (gen) => {
    gens.add(gen);
    try {
      for (const n of JSON.parse((await zk.getData(`${storeDir}/${dir}/${gen}`)).data.toString('utf8')) as string[]) names.add(n);
    } catch (err) {
      if (!(err instanceof ZkError && err.code === ErrorCode.NONODE)) throw err;
    }
  });
  return { gens, names };
}

interface Records {
  /** Chunks the gc/ and pending/ records list. */
  recorded: Set<string>;
  pendingGens: Set<string>;
  /** Whether the gc/ reading came after every manifest reading (see check). */
  settled: boolean;
}

async function judge(zk: ZkClient, storeDir: string, chunks: Map<string, Stat>, seen: Seen, records: Records, opts: FsckOptions): Promise<FsckReport> {
  const { recorded, pendingGens } = records;
  // Chunks collected by the mounts since they were listed (their record gone by now too) are not orphans.
  const stored = new Set((await zk.getChildren(`${storeDir}/c`).catch(() => ({ children: [] as string[] }))).children);
  const orphans: [string, Stat][] = [];
  let recordedCount = 0;
  let usedCount = 0;
  for (const [name, stat] of chunks) {
    if (seen.used.has(name)) usedCount++;
    else if (recorded.has(name) || pendingGens.has(name.slice(0, name.lastIndexOf('-')))) recordedCount++;
    else if (stored.has(name)) orphans.push([name, stat]);
  }
  const now = opts.repair && orphans.length > 0 ? await new ChunkStore(zk, storeDir, []).serverTime() : Date.now();
  const unreferenced = orphans.map(([name, stat]) => ({ name, bytes: stat.dataLength, ageMs: now - stat.ctime }));
  let deleted = 0;
  let young = 0;
  if (opts.repair && records.settled) {
    const old = unreferenced.filter((c) => c.ageMs >= opts.minAgeMs);
    young = unreferenced.length - old.length;
    // Counted when this delete removed it (gone already: a mount's sweep took it, or a lost reply's retry).
    await runPipelined(old, (c) =>
      againAfterLoss(zk, async () => {
        try {
          await zk.delete(`${storeDir}/c/${c.name}`);
          deleted++;
        } catch (err) {
          if (!(err instanceof ZkError && err.code === ErrorCode.NONODE)) throw err;
        }
      }),
    );
  }
  const damaged: FsckReport['damaged'] = [];
  for (const [path, names] of seen.manifests) {
    const missing = [...names].filter((n) => !stored.has(n));
    if (missing.length > 0 && (await stillMissing(zk, storeDir, path, missing))) damaged.push({ path, missing });
  }
  return {
    znodes: seen.znodes,
    largeFiles: seen.manifests.size,
    chunks: chunks.size,
    used: usedCount,
    recorded: recordedCount,
    unreferenced,
    settled: records.settled,
    deleted,
    young,
    damaged,
  };
}

/**
 * Whether the file at `path` is a large file (its directory's map says so:
 * other data may merely look like a manifest) that still names one of the
 * chunks `missing`, still not stored. Read again: a file rewritten or
 * removed since the walk may name chunks collected since.
 */
async function stillMissing(zk: ZkClient, storeDir: string, path: string, missing: string[]): Promise<boolean> {
  const { dir, name } = parentOf(path);
  try {
    const [file, marker] = await Promise.all([zk.getData(path), zk.getData(joinPath(dir, MARKER_NAME)).catch(() => undefined)]);
    const map = marker && decodeMeta(marker.data, marker.stat.version, marker.stat.mzxid);
    if (largeFileSize(metaFor(map, name, file.stat), file.stat) === undefined) return false;
    const names = chunkNames(decodeManifest(file.data));
    for (const n of missing) if (names.has(n) && !(await zk.exists(`${storeDir}/c/${n}`))) return true;
    return false;
  } catch (err) {
    if (err instanceof ZkError && err.code === ErrorCode.NONODE) return false;
    throw err;
  }
}
