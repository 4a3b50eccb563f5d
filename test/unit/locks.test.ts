import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { F_RDLCK, F_UNLCK, F_WRLCK, LOCK_OFFSET_MAX } from '../../src/fuse/kernel.js';
import type { LockIn, RequestContext } from '../../src/fuse/types.js';
import { LockTable } from '../../src/fs/locks.js';

function ctx(): RequestContext & { fire(): void } {
  let cbs: Array<() => void> = [];
  return {
    unique: 1,
    uid: 0,
    gid: 0,
    pid: 1,
    onInterrupt(cb) {
      cbs.push(cb);
      return () => (cbs = cbs.filter((c) => c !== cb));
    },
    fire() {
      for (const cb of cbs) cb();
    },
  };
}

function lk(owner: number, type: number, start: number, end: number | bigint, flock = false): LockIn {
  return { fh: 1, owner: BigInt(owner), flock, lock: { type, start: BigInt(start), end: BigInt(end), pid: owner * 100 } };
}

describe('LockTable (POSIX byte ranges)', () => {
  it('write locks of different owners conflict only where they overlap', async () => {
    const t = new LockTable();
    await t.set(ctx(), 7, lk(1, F_WRLCK, 0, 99), false);
    await assert.rejects(t.set(ctx(), 7, lk(2, F_WRLCK, 50, 150), false), { code: 'EAGAIN' });
    await t.set(ctx(), 7, lk(2, F_WRLCK, 100, 199), false); // adjacent, no overlap
    assert.equal(t.test(7, lk(3, F_RDLCK, 99, 99)).pid, 100);
    assert.equal(t.test(7, lk(3, F_RDLCK, 100, 100)).pid, 200);
    assert.equal(t.test(7, lk(3, F_RDLCK, 200, 300)).type, F_UNLCK);
  });

  it('read locks share; a write lock waits for all readers', async () => {
    const t = new LockTable();
    await t.set(ctx(), 1, lk(1, F_RDLCK, 0, 10), false);
    await t.set(ctx(), 1, lk(2, F_RDLCK, 5, 20), false);
    let granted = false;
    const w = t.set(ctx(), 1, lk(3, F_WRLCK, 0, 0), true).then(() => (granted = true));
    await t.set(ctx(), 1, lk(1, F_UNLCK, 0, 10), false);
    await new Promise((r) => setImmediate(r));
    assert.equal(granted, true, 'owner 2 does not cover byte 0, so the writer gets it');
    await w;
  });

  it('an owner splits its own lock by unlocking the middle, and merges adjacent ranges', async () => {
    const t = new LockTable();
    await t.set(ctx(), 1, lk(1, F_WRLCK, 0, 99), false);
    await t.set(ctx(), 1, lk(1, F_UNLCK, 40, 59), false);
    await t.set(ctx(), 1, lk(2, F_WRLCK, 40, 59), false);
    await assert.rejects(t.set(ctx(), 1, lk(2, F_WRLCK, 39, 40), false), { code: 'EAGAIN' });
    await assert.rejects(t.set(ctx(), 1, lk(2, F_WRLCK, 60, 60), false), { code: 'EAGAIN' });
    t.releaseOwner(1, 2n, false);
    await t.set(ctx(), 1, lk(1, F_WRLCK, 40, 59), false);
    const held = t.test(1, lk(3, F_WRLCK, 0, LOCK_OFFSET_MAX));
    assert.deepEqual([held.start, held.end], [0n, 99n], 'merged back into one range');
  });

  it('converting a lock type keeps the rest of the range', async () => {
    const t = new LockTable();
    await t.set(ctx(), 1, lk(1, F_RDLCK, 0, 99), false);
    await t.set(ctx(), 1, lk(1, F_WRLCK, 10, 19), false);
    assert.equal(t.test(1, lk(2, F_RDLCK, 0, 9)).type, F_UNLCK);
    assert.equal(t.test(1, lk(2, F_RDLCK, 10, 10)).type, F_WRLCK);
    assert.equal(t.test(1, lk(2, F_WRLCK, 50, 50)).type, F_RDLCK);
  });

  it('a blocked request is interrupted with EINTR and leaves no state', async () => {
    const t = new LockTable();
    await t.set(ctx(), 1, lk(1, F_WRLCK, 0, 0), false);
    const c = ctx();
    const waiting = t.set(c, 1, lk(2, F_WRLCK, 0, 0), true);
    c.fire();
    await assert.rejects(waiting, { code: 'EINTR' });
    t.releaseOwner(1, 1n, false);
    assert.equal(t.size, 0);
  });

  it('rejects bad ranges and types', async () => {
    const t = new LockTable();
    await assert.rejects(t.set(ctx(), 1, lk(1, F_WRLCK, 10, 5), false), { code: 'EINVAL' });
    await assert.rejects(t.set(ctx(), 1, lk(1, 9, 0, 5), false), { code: 'EINVAL' });
  });
});

describe('LockTable (flock)', () => {
  it('shared locks share, exclusive excludes, and flock does not conflict with POSIX locks', async () => {
    const t = new LockTable();
    await t.set(ctx(), 1, lk(1, F_RDLCK, 0, LOCK_OFFSET_MAX, true), false);
    await t.set(ctx(), 1, lk(2, F_RDLCK, 0, LOCK_OFFSET_MAX, true), false);
    await assert.rejects(t.set(ctx(), 1, lk(3, F_WRLCK, 0, LOCK_OFFSET_MAX, true), false), { code: 'EAGAIN' });
    await t.set(ctx(), 1, lk(3, F_WRLCK, 0, LOCK_OFFSET_MAX, false), false);
  });

  it('waiters are granted in order when the holder releases', async () => {
    const t = new LockTable();
    await t.set(ctx(), 1, lk(1, F_WRLCK, 0, LOCK_OFFSET_MAX, true), false);
    const order: number[] = [];
    const a = t.set(ctx(), 1, lk(2, F_WRLCK, 0, LOCK_OFFSET_MAX, true), true).then(() => order.push(2));
    const b = t.set(ctx(), 1, lk(3, F_WRLCK, 0, LOCK_OFFSET_MAX, true), true).then(() => order.push(3));
    t.releaseOwner(1, 1n, true);
    await a;
    assert.deepEqual(order, [2]);
    t.releaseOwner(1, 2n, true);
    await b;
    assert.deepEqual(order, [2, 3]);
  });
});

describe('LockTable.forgetFile', () => {
  it('drops a forgotten file’s lock state, so a node id reused for another file starts unlocked', async () => {
    const t = new LockTable();
    await t.set(ctx(), 7, lk(1, F_WRLCK, 0, 99), false);
    assert.equal(t.test(7, lk(2, F_WRLCK, 0, 99)).type, F_WRLCK);
    t.forgetFile(7);
    assert.equal(t.size, 0);
    assert.equal(t.test(7, lk(2, F_WRLCK, 0, 99)).type, F_UNLCK);
  });
});
