// flock(2) and fcntl(2) locks shared by every mount of a volume, kept as
// ephemeral znodes in one hidden directory of the volume root. A lock a node
// holds is a "hold" znode; a lock it asks for is first a sequential "want"
// znode, so requests are served in the order ZooKeeper saw them: a want is
// granted when no hold of another owner and no older want of another owner
// conflicts with it, and is then swapped for the holds in one multi. Holds die
// with the holder's session, so a dead node's locks are released by ZooKeeper.
// The layout is documented in docs/zookeeper-layout.md ("Locks").

import { randomBytes } from 'node:crypto';
import { F_RDLCK, F_UNLCK, F_WRLCK } from '../../fuse/kernel.js';
import type { FileLock, LockIn, RequestContext } from '../../fuse/types.js';
import { FsError } from '../../fs/errors.js';
import { excludes, onlyShrinks, validate, withLock, type HeldLock } from '../../fs/locks.js';
import { log } from '../../util/log.js';
import type { ZkClient } from './client/client.js';
import { CreateMode, ErrorCode, ZkError, type Acl, type MultiOp } from './client/protocol.js';
import { againAfterLoss, deleteOwned, isConnectionLoss } from './owned.js';

const SEQ_DIGITS = 10;
/** How often lock znodes that could not be deleted are tried again while the connection is up. */
const STRAY_RETRY_MS = 5000;

/** One lock znode, decoded from its name. */
export interface LockEntry {
  name: string;
  kind: 'posix' | 'flock';
  state: 'hold' | 'want';
  file: string;
  type: number;
  start: bigint;
  end: bigint;
  /** `<mount id>.<owner>`: unique across nodes. */
  owner: string;
  pid: number;
  /** Creation order of wants (holds carry none). */
  seq: number;
}

/**
 * Name layout: `<k><s>-<file>-<r|w>-<start>-<end>-<owner>-<pid>-<nonce>[<seq>]`,
 * k = p (fcntl) or f (flock), s = h (hold) or w (want), file = the file's lock
 * key (`<czxid>.<path hash>`, see lockKey in index.ts), owner = `<mount
 * id>.<lock owner>`; a want ends in ZooKeeper's sequence.
 */
export function lockName(e: Omit<LockEntry, 'name' | 'seq'>, nonce: string): string {
  return `${e.kind === 'posix' ? 'p' : 'f'}${e.state === 'hold' ? 'h' : 'w'}-${e.file}-${e.type === F_WRLCK ? 'w' : 'r'}-${e.start}-${e.end}-${e.owner}-${e.pid}-${nonce}`;
}

export function parseLockName(name: string): LockEntry | undefined {
  const m = /^([pf])([hw])-(\d+\.[0-9a-f]+)-([rw])-(\d+)-(\d+)-([0-9a-f]+\.[0-9a-f]+)-(\d+)-([0-9a-z]*?)(\d{10})?$/.exec(name);
  if (!m) return undefined;
  const state = m[2] === 'h' ? 'hold' : 'want';
  if ((state === 'want') !== (m[10] !== undefined)) return undefined;
  return {
    name,
    kind: m[1] === 'p' ? 'posix' : 'flock',
    state,
    file: m[3]!,
    type: m[4] === 'w' ? F_WRLCK : F_RDLCK,
    start: BigInt(m[5]!),
    end: BigInt(m[6]!),
    owner: m[7]!,
    pid: Number(m[8]),
    seq: m[10] === undefined ? -1 : Number(m[10]),
  };
}

/** What the lock service needs from the filesystem around it. */
export interface LockHooks {
  /** Before a lock is released or downgraded: store buffered writes, so the next holder reads them. */
  beforeRelease(): Promise<void>;
  /** After a lock is granted: make sure what other nodes stored before they unlocked is what we read. */
  afterAcquire(): Promise<void>;
}

interface OwnerState {
  held: HeldLock[];
  /** Hold znode names, one per entry of `held`. */
  names: string[];
  /** Changes of this owner's holds are serialized. */
  chain: Promise<void>;
}

export class ZkLocks {
  /** Distinguishes this mount's owners from every other mount's. */
  private readonly mountId = randomBytes(6).toString('hex');
  private readonly owners = new Map<string, OwnerState>();
  /** Lock requests under way, per owner (stateKey). */
  private readonly acquiring = new Map<string, number>();
  /**
   * Lock znodes of ours that could not be deleted (or wants whose create may
   * have been applied, by name prefix): deleted once the connection is back.
   * A hold's owner (stateKey) is kept with it: hold names are the same each
   * time an owner takes the same range, so one taken again since is its own.
   */
  private readonly strays = new Map<string, string | undefined>();
  private strayTimer: NodeJS.Timeout | undefined;
  private sweeping = false;
  /** Session expiries whose re-taking of this mount's locks is under way, and when the last one is done. */
  private reclaimsPending = 0;
  private reclaimed: Promise<void> = Promise.resolve();
  private dirReady: Promise<void> | undefined;
  private changed!: Promise<void>;
  private signal!: () => void;
  private nonces = 0;

  constructor(
    private readonly zk: ZkClient,
    /** Absolute path of the lock directory. */
    readonly dir: string,
    private readonly acl: Acl[],
  ) {
    this.rearm();
    zk.on('session', (s: { expired: boolean }) => {
      if (s.expired) this.strays.clear(); // ephemeral: gone with the session
      else if (this.strays.size > 0) void this.deleteStrays();
      if (s.expired) this.reclaim();
      // A lock released while the connection was down is not reported, and a
      // waiter's request may have died with an expired session: waiters look again.
      this.notify();
    });
  }

  /** Something in the lock directory changed (the volume's watch saw it): waiters look again. */
  notify(): void {
    const fire = this.signal;
    this.rearm();
    fire();
  }

  /** Whether any owner on this mount holds a lock or has a change to its held locks under way: if not, release finds nothing to drop. */
  holdsAny(): boolean {
    return this.owners.size > 0;
  }

  /** Whether this mount holds or asks for any lock under the file key `file`. */
  inUse(file: string): boolean {
    for (const [key, s] of this.owners) if (s.held.length > 0 && key.split(':')[1] === file) return true;
    for (const key of this.acquiring.keys()) if (key.split(':')[1] === file) return true;
    return false;
  }

  /** Whether lk's owner holds or asks for a lock under the file key `file`. */
  usedBy(file: string, lk: LockIn): boolean {
    const key = this.stateKey(file, lk);
    return (this.owners.get(key)?.held.length ?? 0) > 0 || this.acquiring.has(key);
  }

  /** F_GETLK: the first lock, of any owner on any node, that would block `lk`. */
  async test(file: string, lk: LockIn): Promise<FileLock> {
    validate(lk);
    const me = this.ownerId(lk.owner);
    for (const e of await this.list()) {
      if (e.state !== 'hold' || e.file !== file || e.kind !== kindOf(lk) || e.owner === me) continue;
      if (!excludes(e, lk.lock, lk.lock.type)) continue;
      // A pid means nothing on another node: report 0 there, as NFS does.
      return { start: e.start, end: e.end, type: e.type, pid: e.owner.startsWith(`${this.mountId}.`) ? e.pid : 0 };
    }
    return { start: 0n, end: 0n, type: F_UNLCK, pid: 0 };
  }

  /**
   * F_SETLK, F_SETLKW and flock(2) (wait = blocking). `aliases`: other keys
   * of the same file on this mount (its keys from before a rename), whose
   * locks conflict too.
   */
  async set(ctx: RequestContext, file: string, lk: LockIn, wait: boolean, hooks: LockHooks, aliases: readonly string[] = []): Promise<void> {
    validate(lk);
    const key = this.stateKey(file, lk);
    for (;;) {
      const held = this.heldBy(key);
      if (lk.lock.type === F_UNLCK) {
        if (held.length === 0) return;
        await hooks.beforeRelease();
        await this.publish(file, lk, (cur) => withLock(cur, lk));
        return;
      }
      // flock(2) converts a lock by dropping the old one first, as Linux does (two upgraders never deadlock).
      if (lk.flock && held.length > 0 && held[0]!.type !== lk.lock.type) {
        await hooks.beforeRelease();
        await this.publish(file, lk, () => []);
      }
      // (after a flock conversion, the owner holds nothing any more)
      const current = this.heldBy(key);
      const target = withLock(current, lk);
      if (onlyShrinks(current, target)) {
        // Already held, or a downgrade: nobody to wait for, as long as it still only shrinks what
        // the owner holds when it is made (another thread's unlock, or a lock lost with the session,
        // may come first: then it is a new lock, and queues).
        if (!sameLocks(target, current)) {
          await hooks.beforeRelease();
          if ((await this.publish(file, lk, (cur) => withLock(cur, lk), undefined, [], true)) === 'grows') continue;
        }
        return;
      }
      await this.acquire(ctx, file, lk, wait, aliases);
      await hooks.afterAcquire();
      return;
    }
  }

  /**
   * Drops every lock `owner` holds on `file` (close for fcntl locks, the last
   * close for flock). If ZooKeeper cannot be told, the owner holds nothing
   * all the same (it closed the file; it must not get the locks back after
   * an expiry), and its lock znodes are deleted once ZooKeeper answers.
   */
  async release(file: string, owner: bigint, flock: boolean): Promise<void> {
    const lk: LockIn = { fh: 0, owner, flock, lock: { type: F_UNLCK, start: 0n, end: 0n, pid: 0 } };
    const key = this.stateKey(file, lk);
    if (this.heldBy(key).length === 0) return;
    // close(2) must not fail for it: the owner holds nothing now either way.
    await this.publish(file, lk, () => [], undefined, [], false, (s) => {
      for (const n of s.names) this.noteStray(n, key);
      s.held = [];
      s.names = [];
    }).catch((err: unknown) => log.warn('a lock release could not reach ZooKeeper; its lock znodes are removed once it answers', { owner: key, error: (err as Error).message }));
  }

  // ---- acquiring ------------------------------------------------------------------

  private async acquire(ctx: RequestContext, file: string, lk: LockIn, wait: boolean, aliases: readonly string[]): Promise<void> {
    const key = this.stateKey(file, lk);
    this.acquiring.set(key, (this.acquiring.get(key) ?? 0) + 1);
    try {
      await this.acquireQueued(ctx, file, lk, wait, aliases);
    } finally {
      const n = this.acquiring.get(key)! - 1;
      if (n === 0) this.acquiring.delete(key);
      else this.acquiring.set(key, n);
    }
  }

  private async acquireQueued(ctx: RequestContext, file: string, lk: LockIn, wait: boolean, aliases: readonly string[]): Promise<void> {
    await this.ensureDir();
    const me = this.ownerId(lk.owner);
    const want = { kind: kindOf(lk), state: 'want' as const, file, type: lk.lock.type, start: lk.lock.start, end: lk.lock.end, owner: me, pid: lk.lock.pid };
    let interrupted = false;
    let wake: (() => void) | undefined;
    const off = ctx.onInterrupt(() => {
      interrupted = true;
      wake?.();
    });
    let mine: LockEntry | undefined;
    try {
      for (;;) {
        // Armed before listing: a change between the listing and the wait is not missed.
        const changed = this.changed;
        let entries: LockEntry[] | undefined;
        if (!mine) {
          // Pipelined: ZooKeeper answers the listing after the create, so it includes our want.
          const created = this.createWant(want);
          const listed = this.list().catch(() => undefined);
          mine = await created;
          entries = await listed;
        }
        entries ??= await this.list();
        if (!entries.some((e) => e.name === mine!.name)) {
          // Our want died with a session, or the listing was answered before it was made (a lost
          // connection made its create again): ask again (at the back of the queue), without it.
          await this.deleteQuietly(mine.name);
          mine = undefined;
          continue;
        }
        // After a session expiry this mount's locks are taken again first, in the queue as they were: look once that is done.
        if (this.reclaimsPending > 0) {
          await this.reclaimed;
          entries = undefined;
          continue;
        }
        const passed = new Set<string>();
        const files = new Set([file, ...aliases]);
        const blocker = entries.find((e) => files.has(e.file) && e.kind === want.kind && e.owner !== me && excludes(e, lk.lock, lk.lock.type) && (e.state === 'hold' || (e.seq < mine!.seq && !this.waitsForUs(e, entries!, files, me, lk.lock.pid, passed))));
        if (!blocker) {
          // The grant's multi deletes the want, or finds it gone with the session (then ask again), and
          // checks that the holds an older want was passed for are still there (else look again).
          const outcome = await this.publish(file, lk, (cur) => withLock(cur, lk), mine.name, [...passed]);
          if (outcome === 'changed') continue;
          mine = undefined;
          if (outcome === 'done') return;
          continue;
        }
        if (!wait) throw new FsError('EAGAIN');
        if (interrupted) throw new FsError('EINTR');
        await new Promise<void>((resolve) => {
          wake = resolve;
          void changed.then(resolve);
        });
        if (interrupted) throw new FsError('EINTR');
      }
    } finally {
      off();
      if (mine) await this.deleteQuietly(mine.name);
    }
  }

  /**
   * Whether the older want `e` waits for a hold of the requester: of its
   * owner, or of the same process on this mount (flock through another open,
   * OFD locks). It cannot be granted before the requester lets go, so waiting
   * for it would deadlock (an upgrade, or extending a read lock, while a
   * writer waits); Linux grants those at once. Holds still exclude as always.
   */
  private waitsForUs(e: LockEntry, entries: LockEntry[], files: ReadonlySet<string>, me: string, pid: number, passed: Set<string>): boolean {
    // A want is never held up by its own owner's holds (it replaces them).
    // pid 0: a process in another pid namespace than the mount (containers of the managed plugin): not told apart.
    const ours = (h: LockEntry) => h.owner !== e.owner && (h.owner === me || (pid !== 0 && h.pid === pid && h.owner.startsWith(`${this.mountId}.`)));
    let found = false;
    for (const h of entries) {
      if (h.state !== 'hold' || !files.has(h.file) || h.kind !== e.kind || !ours(h) || !excludes(h, e, e.type)) continue;
      passed.add(h.name);
      found = true;
    }
    return found;
  }

  /** Creates a want znode; after a lost connection, finds it by its nonce rather than making a second one. */
  private async createWant(want: Omit<LockEntry, 'name' | 'seq'>): Promise<LockEntry> {
    const nonce = `${(this.nonces++).toString(36)}n`;
    const base = lockName(want, nonce);
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.zk.create(`${this.dir}/${base}`, Buffer.alloc(0), this.acl, CreateMode.EPHEMERAL_SEQUENTIAL);
        return parseLockName(r.path.slice(r.path.lastIndexOf('/') + 1))!;
      } catch (err) {
        if (!isConnectionLoss(err) || attempt > 3) {
          // It may have been made (its reply lost): it would hold up every later request for the file.
          if (isConnectionLoss(err)) this.noteStray(base, undefined);
          throw lockError(err);
        }
        let found: LockEntry | undefined;
        try {
          found = (await this.list()).find((e) => e.name.startsWith(base) && e.name.length === base.length + SEQ_DIGITS);
        } catch (listErr) {
          this.noteStray(base, undefined);
          throw listErr;
        }
        if (found) return found;
      }
    }
  }

  /** Records a lock znode of ours to delete once ZooKeeper answers; tried again every few seconds until it is gone. */
  private noteStray(name: string, owner: string | undefined): void {
    this.strays.set(name, owner);
    this.strayTimer ??= setInterval(() => {
      if (this.strays.size === 0) {
        clearInterval(this.strayTimer);
        this.strayTimer = undefined;
      } else if (this.zk.state === 'connected' && !this.sweeping) void this.deleteStrays();
    }, STRAY_RETRY_MS).unref();
  }

  /** Deletes the lock znodes that could not be deleted, or found, while the connection was down. */
  private async deleteStrays(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      await this.sweepStrays();
    } finally {
      this.sweeping = false;
    }
  }

  private async sweepStrays(): Promise<void> {
    let entries: LockEntry[];
    try {
      entries = await this.entries();
    } catch {
      return; // tried again (see noteStray)
    }
    for (const [stray, owner] of [...this.strays]) {
      const matches = entries.filter((e) => e.name === stray || (e.state === 'want' && e.name.slice(0, -SEQ_DIGITS) === stray));
      try {
        for (const e of matches) {
          const remove = () => deleteOwned(this.zk, `${this.dir}/${e.name}`);
          // A hold, in its owner's turn: not if the owner holds it again by now.
          if (owner === undefined) await remove();
          else await this.serialized(owner, async (s) => (s.names.includes(e.name) ? undefined : remove()));
        }
        if (this.strays.get(stray) === owner) this.strays.delete(stray);
      } catch {
        break; // the next try does the rest
      }
    }
    this.notify();
  }

  // ---- holds ------------------------------------------------------------------------

  /**
   * Replaces the holds of lk's owner on `file` with `next(current)`, deleting
   * `want` in the same multi if given, and checking that the holds `checks`
   * are still there. `want gone`: the want died with our session (nothing
   * changed); `changed`: a checked hold is gone (nothing changed); `grows`:
   * with `shrinkOnly`, the change would take more than the owner holds now
   * (nothing changed).
   * Serialized per owner; after a lost connection the outcome is read back,
   * never guessed.
   */
  private publish(
    file: string,
    lk: LockIn,
    next: (cur: HeldLock[]) => HeldLock[],
    want?: string,
    checks: readonly string[] = [],
    shrinkOnly = false,
    /** On failure, in the same turn of the owner (before anything queued after). */
    failed?: (s: OwnerState) => void,
  ): Promise<'done' | 'want gone' | 'changed' | 'grows'> {
    const key = this.stateKey(file, lk);
    return this.serialized(key, async (s) => {
      try {
        return await this.publishStep(s, key, file, lk, next, want, checks, shrinkOnly);
      } catch (err) {
        failed?.(s);
        throw err;
      }
    });
  }

  private async publishStep(s: OwnerState, key: string, file: string, lk: LockIn, next: (cur: HeldLock[]) => HeldLock[], want: string | undefined, checks: readonly string[], shrinkOnly: boolean): Promise<'done' | 'want gone' | 'changed' | 'grows'> {
    const held = next(s.held);
    // Made without a want, it may only give way (see set).
    if (shrinkOnly && !onlyShrinks(s.held, held)) return 'grows';
    const names = held.map((h) => this.holdName(file, lk, h));
    let drop = s.names.filter((n) => !names.includes(n));
    let add = names.filter((n) => !s.names.includes(n));
    let kept = s.names.filter((n) => names.includes(n));
    /** Some of our holds went with an expired session: taken again in the queue before this turn ends. */
    let lostHolds = false;
    for (let attempt = 0; ; attempt++) {
      // The checks first: a hold checked may be one this multi replaces.
      const ops: MultiOp[] = checks.map((c) => ({ op: 'check' as const, path: `${this.dir}/${c}`, version: -1 }));
      for (const n of drop) ops.push({ op: 'delete', path: `${this.dir}/${n}` });
      for (const n of add) ops.push({ op: 'create', path: `${this.dir}/${n}`, data: Buffer.alloc(0), acl: this.acl, mode: CreateMode.EPHEMERAL });
      if (want) ops.push({ op: 'delete', path: `${this.dir}/${want}` });
      if (ops.length === checks.length) break;
      if (add.length > 0) await this.ensureDir();
      try {
        await this.zk.multi(ops);
        break;
      } catch (err) {
        const missing = err instanceof ZkError && err.code === ErrorCode.NONODE ? err.path : undefined;
        if (want && missing?.endsWith(`/${want}`)) return 'want gone'; // it died with our session
        const existing = err instanceof ZkError && err.code === ErrorCode.NODEEXISTS ? err.path : undefined;
        const leftover = existing === undefined ? undefined : add.find((n) => existing.endsWith(`/${n}`) && this.strays.get(n) === key);
        if (leftover !== undefined) {
          // This owner's hold of the same range whose deletion failed: it is what we want to make.
          this.strays.delete(leftover);
          add = add.filter((n) => n !== leftover);
          kept.push(leftover);
          continue;
        }
        if (missing && checks.some((c) => missing.endsWith(`/${c}`))) return 'changed';
        if (missing && s.names.some((n) => missing.endsWith(`/${n}`))) {
          // A hold of ours is gone: our session expired under us, and its holds with it. None is
          // made here, outside the queue: what the owner holds is taken again (retake) below.
          const now = await this.readBack(s, key, held, add, want, err);
          drop = drop.filter((n) => now.has(n));
          kept = kept.filter((n) => now.has(n));
          add = [];
          lostHolds = true;
          if (want) {
            await this.deleteQuietly(want);
            s.names = s.names.filter((n) => now.has(n));
            await this.retake(key, s);
            return 'want gone';
          }
          continue;
        }
        if (!isConnectionLoss(err)) throw lockError(err);
        // The multi is atomic: it happened entirely or not at all; given up only once known not to have.
        const now = await this.readBack(s, key, held, add, want, err);
        if (add.every((n) => now.has(n)) && drop.every((n) => !now.has(n)) && (!want || !now.has(want))) break;
        if (attempt > 3) throw lockError(err);
      }
    }
    s.held = held;
    s.names = [...kept, ...add];
    for (const n of add) this.strays.delete(n);
    if (lostHolds) await this.retake(key, s);
    return 'done';
  }

  /**
   * The lock directory's names, after a change whose outcome is unknown. If
   * ZooKeeper cannot tell either, the owner's locks are given up: its holds,
   * those the change may have made, and the want, are deleted once ZooKeeper
   * answers (not knowing them would leave them blocking everyone).
   */
  private async readBack(s: OwnerState, key: string, target: HeldLock[], add: string[], want: string | undefined, cause: unknown): Promise<Set<string>> {
    try {
      return new Set((await againAfterLoss(this.zk, () => this.entries())).map((e) => e.name));
    } catch {
      // (a release or unlock losing its outcome loses no lock: the owner wanted none)
      if (s.held.length > 0 && target.length > 0) log.error('LOCK LOST: ZooKeeper could not tell whether a lock change was made; the process holding it is no longer protected', { owner: key, locks: s.held.length });
      for (const n of [...s.names, ...add]) this.noteStray(n, key);
      if (want) this.noteStray(want, undefined);
      s.held = [];
      s.names = [];
      throw lockError(cause);
    }
  }

  /** Runs `step` on an owner's state after every earlier one; an owner left with nothing held is forgotten. */
  private serialized<T>(key: string, step: (s: OwnerState) => Promise<T>): Promise<T> {
    let state = this.owners.get(key);
    if (!state) {
      state = { held: [], names: [], chain: Promise.resolve() };
      this.owners.set(key, state);
    }
    const s = state;
    const run = s.chain.then(() => step(s));
    const settled: Promise<void> = run.catch(() => undefined).then(() => {
      if (s.held.length === 0 && s.chain === settled && this.owners.get(key) === s) this.owners.delete(key);
    });
    s.chain = settled;
    return run;
  }

  /** After a session expiry our holds are gone: each owner takes its locks again, in turn with its other changes; this mount's own requests wait for that. */
  private reclaim(): void {
    const retakes: Promise<void>[] = [];
    for (const [key, s] of this.owners) {
      if (s.held.length > 0) retakes.push(this.serialized(key, () => this.retake(key, s)).catch(() => undefined));
    }
    if (retakes.length === 0) return;
    this.reclaimsPending++;
    this.reclaimed = Promise.all([this.reclaimed, ...retakes]).then(() => {
      this.reclaimsPending--;
      this.notify();
    });
  }

  /**
   * Takes an owner's locks again after a session expiry, queued like any
   * request (a want per range held): a node asking for the lock meanwhile
   * either sees our wants first and waits, or is seen by us first and gets
   * it. Re-creating the holds straight away would let both hold it. This
   * mount's own requests wait until it is done (see acquire), so their wants
   * do not count. If another node holds or asked first, the lock is lost,
   * and said so.
   */
  private async retake(key: string, s: OwnerState): Promise<void> {
    if (s.held.length === 0) return; // released meanwhile
    const [kind, file, owner] = key.split(':') as ['posix' | 'flock', string, string];
    const names = s.held.map((h) => lockName({ kind, state: 'hold', file, type: h.type, start: h.start, end: h.end, owner, pid: h.pid }, ''));
    const lost = async (why: string) => {
      log.error(`LOCK LOST: ${why}; the process holding it is no longer protected`, { file, owner, locks: s.held.length });
      for (const n of names) await this.deleteQuietly(n, key);
      s.held = [];
      s.names = [];
    };
    let wants: LockEntry[] = [];
    let settled = false;
    try {
      const before = new Set((await againAfterLoss(this.zk, () => this.entries())).map((e) => e.name));
      if (names.every((n) => before.has(n))) {
        settled = true; // taken again already
        s.names = names;
        return;
      }
      const made = await Promise.allSettled(s.held.map((h) => this.createWant({ kind, state: 'want', file, type: h.type, start: h.start, end: h.end, owner, pid: h.pid })));
      wants = made.flatMap((m) => (m.status === 'fulfilled' ? [m.value] : []));
      const failed = made.find((m) => m.status === 'rejected');
      if (failed) throw failed.reason;
      for (let attempt = 0; ; attempt++) {
        const entries = await againAfterLoss(this.zk, () => this.entries());
        // Our wants died with another expiry: that one's re-taking, next in line, takes over.
        if (!wants.every((w) => entries.some((e) => e.name === w.name))) return;
        const local = (e: LockEntry) => e.state === 'want' && e.owner.startsWith(`${this.mountId}.`);
        const taken = s.held.some((h, i) => entries.some((e) => e.file === file && e.kind === kind && e.owner !== owner && !local(e) && excludes(e, h, h.type) && (e.state === 'hold' || e.seq < wants[i]!.seq)));
        if (taken) return await lost('another node took this lock, or asked for it first, while our ZooKeeper session was expired');
        const present = new Set(entries.map((e) => e.name));
        const ops: MultiOp[] = [...wants.map((w) => ({ op: 'delete' as const, path: `${this.dir}/${w.name}` })), ...names.filter((n) => !present.has(n)).map((n) => ({ op: 'create' as const, path: `${this.dir}/${n}`, data: Buffer.alloc(0), acl: this.acl, mode: CreateMode.EPHEMERAL }))];
        try {
          await this.zk.multi(ops);
        } catch (err) {
          if (err instanceof ZkError && err.code === ErrorCode.NONODE) return; // a want died with another expiry, as above
          if (err instanceof ZkError && err.code === ErrorCode.NODEEXISTS && attempt < 3) continue; // only we make these names: an earlier attempt's
          if (!isConnectionLoss(err) || attempt > 3) throw err;
          // Atomic: applied (its reply lost) or not; if not, our wants still keep our place.
          const now = new Set((await againAfterLoss(this.zk, () => this.entries())).map((e) => e.name));
          if (!(names.every((n) => now.has(n)) && wants.every((w) => !now.has(w.name)))) continue;
        }
        settled = true;
        s.names = names;
        for (const n of names) this.strays.delete(n);
        log.warn('locks re-taken after a ZooKeeper session expiry', { file, owner, locks: s.held.length });
        return;
      }
    } catch (err) {
      log.error('could not re-take locks after a session expiry', { file, error: (err as Error).message });
      await lost('it could not be taken again after our ZooKeeper session expired');
    } finally {
      if (!settled) for (const w of wants) await this.deleteQuietly(w.name);
    }
  }

  // ---- helpers ----------------------------------------------------------------------

  private async list(): Promise<LockEntry[]> {
    try {
      return await this.entries();
    } catch (err) {
      throw lockError(err);
    }
  }

  /** The lock directory's entries; ZooKeeper's errors as they are. */
  private async entries(): Promise<LockEntry[]> {
    try {
      const r = await this.zk.getChildren(this.dir);
      return r.children.map(parseLockName).filter((e): e is LockEntry => e !== undefined);
    } catch (err) {
      if (err instanceof ZkError && err.code === ErrorCode.NONODE) return [];
      throw err;
    }
  }

  private ensureDir(): Promise<void> {
    this.dirReady ??= this.zk
      .create(this.dir, Buffer.alloc(0), this.acl)
      .then(
        () => undefined,
        (err: unknown) => {
          if (!(err instanceof ZkError && err.code === ErrorCode.NODEEXISTS)) throw lockError(err);
        },
      )
      .catch((err: unknown) => {
        this.dirReady = undefined;
        throw err;
      });
    return this.dirReady;
  }

  /** A want left behind would hold up every later request for the file: it is deleted even across a lost connection. */
  private async deleteQuietly(name: string, owner?: string): Promise<void> {
    await deleteOwned(this.zk, `${this.dir}/${name}`).catch((err: unknown) => {
      this.noteStray(name, owner);
      log.warn('could not remove a lock znode; it is removed once ZooKeeper answers again', { name, error: (err as Error).message });
    });
  }

  private heldBy(key: string): HeldLock[] {
    return this.owners.get(key)?.held ?? [];
  }

  private ownerId(owner: bigint): string {
    return `${this.mountId}.${owner.toString(16)}`;
  }

  private stateKey(file: string, lk: LockIn): string {
    return `${kindOf(lk)}:${file}:${this.ownerId(lk.owner)}`;
  }

  private holdName(file: string, lk: LockIn, h: HeldLock): string {
    return lockName({ kind: kindOf(lk), state: 'hold', file, type: h.type, start: h.start, end: h.end, owner: this.ownerId(lk.owner), pid: h.pid }, '');
  }

  private rearm(): void {
    this.changed = new Promise((resolve) => (this.signal = resolve));
  }
}

function kindOf(lk: LockIn): 'posix' | 'flock' {
  return lk.flock ? 'flock' : 'posix';
}

function sameLocks(a: readonly HeldLock[], b: readonly HeldLock[]): boolean {
  return a.length === b.length && a.every((x, i) => x.start === b[i]!.start && x.end === b[i]!.end && x.type === b[i]!.type);
}

/** Lock failures as errno: ENOLCK, with the reason logged. */
function lockError(err: unknown): FsError {
  if (err instanceof FsError) return err;
  // Not EACCES: from F_SETLK that means "held by another", and callers would wait and retry.
  if (err instanceof ZkError && err.code === ErrorCode.NOAUTH) {
    log.error('no permission to create lock znodes in ZooKeeper (the lock directory\'s ACL)', { error: err.message });
    return new FsError('ENOLCK', 'no permission to create lock znodes');
  }
  log.warn('lock request failed in ZooKeeper', { error: (err as Error).message });
  return new FsError('ENOLCK', (err as Error).message);
}
