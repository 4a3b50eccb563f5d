// The first open of a small file puts its content in the kernel's page cache
// (NOTIFY_STORE before the open returns), so reading it costs no READ
// request. Counts the READs the backend really receives, and checks that the
// bytes read are right whatever the kernel knew of the file before.

import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PRELOAD_MAX } from '../../src/fs/backend.js';
import { mountInProcess, type InProcessMount } from '../helpers/mount.js';

const HOUR = 3600;

/** Mounts the memory backend and counts the READ requests it serves. */
async function countingMount(session: { writebackCache?: boolean } = {}): Promise<{ m: InProcessMount; reads: () => number }> {
  const m = await mountInProcess({ node: { entryTimeout: HOUR, attrTimeout: HOUR, negativeTimeout: HOUR }, session });
  let reads = 0;
  const read = m.backend.read.bind(m.backend);
  m.backend.read = (...args) => {
    reads++;
    return read(...args);
  };
  return { m, reads: () => reads };
}

const body = (i: number, size: number) => Buffer.alloc(size, `file ${i} `);

describe('page cache preload on first open (memory backend)', () => {
  let m: InProcessMount;
  let reads: () => number;
  before(async () => {
    ({ m, reads } = await countingMount());
  });
  after(async () => {
    await m?.stop();
  });

  it('small files the kernel has not seen read right with no READ request', async () => {
    // Made behind the kernel's back: its first lookup and open are the reader's.
    for (let i = 0; i < 50; i++) await m.backend.external.writeFile(`/small${i}`, body(i, 1 + i * 97));
    await m.backend.external.writeFile('/limit', body(99, PRELOAD_MAX));
    const before = reads();
    for (let i = 0; i < 50; i++) assert.deepEqual(await fsp.readFile(path.join(m.mnt, `small${i}`)), body(i, 1 + i * 97));
    assert.deepEqual(await fsp.readFile(path.join(m.mnt, 'limit')), body(99, PRELOAD_MAX));
    assert.equal(reads() - before, 0, 'every byte came from the preloaded page cache');
  });

  it('a file larger than the limit is read with READ requests, and right', async () => {
    const big = body(7, PRELOAD_MAX + 1);
    await m.backend.external.writeFile('/big', big);
    const before = reads();
    assert.deepEqual(await fsp.readFile(path.join(m.mnt, 'big')), big);
    assert.ok(reads() - before > 0, `READs: ${reads() - before}`);
  });

  it('content changed between lookup and first open: the open stores the new bytes, longer or shorter', async () => {
    await m.backend.external.writeFile('/grows', Buffer.from('short'));
    await m.backend.external.writeFile('/shrinks', Buffer.from('a much longer first version'));
    // The kernel learns both nodes and their sizes, but opens neither.
    assert.equal((await fsp.stat(path.join(m.mnt, 'grows'))).size, 5);
    assert.equal((await fsp.stat(path.join(m.mnt, 'shrinks'))).size, 27);
    await m.backend.external.writeFile('/grows', Buffer.from('the second version is longer'));
    await m.backend.external.writeFile('/shrinks', Buffer.from('tiny'));
    assert.equal(await fsp.readFile(path.join(m.mnt, 'grows'), 'utf8'), 'the second version is longer');
    assert.equal(await fsp.readFile(path.join(m.mnt, 'shrinks'), 'utf8'), 'tiny');
  });

  it('only the first open preloads: later opens read what the kernel keeps or what changed since', async () => {
    const f = path.join(m.mnt, 'again');
    await m.backend.external.writeFile('/again', Buffer.from('one'));
    assert.equal(await fsp.readFile(f, 'utf8'), 'one');
    await m.backend.external.writeFile('/again', Buffer.from('two, notified'));
    const before = reads();
    assert.equal(await fsp.readFile(f, 'utf8'), 'two, notified');
    assert.equal(reads() - before, 1, 'the invalidated pages were read again with one READ');
  });

  it('writes through a preloaded file land in the file and in what readers see', async () => {
    await m.backend.external.writeFile('/rw', Buffer.from('0123456789'));
    const fh = await fsp.open(path.join(m.mnt, 'rw'), 'r+');
    try {
      assert.equal((await fh.read(Buffer.alloc(10), 0, 10, 0)).bytesRead, 10);
      await fh.write('ab', 3);
    } finally {
      await fh.close();
    }
    assert.equal(await fsp.readFile(path.join(m.mnt, 'rw'), 'utf8'), '012ab56789');
    assert.equal(m.backend.root.children!.get('rw')!.data!.read(0, 10).toString(), '012ab56789');
  });
});

describe('page cache preload with the writeback cache', () => {
  it('is not used (the store could overwrite dirty pages): reads go to the backend', async () => {
    const { m, reads } = await countingMount({ writebackCache: true });
    try {
      await m.backend.external.writeFile('/f', Buffer.from('written elsewhere'));
      assert.equal(await fsp.readFile(path.join(m.mnt, 'f'), 'utf8'), 'written elsewhere');
      assert.ok(reads() > 0);
    } finally {
      await m.stop();
    }
  });
});
