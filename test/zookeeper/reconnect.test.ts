// A mount whose connection to ZooKeeper drops and comes back within the
// session timeout: the session and its watch survive, but ZooKeeper does not
// report to a persistent watch what changed while the connection was down. The
// mount must see those changes anyway, without waiting for the next one.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE, OpCode } from '../../src/backends/zookeeper/client/protocol.js';
import { chunkNames as chunkNamesOf, decodeManifest } from '../../src/backends/zookeeper/chunks.js';
import { CHUNKS_NAME } from '../../src/backends/zookeeper/layout.js';
import { mountCli, sh, type CliMount } from '../helpers/mount.js';
import { renameat2, renameat2Async, RENAME_EXCHANGE } from '../helpers/posix.js';
import { loseNext, startProxy, startZooKeeper, untilHeldReply, type ZkProxy, type ZooKeeperServer } from '../helpers/zookeeper.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** 'OK', or the error code the operation failed with. */
const outcome = (operation: Promise<unknown>) =>
  operation.then(
    () => 'OK',
    (err: NodeJS.ErrnoException) => err.code,
  );

describe('ZooKeeper backend, changes made while a mount was disconnected', () => {
  let zk: ZooKeeperServer;
  let a: CliMount;
  let b: CliMount;
  let plain: ZkClient;
  let proxy: ZkProxy;
  const heldReply = (what: string) => untilHeldReply(proxy, what);
  /** Waits until B reads `content` in the file `name` that A wrote. */
  const untilBReads = async (name: string, content: string) => {
    const t0 = performance.now();
    while ((await fs.promises.readFile(path.join(b.mnt, name), 'utf8').catch(() => undefined)) !== content) {
      assert.ok(performance.now() - t0 < 3000, `B does not see ${name} after 3 s`);
      await sleep(10);
    }
  };

  before(async () => {
    zk = await startZooKeeper();
    plain = new ZkClient({ connectString: zk.connectString, sessionTimeoutMs: 30_000 });
    await plain.connect();
    await plain.create('/rc', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    proxy = await startProxy(zk.port);
    // A long session: B's outage below keeps it.
    const args = ['--backend', 'zookeeper', '--path', '/rc', '--session-timeout', '30'];
    a = await mountCli([...args, '--hosts', zk.connectString]);
    b = await mountCli([...args, '--hosts', `127.0.0.1:${proxy.port}`]);
  });
  after(async () => {
    for (const m of [a, b]) if (m) assert.equal(await m.stop(), 0, m.output());
    await proxy?.close();
    plain?.close();
    await zk?.destroy();
  });

  it('sees new content, new and removed entries, a new mode and a replaced type at once after it reconnects', async () => {
    // B's proxy runs in this process: only asynchronous calls on B's mount.
    const onA = (p: string) => path.join(a.mnt, p);
    const onB = (p: string) => path.join(b.mnt, p);
    fs.writeFileSync(onA('f'), 'v1');
    fs.writeFileSync(onA('gone'), 'x');
    fs.writeFileSync(onA('mode'), 'x');
    fs.mkdirSync(onA('d'));
    fs.writeFileSync(onA('d/kind'), 'a file');
    // B caches all of it, in the kernel too.
    assert.equal(await fs.promises.readFile(onB('f'), 'utf8'), 'v1');
    assert.deepEqual((await fs.promises.readdir(b.mnt)).sort(), ['d', 'f', 'gone', 'mode']);
    assert.equal((await fs.promises.stat(onB('mode'))).mode & 0o777, 0o644);
    assert.equal(await fs.promises.readFile(onB('d/kind'), 'utf8'), 'a file');

    proxy.cut();
    await sleep(300);
    fs.writeFileSync(onA('f'), 'v2');
    fs.unlinkSync(onA('gone'));
    fs.writeFileSync(onA('new'), 'new');
    fs.chmodSync(onA('mode'), 0o600);
    fs.unlinkSync(onA('d/kind'));
    fs.symlinkSync('f', onA('d/kind'));
    await sleep(300);
    proxy.restore();

    const t0 = performance.now();
    const seen = async () => ({
      f: await fs.promises.readFile(onB('f'), 'utf8'),
      names: (await fs.promises.readdir(b.mnt)).sort().join(' '),
      mode: (await fs.promises.stat(onB('mode'))).mode & 0o777,
      kind: await fs.promises.readlink(onB('d/kind')).catch((err: NodeJS.ErrnoException) => err.code),
    });
    const want = { f: 'v2', names: 'd f mode new', mode: 0o600, kind: 'f' };
    let last = await seen().catch((err: Error) => err.message);
    // Reconnecting takes up to a few hundred ms (the client's back-off); nothing else changes meanwhile.
    while (JSON.stringify(last) !== JSON.stringify(want)) {
      if (performance.now() - t0 > 5000) assert.fail(`B still shows ${JSON.stringify(last)} 5 s after its connection came back, not ${JSON.stringify(want)}\n${b.output()}`);
      await sleep(50);
      last = await seen().catch((err: Error) => err.message);
    }
    console.log(`# B saw what changed during its outage ${(performance.now() - t0).toFixed(0)} ms after its connection came back`);
    assert.match(b.output(), /reconnected to ZooKeeper; caches revalidated/);
  });

  it('a file held open across a reconnect: later opens share its version if it did not change meanwhile (page cache included), else read the new one', async () => {
    const size = 12288;
    const onB = (p: string) => path.join(b.mnt, p);
    fs.writeFileSync(path.join(a.mnt, 'held-same'), Buffer.alloc(size, 's'));
    fs.writeFileSync(path.join(a.mnt, 'held-changed'), Buffer.alloc(size, 'o'));
    await untilBReads('held-same', 's'.repeat(size));
    await untilBReads('held-changed', 'o'.repeat(size));
    const same = await fs.promises.open(onB('held-same'), 'r');
    const changed = await fs.promises.open(onB('held-changed'), 'r');
    const readAll = async (h: fs.promises.FileHandle) => {
      const buf = Buffer.alloc(size + 1);
      const { bytesRead } = await h.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead).toString();
    };
    /** Pages of `p` in the kernel's page cache. */
    const cachedPages = async (p: string) => {
      const r = await sh(`fincore --noheadings --output PAGES ${p}`);
      assert.equal(r.code, 0, r.stderr);
      return Number(r.stdout.trim());
    };
    const reconnects = () => (b.output().match(/reconnected to ZooKeeper; caches revalidated/g) ?? []).length;
    try {
      assert.equal(await readAll(same), 's'.repeat(size));
      assert.equal(await readAll(changed), 'o'.repeat(size));
      const before = reconnects();
      proxy.cut();
      await sleep(300);
      fs.writeFileSync(path.join(a.mnt, 'held-changed'), Buffer.alloc(size, 'n'));
      proxy.restore();
      const t0 = performance.now();
      while (reconnects() === before) {
        assert.ok(performance.now() - t0 < 5000, `B did not reconnect within 5 s\n${b.output()}`);
        await sleep(20);
      }
      // Changed during the outage: a new open reads the new version at once, the old descriptor its own.
      assert.equal(await fs.promises.readFile(onB('held-changed'), 'utf8'), 'n'.repeat(size));
      assert.equal(await readAll(changed), 'o'.repeat(size));
      // Unchanged: a new open shares the held version, through the page cache (before, it read around
      // the page cache until the held descriptor closed, as for a replaced version).
      const t1 = performance.now();
      for (;;) {
        assert.equal(await fs.promises.readFile(onB('held-same'), 'utf8'), 's'.repeat(size));
        const pages = await cachedPages(onB('held-same'));
        if (pages === size / 4096) break;
        assert.ok(performance.now() - t1 < 3000, `reads of held-same through new opens leave ${pages} pages in the page cache 3 s after the reconnect, not ${size / 4096}`);
        await sleep(50);
      }
      assert.equal(await readAll(same), 's'.repeat(size));
    } finally {
      await same.close();
      await changed.close();
    }
    assert.equal(await fs.promises.readFile(onB('held-changed'), 'utf8'), 'n'.repeat(size));
  });

  it('finds a name it had found missing once it reconnects, when that name was made during the outage (and as with a kernel before FUSE 7.38), and keeps what is mounted inside it', async () => {
    // A third node through the proxy that agrees to FUSE 7.37 only: its kernel takes the directory's lock for each name dropped.
    const old = await mountCli(['--backend', 'zookeeper', '--path', '/rc', '--session-timeout', '30', '--hosts', `127.0.0.1:${proxy.port}`, '--max-protocol-minor', '37']);
    // A mount on a directory of B's volume, as a container's nested volume is: dropping names must not detach it.
    fs.mkdirSync(path.join(a.mnt, 'nested'));
    const nested = path.join(b.mnt, 'nested');
    const mounted = await sh(`mount -t tmpfs swarmvol-nested ${nested}`);
    assert.equal(mounted.code, 0, mounted.stderr);
    try {
      assert.match(old.output(), / protocol=7\.37\b/);
      // A directory B never lists: a listing would replace the kernel's memory of the miss by itself.
      fs.mkdirSync(path.join(a.mnt, 'neg'));
      const late = (m: CliMount) => path.join(m.mnt, 'neg', 'late');
      const seen = (m: CliMount) => fs.promises.stat(late(m)).then(() => 'exists', (err: NodeJS.ErrnoException) => err.code);
      const reconnects = (m: CliMount) => (m.output().match(/reconnected to ZooKeeper; caches revalidated/g) ?? []).length;
      for (const m of [b, old]) assert.equal(await seen(m), 'ENOENT'); // remembered as missing for --negative-timeout (an hour)
      const before = [reconnects(b), reconnects(old)];
      proxy.cut();
      await sleep(300);
      fs.writeFileSync(path.join(a.mnt, 'neg', 'late'), 'made during the outage');
      proxy.restore();
      for (const [i, m] of [b, old].entries()) {
        const t0 = performance.now();
        while (reconnects(m) === before[i]) {
          assert.ok(performance.now() - t0 < 5000, `${m.mnt} did not reconnect within 5 s\n${m.output()}`);
          await sleep(20);
        }
        // The revalidation starts as the log line is written: give it a moment, not an hour.
        const t1 = performance.now();
        while ((await seen(m)) !== 'exists') {
          assert.ok(performance.now() - t1 < 2000, `${m.mnt} still takes neg/late for missing 2 s after it reconnected`);
          await sleep(20);
        }
        assert.equal(await fs.promises.readFile(late(m), 'utf8'), 'made during the outage');
      }
      await fs.promises.readdir(nested); // a path walk through the dropped names
      assert.match(await fs.promises.readFile('/proc/self/mounts', 'utf8'), new RegExp(`^swarmvol-nested ${nested} tmpfs `, 'm'), 'the nested mount is still there');
    } finally {
      await sh(`umount ${nested}`);
      assert.equal(await old.stop(), 0, old.output());
    }
  });

  it('a write whose reply a cut connection loses: close() still succeeds once the connection is back, and the content is stored', async () => {
    fs.writeFileSync(path.join(a.mnt, 'w'), 'v1');
    const onB = path.join(b.mnt, 'w');
    await untilBReads('w', 'v1');
    // A first write warms up what the commit reads (the directory's map, the epoch): the commit below sends its write alone.
    await fs.promises.writeFile(onB, 'v0');
    const before = (await plain.exists('/rc/w'))!;
    const fh = await fs.promises.open(onB, 'r+');
    await fh.write('v2', 0);
    // The commit at close is applied by the server, but its reply is held, then the connection cut.
    proxy.hold();
    const closing = outcome(fh.close());
    await heldReply('the commit');
    proxy.cut();
    proxy.release(); // nothing to pass on (the connection is gone): stops holding
    proxy.restore();
    assert.equal(await closing, 'OK', `close() after its commit's reply was lost\n${b.output()}`);
    const stored = await plain.getData('/rc/w');
    assert.equal(stored.data.toString(), 'v2');
    assert.equal(stored.stat.version, before.version + 1, 'written once: the retry saw it applied');
    assert.equal(fs.readFileSync(path.join(a.mnt, 'w'), 'utf8'), 'v2');
  });

  it('a write whose reply a cut loses, then appended to on A before B is back: B\'s close succeeds, and A\'s append stays', async () => {
    fs.writeFileSync(path.join(a.mnt, 'log'), 'zero\n');
    const onB = path.join(b.mnt, 'log');
    await untilBReads('log', 'zero\n');
    await fs.promises.writeFile(onB, 'one\n');
    const fh = await fs.promises.open(onB, 'a');
    await fh.write('two\n');
    proxy.hold();
    const closing = outcome(fh.close());
    await heldReply('the commit');
    proxy.cut();
    proxy.release();
    // A appends to B's version while B is away.
    const t0 = performance.now();
    while (fs.readFileSync(path.join(a.mnt, 'log'), 'utf8') !== 'one\ntwo\n') {
      assert.ok(performance.now() - t0 < 3000, "A does not see B's write");
      await sleep(10);
    }
    fs.appendFileSync(path.join(a.mnt, 'log'), 'three\n');
    proxy.restore();
    assert.equal(await closing, 'OK', `B's close\n${b.output()}`);
    assert.equal((await plain.getData('/rc/log')).data.toString(), 'one\ntwo\nthree\n');
    await untilBReads('log', 'one\ntwo\nthree\n');
  });

  it('a write whose request a cut loses, while A appends twice to the version B read: B\'s close stores B\'s content', async () => {
    fs.writeFileSync(path.join(a.mnt, 'log2'), 'zero\n');
    const onB = path.join(b.mnt, 'log2');
    await untilBReads('log2', 'zero\n');
    await fs.promises.writeFile(onB, 'zero\n');
    const fh = await fs.promises.open(onB, 'a');
    await fh.write('one\n');
    const cut = proxy.cutAtRequest(OpCode.setData, OpCode.multi);
    const closing = outcome(fh.close());
    await cut;
    // The server never saw B's write; A's versions follow the one B read, and start as B's content does.
    fs.appendFileSync(path.join(a.mnt, 'log2'), 'x\n');
    fs.appendFileSync(path.join(a.mnt, 'log2'), 'y\n');
    proxy.restore();
    assert.equal(await closing, 'OK', `B's close\n${b.output()}`);
    assert.equal((await plain.getData('/rc/log2')).data.toString(), 'zero\none\n', "B's close came last");
  });

  for (const lost of ['reply', 'request'] as const) {
    it(`a write of a znode's own data (dir mode's _zoo_data_) whose ${lost} a cut loses: close() succeeds once the connection is back, and the data is stored`, async () => {
      await plain.create(`/dirmode-${lost}`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
      await plain.create(`/dirmode-${lost}/n`, Buffer.from('old'), OPEN_ACL_UNSAFE);
      const m = await mountCli(['--backend', 'zookeeper', '--path', `/dirmode-${lost}`, '--mode', 'dir', '--hosts', `127.0.0.1:${proxy.port}`]);
      try {
        const data = path.join(m.mnt, 'n', '_zoo_data_');
        // Through the proxy, which runs in this process: no synchronous call on the mount.
        assert.equal(await fs.promises.readFile(data, 'utf8'), 'old');
        const fh = await fs.promises.open(data, 'r+');
        await fh.truncate(0);
        await fh.write('new', 0);
        const reconnect = loseNext(proxy, lost, 'the write', OpCode.setData, OpCode.multi);
        const closing = outcome(fh.close());
        await reconnect();
        assert.equal(await closing, 'OK', m.output());
        assert.equal((await plain.getData(`/dirmode-${lost}/n`)).data.toString(), 'new');
      } finally {
        assert.equal(await m.stop(), 0, m.output());
      }
    });
  }

  it('a directory made on B whose reply a cut loses, replaced by a file on A before B is back: mkdir answers EEXIST, and B shows the file', async () => {
    // What the mkdir reads first, read now (the names of the directory, its map, the epoch, all dropped by the
    // last reconnect): the one reply held below is the mkdir's transaction.
    await fs.promises.writeFile(path.join(b.mnt, 'warm'), 'x');
    await fs.promises.readdir(b.mnt);
    proxy.hold();
    const making = outcome(fs.promises.mkdir(path.join(b.mnt, 'made')));
    await heldReply('the mkdir');
    proxy.cut();
    proxy.release();
    // Applied: A sees the directory, and replaces it by a file while B is away.
    const t0 = performance.now();
    while (!fs.existsSync(path.join(a.mnt, 'made'))) {
      assert.ok(performance.now() - t0 < 5000, 'A does not see the directory B made');
      await sleep(5);
    }
    fs.rmdirSync(path.join(a.mnt, 'made'));
    fs.writeFileSync(path.join(a.mnt, 'made'), 'a file');
    proxy.restore();
    assert.equal(await making, 'EEXIST', `mkdir on B\n${b.output()}`);
    assert.ok((await fs.promises.stat(path.join(b.mnt, 'made'))).isFile(), 'B shows the file');
    assert.equal(await fs.promises.readFile(path.join(b.mnt, 'made'), 'utf8'), 'a file');
  });

  it('an exchange on B whose reply a cut loses is done once: the retry does not swap the two back', async () => {
    fs.writeFileSync(path.join(a.mnt, 'left'), 'L');
    fs.writeFileSync(path.join(a.mnt, 'right'), 'R');
    await untilBReads('left', 'L');
    await untilBReads('right', 'R');
    // What the exchange reads first, read now (the map, the epoch): the one reply held below is its transaction.
    await fs.promises.writeFile(path.join(b.mnt, 'warm'), 'x');
    proxy.holdFromReplyTo(OpCode.multi);
    const exchanging = renameat2Async(path.join(b.mnt, 'left'), path.join(b.mnt, 'right'), RENAME_EXCHANGE);
    await heldReply("B's exchange");
    proxy.cut();
    proxy.release();
    proxy.restore();
    assert.equal(await exchanging, 'OK', b.output());
    assert.equal((await plain.getData('/rc/left')).data.toString(), 'R', 'left holds what right held');
    assert.equal((await plain.getData('/rc/right')).data.toString(), 'L');
    assert.equal(await fs.promises.readFile(path.join(b.mnt, 'left'), 'utf8'), 'R');
  });

  describe('a large file, whose open and close pin and unpin its version', () => {
    const pins = async () => (await plain.getChildren(`/rc/${CHUNKS_NAME}/pin`)).children;
    const chunkNames = async () => new Set((await plain.getChildren(`/rc/${CHUNKS_NAME}/c`)).children);
    /** Waits until no garbage record and no pin is left (collection runs in the background). */
    const untilCollected = async () => {
      const t0 = performance.now();
      for (;;) {
        const [gc, pinned] = [(await plain.getChildren(`/rc/${CHUNKS_NAME}/gc`)).children, await pins()];
        if (gc.length === 0 && pinned.length === 0) return;
        assert.ok(performance.now() - t0 < 5000, `garbage records ${gc.join(', ')} and pins ${pinned.join(', ')} stay\n${b.output()}`);
        await sleep(20);
      }
    };
    /** Every chunk stored is used by a file (all large files of this block are at the volume's top). */
    const assertEveryChunkUsed = async () => {
      const used = new Set<string>();
      for (const f of (await plain.getChildren('/rc')).children) {
        const m = decodeManifest((await plain.getData(`/rc/${f}`)).data);
        if (m) for (const c of chunkNamesOf(m)) used.add(c);
      }
      assert.deepEqual([...(await chunkNames())].filter((c) => !used.has(c)), [], 'chunks no file uses');
    };
    /** The chunks the manifest of the large file at `zkPath` names that are gone. */
    const missingChunks = async (zkPath: string) => {
      const manifest = decodeManifest((await plain.getData(zkPath)).data);
      assert.ok(manifest, `${zkPath} is a large file`);
      const missing = [];
      for (const c of chunkNamesOf(manifest)) if (!(await plain.exists(`/rc/${CHUNKS_NAME}/c/${c}`))) missing.push(c);
      return missing;
    };
    /** What ZooKeeper holds at `name`, read through a mount made for it. */
    const readThroughFreshMount = async (name: string) => {
      const fresh = await mountCli(['--backend', 'zookeeper', '--path', '/rc', '--hosts', zk.connectString]);
      try {
        return fs.readFileSync(path.join(fresh.mnt, name));
      } finally {
        assert.equal(await fresh.stop(), 0, fresh.output());
      }
    };
    /**
     * B writes 2 MiB over the small file `name` A made; B's manifest switch is
     * applied and its reply lost with the connection, which stays cut; A
     * appends to B's version meanwhile (A's version reuses B's chunks).
     */
    const switchLostThenAppendedOnA = async (name: string) => {
      fs.writeFileSync(path.join(a.mnt, name), 'small');
      await untilBReads(name, 'small');
      const written = crypto.randomBytes(2 * 1024 * 1024);
      const fh = await fs.promises.open(path.join(b.mnt, name), 'r+');
      await fh.write(written, 0, written.length, 0);
      proxy.holdFromReplyTo(OpCode.multi);
      const closing = outcome(fh.close());
      await heldReply("B's manifest switch");
      proxy.cut();
      proxy.release();
      const t0 = performance.now();
      while (fs.statSync(path.join(a.mnt, name)).size !== written.length) {
        assert.ok(performance.now() - t0 < 3000, "A does not see B's version");
        await sleep(10);
      }
      fs.appendFileSync(path.join(a.mnt, name), 'tail');
      return { closing, expected: Buffer.concat([written, Buffer.from('tail')]) };
    };
    let content = crypto.randomBytes(3 * 1024 * 1024);
    const onB = () => path.join(b.mnt, 'large');
    /** The last close drops its pin in the background. */
    const noPinWithin = async (ms: number, when: string) => {
      const t0 = performance.now();
      let left = await pins();
      while (left.length > 0) {
        assert.ok(performance.now() - t0 < ms, `the pins ${left.join(', ')} stay ${when}\n${b.output()}`);
        await sleep(20);
        left = await pins();
      }
    };
    /** B reads the current content once: an open then only pins it (one request) and confirms it. */
    const readOnB = async () => {
      const t0 = performance.now();
      while (!(await fs.promises.readFile(onB()).catch(() => Buffer.alloc(0))).equals(content)) {
        assert.ok(performance.now() - t0 < 5000, 'B does not read the large file A wrote');
        await sleep(20);
      }
      await noPinWithin(3000, 'after B read the file');
    };
    /**
     * Makes `file` (on a mount through the proxy) large, and unlinks it while the reply to that
     * commit is held: the outcomes of the close and of the unlink.
     */
    const unlinkWhileOwnLargeCommitsReplyIsHeld = async (file: string) => {
      const fh = await fs.promises.open(file, 'r+');
      await fh.write(crypto.randomBytes(2 * 1024 * 1024), 0);
      proxy.holdFromReplyTo(OpCode.multi);
      const closing = outcome(fh.close());
      await heldReply("B's commit");
      const unlinking = outcome(fs.promises.unlink(file));
      await sleep(100);
      proxy.release();
      return [await closing, await unlinking];
    };
    before(() => fs.writeFileSync(path.join(a.mnt, 'large'), content));

    it("an unlink on B sent while B's own commit that makes the file large is in flight: the chunks are collected", async () => {
      fs.writeFileSync(path.join(a.mnt, 'racing'), 'small');
      await untilBReads('racing', 'small');
      const onB = path.join(b.mnt, 'racing');
      // B knows the directory's map, without an entry for the small file (default attributes).
      await fs.promises.chmod(path.join(b.mnt, 'large'), 0o644);
      // The commit is applied; until its reply comes, B's map is the one before it.
      assert.deepEqual(await unlinkWhileOwnLargeCommitsReplyIsHeld(onB), ['OK', 'OK'], b.output());
      assert.equal(await plain.exists('/rc/racing'), null);
      await untilCollected();
      await assertEveryChunkUsed();
    });

    it('the same race at the top of a volume made by another tool (no map there yet): the chunks are collected', async () => {
      await plain.create('/bare', Buffer.alloc(0), OPEN_ACL_UNSAFE);
      await plain.create('/bare/racing', Buffer.from('small'), OPEN_ACL_UNSAFE);
      const bare = await mountCli(['--backend', 'zookeeper', '--path', '/bare', '--hosts', `127.0.0.1:${proxy.port}`]);
      try {
        const onB = path.join(bare.mnt, 'racing');
        assert.equal(await fs.promises.readFile(onB, 'utf8'), 'small');
        // The commit (which gives the top its map) is applied; until its reply comes, B knows no map there.
        assert.deepEqual(await unlinkWhileOwnLargeCommitsReplyIsHeld(onB), ['OK', 'OK'], bare.output());
        assert.equal(await plain.exists('/bare/racing'), null);
        const t0 = performance.now();
        for (;;) {
          const [gc, pinned] = [(await plain.getChildren(`/bare/${CHUNKS_NAME}/gc`)).children, (await plain.getChildren(`/bare/${CHUNKS_NAME}/pin`)).children];
          const stored = (await plain.getChildren(`/bare/${CHUNKS_NAME}/c`)).children;
          if (gc.length + pinned.length + stored.length === 0) break;
          assert.ok(performance.now() - t0 < 5000, `garbage records ${gc.join(', ')}, pins ${pinned.join(', ')} and chunks ${stored.length} stay\n${bare.output()}`);
          await sleep(20);
        }
      } finally {
        assert.equal(await bare.stop(), 0, bare.output());
      }
    });

    it("an unlink on B whose look at the file is answered before A exchanges a large file into its place, and at the map after: the chunks are collected", async () => {
      const onA = (p: string) => path.join(a.mnt, p);
      fs.writeFileSync(onA('xc'), 'small');
      fs.writeFileSync(onA('xa'), crypto.randomBytes(2 * 1024 * 1024));
      // A rename re-creates a file's znode, then sets its data: the large file the exchange puts at xc
      // is at data version 1, as the small one is (created, then written).
      assert.equal((await plain.exists('/rc/xc'))!.version, 1, 'the small file at data version 1');
      await untilBReads('xc', 'small');
      await fs.promises.stat(path.join(b.mnt, 'xa'));
      // B learns the directory epoch (which the last reconnect dropped): its unlink below reads nothing else first.
      await fs.promises.writeFile(path.join(b.mnt, 'scratch'), '');
      await fs.promises.unlink(path.join(b.mnt, 'scratch'));
      await fs.promises.stat(path.join(b.mnt, 'xc'));
      // A changes the map; B hears of it and drops its copy (reading it again, answer held): B's unlink reads the map too.
      proxy.hold();
      fs.chmodSync(onA('xa'), 0o640);
      const untilHeld = async (what: string, count: () => number, n: number) => {
        const t0 = performance.now();
        while (count() < n) {
          assert.ok(performance.now() - t0 < 3000, `${what} (${count()} of ${n} held)`);
          await sleep(5);
        }
      };
      await untilHeld("B does not hear of A's chmod", () => proxy.heldChunks(), 1);
      proxy.releaseEvents();
      await untilHeld('B does not read the map again', () => proxy.heldReplies(), 1);
      const unlinking = outcome(fs.promises.unlink(path.join(b.mnt, 'xc')));
      await untilHeld("B's unlink does not read the file and the map", () => proxy.heldReplies(), 3);
      assert.equal(renameat2(onA('xa'), onA('xc'), RENAME_EXCHANGE), 'OK');
      await sleep(100);
      // B reads the file's Stat from before the exchange, then hears of it and reads the map again.
      proxy.release();
      assert.equal(await unlinking, 'OK', b.output());
      assert.equal(await plain.exists('/rc/xc'), null);
      await untilCollected();
      await assertEveryChunkUsed();
      assert.equal(await fs.promises.readFile(path.join(b.mnt, 'xa'), 'utf8'), 'small', 'B shows the small file where the large one was');
    });

    it("a large write on B whose reply a cut loses, then extended on A before B is back: B's close succeeds, and A's version keeps every chunk", async () => {
      const { closing, expected } = await switchLostThenAppendedOnA('grown');
      proxy.restore();
      assert.equal(await closing, 'OK', `B's close\n${b.output()}`);
      assert.deepEqual(await missingChunks('/rc/grown'), [], "chunks of A's version deleted");
      assert.ok((await readThroughFreshMount('grown')).equals(expected), 'what ZooKeeper holds: B\'s content and A\'s tail');
      assert.ok((await fs.promises.readFile(path.join(b.mnt, 'grown'))).equals(expected), 'B reads that too');
    });

    it("a large write on B whose reply a cut loses, then extended and renamed on A before B is back: B's close succeeds, the renamed file keeps every chunk, and nothing stays pinned", async () => {
      const { closing, expected } = await switchLostThenAppendedOnA('moving');
      // A's version, under another name: B's retry finds no file at the old one.
      fs.renameSync(path.join(a.mnt, 'moving'), path.join(a.mnt, 'moved'));
      proxy.restore();
      assert.equal(await closing, 'OK', `B's close: its version was stored\n${b.output()}`);
      await untilCollected();
      assert.deepEqual(await missingChunks('/rc/moved'), [], "chunks of A's version deleted");
      assert.ok(fs.readFileSync(path.join(a.mnt, 'moved')).equals(expected), "B's content and A's tail");
    });

    it("a small write on B whose commit waits to learn the directory epoch while another descriptor's commit makes the file large: it replaces the large file through a version switch, and its chunks are collected", async () => {
      const onA = path.join(a.mnt, 'twice');
      const onB = path.join(b.mnt, 'twice');
      fs.writeFileSync(onA, 'v1');
      await untilBReads('twice', 'v1');
      // fd1 reads v1; A's v2 then leaves fd1 its own content, and fd2 opens v2: two contents of one file on B.
      const fd1 = await fs.promises.open(onB, 'r+');
      assert.equal((await fd1.read(Buffer.alloc(2), 0, 2, 0)).bytesRead, 2);
      fs.writeFileSync(onA, 'v2');
      await untilBReads('twice', 'v2');
      const fd2 = await fs.promises.open(onB, 'r+');
      await fd2.write(crypto.randomBytes(2 * 1024 * 1024), 0);
      await fd1.write('small again', 0);
      // fd2's commit makes the file large: applied, its reply held (and what follows).
      proxy.holdFromReplyTo(OpCode.multi);
      const closing2 = outcome(fd2.close());
      await heldReply("fd2's commit");
      // A directory removed on A raises the epoch; B hears of it (its events only): fd1's commit must read the epoch.
      fs.mkdirSync(path.join(a.mnt, 'epoch-bump'));
      fs.rmdirSync(path.join(a.mnt, 'epoch-bump'));
      await sleep(100);
      proxy.releaseEvents();
      await sleep(50);
      const closing1 = outcome(fd1.close());
      const t0 = performance.now();
      while (proxy.heldReplies() < 2) {
        assert.ok(performance.now() - t0 < 3000, `fd1's commit does not read the epoch (${proxy.heldReplies()} replies held)`);
        await sleep(5);
      }
      // fd2's commit completes first; then fd1's, with what it judged before.
      proxy.releaseOne();
      assert.equal(await closing2, 'OK', b.output());
      proxy.release();
      assert.equal(await closing1, 'OK', b.output());
      assert.equal((await plain.getData('/rc/twice')).data.toString(), 'small again', 'the last close wins');
      await untilCollected();
      await assertEveryChunkUsed();
    });

    it("a large write on B whose file A removes and makes again while B stores its chunks: the file then holds B's content or A's, never a manifest as its bytes", async () => {
      const onA = path.join(a.mnt, 'again');
      fs.writeFileSync(onA, 'old');
      await untilBReads('again', 'old');
      const written = crypto.randomBytes(2 * 1024 * 1024);
      const fh = await fs.promises.open(path.join(b.mnt, 'again'), 'r+');
      await fh.write(written, 0, written.length, 0);
      // B's commit has read the file and sent its pending record (its reply held): A removes the file and makes
      // it again, at the data version B read (a new file is created, then written: version 1).
      proxy.holdFromReplyTo(OpCode.create2);
      const closing = outcome(fh.close());
      await heldReply("B's pending record");
      fs.unlinkSync(onA);
      fs.writeFileSync(onA, 'new on A');
      await sleep(100);
      proxy.release();
      const closed = await closing;
      assert.ok(closed === 'OK' || closed === 'ESTALE', `B's close: ${closed}\n${b.output()}`);
      const content = await readThroughFreshMount('again');
      assert.ok(content.equals(written) || content.toString() === 'new on A', `the file reads ${JSON.stringify(content.subarray(0, 60).toString())}`);
      await untilCollected();
      await assertEveryChunkUsed();
    });

    it("a large switch on B that reaches the server just after A removed the file and made it again: the new file holds B's content, as a large file", async () => {
      const onA = path.join(a.mnt, 'late');
      fs.writeFileSync(onA, 'old');
      await untilBReads('late', 'old');
      const written = crypto.randomBytes(2 * 1024 * 1024);
      const fh = await fs.promises.open(path.join(b.mnt, 'late'), 'r+');
      await fh.write(written, 0, written.length, 0);
      // B sends its switch; the proxy keeps it from the server while A removes the file and makes it again.
      const sent = proxy.delayRequestsFrom(OpCode.multi);
      const closing = outcome(fh.close());
      await sent;
      fs.unlinkSync(onA);
      fs.writeFileSync(onA, 'new on A');
      proxy.releaseRequests();
      assert.equal(await closing, 'OK', b.output());
      const content = await readThroughFreshMount('late');
      assert.ok(content.equals(written), `the file reads ${JSON.stringify(content.subarray(0, 60).toString())}`);
      assert.ok((await fs.promises.readFile(path.join(b.mnt, 'late'))).equals(written), 'B reads its content');
    });

    it("a large write on B given up for another attempt (A wrote meanwhile), whose clean-up's reply a cut loses: its chunks go all the same", async () => {
      const onA = path.join(a.mnt, 'contended');
      fs.writeFileSync(onA, crypto.randomBytes(2 * 1024 * 1024));
      const fh = await fs.promises.open(path.join(b.mnt, 'contended'), 'r+');
      const written = crypto.randomBytes(2 * 1024 * 1024);
      await fh.write(written, 0, written.length, 0);
      // B's commit reads the file and stores its chunks; its pending record's reply is held while A writes.
      proxy.holdFromReplyTo(OpCode.create2);
      const closing = outcome(fh.close());
      await heldReply("B's pending record");
      fs.appendFileSync(onA, 'tail');
      // B builds its switch again; what it does first is giving up the first attempt: that reply is lost.
      proxy.release();
      proxy.holdFromReplyTo(OpCode.setData, OpCode.delete);
      await heldReply("the first attempt's clean-up");
      proxy.cut();
      proxy.release();
      proxy.restore();
      assert.equal(await closing, 'OK', b.output());
      assert.ok((await fs.promises.readFile(onA)).equals(written), "B's content, written last");
      await untilCollected();
      await assertEveryChunkUsed();
      assert.deepEqual((await plain.getChildren(`/rc/${CHUNKS_NAME}/pending`)).children, [], 'no pending record');
    });

    for (const op of ['unlink', 'rename over'] as const) {
      it(`an ${op} of a large file on B whose reply a cut loses: its chunks are collected at once, not at the next sweep`, async () => {
        const victim = `doomed-${op === 'unlink' ? 'u' : 'r'}`;
        fs.writeFileSync(path.join(a.mnt, victim), crypto.randomBytes(2 * 1024 * 1024));
        fs.writeFileSync(path.join(a.mnt, `${victim}.new`), 'small');
        await untilBReads(`${victim}.new`, 'small');
        await fs.promises.stat(path.join(b.mnt, victim));
        // What the removal reads first, read now (the map, the epoch): the one reply held below is its transaction.
        await fs.promises.writeFile(path.join(b.mnt, 'warm'), 'x');
        proxy.holdFromReplyTo(OpCode.multi);
        const removing = outcome(
          op === 'unlink' ? fs.promises.unlink(path.join(b.mnt, victim)) : fs.promises.rename(path.join(b.mnt, `${victim}.new`), path.join(b.mnt, victim)),
        );
        await heldReply(`B's ${op}`);
        proxy.cut();
        proxy.release();
        proxy.restore();
        assert.equal(await removing, 'OK', b.output());
        await untilCollected();
        await assertEveryChunkUsed();
      });
    }

    for (const lost of ['reply', 'request'] as const) {
      it(`an open whose pin a cut connection loses (its ${lost}): open() succeeds once the connection is back, with one pin`, async () => {
        await readOnB();
        // The pin is a create (a one-op multi before this was fixed).
        const reconnect = loseNext(proxy, lost, 'the pin', OpCode.create2, OpCode.multi);
        const opening = fs.promises.open(onB(), 'r');
        await reconnect();
        const fh = await opening.catch((err: NodeJS.ErrnoException) => assert.fail(`open() after its pin's ${lost} was lost: ${err.code}\n${b.output()}`));
        try {
          assert.equal((await pins()).length, 1, 'one pin while open');
          const read = Buffer.alloc(content.length);
          assert.equal((await fh.read(read, 0, read.length, 0)).bytesRead, content.length);
          assert.ok(read.equals(content), 'content read after the reconnect');
        } finally {
          await fh.close();
        }
        await noPinWithin(3000, 'after close()');
      });

      it(`a close whose unpin a cut connection loses (its ${lost}): the pin goes once the connection is back, and the version replaced meanwhile is collected`, async () => {
        await readOnB();
        const fh = await fs.promises.open(onB(), 'r');
        assert.equal((await pins()).length, 1, 'one pin while open');
        const chunksBefore = chunkNamesOf(decodeManifest((await plain.getData('/rc/large')).data));
        // A writes a new version meanwhile: the chunks of B's version are garbage once B lets go.
        content = crypto.randomBytes(content.length);
        fs.writeFileSync(path.join(a.mnt, 'large'), content);
        // A, the writer, tried to collect it and found B's pin (it looks right after its commit): from now on only B collects.
        const t0 = performance.now();
        while ((await plain.getChildren(`/rc/${CHUNKS_NAME}/gc`)).children.length === 0) {
          assert.ok(performance.now() - t0 < 3000, 'no garbage record for the replaced version');
          await sleep(10);
        }
        await sleep(200);
        const reconnect = loseNext(proxy, lost, 'the unpin', OpCode.delete);
        await fh.close();
        await reconnect();
        await noPinWithin(5000, '5 s after the connection came back');
        // B, the last reader, collects the replaced version.
        const t1 = performance.now();
        for (;;) {
          const chunks = await chunkNames();
          const left = [...chunksBefore].filter((c) => chunks.has(c));
          if (left.length === 0) break;
          assert.ok(performance.now() - t1 < 5000, `${left.length} chunks of the replaced version stay 5 s after the connection came back\n${b.output()}`);
          await sleep(50);
        }
      });
    }
  });
});
