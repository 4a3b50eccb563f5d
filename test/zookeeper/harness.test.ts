// The ZooKeeper harness itself: a real server on loopback that the backend
// tests use, with the counters benchmarks read.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

describe('ZooKeeper test server', () => {
  let zk: ZooKeeperServer;
  before(async () => {
    zk = await startZooKeeper();
  });
  after(async () => {
    await zk?.destroy();
  });

  it('answers ruok and reports standalone mode', async () => {
    assert.equal(await zk.command('ruok'), 'imok');
    assert.match(await zk.command('srvr'), /Mode: standalone/);
  });

  it('exposes request counters through mntr', async () => {
    const m = await zk.mntr();
    assert.equal(typeof m.zk_packets_received, 'number');
    assert.equal(m.zk_server_state, 'standalone');
  });

  it('stops and starts again on the same port', async () => {
    await zk.stop();
    await assert.rejects(zk.command('ruok'));
    await zk.start();
    assert.equal(await zk.command('ruok'), 'imok');
  });
});
