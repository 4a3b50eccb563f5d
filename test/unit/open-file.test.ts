import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OpenFile } from '../../src/backends/zookeeper/open-file.js';
import { FsError } from '../../src/fs/errors.js';

const b = (s: string) => Buffer.from(s);
const MAX = 1 << 20;

function isEfbig(e: unknown): boolean {
  return e instanceof FsError && e.code === 'EFBIG';
}

describe('OpenFile', () => {
  it('starts with the given content, clean', () => {
    const f = new OpenFile(b('hello'), MAX);
    assert.equal(f.size, 5);
    assert.deepEqual(f.bytes(), b('hello'));
    assert.equal(f.dirty, false);
    assert.equal(f.opens, 0);
  });

  it('overwrites in place and grows at the end', () => {
    const f = new OpenFile(b('hello world'), MAX);
    f.write(0, b('J'));
    assert.deepEqual(f.bytes(), b('Jello world'));
    f.write(6, b('there, friend'));
    assert.deepEqual(f.bytes(), b('Jello there, friend'));
    assert.equal(f.size, 19);
    f.write(19, b('!'));
    assert.deepEqual(f.bytes(), b('Jello there, friend!'));
  });

  it('zero-fills the gap when writing beyond the end', () => {
    const f = new OpenFile(b('ab'), MAX);
    f.write(6, b('xy'));
    assert.equal(f.size, 8);
    assert.deepEqual(f.bytes(), Buffer.from([0x61, 0x62, 0, 0, 0, 0, 0x78, 0x79]));
  });

  it('zero-fills a gap over stale bytes left by a truncate', () => {
    const f = new OpenFile(Buffer.alloc(0), MAX);
    f.write(0, Buffer.alloc(100, 0xaa));
    f.truncate(10);
    f.write(50, b('z'));
    const expected = Buffer.concat([Buffer.alloc(10, 0xaa), Buffer.alloc(40), b('z')]);
    assert.deepEqual(f.bytes(), expected);
  });

  it('grows from empty across many writes', () => {
    const f = new OpenFile(Buffer.alloc(0), MAX);
    const model: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const chunk = Buffer.alloc(97, i & 0xff);
      f.write(i * 97, chunk);
      model.push(chunk);
    }
    assert.equal(f.size, 3000 * 97);
    assert.deepEqual(f.bytes(), Buffer.concat(model));
  });

  it('writes an empty buffer without changing the content', () => {
    const f = new OpenFile(b('abc'), MAX);
    f.write(1, Buffer.alloc(0));
    assert.deepEqual(f.bytes(), b('abc'));
    assert.equal(f.size, 3);
  });

  it('clamps reads to the end of the file', () => {
    const f = new OpenFile(b('0123456789'), MAX);
    assert.deepEqual(f.read(0, 4), b('0123'));
    assert.deepEqual(f.read(7, 100), b('789'));
    assert.deepEqual(f.read(10, 5), Buffer.alloc(0));
    assert.deepEqual(f.read(50, 5), Buffer.alloc(0));
    assert.deepEqual(f.read(3, 0), Buffer.alloc(0));
  });

  it('reads only up to the size after a truncate, not the stale capacity', () => {
    const f = new OpenFile(Buffer.alloc(0), MAX);
    f.write(0, b('abcdefgh'));
    f.truncate(3);
    assert.deepEqual(f.read(0, 100), b('abc'));
  });

  it('returns reads that later writes do not change', () => {
    const f = new OpenFile(b('abcdef'), MAX);
    f.write(0, b('x'));
    const r = f.read(0, 6);
    f.write(0, b('YYYYYY'));
    assert.deepEqual(r, b('xbcdef'));
  });

  it('truncates down and up, zero-filling what grows', () => {
    const f = new OpenFile(b('abcdefgh'), MAX);
    f.truncate(3);
    assert.equal(f.size, 3);
    assert.deepEqual(f.bytes(), b('abc'));
    f.truncate(6);
    assert.equal(f.size, 6);
    assert.deepEqual(f.bytes(), Buffer.from([0x61, 0x62, 0x63, 0, 0, 0]));
    f.truncate(0);
    assert.equal(f.size, 0);
    assert.deepEqual(f.bytes(), Buffer.alloc(0));
    f.truncate(5000);
    assert.deepEqual(f.bytes(), Buffer.alloc(5000));
  });

  it('marks the file dirty on write and truncate, not on read or commit', () => {
    const f = new OpenFile(b('abc'), MAX);
    f.read(0, 3);
    f.bytes();
    f.committed();
    assert.equal(f.dirty, false);
    f.write(0, b('x'));
    assert.equal(f.dirty, true);
    const g = new OpenFile(b('abc'), MAX);
    g.truncate(1);
    assert.equal(g.dirty, true);
  });

  it('accepts writes and truncates up to exactly maxSize', () => {
    const f = new OpenFile(Buffer.alloc(0), 16);
    f.write(10, Buffer.alloc(6, 1));
    assert.equal(f.size, 16);
    f.truncate(16);
    assert.equal(f.size, 16);
    const g = new OpenFile(Buffer.alloc(0), 16);
    g.truncate(16);
    assert.deepEqual(g.bytes(), Buffer.alloc(16));
  });

  it('refuses a write beyond maxSize with EFBIG and leaves the content alone', () => {
    const f = new OpenFile(b('0123456789'), 16);
    f.committed();
    assert.throws(() => f.write(10, Buffer.alloc(7, 0x41)), isEfbig);
    assert.throws(() => f.write(17, b('x')), isEfbig);
    assert.deepEqual(f.bytes(), b('0123456789'));
    assert.equal(f.size, 10);
    assert.equal(f.dirty, false);
    f.write(2, b('ab'));
    assert.throws(() => f.write(15, b('xy')), isEfbig);
    assert.deepEqual(f.bytes(), b('01ab456789'));
    assert.equal(f.size, 10);
  });

  it('refuses a truncate beyond maxSize with EFBIG and leaves the content alone', () => {
    const f = new OpenFile(b('abc'), 16);
    assert.throws(() => f.truncate(17), isEfbig);
    assert.deepEqual(f.bytes(), b('abc'));
    assert.equal(f.dirty, false);
  });

  it('does not change the content passed to the constructor', () => {
    const initial = b('original content');
    const f = new OpenFile(initial, MAX);
    f.write(0, b('XXXX'));
    f.write(100, b('tail'));
    f.truncate(2);
    f.truncate(50);
    assert.deepEqual(initial, b('original content'));
  });

  it('does not change the constructor content on a truncate down then a write', () => {
    const initial = b('abcdefgh');
    const f = new OpenFile(initial, MAX);
    f.truncate(2);
    f.write(2, b('ZZ'));
    assert.deepEqual(f.bytes(), b('abZZ'));
    assert.deepEqual(initial, b('abcdefgh'));
  });

  it('keeps the committed buffer unchanged through later writes and truncates', () => {
    const f = new OpenFile(Buffer.alloc(0), MAX);
    f.write(0, b('first version'));
    const c1 = f.committed();
    const saved1 = Buffer.from(c1);
    f.write(0, b('FIRST'));
    f.write(5, b('!'));
    assert.deepEqual(c1, saved1);
    assert.deepEqual(f.bytes(), b('FIRST!version'));

    const c2 = f.committed();
    const saved2 = Buffer.from(c2);
    f.truncate(2);
    f.truncate(13);
    f.write(3, b('q'));
    assert.deepEqual(c2, saved2);
    assert.deepEqual(c1, saved1);
    assert.deepEqual(f.bytes(), Buffer.from([0x46, 0x49, 0, 0x71, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  });

  it('keeps the committed buffer unchanged when the next write fits in spare capacity', () => {
    const f = new OpenFile(Buffer.alloc(0), MAX);
    f.write(0, b('abc')); // leaves spare capacity behind the 3 bytes
    const c = f.committed();
    f.write(1, b('X')); // inside the committed range
    f.write(3, b('def')); // right after it, within the old capacity
    assert.deepEqual(c, b('abc'));
    assert.deepEqual(f.bytes(), b('aXcdef'));
  });

  it('commits the initial content unchanged', () => {
    const initial = b('data');
    const f = new OpenFile(initial, MAX);
    const c = f.committed();
    f.write(0, b('DATA'));
    assert.deepEqual(c, b('data'));
    assert.deepEqual(initial, b('data'));
    assert.deepEqual(f.bytes(), b('DATA'));
  });

  it('matches a flat model under random writes, truncates and commits', () => {
    const max = 20_000;
    let seed = 4242;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const initial = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    const initialCopy = Buffer.from(initial);
    const f = new OpenFile(initial, max);
    let model = Buffer.from(initial);
    const commits: Array<[Buffer, Buffer]> = [];
    for (let op = 0; op < 2000; op++) {
      const kind = rnd(10);
      if (kind < 6) {
        const off = rnd(max + 10);
        const data = Buffer.alloc(1 + rnd(500), rnd(256));
        if (off + data.length > max) {
          assert.throws(() => f.write(off, data), isEfbig);
        } else {
          f.write(off, data);
          if (off + data.length > model.length) model = Buffer.concat([model, Buffer.alloc(off + data.length - model.length)]);
          data.copy(model, off);
        }
      } else if (kind < 8) {
        const size = rnd(max + 10);
        if (size > max) {
          assert.throws(() => f.truncate(size), isEfbig);
        } else {
          f.truncate(size);
          model = size <= model.length ? Buffer.from(model.subarray(0, size)) : Buffer.concat([model, Buffer.alloc(size - model.length)]);
        }
      } else {
        const c = f.committed();
        commits.push([c, Buffer.from(c)]);
      }
      assert.equal(f.size, model.length, `op ${op}`);
      assert.ok(f.bytes().equals(model), `op ${op}`);
      const off = rnd(max);
      const len = rnd(3000);
      assert.ok(f.read(off, len).equals(model.subarray(Math.min(off, model.length), Math.min(off + len, model.length))), `read op ${op}`);
    }
    for (const [c, saved] of commits) assert.ok(c.equals(saved));
    assert.ok(initial.equals(initialCopy));
  });

  it('keeps content larger than maxSize (written by another tool) whole when written into', () => {
    const f = new OpenFile(Buffer.from('abcdefghijklmnopqrst'), 16);
    f.write(0, Buffer.from('X'));
    assert.equal(f.size, 20);
    assert.equal(f.bytes().toString(), 'Xbcdefghijklmnopqrst');
    assert.equal(f.read(10, 10).toString(), 'klmnopqrst');
  });
});
