// Idle-time garbage collection: when it collects (a recording gc function and
// a heap whose figures the test sets), and that the gc it gets from V8
// really collects (perf_hooks' 'gc' entries).

import assert from 'node:assert/strict';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { exposeGc, IDLE_MS, IdleGc, MAJOR_AFTER_EXTERNAL_BYTES, MIN_YOUNG_BYTES, type GcFunction } from '../../src/util/idle-gc.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder(): { gc: GcFunction; calls: string[] } {
  const calls: string[] = [];
  return { calls, gc: (o) => void calls.push(o?.type ?? 'full') };
}

describe('idle-time garbage collection', () => {
  it('collects the young generation (twice: copy, then promote) once requests stop, never while they come', async () => {
    const { gc, calls } = recorder();
    const heap = { young: 4 << 20, external: 0, youngBytes: () => heap.young, externalBytes: () => heap.external };
    const idle = IdleGc.create(gc, heap)!;
    try {
      for (let t = 0; t < 4 * IDLE_MS; t += 5) {
        idle.request();
        await sleep(5);
      }
      assert.deepEqual(calls, [], 'nothing while requests come every 5 ms');
      await sleep(3 * IDLE_MS);
      assert.deepEqual(calls, ['minor', 'minor']);
      await sleep(3 * IDLE_MS);
      assert.deepEqual(calls, ['minor', 'minor'], 'idle: no timer, no more collections');
      // The next burst arms it again; a young generation with little in it is left alone.
      heap.young = MIN_YOUNG_BYTES - 1;
      idle.request();
      await sleep(3 * IDLE_MS);
      assert.deepEqual(calls, ['minor', 'minor']);
    } finally {
      idle.stop();
    }
  });

  it('runs a full collection once Buffers grew past the threshold since the last one', async () => {
    const { gc, calls } = recorder();
    const heap = { young: 0, external: 100 << 20, youngBytes: () => heap.young, externalBytes: () => heap.external };
    const idle = IdleGc.create(gc, heap)!;
    try {
      heap.external += MAJOR_AFTER_EXTERNAL_BYTES - 1;
      idle.request();
      await sleep(3 * IDLE_MS);
      assert.deepEqual(calls, [], 'below the threshold: nothing');
      heap.external += 2;
      idle.request();
      await sleep(3 * IDLE_MS);
      assert.deepEqual(calls, ['full']);
      // What is still there after it is the new baseline.
      idle.request();
      await sleep(3 * IDLE_MS);
      assert.deepEqual(calls, ['full']);
    } finally {
      idle.stop();
    }
  });

  it('gets a gc function from V8 that collects the young generation or the whole heap', async () => {
    const gc = exposeGc();
    assert.ok(gc, 'this Node.js lets the daemon call the collector');
    const kinds: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries() as Array<PerformanceEntry & { detail?: { kind: number } }>) kinds.push(e.detail!.kind);
    });
    obs.observe({ entryTypes: ['gc'] });
    try {
      gc({ type: 'minor' });
      gc();
      await sleep(50); // entries are delivered asynchronously
    } finally {
      obs.disconnect();
    }
    assert.ok(kinds.includes(constants.NODE_PERFORMANCE_GC_MINOR), `a young-generation collection (saw kinds ${kinds.join(', ')})`);
    assert.ok(kinds.includes(constants.NODE_PERFORMANCE_GC_MAJOR), `a full collection (saw kinds ${kinds.join(', ')})`);
  });
});
