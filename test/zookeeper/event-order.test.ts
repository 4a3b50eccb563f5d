// A change made by another client is applied to the backend's own caches
// before the kernel is told: while the kernel's invalidation is still being
// written, a lookup must already see the change. Otherwise a lookup answered
// in between from the old listing leaves the kernel a miss (or a stale entry)
// that no later event corrects. Driven against the backend directly, with a
// kernel cache whose invalidations wait until the test lets them go.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import type { ZooKeeperBackend, ZkNode } from '../../src/backends/zookeeper/index.js';
import type { KernelCache } from '../../src/fs/backend.js';
import { waitFor } from '../helpers/mount.js';
import { openBackend, rootContext, startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

const ctx = rootContext;

/** A kernel cache whose entry invalidations are held until released. */
class HeldKernelCache implements KernelCache<ZkNode> {
  held: Array<{ name: string; release: () => void }> = [];
  invalidateNode(): Promise<void> {
    return Promise.resolve();
  }
  invalidateAttributes(): Promise<void> {
    return Promise.resolve();
  }
  invalidateEntry(_parent: ZkNode, name: string): Promise<void> {
    return new Promise((release) => this.held.push({ name, release: () => release() }));
  }
  entryDeleted(_parent: ZkNode, _child: ZkNode, name: string): Promise<void> {
    return this.invalidateEntry(_parent, name);
  }
  invalidateMissingNames(): Promise<void> {
    return Promise.resolve();
  }
  releaseAll(): void {
    for (const h of this.held.splice(0)) h.release();
  }
}

describe('ZooKeeper backend, order of a remote change', () => {
  let zk: ZooKeeperServer;
  let plain: ZkClient;
  let mountClient: ZkClient;
  let backend: ZooKeeperBackend;
  const cache = new HeldKernelCache();

  before(async () => {
    zk = await startZooKeeper();
    plain = new ZkClient({ connectString: zk.connectString });
    await plain.connect();
    await plain.create('/vol', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    mountClient = new ZkClient({ connectString: zk.connectString });
    await mountClient.connect();
    backend = await openBackend(mountClient, '/vol');
    backend.attach(cache);
  });
  after(async () => {
    cache.releaseAll();
    await backend?.close();
    plain?.close();
    await zk?.destroy();
  });

  it('a lookup made while the kernel is being told of a new name finds it', async () => {
    await backend.readdir(ctx, backend.root); // the listing, and so the miss below, now come from the cache
    assert.equal(await backend.lookup(ctx, backend.root, 'made-elsewhere'), undefined);
    await plain.create('/vol/made-elsewhere', Buffer.from('x'), OPEN_ACL_UNSAFE);
    await waitFor(() => cache.held.some((h) => h.name === 'made-elsewhere'), 5000, 'the kernel to be told of the new name');
    const found = await backend.lookup(ctx, backend.root, 'made-elsewhere');
    assert.ok(found, 'looked up from the listing cached before the change');
    cache.releaseAll();
  });

  it('a lookup made while the kernel is being told of a removed name misses it', async () => {
    await backend.readdir(ctx, backend.root);
    assert.ok(await backend.lookup(ctx, backend.root, 'made-elsewhere'));
    await plain.delete('/vol/made-elsewhere');
    await waitFor(() => cache.held.some((h) => h.name === 'made-elsewhere'), 5000, 'the kernel to be told of the removal');
    assert.equal(await backend.lookup(ctx, backend.root, 'made-elsewhere'), undefined, 'found from the listing cached before the removal');
    cache.releaseAll();
  });
});
