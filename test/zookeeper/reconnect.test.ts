// A mount whose connection to ZooKeeper drops and comes back within the
// session timeout: the session and its watch survive, but ZooKeeper does not
// report to a persistent watch what changed while the connection was down. The
// mount must see those changes anyway, without waiting for the next one.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { mountCli, type CliMount } from '../helpers/mount.js';
import { startProxy, startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ZooKeeper backend, changes made while a mount was disconnected', () => {
  let zk: ZooKeeperServer;
  let a: CliMount;
  let b: CliMount;
  let plain: ZkClient;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  /** Waits until the proxy holds a reply from the server: the request `what` was applied. */
  const heldReply = async (what: string) => {
    const t0 = performance.now();
    while (proxy.heldReplies() === 0) {
      assert.ok(performance.now() - t0 < 5000, `no reply to ${what} within 5 s`);
      await sleep(5);
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

  it('a write whose reply a cut connection loses: close() still succeeds once the connection is back, and the content is stored', async () => {
    fs.writeFileSync(path.join(a.mnt, 'w'), 'v1');
    const onB = path.join(b.mnt, 'w');
    const t00 = performance.now();
    while ((await fs.promises.readFile(onB, 'utf8').catch(() => undefined)) !== 'v1') {
      assert.ok(performance.now() - t00 < 3000, 'B does not see the new file after 3 s');
      await sleep(10);
    }
    // A first write warms up what the commit reads (the directory's map, the epoch): the commit below sends its write alone.
    await fs.promises.writeFile(onB, 'v0');
    const fh = await fs.promises.open(onB, 'r+');
    await fh.write('v2', 0);
    // The commit at close is applied by the server, but its reply is held, then the connection cut.
    proxy.hold();
    const closing = fh.close().then(
      () => 'OK',
      (err: NodeJS.ErrnoException) => err.code,
    );
    await heldReply('the commit');
    proxy.cut();
    proxy.release(); // nothing to pass on (the connection is gone): stops holding
    proxy.restore();
    assert.equal(await closing, 'OK', `close() after its commit's reply was lost\n${b.output()}`);
    assert.equal((await plain.getData('/rc/w')).data.toString(), 'v2');
    assert.equal(fs.readFileSync(path.join(a.mnt, 'w'), 'utf8'), 'v2');
  });

  it('a directory made on B whose reply a cut loses, replaced by a file on A before B is back: mkdir answers EEXIST, and B shows the file', async () => {
    // What the mkdir reads first, read now (the names of the directory, its map, the epoch, all dropped by the
    // last reconnect): the one reply held below is the mkdir's transaction.
    await fs.promises.writeFile(path.join(b.mnt, 'warm'), 'x');
    await fs.promises.readdir(b.mnt);
    proxy.hold();
    const making = fs.promises.mkdir(path.join(b.mnt, 'made')).then(
      () => 'OK',
      (err: NodeJS.ErrnoException) => err.code,
    );
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
});
