// What a close costs the ZooKeeper backend when no lock is held: every
// close(2) sends FLUSH, and FLUSH drops the closing process's POSIX locks.
// With none held on the mount, that is answered at once (no promise, so the
// session answers FLUSH without an event-loop turn); with some held, the
// release still finds them. Driven against the backend directly.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import type { ZooKeeperBackend, ZkNode } from '../../src/backends/zookeeper/index.js';
import type { LockIn } from '../../src/fs/backend.js';
import { F_UNLCK, F_WRLCK } from '../../src/fuse/kernel.js';
import { waitFor } from '../helpers/mount.js';
import { openBackend, rootContext, startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

const ctx = rootContext;
const writeLock = (owner: bigint): LockIn => ({ fh: 0, owner, flock: false, lock: { type: F_WRLCK, start: 0n, end: 99n, pid: 1 } });

describe('ZooKeeper backend, lock release at close', () => {
  let zk: ZooKeeperServer;
  let client: ZkClient;
  let backend: ZooKeeperBackend;
  let file: ZkNode;

  before(async () => {
    zk = await startZooKeeper();
    client = new ZkClient({ connectString: zk.connectString });
    await client.connect();
    await client.create('/vol', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    await client.create('/vol/f', Buffer.from('content'), OPEN_ACL_UNSAFE);
    backend = await openBackend(client, '/vol');
    const found = await backend.lookup(ctx, backend.root, 'f');
    assert.ok(found);
    file = found.node;
  });
  after(async () => {
    await backend?.close();
    await zk?.destroy();
  });

  it('with no lock held on the mount, a release is done at once; with one held, it waits for ZooKeeper and drops only its owner’s', async () => {
    assert.equal(backend.releaseLocks(file, 7n, false), undefined, 'no lock anywhere: nothing to wait for');

    await backend.setlk(ctx, file, writeLock(1n), false);
    const other = backend.releaseLocks(file, 2n, false);
    assert.ok(other instanceof Promise, 'a lock is held on the mount: the release looks at ZooKeeper');
    await other;
    assert.equal((await backend.getlk(ctx, file, writeLock(2n))).type, F_WRLCK, "another owner's close leaves the lock held");

    await backend.releaseLocks(file, 1n, false);
    assert.equal((await backend.getlk(ctx, file, writeLock(2n))).type, F_UNLCK, "the holder's close releases it");
    await waitFor(() => backend.releaseLocks(file, 7n, false) === undefined, 2000, 'the released owner to be forgotten');
  });
});
