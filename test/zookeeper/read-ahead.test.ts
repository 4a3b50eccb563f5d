// Read-ahead of a directory read file by file, and list-ahead of a tree being walked: mounted through the real kernel
// FUSE against a real ZooKeeper, requests counted by the server (mntr).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { maxBatchOps } from '../../src/backends/zookeeper/batch-reads.js';
import { DEFAULT_MAX_REQUEST, runPipelined } from '../../src/backends/zookeeper/chunks.js';
import { CLI, mountCli, sh, type CliMount } from '../helpers/mount.js';
import { requestsWhenQuiet, startProxy, startZooKeeper, statRequests, type ZooKeeperServer } from '../helpers/zookeeper.js';

const FILES = 200;
/** Files of the directory read by number: enough that a read-ahead in another order is overtaken again and again. */
const NUMBERED = 1000;
const TREE_DIRS = 20;
const TREE_FILES = 30;
const name = (i: number) => `f${String(i).padStart(3, '0')}`;
const content = (dir: string, i: number) => `${dir}/${name(i)} v1\n`;
const MAX_OPS = maxBatchOps(DEFAULT_MAX_REQUEST);
/** Files read ahead, MAX_OPS per multiRead. */
const readAheadRequests = (files: number) => Math.ceil(files / MAX_OPS);
/** A cold listing of n small entries: getChildren, the attribute map, and the Stats in multiReads. */
const listingRequests = (n: number) => 2 + statRequests(n);

describe('ZooKeeper backend, read-ahead', () => {
  let zk: ZooKeeperServer;
  let plain: ZkClient;
  const mounts: CliMount[] = [];

  const packets = () => zk.requestsReceived();
  /** Requests the server receives until it has been quiet for 300 ms (a read-ahead running in the background). */
  const settled = () => requestsWhenQuiet(zk);
  const mount = async (extra: string[] = []) => {
    // Long sessions: a ping (every third of it) seldom lands in a counted step.
    const m = await mountCli(['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', '/ra', '--session-timeout', '30', ...extra]);
    mounts.push(m);
    return m;
  };
  const read = (m: CliMount, dir: string, i: number) => fs.readFileSync(path.join(m.mnt, dir, name(i)), 'utf8');

  before(async () => {
    zk = await startZooKeeper();
    plain = new ZkClient({ connectString: zk.connectString, sessionTimeoutMs: 30_000 });
    await plain.connect();
    await plain.create('/ra', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    for (const tree of ['tree', 'tree2']) {
      await plain.create(`/ra/${tree}`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
      for (let d = 0; d < TREE_DIRS; d++) {
        const dir = `/ra/${tree}/d${String(d).padStart(2, '0')}`;
        await plain.create(dir, Buffer.alloc(0), OPEN_ACL_UNSAFE);
        await runPipelined(Array.from({ length: TREE_FILES }, (_, i) => i), (i) => plain.create(`${dir}/${name(i)}`, Buffer.from('x'), OPEN_ACL_UNSAFE), 64);
      }
    }
    await plain.create('/ra/numbered', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    await runPipelined(Array.from({ length: NUMBERED }, (_, i) => i), (i) => plain.create(`/ra/numbered/f${i}`, Buffer.from(`number ${i}\n`), OPEN_ACL_UNSAFE), 64);
    await plain.create('/ra/race', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    for (const dir of ['conf', 'changes', 'few', 'capped', 'off', 'poll', 'listed']) {
      await plain.create(`/ra/${dir}`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
      await runPipelined(Array.from({ length: FILES }, (_, i) => i), (i) => plain.create(`/ra/${dir}/${name(i)}`, Buffer.from(content(dir, i)), OPEN_ACL_UNSAFE), 64);
    }
  });
  // One test's mounts at a time: every live mount's pings show in the request counts.
  afterEach(async () => {
    for (const m of mounts.splice(0)) assert.equal(await m.stop(), 0, m.output());
  });
  after(async () => {
    plain?.close();
    await zk?.destroy();
  });

  it('fetches the other files ahead after three cold reads: reading them then costs no request, and the total stays one per file', async () => {
    const m = await mount();
    fs.readdirSync(m.mnt); // the root's attribute map, outside the counts
    const p0 = await settled();
    for (let i = 0; i < 3; i++) assert.equal(read(m, 'conf', i), content('conf', i));
    const p1 = await settled();
    for (let i = 3; i < FILES; i++) assert.equal(read(m, 'conf', i), content('conf', i));
    const p2 = await packets();
    console.log(`read-ahead: 3 cold reads and the read-ahead ${p1 - p0} requests, the other ${FILES - 3} files ${p2 - p1}`);
    // The directory's map (its Stat came with the root's listing), 3 files, one listing, 197 files read ahead in multiReads.
    const expected = 1 + 3 + 1 + readAheadRequests(FILES - 3);
    assert.ok(p1 - p0 >= expected && p1 - p0 <= expected + 2, `cold reads and read-ahead: ${p1 - p0} requests for ${FILES} files, expected ${expected}`);
    assert.ok(p2 - p1 <= 1, `${FILES - 3} files read after the read-ahead cost ${p2 - p1} requests`);
  });

  it('reads ahead in the order the reader follows: files read by number (f2, f3 ... f10) are fetched before it asks', async () => {
    const m = await mount();
    fs.readdirSync(m.mnt);
    const p0 = await settled();
    // No pause after the third: a read-ahead in code-unit order (f10, f100 ... f199, f2, f20 ...) would be overtaken
    // at once, and each file the reader reaches first costs a request of its own.
    for (let i = 0; i < NUMBERED; i++) assert.equal(fs.readFileSync(path.join(m.mnt, 'numbered', `f${i}`), 'utf8'), `number ${i}\n`);
    const p1 = await settled();
    const expected = 1 + 3 + 1 + readAheadRequests(NUMBERED - 3);
    console.log(`read-ahead by number: ${p1 - p0} requests for ${NUMBERED} files, ${expected} with none overtaken`);
    // The fourth file (and the odd next one) may be asked for before the listing that orders the read-ahead is back,
    // and a ping of either session may fall in the count; in code-unit order this cost 48-50 here.
    assert.ok(p1 - p0 >= expected && p1 - p0 <= expected + 6, `${p1 - p0} requests for ${NUMBERED} files read by number, expected ${expected} to ${expected + 6}`);
  });

  it('keeps what it read ahead coherent: a change, a delete and a new file made elsewhere show up', async () => {
    const m = await mount();
    for (let i = 0; i < 3; i++) read(m, 'changes', i);
    await settled();
    await plain.setData(`/ra/changes/${name(150)}`, Buffer.from('changed\n'));
    await plain.delete(`/ra/changes/${name(160)}`);
    await plain.create(`/ra/changes/new`, Buffer.from('new\n'), OPEN_ACL_UNSAFE);
    const t0 = performance.now();
    while (read(m, 'changes', 150) !== 'changed\n') {
      assert.ok(performance.now() - t0 < 3000, 'the change made after the read-ahead is not seen after 3 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.throws(() => read(m, 'changes', 160), { code: 'ENOENT' });
    assert.equal(fs.readFileSync(path.join(m.mnt, 'changes', 'new'), 'utf8'), 'new\n');
    for (let i = 3; i < FILES; i++) if (i !== 150 && i !== 160) assert.equal(read(m, 'changes', i), content('changes', i));
  });

  it('a listing brings the content of small files along: reading them, and the symlinks, after ls -l costs no request', async () => {
    const writer = await mount();
    for (let i = 0; i < 5; i++) fs.symlinkSync(name(i), path.join(writer.mnt, 'listed', `link${i}`));
    assert.equal(await mounts.pop()!.stop(), 0, writer.output()); // its pings would count below
    const m = await mount();
    fs.readdirSync(m.mnt);
    const p0 = await settled();
    const r = await sh(`ls -l '${path.join(m.mnt, 'listed')}'`);
    for (let i = 0; i < 5; i++) assert.match(r.stdout, new RegExp(`link${i} -> ${name(i)}\n`), r.stderr);
    const p1 = await settled();
    for (let i = 0; i < FILES; i++) assert.equal(read(m, 'listed', i), content('listed', i));
    for (let i = 0; i < 5; i++) assert.equal(fs.readFileSync(path.join(m.mnt, 'listed', `link${i}`), 'utf8'), content('listed', i));
    const p2 = await packets();
    console.log(`listing with content: ls -l ${p1 - p0} requests, then reading its ${FILES} files and 5 symlinks ${p2 - p1}`);
    const expected = listingRequests(FILES + 5);
    assert.ok(p1 - p0 >= expected && p1 - p0 <= expected + 2, `ls -l of ${FILES + 5} entries: ${p1 - p0} requests, expected ${expected}`);
    assert.ok(p2 - p1 <= 1, `reading the files after the listing cost ${p2 - p1} requests`);
  });

  it('keeps content that came with a listing coherent: a change made elsewhere after ls -l shows up', async () => {
    const m = await mount();
    const dir = path.join(m.mnt, 'changes');
    fs.readdirSync(dir, { withFileTypes: true });
    await plain.setData(`/ra/changes/${name(40)}`, Buffer.from('changed after the listing\n'));
    const t0 = performance.now();
    while (read(m, 'changes', 40) !== 'changed after the listing\n') {
      assert.ok(performance.now() - t0 < 3000, 'a change made after the listing is not seen after 3 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(read(m, 'changes', 41), content('changes', 41));
  });

  it('does not read ahead for a file read now and then', async () => {
    const m = await mount();
    fs.readdirSync(m.mnt);
    const p0 = await settled();
    assert.equal(read(m, 'few', 10), content('few', 10));
    assert.equal(read(m, 'few', 20), content('few', 20));
    await new Promise((r) => setTimeout(r, 1100)); // longer than the gap that still counts as "in a row"
    assert.equal(read(m, 'few', 30), content('few', 30));
    const p1 = await settled();
    // The directory's lookup and map, and three files.
    assert.ok(p1 - p0 <= 6, `three files read apart cost ${p1 - p0} requests`);
  });

  it('does not read ahead for a poller re-reading one file that keeps changing', async () => {
    const m = await mount();
    fs.readdirSync(m.mnt);
    assert.equal(read(m, 'poll', 7), content('poll', 7));
    const p0 = await settled();
    for (let v = 2; v <= 7; v++) {
      await plain.setData(`/ra/poll/${name(7)}`, Buffer.from(`v${v}\n`));
      const t0 = performance.now();
      while (read(m, 'poll', 7) !== `v${v}\n`) {
        assert.ok(performance.now() - t0 < 3000, `version ${v} not seen after 3 s`);
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    const p1 = await settled();
    // Per change: the plain client's setData and the mount's new read of that one file (and the odd ping).
    assert.ok(p1 - p0 <= 6 * 3 + 2, `six changes of one file read by a poller cost ${p1 - p0} requests`);
  });

  it('fetches at most --read-ahead files, and none with --read-ahead 0', async () => {
    const capped = await mount(['--read-ahead', '50']);
    const off = await mount(['--read-ahead', '0']);
    fs.readdirSync(capped.mnt);
    fs.readdirSync(off.mnt);
    let p0 = await settled();
    for (let i = 0; i < 3; i++) read(capped, 'capped', i);
    let p1 = await settled();
    // The directory's map, 3 files, the listing, 50 files.
    const expected = 1 + 3 + 1 + readAheadRequests(50);
    assert.ok(p1 - p0 >= expected && p1 - p0 <= expected + 2, `--read-ahead 50: ${p1 - p0} requests, expected ${expected}`);
    // Those 50 cost nothing more; the next file was not fetched.
    const p2 = await packets();
    for (let i = 3; i < 53; i++) assert.equal(read(capped, 'capped', i), content('capped', i));
    const p3 = await packets();
    assert.ok(p3 - p2 <= 1, `the 50 files read ahead cost ${p3 - p2} requests`);
    assert.equal(read(capped, 'capped', 53), content('capped', 53));
    assert.ok((await packets()) - p3 >= 1, 'the 54th file was read ahead despite --read-ahead 50');
    p0 = await settled();
    for (let i = 0; i < 3; i++) read(off, 'off', i);
    p1 = await settled();
    assert.ok(p1 - p0 <= 3 + 3, `--read-ahead 0: ${p1 - p0} requests for 3 files`);
  });

  it('lists ahead the other subdirectories once two were listed in a row: the walk then costs no request, the total stays the same', async () => {
    const m = await mount();
    fs.readdirSync(m.mnt);
    const p0 = await settled();
    const top = path.join(m.mnt, 'tree');
    assert.equal(fs.readdirSync(top).length, TREE_DIRS);
    assert.equal(fs.readdirSync(path.join(top, 'd00')).length, TREE_FILES);
    assert.equal(fs.readdirSync(path.join(top, 'd01')).length, TREE_FILES);
    const p1 = await settled();
    const r = await sh(`ls -lR '${top}' | grep -c '^-'`);
    assert.equal(r.stdout.trim(), String(TREE_DIRS * TREE_FILES), r.stderr);
    const p2 = await packets();
    console.log(`list-ahead: the tree's top, its first two directories and the others listed ahead ${p1 - p0} requests, the walk ${p2 - p1}`);
    // Per directory (the top's Stat came with the root's listing) its listing, its map and the Stats of its entries in multiReads.
    const expected = listingRequests(TREE_DIRS) + TREE_DIRS * listingRequests(TREE_FILES);
    assert.ok(p1 - p0 >= expected && p1 - p0 <= expected + 2, `walk start and list-ahead: ${p1 - p0} requests, expected ${expected}`);
    assert.ok(p2 - p1 <= 1, `the walk after the list-ahead cost ${p2 - p1} requests`);
  });

  it('does not list ahead when one subdirectory is listed', async () => {
    const m = await mount();
    fs.readdirSync(m.mnt);
    const p0 = await settled();
    fs.readdirSync(path.join(m.mnt, 'tree'));
    fs.readdirSync(path.join(m.mnt, 'tree', 'd05'));
    const p1 = await settled();
    // The top's listing and d05's.
    const expected = listingRequests(TREE_DIRS) + listingRequests(TREE_FILES);
    assert.ok(p1 - p0 <= expected + 4, `two listings cost ${p1 - p0} requests, expected about ${expected} (and pings)`);
  });

  it('keeps listings made ahead coherent: entries created and removed elsewhere show up', async () => {
    const m = await mount();
    const top = path.join(m.mnt, 'tree2');
    fs.readdirSync(top);
    fs.readdirSync(path.join(top, 'd00'));
    fs.readdirSync(path.join(top, 'd01'));
    await settled();
    await plain.create('/ra/tree2/d07/added', Buffer.from('a'), OPEN_ACL_UNSAFE);
    await plain.delete('/ra/tree2/d08/f003');
    const t0 = performance.now();
    for (;;) {
      const d7 = fs.readdirSync(path.join(top, 'd07'));
      const d8 = fs.readdirSync(path.join(top, 'd08'));
      if (d7.includes('added') && !d8.includes('f003')) break;
      assert.ok(performance.now() - t0 < 3000, `changes made after the list-ahead not seen after 3 s: ${d7.length} ${d8.length}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(fs.readdirSync(path.join(top, 'd07')).length, TREE_FILES + 1);
    assert.equal(fs.readdirSync(path.join(top, 'd08')).length, TREE_FILES - 1);
  });

  it('never keeps a reply older than a change whose event came with it: files changed during their cold read end up new', async () => {
    // Through a proxy that passes on what the server sends every 5 ms: a reply
    // and the event of a change made right after it then arrive together.
    const proxy = await startProxy(zk.port, { coalesceMs: 5 });
    const m = await mountCli(['--backend', 'zookeeper', '--hosts', `127.0.0.1:${proxy.port}`, '--path', '/ra']);
    mounts.push(m);
    const RACES = 600;
    for (let i = 0; i < RACES; i++) await plain.create(`/ra/race/r${i}`, Buffer.from('v1'), OPEN_ACL_UNSAFE);
    // Each cold read races a change made by another client 0 to 2 ms later.
    await runPipelined(Array.from({ length: RACES }, (_, i) => i), async (i) => {
      const change = new Promise((r) => setTimeout(r, i % 3)).then(() => plain.setData(`/ra/race/r${i}`, Buffer.from('v2')));
      await Promise.all([fs.promises.readFile(path.join(m.mnt, 'race', `r${i}`)), change]);
    }, 8);
    const t0 = performance.now();
    let stale: number[] = [];
    do {
      stale = [];
      for (let i = 0; i < RACES; i++) if ((await fs.promises.readFile(path.join(m.mnt, 'race', `r${i}`), 'utf8')) !== 'v2') stale.push(i);
      if (stale.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    } while (performance.now() - t0 < 3000);
    for (const mount of mounts.splice(0)) assert.equal(await mount.stop(), 0, mount.output());
    await proxy.close();
    assert.deepEqual(stale, [], `files still showing their old content 3 s after the change`);
  });

  it('rejects a bad --read-ahead with a message naming the option', async () => {
    for (const value of ['-1', 'many', '1.5', '100001']) {
      const r = await sh(`'${CLI}' mount --backend zookeeper --hosts ${zk.connectString} --path /x --read-ahead=${value} /mnt`);
      assert.equal(r.code, 2, `--read-ahead ${value}: ${r.stderr}`);
      assert.match(r.stderr, /--read-ahead: expected a whole number from 0 to 100000/);
    }
  });
});
