// The volume quota, with two mounts as two nodes against a real ZooKeeper:
// EDQUOT past the quota with nothing partial stored, df showing the quota and
// the usage on both nodes, and usage staying right through renames, deletes
// and truncates (ZooKeeper's own quota stats, read in one request).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { CLI, sh, waitFor, type CliMount } from '../helpers/mount.js';
import { assertErrno } from '../helpers/posix.js';
import { startTwoNodes, type TwoNodes, type ZooKeeperServer } from '../helpers/zookeeper.js';

const QUOTA = 400 * 1024;

/** df's view of a mount, in bytes. */
async function df(mnt: string): Promise<{ size: number; used: number; avail: number }> {
  const r = await sh(`df -B1 --output=size,used,avail '${mnt}' | tail -1`);
  assert.equal(r.code, 0, r.stderr);
  const [size, used, avail] = r.stdout.trim().split(/\s+/).map(Number);
  return { size: size!, used: used!, avail: avail! };
}

describe('ZooKeeper backend, volume quota', () => {
  let zk: ZooKeeperServer;
  let plain: ZkClient;
  let a: CliMount;
  let b: CliMount;
  /** The volume's bytes as ZooKeeper counts them. */
  const stats = async () => Number(/bytes=(\d+)/.exec((await plain.getData('/zookeeper/quota/vols/q/zookeeper_stats')).data.toString())![1]);

  let nodes: TwoNodes | undefined;
  before(async () => {
    // A sets the quota; B mounts without the option and gets it from ZooKeeper.
    nodes = await startTwoNodes('/vols/q', ['--quota', `${QUOTA / 1024}k`]);
    ({ zk, plain, a, b } = nodes);
  });
  after(() => nodes?.stop());

  it('df shows the quota as size and the usage as used, on both nodes', async () => {
    await fs.promises.writeFile(path.join(a.mnt, 'one'), Buffer.alloc(100 * 1024, 1));
    const zkBytes = await stats();
    assert.ok(zkBytes >= 100 * 1024 && zkBytes < 100 * 1024 + 4096, `ZooKeeper counts ${zkBytes} bytes`);
    for (const m of [a, b]) {
      const d = await df(m.mnt);
      assert.equal(d.size, QUOTA, 'size is the quota');
      assert.equal(d.used, Math.ceil(zkBytes / 4096) * 4096, 'used is the volume’s bytes (in 4 KiB blocks)');
      assert.equal(d.avail, QUOTA - d.used);
    }
  });

  it('a write past the quota fails with EDQUOT and stores nothing of it; other nodes may still write within it', async () => {
    const before = await stats();
    // 350 KiB more would pass 400 KiB: the write fails, the file stays as it was (empty).
    const r = await sh(`head -c ${350 * 1024} /dev/zero > '${a.mnt}/big'`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /quota exceeded/i);
    assert.equal(fs.statSync(path.join(b.mnt, 'big')).size, 0, 'nothing partial is visible on the other node');
    assert.equal(await stats(), before, 'usage unchanged');
    // A new file refused for the quota is never stored: gone after its close, here and on the other node.
    // (python, not a shell's >: the shell closes a duplicate descriptor first, which stores the file empty)
    const fresh = await sh(`python3 -c "f = open('${a.mnt}/new-big', 'wb'); f.write(bytes(${350 * 1024})); f.close()"`);
    assert.match(fresh.stderr, /Disk quota exceeded/);
    // (its last close, the asynchronous RELEASE, drops it)
    await waitFor(() => !fs.existsSync(path.join(a.mnt, 'new-big')), 3000, 'the refused new file to go');
    assertErrno(() => fs.statSync(path.join(a.mnt, 'new-big')), 'ENOENT');
    assertErrno(() => fs.statSync(path.join(b.mnt, 'new-big')), 'ENOENT');
    assert.equal(await stats(), before, 'usage unchanged');
    // Within the quota, B writes.
    await fs.promises.writeFile(path.join(b.mnt, 'small'), Buffer.alloc(50 * 1024, 2));
    // A single write() that passes the quota is refused as a whole.
    // (refused at the write, or at the latest by close, which reports it)
    const one = await sh(`python3 -c "import os; fd=os.open('${b.mnt}/big', os.O_WRONLY); os.write(fd, b'x'*${300 * 1024}); os.close(fd)"`);
    assert.match(one.stderr, /Disk quota exceeded/);
    assert.equal(fs.statSync(path.join(a.mnt, 'big')).size, 0);
  });

  it('usage stays right after renames, deletes and truncates, as df shows on both nodes', async () => {
    const check = async (what: string) => {
      const zkBytes = await stats();
      for (const m of [a, b]) assert.equal((await df(m.mnt)).used, Math.ceil(zkBytes / 4096) * 4096, `${what}: df on ${m === a ? 'A' : 'B'}`);
      return zkBytes;
    };
    const start = await check('start');
    fs.mkdirSync(path.join(a.mnt, 'dir'));
    fs.renameSync(path.join(a.mnt, 'one'), path.join(a.mnt, 'dir', 'one'));
    const renamed = await check('after rename');
    assert.ok(Math.abs(renamed - start) < 512, `a rename does not change usage (${start} → ${renamed})`);
    fs.truncateSync(path.join(b.mnt, 'dir', 'one'), 10 * 1024);
    const truncated = await check('after truncate');
    assert.ok(Math.abs(start - truncated - 90 * 1024) < 512, `truncate 100k → 10k frees 90k (${start} → ${truncated})`);
    fs.rmSync(path.join(a.mnt, 'small'));
    const deleted = await check('after delete');
    assert.ok(Math.abs(truncated - deleted - 50 * 1024) < 512, `deleting 50k frees 50k (${truncated} → ${deleted})`);
    // The space is usable again: 300 KiB now fits.
    await fs.promises.writeFile(path.join(b.mnt, 'big'), Buffer.alloc(300 * 1024, 3));
    // Another node's close reaches A through the watch within milliseconds.
    await waitFor(() => fs.statSync(path.join(a.mnt, 'big')).size === 300 * 1024, 3000, 'the new content on A');
    await check('after refill');
  });

  it('a truncate that would pass the quota fails with EDQUOT', async () => {
    assert.throws(() => fs.truncateSync(path.join(a.mnt, 'big'), 1000 * 1024), /EDQUOT|-122/);
    assert.equal(fs.statSync(path.join(b.mnt, 'big')).size, 300 * 1024);
  });

  it('rejects a bad quota with a message naming the option', async () => {
    const r = await sh(`'${CLI}' mount --backend zookeeper --hosts ${zk.connectString} --path /vols/x --quota 12q /mnt`);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--quota: expected a size/);
  });
});
