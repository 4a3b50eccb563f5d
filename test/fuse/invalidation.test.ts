// Kernel cache invalidation: with hour-long timeouts the kernel would serve
// stale data forever; a backend's notification must make the change visible
// at once. Runs the mount in this process to reach the backend, so only
// asynchronous fs calls touch the mount.

import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mountInProcess, type InProcessMount } from '../helpers/mount.js';

const HOUR = 3600;

describe('kernel cache invalidation (memory backend, 1 h cache timeouts)', () => {
  let m: InProcessMount;
  before(async () => {
    m = await mountInProcess({ node: { entryTimeout: HOUR, attrTimeout: HOUR, negativeTimeout: HOUR } });
  });
  after(async () => {
    await m?.stop();
  });

  it('serves cached content when nothing is notified (the caches are really on)', async () => {
    const f = path.join(m.mnt, 'cached');
    await fsp.writeFile(f, 'old');
    assert.equal(await fsp.readFile(f, 'utf8'), 'old');
    // Change the bytes behind the kernel's back without telling it.
    const node = m.backend.root.children!.get('cached')!;
    node.data!.write(0, Buffer.from('NEW'));
    assert.equal(await fsp.readFile(f, 'utf8'), 'old', 'the page cache should still hold the old bytes');
  });

  it('a notified content change is seen at once, with the new size', async () => {
    const f = path.join(m.mnt, 'a.txt');
    await fsp.writeFile(f, 'first version');
    assert.equal(await fsp.readFile(f, 'utf8'), 'first version');
    assert.equal((await fsp.stat(f)).size, 13);
    await m.backend.external.writeFile('/a.txt', Buffer.from('second, longer version'));
    assert.equal((await fsp.stat(f)).size, 22);
    assert.equal(await fsp.readFile(f, 'utf8'), 'second, longer version');
    await m.backend.external.writeFile('/a.txt', Buffer.from('3rd'));
    assert.equal(await fsp.readFile(f, 'utf8'), '3rd');
  });

  it('a name cached as missing appears once created elsewhere', async () => {
    const f = path.join(m.mnt, 'later.txt');
    await assert.rejects(fsp.stat(f), { code: 'ENOENT' });
    await m.backend.external.writeFile('/later.txt', Buffer.from('here now'));
    assert.equal(await fsp.readFile(f, 'utf8'), 'here now');
    assert.ok((await fsp.readdir(m.mnt)).includes('later.txt'));
  });

  it('a file deleted elsewhere disappears at once', async () => {
    const f = path.join(m.mnt, 'doomed.txt');
    await fsp.writeFile(f, 'x');
    await fsp.stat(f);
    await m.backend.external.remove('/doomed.txt');
    await assert.rejects(fsp.stat(f), { code: 'ENOENT' });
    assert.ok(!(await fsp.readdir(m.mnt)).includes('doomed.txt'));
  });

  it('invalidation works inside subdirectories too', async () => {
    await fsp.mkdir(path.join(m.mnt, 'd1/d2'), { recursive: true });
    const f = path.join(m.mnt, 'd1/d2/conf');
    await fsp.writeFile(f, 'v1');
    assert.equal(await fsp.readFile(f, 'utf8'), 'v1');
    await m.backend.external.writeFile('/d1/d2/conf', Buffer.from('v2'));
    assert.equal(await fsp.readFile(f, 'utf8'), 'v2');
  });
});
