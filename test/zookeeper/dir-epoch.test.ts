// The directory epoch (docs/zookeeper-layout.md, "Directory epoch") as a node
// that writes pays for it: a mount through the real kernel FUSE against a real
// ZooKeeper, requests counted by the server (mntr). The other node is a plain
// client sending the transaction a mount's rmdir sends (a second mount would
// re-read the maps B writes, and those requests would count too). What the
// epoch protects is tested in stale-view.test.ts; this is what it costs.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { EPOCH_NAME, MARKER_NAME } from '../../src/backends/zookeeper/layout.js';
import { mountCli, waitFor, type CliMount } from '../helpers/mount.js';
import { requestsWhenQuiet, startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

describe('ZooKeeper backend, the directory epoch', () => {
  let zk: ZooKeeperServer;
  let plain: ZkClient;
  let b: CliMount;

  const settled = () => requestsWhenQuiet(zk);
  const counted = async (fn: () => void): Promise<number> => {
    const before = await settled();
    fn();
    return (await settled()) - before;
  };
  const modeOn = (m: CliMount, p: string) => fs.statSync(path.join(m.mnt, p)).mode & 0o7777;

  before(async () => {
    zk = await startZooKeeper();
    plain = new ZkClient({ connectString: zk.connectString, sessionTimeoutMs: 30_000 });
    await plain.connect();
    await plain.create('/ep', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    // Long sessions: a ping (every third of it) seldom lands in a counted step.
    const args = ['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', '/ep', '--session-timeout', '30'];
    b = await mountCli(args);
    fs.mkdirSync(path.join(b.mnt, 'd'));
    fs.writeFileSync(path.join(b.mnt, 'd', 'f'), 'f\n');
    for (const dir of ['gone', 'mine']) fs.mkdirSync(path.join(b.mnt, dir));
    // The top gets its map now: the first removal there would make it (one request more, once), not what is counted here.
    fs.chmodSync(path.join(b.mnt, 'mine'), 0o750);
  });
  after(async () => {
    if (b) assert.equal(await b.stop(), 0, b.output());
    plain?.close();
    await zk?.destroy();
  });

  it("another node's rmdir costs a writer one read of the epoch, and its cached attribute maps stay", async () => {
    fs.chmodSync(path.join(b.mnt, 'd', 'f'), 0o640); // d's map cached on B, and the epoch known
    assert.equal(await counted(() => fs.chmodSync(path.join(b.mnt, 'd', 'f'), 0o604)), 1, 'a chmod with the map and the epoch known: its multi alone');

    // Another node's rmdir: the marker, the directory, and the epoch raised, in one transaction.
    await plain.multi([
      { op: 'delete', path: `/ep/gone/${MARKER_NAME}`, version: -1 },
      { op: 'delete', path: '/ep/gone', version: -1 },
      { op: 'setData', path: `/ep/${EPOCH_NAME}`, data: Buffer.alloc(0), version: -1 },
    ]);
    await waitFor(() => !fs.existsSync(path.join(b.mnt, 'gone')), 3000, 'B hearing of the rmdir');
    // The epoch's event follows the directory's in the same reply batch; settled() leaves time for it.
    const requests = await counted(() => fs.chmodSync(path.join(b.mnt, 'd', 'f'), 0o600));
    // The epoch read again, and the multi. Learning the epoch from a failed multi instead, and
    // dropping the maps, cost 4: the failed multi, the epoch, d's map and the multi again.
    assert.equal(requests, 2, `a chmod after another node's rmdir: ${requests} requests`);
    assert.equal(modeOn(b, 'd/f'), 0o600);
    assert.equal(await counted(() => fs.chmodSync(path.join(b.mnt, 'd', 'f'), 0o644)), 1, 'the next chmod: the epoch known again');
  });

  it("the writer's own rmdir tells it the epoch: the next write reads nothing", async () => {
    fs.rmdirSync(path.join(b.mnt, 'mine'));
    const requests = await counted(() => fs.chmodSync(path.join(b.mnt, 'd', 'f'), 0o640));
    assert.equal(requests, 1, `a chmod after this node's own rmdir: ${requests} requests`);
    assert.equal(modeOn(b, 'd/f'), 0o640);
  });

});
