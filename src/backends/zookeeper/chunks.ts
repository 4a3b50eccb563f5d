// Large files (docs/zookeeper-layout.md, "Large files"): a file above what one
// znode holds keeps a manifest in its own znode and its bytes in immutable
// chunk znodes of the volume's hidden chunk store. A commit writes the new
// chunks first, then switches the manifest in one transaction, so every node
// reads the old version or the new one, never a mix. Chunks a new version no
// longer uses are garbage: they are deleted once no reader anywhere still
// pins the version that used them (an ephemeral pin per open version).

import { randomBytes } from 'node:crypto';
import { FsError } from '../../fs/errors.js';
import { log } from '../../util/log.js';
import type { ZkClient } from './client/client.js';
import { type Acl, CreateMode, ErrorCode, type MultiOp, ZkError } from './client/protocol.js';
import { againAfterLoss, createOwned, deleteOwned, isConnectionLoss } from './owned.js';

/** First bytes of a manifest, for people and tools reading the znode. */
const MAGIC = 'SWARMVOL-CHUNKED-FILE 1\n';

/** A large file's stored version. */
export interface Manifest {
  /** This version's generation: a random id, also the name prefix of the chunks it wrote. */
  g: string;
  size: number;
  /** Chunk size: chunk i holds bytes [i*cs, (i+1)*cs), trailing zeros left out. */
  cs: number;
  /** For each chunk, the generation that stored it; null: all zeros, nothing stored. */
  c: Array<string | null>;
}

export function encodeManifest(m: Manifest): Buffer {
  return Buffer.from(MAGIC + JSON.stringify(m));
}

/** The manifest in a znode's data; undefined if the data is not one. */
export function decodeManifest(data: Buffer): Manifest | undefined {
  if (data.length < MAGIC.length || data.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) return undefined;
  try {
    const m = JSON.parse(data.subarray(MAGIC.length).toString('utf8')) as Manifest;
    const ok =
      typeof m.g === 'string' &&
      Number.isSafeInteger(m.size) &&
      Number.isSafeInteger(m.cs) &&
      m.cs > 0 &&
      Array.isArray(m.c) &&
      m.c.length === Math.ceil(m.size / m.cs) &&
      m.c.every((g) => g === null || typeof g === 'string');
    return ok ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Default server request limit: ZooKeeper's jute.maxbuffer (1 MiB - 1). */
export const DEFAULT_MAX_REQUEST = 0xfffff;
/** Largest server request limit swarmvol takes: its client refuses replies above 64 MiB, and ZooKeeper warns against large ones. */
export const MAX_JUTE_MAXBUFFER = 32 * 1024 * 1024;
/** Room left in a request for the path, the header and a rename's attribute maps. */
export const REQUEST_HEADROOM = 16 * 1024;
/** Default largest file (option maxfilesize). */
export const DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024;

/** Largest content one znode holds under a server request limit: larger files are chunked. */
export function inlineLimit(maxRequest: number): number {
  return maxRequest - REQUEST_HEADROOM;
}

/** Largest maxfilesize: its manifest (about 19 bytes per chunk) must fit in one znode. */
export function largestFileSize(maxRequest: number): number {
  return Math.floor((inlineLimit(maxRequest) - 256) / 19) * chunkSizeFor(maxRequest);
}

/** Chunk size of large files: the largest power of two one znode holds (512 KiB under the default limit), so page-aligned I/O never straddles chunks. */
export function chunkSizeFor(maxRequest: number): number {
  return 2 ** Math.floor(Math.log2(inlineLimit(maxRequest)));
}
export function chunkName(gen: string, index: number): string {
  return `${gen}-${index}`;
}

/** The chunk znodes a manifest uses. */
export function chunkNames(m: Manifest | undefined): Set<string> {
  const names = new Set<string>();
  m?.c.forEach((g, i) => g !== null && names.add(chunkName(g, i)));
  return names;
}

/** Pin data above this size is left out: such a pin holds back all garbage (as pins of older versions do). */
const MAX_PIN_DATA = 64 * 1024;

/**
 * What a pin of version `m` holds: the chunks it reads, as its manifest's
 * list of the generation that stored each (a version keeps the chunks of
 * earlier ones that a write did not change), so that garbage a later version
 * records of those chunks waits for its readers too.
 */
function pinData(m: Manifest): Buffer {
  const data = Buffer.from(JSON.stringify(m.c));
  return data.length <= MAX_PIN_DATA ? data : Buffer.alloc(0);
}

/** The chunks a pin's data says its version reads; undefined: unknown (no data, or not readable), it holds back everything. */
function pinnedChunks(data: Buffer): Set<string> | undefined {
  try {
    const c: unknown = JSON.parse(data.toString('utf8'));
    if (!Array.isArray(c)) return undefined;
    const names = new Set<string>();
    c.forEach((g, i) => typeof g === 'string' && names.add(chunkName(g, i)));
    return names;
  } catch {
    return undefined;
  }
}

export function newGeneration(): string {
  return randomBytes(8).toString('hex');
}

/** A commit that has not switched its manifest within this time is abandoned: its chunks are deleted by any node. */
export const PENDING_EXPIRY_MS = 10 * 60 * 1000;
/** How often each mount looks for abandoned commits and for garbage whose readers are gone. */
const SWEEP_INTERVAL_MS = 10 * 60 * 1000;
/** Chunk creates (or deletes) in flight at once: enough to keep the link busy, bounded memory. */
const PIPELINE = 8;

/**
 * The chunk store: `c/` chunks named `<generation>-<index>`, `pending/` one
 * record per commit still writing chunks, `gc/` one record per superseded or
 * removed version listing its garbage, `pin/` ephemeral pins of open versions.
 */
export class ChunkStore {
  private ready: Promise<void> | undefined;
  /** Our pins (path → the version pinned), re-created after a session expiry. */
  private readonly pins = new Map<string, Manifest>();
  /** What the pins seen in pin/ read (name → chunks, undefined: everything); pins never change. */
  private readonly pinReads = new Map<string, Set<string> | undefined>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly zk: ZkClient,
    /** Absolute path of the store. */
    readonly dir: string,
    private readonly acl: Acl[],
  ) {}

  private chunkPath(name: string): string {
    return `${this.dir}/c/${name}`;
  }

  private pendingPath(gen: string): string {
    return `${this.dir}/pending/${gen}`;
  }

  private gcPath(gen: string): string {
    return `${this.dir}/gc/${gen}`;
  }

  /** Creates the store's directories once per process. */
  ensure(): Promise<void> {
    this.ready ??= (async () => {
      const made = await Promise.allSettled([this.dir, ...['c', 'pending', 'gc', 'pin'].map((d) => `${this.dir}/${d}`)].map((p) => this.zk.create(p, Buffer.alloc(0), this.acl)));
      for (const r of made) if (r.status === 'rejected' && !(r.reason instanceof ZkError && r.reason.code === ErrorCode.NODEEXISTS)) throw r.reason;
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /** Starts the periodic sweep (and one now); stopped by close(). */
  start(): void {
    const sweep = () => void this.sweep().catch((err: unknown) => log.warn('chunk store sweep failed; retried later', { error: (err as Error).message }));
    sweep();
    this.sweeper = setInterval(sweep, SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  async load(name: string): Promise<Buffer> {
    try {
      return (await this.zk.getData(this.chunkPath(name))).data;
    } catch (err) {
      if (err instanceof ZkError && err.code === ErrorCode.NONODE) {
        throw new FsError('ESTALE', `chunk ${name} is gone: the version this descriptor reads was replaced and collected (was the session lost?); open the file again`);
      }
      throw err;
    }
  }

  /**
   * Stores the chunks of generation `gen` (one commit attempt). The pending
   * record, written first, lists them: if this process dies before the
   * manifest switch, another node deletes them after PENDING_EXPIRY_MS.
   */
  async upload(gen: string, chunks: Array<{ name: string; data: Buffer }>, names: readonly string[]): Promise<void> {
    await this.ensure();
    // Sent in this order on one session: the record is stored before any chunk.
    const recorded = this.zk.create(this.pendingPath(gen), Buffer.from(JSON.stringify(names)), this.acl);
    await Promise.all([recorded, runPipelined(chunks, (c) => this.zk.create(this.chunkPath(c.name), c.data, this.acl))]);
  }

  /** Whether commit `gen` still has its pending record: its manifest switch, which deletes it, was not applied. */
  async isPending(gen: string): Promise<boolean> {
    return (await this.zk.exists(this.pendingPath(gen))) !== null;
  }

  /**
   * The op that closes a commit's pending record in the manifest switch: the
   * record as written (version 0), so it fails once the commit was declared
   * abandoned (marked by its writer, or deleted by the sweep).
   */
  pendingDone(gen: string): MultiOp {
    return { op: 'delete', path: this.pendingPath(gen), version: 0 };
  }

  /** The op that records `names` as garbage of version `gen`, in the transaction that drops them. */
  garbage(gen: string, names: Iterable<string>): MultiOp {
    return { op: 'create', path: this.gcPath(gen), data: Buffer.from(JSON.stringify([...names])), acl: this.acl };
  }

  /** A pin of version `m`: its path, and the op creating it (ephemeral: it goes with our session). */
  newPin(m: Manifest): { path: string; op: MultiOp } {
    const path = `${this.dir}/pin/${m.g}-${randomBytes(6).toString('hex')}`;
    return { path, op: { op: 'create', path, data: pinData(m), acl: this.acl, mode: CreateMode.EPHEMERAL } };
  }

  /** After a transaction created a pin. */
  pinned(path: string, m: Manifest): void {
    this.pins.set(path, m);
  }

  /**
   * Pins version `gen`, then runs `confirm` (a read that checks the version is
   * still current): both are sent on one session in this order, so the read
   * sees the server after the pin is in place, at no extra round trip.
   */
  async pin<T>(m: Manifest, confirm: () => Promise<T>): Promise<{ path: string; confirmed: T }> {
    await this.ensure();
    const { path } = this.newPin(m);
    try {
      const [made, read] = await Promise.allSettled([this.zk.create(path, pinData(m), this.acl, CreateMode.EPHEMERAL), confirm()]);
      let confirmed: T;
      if (made.status === 'rejected') {
        if (!isConnectionLoss(made.reason)) throw made.reason;
        // Its reply went with the connection: the pin is made (or found), and only then confirmed.
        await createOwned(this.zk, path, pinData(m), this.acl, CreateMode.EPHEMERAL);
        confirmed = await confirm();
      } else if (read.status === 'rejected') throw read.reason;
      else confirmed = read.value;
      this.pinned(path, m);
      return { path, confirmed };
    } catch (err) {
      void deleteOwned(this.zk, path).catch(() => undefined);
      throw err;
    }
  }

  /** Drops a pin; the last reader of a superseded version collects its garbage. */
  async unpin(path: string): Promise<void> {
    const known = this.pins.has(path);
    this.pins.delete(path);
    if (!known) await deleteOwned(this.zk, path);
    else await this.dropPin(path);
  }

  /**
   * Deletes the garbage of version `gen` if nobody reads it any more: no pin
   * of that version, nor of another that reads any of these chunks (a pin's
   * data lists them). A pin is taken before its reader checks that the
   * manifest is still current, and the pins are listed after the record is
   * read, so after the transaction that superseded the version: one of the
   * two sees the other, so a version is never collected under an active
   * reader.
   */
  collect(gen: string): Promise<void> {
    return this.collectRecords([gen]);
  }

  /** Collects every garbage record nobody reads any more. */
  async collectAll(): Promise<void> {
    let gens: string[];
    try {
      gens = (await this.zk.getChildren(`${this.dir}/gc`)).children;
    } catch (err) {
      if (err instanceof ZkError && err.code === ErrorCode.NONODE) return; // no large file was ever written
      throw err;
    }
    await this.collectRecords(gens);
  }

  private async collectRecords(gens: string[]): Promise<void> {
    if (gens.length === 0) return;
    // Sent in this order on one session: the pin listing comes after every record read.
    const reading = Promise.all(
      gens.map(async (gen) => {
        try {
          return { gen, names: JSON.parse((await this.zk.getData(this.gcPath(gen))).data.toString('utf8')) as string[] };
        } catch (err) {
          if (err instanceof ZkError && err.code === ErrorCode.NONODE) return undefined; // collected already
          throw err;
        }
      }),
    );
    const listing = this.zk.getChildren(`${this.dir}/pin`);
    const [records, { children: pins }] = await Promise.all([reading, listing]);
    const readers = await this.pinsReading(pins);
    for (const record of records) {
      if (!record) continue;
      const { gen, names } = record;
      if (pins.some((p) => p.startsWith(`${gen}-`))) continue;
      if (readers.some((r) => r === undefined || names.some((n) => r.has(n)))) continue;
      // Chunks first, the record last: a collection cut short is finished by the next sweep.
      await this.deleteChunks(names);
      await deleteOwned(this.zk, this.gcPath(gen));
    }
  }

  /** What each of the pins `names` reads (read once per pin: pins never change). */
  private async pinsReading(names: string[]): Promise<Array<Set<string> | undefined>> {
    const listed = new Set(names);
    for (const name of this.pinReads.keys()) if (!listed.has(name)) this.pinReads.delete(name);
    await runPipelined(
      names.filter((n) => !this.pinReads.has(n)),
      async (name) => {
        try {
          const data = (await this.zk.getData(`${this.dir}/pin/${name}`)).data;
          this.pinReads.set(name, pinnedChunks(data));
        } catch (err) {
          if (!(err instanceof ZkError && err.code === ErrorCode.NONODE)) throw err; // gone: its reader let go
        }
      },
    );
    return names.filter((n) => this.pinReads.has(n)).map((n) => this.pinReads.get(n));
  }

  /** Collects in the background (a close or commit does not wait for it); a failure is left to the sweep. */
  collectLater(gen: string): void {
    void this.collect(gen).catch((err: unknown) => log.warn('could not delete the chunks of a replaced large file; the sweep retries', { generation: gen, error: (err as Error).message }));
  }

  /**
   * After a commit that did not switch, as far as its writer knows: its
   * pending record is marked first (written again: its switch, which deletes
   * only the record as first written, can no longer be applied), then its
   * chunks go, then the record (best effort; the sweep catches what this
   * misses). A record already gone means the switch was applied after all,
   * its reply lost with the connection: the chunks stay, that version's or
   * another's that reuses them, collected as garbage once nobody uses them;
   * only `pin`, the switch's pin of its version, goes (dropPin). (Or the
   * sweep took the commit: it deletes the chunks itself.) A mark, unlike a
   * delete, still tells after a lost reply whose it was.
   */
  abandon(gen: string, names: readonly string[], pin?: string): void {
    const path = this.pendingPath(gen);
    void (async () => {
      const switched = await againAfterLoss(this.zk, async () => {
        try {
          await this.zk.setData(path, Buffer.from(JSON.stringify(names)), 0);
          return false;
        } catch (err) {
          if (!(err instanceof ZkError)) throw err;
          if (err.code === ErrorCode.NONODE) return true;
          // Marked already: by an earlier attempt of this, whose reply was lost (nobody else writes the record).
          if (err.code === ErrorCode.BADVERSION) return false;
          throw err;
        }
      });
      if (switched) {
        if (pin) await this.dropPin(pin);
        return;
      }
      await this.deleteChunks(names);
      await deleteOwned(this.zk, path);
    })().catch(() => undefined);
  }

  /**
   * Drops a pin (one a transaction whose reply was lost may have made), and
   * collects the garbage it held back: its version's, and that of later
   * versions which dropped chunks it kept from it.
   */
  async dropPin(path: string): Promise<void> {
    await deleteOwned(this.zk, path);
    await this.collectAll();
  }

  /**
   * Garbage whose readers are gone (crashed nodes' pins vanish with their
   * sessions), and commits abandoned by crashed writers: pending records older
   * than `expiryMs` by the servers' clock (serverTime), so a node's skewed clock never cuts a live commit short.
   */
  async sweep(expiryMs = PENDING_EXPIRY_MS): Promise<void> {
    let gc: string[];
    let pending: string[];
    let now: number;
    try {
      [gc, pending] = await Promise.all([this.zk.getChildren(`${this.dir}/gc`), this.zk.getChildren(`${this.dir}/pending`)].map(async (r) => (await r).children));
      now = pending.length > 0 ? await this.serverTime() : 0;
    } catch (err) {
      if (err instanceof ZkError && err.code === ErrorCode.NONODE) return; // no large file was ever written
      throw err;
    }
    await this.collectRecords(gc);
    for (const gen of pending) {
      let names: string[];
      try {
        const r = await this.zk.getData(this.pendingPath(gen));
        if (now - r.stat.mtime < expiryMs) continue;
        names = JSON.parse(r.data.toString('utf8')) as string[];
        // The record goes first: the writer's manifest switch, which deletes it, can then no longer succeed.
        await this.zk.delete(this.pendingPath(gen), r.stat.version);
      } catch (err) {
        if (err instanceof ZkError && (err.code === ErrorCode.NONODE || err.code === ErrorCode.BADVERSION)) continue;
        throw err;
      }
      log.warn('deleting the chunks of a large-file commit abandoned by its writer', { generation: gen, chunks: names.length });
      await this.deleteChunks(names);
    }
  }

  /** The servers' clock (ages in the store are judged on it, never on a node's own): the time of a write to the pending directory. */
  async serverTime(): Promise<number> {
    return (await this.zk.setData(`${this.dir}/pending`, Buffer.alloc(0))).mtime;
  }

  /** Deletes chunks (some may be gone already). */
  private deleteChunks(names: readonly string[]): Promise<void> {
    return runPipelined(names, (n) => deleteOwned(this.zk, this.chunkPath(n)));
  }

  /** After a session expiry our pins are gone: take them again (a version collected meanwhile reads as ESTALE). */
  async repin(): Promise<void> {
    for (const [path, m] of [...this.pins]) {
      await createOwned(this.zk, path, pinData(m), this.acl, CreateMode.EPHEMERAL).catch((err: unknown) => {
        log.warn('could not pin a large file version again', { generation: m.g, error: (err as Error).message });
      });
    }
  }
}

/** Runs `fn` over `items` with at most `width` in flight. */
export async function runPipelined<T>(items: readonly T[], fn: (item: T) => Promise<unknown>, width = PIPELINE): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}
