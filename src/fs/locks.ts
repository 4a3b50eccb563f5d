// Local lock semantics for one mount, as the kernel would keep them itself:
// POSIX byte-range locks owned by a lock owner (a process's file table), and
// flock(2) locks owned by an open file description. The two kinds do not
// conflict with each other (as on Linux). Blocking requests wait in FIFO order
// and can be interrupted.

import { F_RDLCK, F_UNLCK, F_WRLCK, LOCK_OFFSET_MAX } from '../fuse/kernel.js';
import type { FileLock, LockIn, RequestContext } from '../fuse/types.js';
import { FsError } from './errors.js';

export interface HeldLock {
  owner: bigint;
  start: bigint;
  end: bigint;
  type: number;
  pid: number;
}

interface Waiter {
  lk: LockIn;
  resolve(): void;
  reject(err: Error): void;
}

class FileLocks {
  posix: HeldLock[] = [];
  flock: HeldLock[] = [];
  waiters: Waiter[] = [];

  isEmpty(): boolean {
    return this.posix.length === 0 && this.flock.length === 0 && this.waiters.length === 0;
  }
}

export function overlaps(a: { start: bigint; end: bigint }, b: { start: bigint; end: bigint }): boolean {
  return a.start <= b.end && b.start <= a.end;
}

/**
 * The locks of `lk.owner` after `lk` is applied to `list` (one owner's or many):
 * its own ranges are split, replaced or merged (same type, overlapping or
 * adjacent) as POSIX says; other owners' locks are kept as they are.
 */
export function withLock(list: readonly HeldLock[], lk: LockIn): HeldLock[] {
  const { start, end, type, pid } = lk.lock;
  const next: HeldLock[] = [];
  const merged: HeldLock | undefined = type === F_UNLCK ? undefined : { owner: lk.owner, start, end, type, pid };
  for (const held of list) {
    if (held.owner !== lk.owner) {
      next.push(held);
      continue;
    }
    const touches = held.start <= end + 1n && start <= held.end + 1n;
    if (!touches) {
      next.push(held);
      continue;
    }
    if (merged && held.type === type) {
      // Same type and overlapping or adjacent: merge into one range.
      merged.start = held.start < merged.start ? held.start : merged.start;
      merged.end = held.end > merged.end ? held.end : merged.end;
      continue;
    }
    if (!overlaps(held, { start, end })) {
      next.push(held);
      continue;
    }
    // Different type (or unlock): keep the parts outside [start, end].
    if (held.start < start) next.push({ ...held, end: start - 1n });
    if (held.end > end) next.push({ ...held, start: end + 1n });
  }
  if (merged) next.push(merged);
  next.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  return next;
}

/** Whether `held` and a request of `type` over `range` exclude each other. */
export function excludes(held: { start: bigint; end: bigint; type: number }, range: { start: bigint; end: bigint }, type: number): boolean {
  return overlaps(held, range) && (held.type === F_WRLCK || type === F_WRLCK);
}

/**
 * Whether every lock in `next` is already granted by `prev` (same range or
 * inside it, same type or a read lock inside a write lock): a change that only
 * shrinks or downgrades, which never has to wait for anyone.
 */
export function onlyShrinks(prev: readonly HeldLock[], next: readonly HeldLock[]): boolean {
  return next.every((n) => {
    // Walk the sorted, non-overlapping previous ranges that may cover n.
    let from = n.start;
    for (const p of prev) {
      if (p.end < from || p.start > from) continue;
      if (n.type === F_WRLCK && p.type !== F_WRLCK) return false;
      if (p.end >= n.end) return true;
      from = p.end + 1n;
    }
    return false;
  });
}

export class LockTable {
  private readonly files = new Map<number, FileLocks>();

  /** F_GETLK: the first lock that would block `lk`, or an F_UNLCK lock. */
  test(key: number, lk: LockIn): FileLock {
    const conflict = this.conflict(this.files.get(key), lk);
    if (!conflict) return { start: 0n, end: 0n, type: F_UNLCK, pid: 0 };
    return { start: conflict.start, end: conflict.end, type: conflict.type, pid: conflict.pid };
  }

  /** F_SETLK / F_SETLKW / flock(). */
  async set(ctx: RequestContext, key: number, lk: LockIn, wait: boolean): Promise<void> {
    validate(lk);
    let file = this.files.get(key);
    if (lk.lock.type === F_UNLCK) {
      if (file) this.apply(file, lk);
      this.wake(key);
      return;
    }
    file ??= this.fileFor(key);
    if (!this.conflict(file, lk)) {
      this.apply(file, lk);
      return;
    }
    if (!wait) throw new FsError('EAGAIN');
    // flock(LOCK_EX) over our own LOCK_SH drops the old lock before waiting, as Linux does.
    if (lk.flock) {
      this.apply(file, { ...lk, lock: { ...lk.lock, type: F_UNLCK } });
      this.wake(key);
    }
    const target = file;
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { lk, resolve, reject };
      target.waiters.push(waiter);
      const off = ctx.onInterrupt(() => {
        const i = target.waiters.indexOf(waiter);
        if (i >= 0) target.waiters.splice(i, 1);
        this.dropIfEmpty(key);
        reject(new FsError('EINTR'));
      });
      waiter.resolve = () => {
        off();
        resolve();
      };
    });
  }

  /** Drops every lock of `owner` (POSIX locks on close, flock locks on release). */
  releaseOwner(key: number, owner: bigint, flock: boolean): void {
    const file = this.files.get(key);
    if (!file) return;
    const list = flock ? file.flock : file.posix;
    const kept = list.filter((l) => l.owner !== owner);
    if (kept.length === list.length) return;
    if (flock) file.flock = kept;
    else file.posix = kept;
    this.wake(key);
  }

  /**
   * The kernel forgot the file: no descriptor of it is open, so it holds no
   * lock. Its key (a node id) may name another file next.
   */
  forgetFile(key: number): void {
    this.files.delete(key);
  }

  /** Number of files with any lock state (for tests and leak checks). */
  get size(): number {
    return this.files.size;
  }

  private fileFor(key: number): FileLocks {
    let file = this.files.get(key);
    if (!file) {
      file = new FileLocks();
      this.files.set(key, file);
    }
    return file;
  }

  private dropIfEmpty(key: number): void {
    if (this.files.get(key)?.isEmpty()) this.files.delete(key);
  }

  private conflict(file: FileLocks | undefined, lk: LockIn): HeldLock | undefined {
    if (!file) return undefined;
    const list = lk.flock ? file.flock : file.posix;
    for (const held of list) {
      if (held.owner !== lk.owner && excludes(held, lk.lock, lk.lock.type)) return held;
    }
    return undefined;
  }

  /** Sets or clears [start, end] for lk.owner, splitting and merging its own locks. */
  private apply(file: FileLocks, lk: LockIn): void {
    if (lk.flock) file.flock = withLock(file.flock, lk);
    else file.posix = withLock(file.posix, lk);
  }

  /** Grants waiting requests that no longer conflict, in arrival order. */
  private wake(key: number): void {
    const file = this.files.get(key);
    if (!file) return;
    for (let i = 0; i < file.waiters.length; ) {
      const w = file.waiters[i]!;
      if (this.conflict(file, w.lk)) {
        i++;
        continue;
      }
      file.waiters.splice(i, 1);
      this.apply(file, w.lk);
      w.resolve();
    }
    this.dropIfEmpty(key);
  }
}

export function validate(lk: LockIn): void {
  const { type, start, end } = lk.lock;
  if (type !== F_RDLCK && type !== F_WRLCK && type !== F_UNLCK) throw new FsError('EINVAL', `lock type ${type}`);
  if (start > end || end > LOCK_OFFSET_MAX) throw new FsError('EINVAL', 'lock range');
}
