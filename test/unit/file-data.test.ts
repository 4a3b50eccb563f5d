import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ChunkPool, CHUNK_SIZE, FileData } from '../../src/backends/memory/file-data.js';

describe('FileData (sparse chunks)', () => {
  /** Random writes, truncates and punches, checked against a flat buffer; `between` runs before each operation. */
  function checkAgainstModel(d: FileData, rnd: (n: number) => number, between: () => void = () => {}): void {
    const max = 3 * CHUNK_SIZE + 777;
    let model = Buffer.alloc(0);
    for (let op = 0; op < 3000; op++) {
      between();
      const kind = rnd(10);
      if (kind < 6) {
        const off = rnd(max);
        const len = 1 + rnd(Math.min(max - off, 200_000));
        const data = randomBytes(len);
        d.write(off, data);
        if (off + len > model.length) model = Buffer.concat([model, Buffer.alloc(off + len - model.length)]);
        data.copy(model, off);
      } else if (kind < 8) {
        const size = rnd(max);
        d.truncate(size);
        model = size <= model.length ? Buffer.from(model.subarray(0, size)) : Buffer.concat([model, Buffer.alloc(size - model.length)]);
      } else if (kind < 9) {
        const off = rnd(max);
        const len = rnd(max);
        d.punchHole(off, len);
        model.fill(0, Math.min(off, model.length), Math.min(off + len, model.length));
      }
      assert.equal(d.size, model.length);
      // The count kept as chunks change is what they hold.
      let held = 0;
      for (const chunk of (d as unknown as { chunks: Map<number, Buffer> }).chunks.values()) held += chunk.length;
      assert.equal(d.allocated, held, `op ${op}: allocated`);
      const off = rnd(max);
      const len = rnd(300_000);
      assert.ok(d.read(off, len).equals(model.subarray(Math.min(off, model.length), Math.min(off + len, model.length))), `op ${op}`);
    }
    assert.ok(d.read(0, max).equals(model));
  }

  function random(seed: number): (n: number) => number {
    return (n) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
  }

  it('matches a flat model under random writes, truncates and punches', () => {
    checkAgainstModel(new FileData(), random(12345));
  });

  it('matches it too with whole chunks from a pool, prepared part way or fully between operations', () => {
    const pool = new ChunkPool();
    const rnd = random(54321);
    // Two files share the pool: a chunk one of them leaves ready may go to the other.
    const other = new FileData(pool);
    const d = new FileData(pool);
    let taken = 0;
    checkAgainstModel(d, rnd, () => {
      for (let steps = rnd(40); steps > 0 && pool.prepare(); steps--);
      if (rnd(4) === 0) {
        other.write(other.size, Buffer.alloc(CHUNK_SIZE, 0x5a));
        taken++;
      }
    });
    assert.ok(taken > 100);
    assert.ok(other.read(0, other.size).equals(Buffer.alloc(other.size, 0x5a)));
  });

  it('keeps holes free and reports them through nextData/nextHole', () => {
    const d = new FileData();
    d.write(5 * CHUNK_SIZE + 10, Buffer.from('x'));
    assert.equal(d.size, 5 * CHUNK_SIZE + 11);
    assert.ok(d.allocated <= 64, `a 5 MiB sparse file holds ${d.allocated} bytes`);
    assert.equal(d.nextHole(0), 0);
    assert.equal(d.nextData(0), 5 * CHUNK_SIZE);
    assert.equal(d.nextHole(5 * CHUNK_SIZE), d.size);
    d.truncate(2 ** 40);
    assert.equal(d.size, 2 ** 40);
    assert.ok(d.read(2 ** 40 - 4, 100).equals(Buffer.alloc(4)));
  });

  it('exposes zeros after truncating down and up again', () => {
    const d = new FileData();
    d.write(0, Buffer.alloc(1000, 0xaa));
    d.truncate(10);
    d.truncate(1000);
    assert.ok(d.read(0, 10).equals(Buffer.alloc(10, 0xaa)));
    assert.ok(d.read(10, 990).equals(Buffer.alloc(990)));
  });

  it('prepares one whole chunk after one was taken, in steps, and hands that chunk out zeroed', () => {
    const pool = new ChunkPool();
    assert.equal(pool.prepare(), false, 'nothing to prepare before a chunk was taken');
    const first = pool.take();
    assert.equal(first.length, CHUNK_SIZE);
    let steps = 0;
    while (pool.prepare()) steps++;
    assert.equal(steps, CHUNK_SIZE / 4096 / 8, 'one step per 8 pages');
    assert.equal(pool.prepare(), false, 'one chunk at most is kept ready');
    const second = pool.take();
    assert.ok(second.equals(Buffer.alloc(CHUNK_SIZE)), 'a prepared chunk is all zeros');
    assert.notEqual(second.buffer, first.buffer);
    assert.equal(pool.take().length, CHUNK_SIZE, 'a chunk not prepared yet is allocated at once');
  });
});

