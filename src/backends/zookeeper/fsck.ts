// An offline check of a volume's chunk store (swarmvol fsck): chunks no file
// uses and no record accounts for, and large files whose chunks are missing.
// Mounts collect garbage they recorded (gc/, pending/); a chunk that lost its
// record (a bug, a crash in a version before records were kept) is found only
// by comparing the store with every manifest in the tree, which this does.
// It runs beside live mounts: a persistent watch, set before the walk, reports
// every manifest written or moved (a rename re-creates) while the walk reads.

import type { WatchEvent, ZkClient } from './client/client.js';
import { ErrorCode, EventType, type Stat, ZkError } from './client/protocol.js';
import { ChunkStore, chunkNames, decodeManifest, runPipelined } from './chunks.js';
import { CHUNKS_NAME, EPOCH_NAME, joinPath, LOCKS_NAME } from './layout.js';
import { deleteOwned } from './owned.js';

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
  /** Of those, deleted (repair). */
  deleted: number;
  /** Large files naming chunks that are not stored: their content is damaged. */
  damaged: { path: string; missing: string[] }[];
}

/** The walk saw the tree through a lost connection: watch events may be missing, so it starts again. */
class WalkInterrupted extends Error {}

const RESERVED_AT_TOP = new Set([CHUNKS_NAME, LOCKS_NAME, EPOCH_NAME]);
const WALK_ATTEMPTS = 3;

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

async function check(zk: ZkClient, root: string, storeDir: string, chunks: Map<string, Stat>, opts: FsckOptions): Promise<FsckReport> {
  const used = new Set<string>();
  const manifests = new Map<string, Set<string>>();
  let znodes = 0;
  let interrupted = false;
  const reread: Promise<void>[] = [];
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
      manifests.set(path, names);
      for (const n of names) used.add(n);
    }
    return r.stat;
  };
  const onWatch = (e: WatchEvent) => {
    if (e.path.startsWith(`${storeDir}/`) || e.path === storeDir) return;
    if (e.type === EventType.NodeCreated || e.type === EventType.NodeDataChanged) reread.push(readFile(e.path).then(() => undefined));
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
      znodes++;
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
    // Read after the walk: a chunk listed before it whose commit was pending then has either
    // switched or still has its record now. The server sends the event of a switch applied
    // before these reads ahead of their replies: its manifest is read below.
    const records = await readRecords(zk, storeDir);
    while (reread.length > 0) await Promise.all(reread.splice(0));
    if (interrupted) throw new WalkInterrupted();
    return await judge(zk, storeDir, chunks, { used, manifests, znodes, ...records }, opts);
  } finally {
    zk.off('watch', onWatch);
    zk.off('state', onState);
  }
}

/** The chunks the mounts' own records account for: garbage (gc/) and commits still pending (pending/). */
async function readRecords(zk: ZkClient, storeDir: string): Promise<{ recorded: Set<string>; pendingGens: Set<string> }> {
  const recorded = new Set<string>();
  const pendingGens = new Set<string>();
  for (const dir of ['gc', 'pending'] as const) {
    let records: string[];
    try {
      records = (await zk.getChildren(`${storeDir}/${dir}`)).children;
    } catch (err) {
      if (err instanceof ZkError && err.code === ErrorCode.NONODE) continue;
      throw err;
    }
    await runPipelined(records, async (gen) => {
      if (dir === 'pending') pendingGens.add(gen);
      try {
        const names = JSON.parse((await zk.getData(`${storeDir}/${dir}/${gen}`)).data.toString('utf8')) as string[];
        for (const n of names) recorded.add(n);
      } catch (err) {
        if (!(err instanceof ZkError && err.code === ErrorCode.NONODE)) throw err;
      }
    });
  }
  return { recorded, pendingGens };
}

interface Seen {
  used: Set<string>;
  manifests: Map<string, Set<string>>;
  znodes: number;
  recorded: Set<string>;
  pendingGens: Set<string>;
}

async function judge(zk: ZkClient, storeDir: string, chunks: Map<string, Stat>, seen: Seen, opts: FsckOptions): Promise<FsckReport> {
  const { used, manifests, recorded, pendingGens } = seen;
  const orphans: [string, Stat][] = [];
  let recordedCount = 0;
  let usedCount = 0;
  for (const [name, stat] of chunks) {
    if (used.has(name)) usedCount++;
    else if (recorded.has(name) || pendingGens.has(name.slice(0, name.lastIndexOf('-')))) recordedCount++;
    else orphans.push([name, stat]);
  }
  const now = opts.repair && orphans.length > 0 ? await serverNow(zk, storeDir) : Date.now();
  const unreferenced = orphans.map(([name, stat]) => ({ name, bytes: stat.dataLength, ageMs: now - Number(stat.ctime) }));
  let deleted = 0;
  if (opts.repair) {
    const old = unreferenced.filter((c) => c.ageMs >= opts.minAgeMs);
    await runPipelined(old, (c) => deleteOwned(zk, `${storeDir}/c/${c.name}`));
    deleted = old.length;
  }
  const damaged: FsckReport['damaged'] = [];
  const stored = new Set((await zk.getChildren(`${storeDir}/c`).catch(() => ({ children: [] as string[] }))).children);
  for (const [path, names] of manifests) {
    const missing = [...names].filter((n) => !stored.has(n));
    // Read again: a file rewritten or removed since the walk may name chunks collected since.
    if (missing.length > 0 && (await stillMissing(zk, storeDir, path, missing))) damaged.push({ path, missing });
  }
  return { znodes: seen.znodes, largeFiles: manifests.size, chunks: chunks.size, used: usedCount, recorded: recordedCount, unreferenced, deleted, damaged };
}

/** Whether the file at `path` still names one of the chunks `missing`, still not stored. */
async function stillMissing(zk: ZkClient, storeDir: string, path: string, missing: string[]): Promise<boolean> {
  try {
    const names = chunkNames(decodeManifest((await zk.getData(path)).data));
    for (const n of missing) if (names.has(n) && !(await zk.exists(`${storeDir}/c/${n}`))) return true;
    return false;
  } catch (err) {
    if (err instanceof ZkError && err.code === ErrorCode.NONODE) return false;
    throw err;
  }
}

/** The servers' clock (a chunk's age is judged on it, as the sweep does): the time of a write to the pending directory. */
async function serverNow(zk: ZkClient, storeDir: string): Promise<number> {
  return Number((await zk.setData(`${storeDir}/pending`, Buffer.alloc(0))).mtime);
}
