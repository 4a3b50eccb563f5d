// The read-ahead queue on its own: a fetch function the test resolves by hand.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inSuccession, naturalKey, READ_AHEAD_GAP_MS, ReadAhead, readerOrder, type Succession } from '../../src/backends/zookeeper/read-ahead.js';

/** A fetch whose calls the test sees and answers one by one. */
function manual(): { fetch: (path: string) => Promise<number>; sent: string[]; answer: (path: string, bytes?: number) => Promise<void>; fail: (path: string) => Promise<void> } {
  const sent: string[] = [];
  const pending = new Map<string, { resolve: (n: number) => void; reject: (e: Error) => void }>();
  const settle = () => new Promise((r) => setImmediate(r));
  return {
    sent,
    fetch: (path) =>
      new Promise<number>((resolve, reject) => {
        sent.push(path);
        pending.set(path, { resolve, reject });
      }),
    answer: async (path, bytes = 1) => {
      pending.get(path)!.resolve(bytes);
      await settle();
    },
    fail: async (path) => {
      pending.get(path)!.reject(new Error('connection loss'));
      await settle();
    },
  };
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `/d/f${i}`);

describe('read-ahead queue', () => {
  it('keeps at most `window` fetches in flight, in order, and sends the next as each one ends', async () => {
    const m = manual();
    const ra = new ReadAhead(m.fetch, 3);
    ra.schedule(names(6));
    assert.deepEqual(m.sent, ['/d/f0', '/d/f1', '/d/f2']);
    await m.answer('/d/f1');
    assert.deepEqual(m.sent, ['/d/f0', '/d/f1', '/d/f2', '/d/f3']);
    for (const p of ['/d/f0', '/d/f2', '/d/f3', '/d/f4', '/d/f5']) await m.answer(p);
    assert.equal(m.sent.length, 6);
    assert.equal(ra.size, 0);
  });

  it('sends a queued path at once when it is taken, and the taker waits for that fetch', async () => {
    const m = manual();
    const ra = new ReadAhead(m.fetch, 2);
    ra.schedule(names(10));
    const wait = ra.take('/d/f7');
    assert.ok(wait);
    assert.deepEqual(m.sent, ['/d/f0', '/d/f1', '/d/f7'], 'f7 jumps the queue');
    let done = false;
    void wait.then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(done, false, 'not before its fetch ends');
    await m.answer('/d/f7');
    assert.equal(done, true);
    assert.equal(ra.take('/d/f7'), undefined, 'fetched: the read-ahead has nothing more for it');
    assert.equal(ra.take('/d/other'), undefined);
    // f7 is not sent twice when the queue reaches it.
    for (const p of ['/d/f0', '/d/f1', '/d/f2', '/d/f3', '/d/f4', '/d/f5', '/d/f6', '/d/f8']) await m.answer(p);
    assert.deepEqual(m.sent.filter((p) => p === '/d/f7').length, 1);
    assert.equal(m.sent.length, 10);
  });

  it('does not queue a path twice, and a failed fetch releases its waiters', async () => {
    const m = manual();
    const ra = new ReadAhead(m.fetch, 4);
    ra.schedule(['/d/a', '/d/b']);
    ra.schedule(['/d/b', '/d/c']);
    assert.deepEqual(m.sent, ['/d/a', '/d/b', '/d/c']);
    const wait = ra.take('/d/b')!;
    await m.fail('/d/b');
    await wait; // resolves: the lookup then fetches the file itself
    assert.equal(ra.size, 2);
  });

  it('stops once maxBytes have come in: what is still queued is dropped and its takers released', async () => {
    const m = manual();
    const ra = new ReadAhead(m.fetch, 1, 100);
    ra.schedule(names(5));
    await m.answer('/d/f0', 60);
    assert.deepEqual(m.sent, ['/d/f0', '/d/f1']);
    await m.answer('/d/f1', 60);
    assert.deepEqual(m.sent, ['/d/f0', '/d/f1'], '120 bytes > 100: nothing more is sent');
    assert.equal(ra.size, 0);
    assert.equal(ra.take('/d/f3'), undefined);
    // A later schedule starts a new budget.
    ra.schedule(['/d/g']);
    assert.deepEqual(m.sent, ['/d/f0', '/d/f1', '/d/g']);
  });

  it('clear() drops what has not been sent and lets fetches in flight end', async () => {
    const m = manual();
    const ra = new ReadAhead(m.fetch, 2);
    ra.schedule(names(5));
    const queuedWait = ra.take('/d/f4');
    assert.deepEqual(m.sent, ['/d/f0', '/d/f1', '/d/f4']);
    ra.clear();
    assert.equal(ra.size, 3, 'the three in flight stay');
    assert.equal(ra.take('/d/f2'), undefined, 'dropped');
    await m.answer('/d/f0');
    await m.answer('/d/f1');
    await m.answer('/d/f4');
    await queuedWait;
    assert.equal(m.sent.length, 3);
    assert.equal(ra.size, 0);
  });

  it('counts a succession of distinct names only, and gives them in the order read: one name read again and again never completes one', async () => {
    const dir: { cold: Succession | undefined } = { cold: undefined };
    for (let i = 0; i < 10; i++) assert.equal(inSuccession(dir, 'same', 'cold', 3), undefined);
    assert.equal(inSuccession(dir, 'other', 'cold', 3), undefined);
    assert.deepEqual(inSuccession(dir, 'third', 'cold', 3), ['same', 'other', 'third'], 'three distinct names');
    assert.equal(dir.cold, undefined, 'then it starts over');
    assert.equal(inSuccession(dir, 'a', 'cold', 2), undefined);
    await new Promise((r) => setTimeout(r, READ_AHEAD_GAP_MS + 50));
    assert.equal(inSuccession(dir, 'b', 'cold', 2), undefined, 'a gap longer than READ_AHEAD_GAP_MS breaks the succession');
    assert.deepEqual(inSuccession(dir, 'c', 'cold', 2), ['b', 'c']);
  });
});

describe('read-ahead order', () => {
  const shuffled = (names: string[]) => names.map((n, i) => [n, (i * 7919) % names.length] as const).sort((a, b) => a[1] - b[1]).map(([n]) => n);
  const numbered = (n: number) => Array.from({ length: n }, (_, i) => `f${i}`);

  it('orders names with their numbers by value under naturalKey', () => {
    const names = ['x10z', 'a10b', 'a', '12345678901234567891', 'a010', 'b', 'a2', 'x9y', 'a10', '12345678901234567890', 'a1', 'x10y', 'f/', 'f5', 'f:'];
    const byKey = [...names].sort((p, q) => (naturalKey(p) < naturalKey(q) ? -1 : 1));
    assert.deepEqual(byKey, ['12345678901234567890', '12345678901234567891', 'a', 'a1', 'a2', 'a010', 'a10', 'a10b', 'b', 'f/', 'f5', 'f:', 'x9y', 'x10y', 'x10z']);
    assert.ok(naturalKey('f2') < naturalKey('f10') && naturalKey('f99') < naturalKey('f100'));
  });

  it('orders a directory of 50,000 names quickly', () => {
    const names = shuffled(Array.from({ length: 50_000 }, (_, i) => `file-${i}.conf`));
    const t0 = performance.now();
    const order = readerOrder(names, ['file-0.conf', 'file-1.conf', 'file-2.conf']);
    const ms = performance.now() - t0;
    assert.equal(order[0], 'file-3.conf');
    assert.equal(order[996], 'file-999.conf');
    assert.ok(ms < 1000, `${ms.toFixed(0)} ms`);
  });

  it('follows a reader going f0, f1, f2 in numeric order, from where it is', () => {
    const names = numbered(200);
    const order = readerOrder(shuffled(names), ['f0', 'f1', 'f2']);
    assert.deepEqual(order, [...names.slice(3), 'f0', 'f1', 'f2']);
  });

  it('follows a reader in code-unit order (ls, a glob): f0, f1, f10 ...', () => {
    const names = numbered(200);
    const order = readerOrder(shuffled(names), ['f0', 'f1', 'f10']);
    const byCode = [...names].sort();
    assert.deepEqual(order, [...byCode.slice(3), ...byCode.slice(0, 3)]);
    assert.equal(order[0], 'f100');
  });

  it('falls back to code-unit order when the reads follow neither order, and takes names without numbers as they sort', () => {
    const names = numbered(30);
    const byCode = [...names].sort();
    const order = readerOrder(shuffled(names), ['f5', 'f1', 'f9']);
    const at = byCode.indexOf('f9');
    assert.deepEqual(order, [...byCode.slice(at + 1), ...byCode.slice(0, at + 1)]);
    assert.deepEqual(readerOrder(['c', 'a', 'd', 'b'], ['a', 'b']), ['c', 'd', 'a', 'b']);
    assert.deepEqual(readerOrder(['b', 'a'], ['gone', 'other']), ['a', 'b'], 'reads no longer listed: the order from the start');
  });
});
