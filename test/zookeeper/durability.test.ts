// Acknowledged writes survive a ZooKeeper restart and a session expiry; while
// ZooKeeper is away operations wait (up to --op-timeout), then fail with EIO,
// and the mount recovers by itself.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { mountCli, type CliMount } from '../helpers/mount.js';
import { startProxy, startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Runs a shell command in a child (it may block on the mount while this process restarts ZooKeeper). */
function shAsync(command: string): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stderr, ms: performance.now() - t0 }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ZooKeeper backend, durability across server restarts and session expiry', () => {
  let zk: ZooKeeperServer;
  let m: CliMount;
  /** name → content of every write whose close() returned 0. */
  const acked = new Map<string, string>();

  const writeAcked = async (name: string, content: string) => {
    await fs.promises.writeFile(path.join(m.mnt, name), content);
    acked.set(name, content);
  };

  /** Every acknowledged write, read by a fresh plain client and through the mount. */
  const verifyAll = async () => {
    const c = new ZkClient({ connectString: zk.connectString });
    await c.connect();
    try {
      for (const [name, content] of acked) {
        assert.equal(sha((await c.getData(`/dur/${name}`)).data), sha(content), `${name} in ZooKeeper`);
        assert.equal(await fs.promises.readFile(path.join(m.mnt, name), 'utf8'), content, `${name} through the mount`);
      }
    } finally {
      c.close();
    }
  };

  before(async () => {
    zk = await startZooKeeper();
    m = await mountCli(['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', '/dur', '--session-timeout', '2', '--op-timeout', '20']);
  });
  after(async () => {
    if (m) assert.equal(await m.stop(), 0, m.output());
    await zk?.destroy();
  });

  it('keeps every acknowledged write through a server restart; a write during the outage waits and lands', async () => {
    for (let i = 0; i < 30; i++) await writeAcked(`before-restart-${i}`, `content ${i} `.repeat(i * 100 + 1));
    await zk.stop();
    const during = shAsync(`printf 'written while ZooKeeper was down' > ${m.mnt}/during-restart`);
    await sleep(2000);
    await zk.start();
    const r = await during;
    assert.equal(r.code, 0, r.stderr);
    console.log(`a write issued while ZooKeeper was down completed ${r.ms.toFixed(0)} ms later, after the restart`);
    acked.set('during-restart', 'written while ZooKeeper was down');
    await writeAcked('after-restart', 'after');
    await verifyAll();
  });

  it('commits a large file whose close is cut by a server restart: whole, once, with no chunk left over', async () => {
    const size = 20 * 1024 * 1024;
    const content = Buffer.alloc(size);
    for (let i = 0; i < size; i++) content[i] = (i * 7 + (i >> 12)) & 0xff;
    const file = path.join(m.mnt, 'large-across-restart');
    // The writer prints 'closing' just before close(): the restart lands in the middle of its commit (chunks being stored).
    const writer = spawn('python3', ['-c', `import sys\nf = open(sys.argv[1], 'wb')\nf.write(bytes((i * 7 + (i >> 12)) & 255 for i in range(${size})))\nprint('closing', flush=True)\nf.close()`, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    writer.stdout.on('data', (d: Buffer) => (out += d.toString()));
    writer.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => writer.on('exit', r));
    while (!out.includes('closing')) await sleep(5);
    await sleep(20);
    await zk.stop();
    await sleep(1500);
    await zk.start();
    assert.equal(await exited, 0, err);
    const c = new ZkClient({ connectString: zk.connectString });
    await c.connect();
    try {
      assert.equal(sha(await fs.promises.readFile(file)), sha(content), 'through the mount');
      const manifest = JSON.parse((await c.getData('/dur/large-across-restart')).data.toString().split('\n')[1]!) as { c: Array<string | null> };
      const used = manifest.c.map((g, i) => `${g}-${i}`).sort();
      // A cut attempt's chunks are replaced or deleted by the retry; nothing else stays.
      const deadline = Date.now() + 5000;
      let stored: string[] = [];
      while (Date.now() < deadline) {
        stored = (await c.getChildren('/dur/.swarmvol-chunks/c')).children.sort();
        if (stored.length === used.length) break;
        await sleep(50);
      }
      assert.deepEqual(stored, used);
      assert.deepEqual((await c.getChildren('/dur/.swarmvol-chunks/pending')).children, []);
    } finally {
      c.close();
    }
  });

  it('keeps every acknowledged write through a session expiry (mount cut off past the session timeout)', async () => {
    // Through a proxy we can cut: the server keeps running, so the session surely expires.
    const proxy = await startProxy(zk.port);
    const cut = await mountCli(['--backend', 'zookeeper', '--hosts', `127.0.0.1:${proxy.port}`, '--path', '/dur', '--session-timeout', '2', '--op-timeout', '20']);
    try {
      // The proxy runs in this process: only asynchronous calls from here on.
      await fs.promises.writeFile(path.join(cut.mnt, 'before-expiry'), 'before expiry');
      acked.set('before-expiry', 'before expiry');
      proxy.cut();
      const during = shAsync(`printf 'written while cut off' > ${cut.mnt}/during-expiry`);
      await sleep(5000);
      proxy.restore();
      const r = await during;
      assert.equal(r.code, 0, r.stderr);
      acked.set('during-expiry', 'written while cut off');
      await fs.promises.writeFile(path.join(cut.mnt, 'after-expiry'), 'after expiry');
      acked.set('after-expiry', 'after expiry');
      assert.match(cut.output(), /ZooKeeper session expired; a new one is up/);
    } finally {
      assert.equal(await cut.stop(), 0, cut.output());
      await proxy.close();
    }
    await verifyAll();
  });

  it('fails with EIO after --op-timeout while ZooKeeper stays away, then recovers by itself', async () => {
    const short = await mountCli(['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', '/dur', '--session-timeout', '2', '--op-timeout', '2']);
    try {
      assert.equal(await fs.promises.readFile(path.join(short.mnt, 'after-expiry'), 'utf8'), 'after expiry');
      await zk.stop();
      const r = await shAsync(`printf x > ${short.mnt}/unreachable`);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Input\/output error/);
      assert.ok(r.ms < 8000, `failed after ${r.ms} ms`);
      console.log(`with ZooKeeper down, a write failed with EIO after ${r.ms.toFixed(0)} ms (--op-timeout 2)`);
      await zk.start();
      let ok = false;
      for (let i = 0; i < 50 && !ok; i++) {
        ok = (await shAsync(`printf back > ${short.mnt}/recovered`)).code === 0;
        if (!ok) await sleep(200);
      }
      assert.ok(ok, 'the mount did not recover');
      assert.equal(await fs.promises.readFile(path.join(m.mnt, 'recovered'), 'utf8'), 'back');
    } finally {
      assert.equal(await short.stop(), 0, short.output());
    }
    await verifyAll();
  });
});
