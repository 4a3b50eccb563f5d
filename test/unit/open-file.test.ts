import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chunkName, chunkNames, type Manifest } from '../../src/backends/zookeeper/chunks.js';
import { OpenFile } from '../../src/backends/zookeeper/open-file.js';
import { FsError } from '../../src/fs/errors.js';

const b = (s: string) => Buffer.from(s);
const MAX = 1 << 20;

function isEfbig(e: unknown): boolean {
  return e instanceof FsError && e.code === 'EFBIG';
}

/** A small file: its content in slots of 512 KiB (as under ZooKeeper's default limit). */
function plain(content: Buffer, maxSize = MAX): OpenFile {
  return new OpenFile({ chunkSize: 512 * 1024, maxSize }, content);
}

const all = (f: OpenFile) => f.read(0, f.size);

/** A chunk store in memory, counting loads. */
class Store {
  readonly chunks = new Map<string, Buffer>();
  loads = 0;
  load = async (name: string): Promise<Buffer> => {
    this.loads++;
    await new Promise((r) => setImmediate(r));
    const c = this.chunks.get(name);
    if (!c) throw new FsError('ESTALE', name);
    return c;
  };
  /** Stores `content` as a manifest of generation `g` with chunks of `cs` bytes (trailing zeros left out). */
  put(g: string, content: Buffer, cs: number): Manifest {
    const c: Array<string | null> = [];
    for (let i = 0; i * cs < content.length; i++) {
      const piece = content.subarray(i * cs, Math.min(content.length, (i + 1) * cs));
      if (piece.every((x) => x === 0)) c.push(null);
      else {
        this.chunks.set(chunkName(g, i), Buffer.from(piece));
        c.push(g);
      }
    }
    return { g, size: content.length, cs, c };
  }
  /** Reads back a manifest's content as a reader would. */
  content(m: Manifest): Buffer {
    const out = Buffer.alloc(m.size);
    m.c.forEach((g, i) => g && this.chunks.get(chunkName(g, i))!.copy(out, i * m.cs));
    return out;
  }
}

/** A commit as the backend does it: a plan against the live manifest, the uploads, then the switch. */
async function commitChunks(f: OpenFile, store: Store, gen: string, live: Manifest | undefined): Promise<Manifest> {
  const plan = await f.chunkPlan(gen, chunkNames(live));
  for (const u of plan.uploads) store.chunks.set(u.name, Buffer.from(u.data));
  f.committed(plan.snapshot, plan.manifest, plan.manifest.size);
  return plan.manifest;
}

describe('OpenFile, small files', () => {
  it('starts with the given content, clean', async () => {
    const f = plain(b('hello'));
    assert.equal(f.size, 5);
    assert.deepEqual(await all(f), b('hello'));
    assert.equal(f.dirty, false);
    assert.equal(f.opens, 0);
  });

  it('overwrites in place, grows at the end and zero-fills gaps', async () => {
    const f = plain(b('hello world'));
    await f.write(0, b('J'));
    await f.write(6, b('there, friend'));
    assert.deepEqual(await all(f), b('Jello there, friend'));
    await f.write(22, b('!'));
    assert.deepEqual(await all(f), Buffer.concat([b('Jello there, friend'), Buffer.alloc(3), b('!')]));
  });

  it('appends at the end as it is when the write lands', async () => {
    const f = plain(b('ab'));
    await f.write(0, b('cd'), true);
    assert.deepEqual(await all(f), b('abcd'));
  });

  it('zero-fills a gap over stale bytes left by a truncate', async () => {
    const f = plain(Buffer.alloc(0));
    await f.write(0, Buffer.alloc(100, 0xaa));
    await f.truncate(10);
    await f.write(50, b('z'));
    assert.deepEqual(await all(f), Buffer.concat([Buffer.alloc(10, 0xaa), Buffer.alloc(40), b('z')]));
  });

  it('clamps reads to the end of the file and returns copies', async () => {
    const f = plain(b('0123456789'));
    assert.deepEqual(await f.read(7, 100), b('789'));
    assert.deepEqual(await f.read(50, 5), Buffer.alloc(0));
    const r = await f.read(0, 3);
    await f.write(0, b('xyz'));
    assert.deepEqual(r, b('012'));
  });

  it('marks the file dirty on write and truncate, not on read or commit', async () => {
    const f = plain(b('abc'));
    await f.read(0, 3);
    const { snapshot } = await f.contentBytes();
    f.committed(snapshot, undefined, 3);
    assert.equal(f.dirty, false);
    await f.write(0, b('x'));
    assert.equal(f.dirty, true);
    const g = plain(b('abc'));
    await g.truncate(1);
    assert.equal(g.dirty, true);
  });

  it('refuses writes at or past maxSize and truncates beyond it with EFBIG; a write across it stores what fits', async () => {
    const f = plain(b('0123456789'), 16);
    await assert.rejects(f.write(16, b('A')), isEfbig);
    await assert.rejects(f.write(20, b('A')), isEfbig);
    await assert.rejects(f.truncate(17), isEfbig);
    assert.deepEqual(await all(f), b('0123456789'));
    assert.equal(f.dirty, false);
    assert.equal(await f.write(10, Buffer.alloc(7, 0x41)), 6, 'the part below the limit, as under a file size rlimit');
    assert.deepEqual(await all(f), b('0123456789AAAAAA'));
    await assert.rejects(f.write(0, b('x'), true), isEfbig, 'an append at the limit');
  });

  it('never changes the constructor content or a committed buffer', async () => {
    const initial = b('original content');
    const f = plain(initial);
    const c1 = (await f.contentBytes()).data;
    await f.write(0, b('XXXX'));
    await f.truncate(2);
    await f.write(2, b('ZZ'));
    const c2 = (await f.contentBytes()).data;
    const saved2 = Buffer.from(c2);
    await f.write(1, b('Q'));
    assert.deepEqual(initial, b('original content'));
    assert.deepEqual(c1, b('original content'));
    assert.deepEqual(c2, saved2);
    assert.deepEqual(await all(f), b('XQZZ'));
  });
});

describe('OpenFile, large files (chunks loaded on demand)', () => {
  const CS = 64;

  it('reads at any offset loading only the chunks it needs, and holes as zeros', async () => {
    const store = new Store();
    const content = Buffer.concat([Buffer.alloc(CS * 3, 7), Buffer.alloc(CS * 2), Buffer.alloc(CS - 5, 9)]);
    const m = store.put('g1', content, CS);
    assert.equal(m.c[3], null, 'a zero chunk is a hole');
    const f = new OpenFile({ chunkSize: CS, maxSize: MAX, load: store.load }, m);
    assert.equal(f.size, content.length);
    assert.deepEqual(await f.read(CS + 10, 20), content.subarray(CS + 10, CS + 30));
    assert.equal(store.loads, 1);
    assert.deepEqual(await f.read(CS * 3 + 1, CS), content.subarray(CS * 3 + 1, CS * 4 + 1));
    assert.equal(store.loads, 1, 'holes cost nothing');
    assert.deepEqual(await all(f), content);
  });

  it('writes part of a chunk over its stored bytes; a whole chunk without loading it', async () => {
    const store = new Store();
    const content = Buffer.alloc(CS * 4, 5);
    const f = new OpenFile({ chunkSize: CS, maxSize: MAX, load: store.load }, store.put('g1', content, CS));
    await f.write(CS + 3, b('abc'));
    assert.equal(store.loads, 1);
    await f.write(CS * 2, Buffer.alloc(CS, 1));
    assert.equal(store.loads, 1, 'a chunk replaced whole is not read');
    const expected = Buffer.from(content);
    b('abc').copy(expected, CS + 3);
    Buffer.alloc(CS, 1).copy(expected, CS * 2);
    assert.deepEqual(await all(f), expected);
  });

  it('stores only the changed chunks and reuses the live ones', async () => {
    const store = new Store();
    const m1 = store.put('g1', Buffer.alloc(CS * 4, 5), CS);
    const f = new OpenFile({ chunkSize: CS, maxSize: MAX, load: store.load }, m1);
    await f.write(CS + 1, b('x'));
    const m2 = await commitChunks(f, store, 'g2', m1);
    assert.deepEqual(m2.c, ['g1', 'g2', 'g1', 'g1']);
    assert.equal(f.dirty, true, 'the backend clears dirty, not the plan');
    // Another node replaced the stored version meanwhile: chunks it no longer uses are garbage, ours must not point at them.
    const other = store.put('g9', Buffer.alloc(CS * 4, 6), CS);
    await f.write(0, b('y'));
    const m3 = await commitChunks(f, store, 'g3', other);
    assert.deepEqual(m3.c, ['g3', 'g3', 'g3', 'g3'], 'chunks of a superseded version are stored again');
    const expected = Buffer.alloc(CS * 4, 5);
    expected[0] = 0x79;
    expected[CS + 1] = 0x78;
    assert.deepEqual(store.content(m3), expected);
  });

  it('truncates down inside a chunk (its tail is cut) and up (zeros)', async () => {
    const store = new Store();
    const m1 = store.put('g1', Buffer.alloc(CS * 3, 5), CS);
    const f = new OpenFile({ chunkSize: CS, maxSize: MAX, load: store.load }, m1);
    await f.truncate(CS + 10);
    await f.truncate(CS * 3);
    const expected = Buffer.concat([Buffer.alloc(CS + 10, 5), Buffer.alloc(CS * 2 - 10)]);
    assert.deepEqual(await all(f), expected);
    const m2 = await commitChunks(f, store, 'g2', m1);
    assert.deepEqual(m2.c, ['g1', 'g2', null]);
    assert.deepEqual(store.content(m2), expected);
  });

  it('drops unchanged chunks beyond the cache bound and reads them again', async () => {
    const store = new Store();
    const content = Buffer.from(Array.from({ length: CS * 40 }, (_, i) => (i * 7) & 0xff));
    const f = new OpenFile({ chunkSize: CS, maxSize: MAX, load: store.load }, store.put('g1', content, CS));
    assert.deepEqual(await all(f), content);
    const loads = store.loads;
    assert.deepEqual(await f.read(0, CS), content.subarray(0, CS));
    assert.equal(store.loads, loads + 1, 'the first chunk was dropped and read again');
  });

  it('matches a flat model under random writes, truncates and commits', async () => {
    const store = new Store();
    const max = 40 * CS;
    let seed = 4242;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let model = Buffer.from(Array.from({ length: 10 * CS + 3 }, (_, i) => (i + 1) & 0xff));
    let stored = store.put('g0', model, CS);
    const f = new OpenFile({ chunkSize: CS, maxSize: max, load: store.load }, stored);
    for (let op = 0; op < 1500; op++) {
      const kind = rnd(10);
      if (kind < 6) {
        const off = rnd(max + 10);
        const data = Buffer.alloc(1 + rnd(3 * CS), rnd(256));
        if (off >= max) await assert.rejects(f.write(off, data), isEfbig);
        else {
          const n = Math.min(data.length, max - off);
          assert.equal(await f.write(off, data), n);
          if (off + n > model.length) model = Buffer.concat([model, Buffer.alloc(off + n - model.length)]);
          data.copy(model, off, 0, n);
        }
      } else if (kind < 8) {
        const size = rnd(max + 10);
        if (size > max) await assert.rejects(f.truncate(size), isEfbig);
        else {
          await f.truncate(size);
          model = size <= model.length ? Buffer.from(model.subarray(0, size)) : Buffer.concat([model, Buffer.alloc(size - model.length)]);
        }
      } else {
        stored = await commitChunks(f, store, `g${op + 1}`, stored);
        assert.ok(store.content(stored).equals(model), `stored version at op ${op}`);
      }
      assert.equal(f.size, model.length, `op ${op}`);
      const off = rnd(max);
      const len = rnd(3 * CS);
      assert.ok((await f.read(off, len)).equals(model.subarray(Math.min(off, model.length), Math.min(off + len, model.length))), `read op ${op}`);
    }
    assert.ok((await all(f)).equals(model));
  });
});
