// The large-file chunk store against a real ZooKeeper, driven directly: what
// happens to chunks of a commit whose writer died, and garbage pinned by a
// reader on another node (another session) until that reader goes.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ChunkStore, chunkName, type Manifest } from '../../src/backends/zookeeper/chunks.js';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { CreateMode, OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { waitFor } from '../helpers/mount.js';
import { startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

const DIR = '/vol/.swarmvol-chunks';

describe('ZooKeeper backend, the chunk store of large files', () => {
  let zk: ZooKeeperServer;
  let client: ZkClient;
  let store: ChunkStore;
  const connect = async () => {
    const c = new ZkClient({ connectString: zk.connectString });
    await c.connect();
    return c;
  };
  const chunks = async () => (await client.getChildren(`${DIR}/c`)).children.sort();
  const upload = (s: ChunkStore, gen: string, n: number) => {
    const list = Array.from({ length: n }, (_, i) => ({ name: chunkName(gen, i), data: Buffer.alloc(1000, i) }));
    return s.upload(gen, list, list.map((c) => c.name)).then(() => list.map((c) => c.name));
  };
  /** The version of `n` chunks of 1,000 bytes that generation `gen` stored. */
  const version = (gen: string, n: number): Manifest => ({ g: gen, size: n * 1000, cs: 1000, c: Array.from({ length: n }, () => gen) });

  before(async () => {
    zk = await startZooKeeper();
    client = await connect();
    await client.create('/vol', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    store = new ChunkStore(client, DIR, OPEN_ACL_UNSAFE);
  });
  after(async () => {
    client?.close();
    await zk?.destroy();
  });

  it('deletes the chunks of a commit whose writer died, once its pending record is older than the expiry', async () => {
    const writer = await connect();
    const names = await upload(new ChunkStore(writer, DIR, OPEN_ACL_UNSAFE), 'dead', 3);
    writer.close(); // died before switching any manifest
    assert.deepEqual(await chunks(), names);
    await store.sweep();
    assert.deepEqual(await chunks(), names, 'a young pending record is a commit that may still switch');
    await new Promise((r) => setTimeout(r, 50));
    await store.sweep(10);
    assert.deepEqual(await chunks(), []);
    assert.deepEqual((await client.getChildren(`${DIR}/pending`)).children, []);
  });

  it('a switch after its pending record was declared abandoned fails, so no manifest names deleted chunks', async () => {
    await upload(store, 'late', 1);
    await new Promise((r) => setTimeout(r, 50));
    await store.sweep(10);
    await assert.rejects(client.multi([{ op: 'create', path: '/vol/manifest', data: Buffer.from('m'), acl: OPEN_ACL_UNSAFE }, store.pendingDone('late')]));
    assert.equal(await client.exists('/vol/manifest'), null);
  });

  it('keeps garbage while a reader in another session pins its version, and collects it when that session ends', async () => {
    const names = await upload(store, 'old', 2);
    await client.multi([store.pendingDone('old')]);
    const reader = await connect();
    const readerStore = new ChunkStore(reader, DIR, OPEN_ACL_UNSAFE);
    const { path: pin } = await readerStore.pin(version('old', 2), async () => undefined);
    // A new version replaced 'old': its chunks are garbage.
    await client.multi([store.garbage('old', names)]);
    await store.collect('old');
    assert.deepEqual(await chunks(), names, 'pinned: kept');
    assert.deepEqual(await readerStore.load(names[0]!), Buffer.alloc(1000, 0));
    // The reader's node dies: its ephemeral pin goes with its session; the sweep collects.
    reader.close(); // the session's close request is sent, not awaited: the pin goes when the server has it
    await waitFor(async () => (await client.exists(pin)) === null, 5000, 'the reader’s pin gone with its session');
    await store.sweep();
    assert.deepEqual(await chunks(), []);
    assert.deepEqual((await client.getChildren(`${DIR}/gc`)).children, []);
  });

  it('keeps garbage of a later version that an earlier version\'s reader still reads (a chunk kept in between), and collects it when that reader unpins', async () => {
    const names = await upload(store, 'e1', 2);
    await client.multi([store.pendingDone('e1')]);
    const { path: reader } = await store.pin(version('e1', 2), async () => undefined);
    // e2 kept e1's chunk 0 and rewrote chunk 1; e3 then dropped e1's chunk 0: garbage recorded under e2.
    await client.multi([store.garbage('e1', [names[1]!])]);
    await client.multi([store.garbage('e2', [names[0]!])]);
    await store.collect('e2');
    assert.deepEqual(await chunks(), names, 'the reader of e1 still reads both');
    await store.unpin(reader);
    assert.deepEqual(await chunks(), [], 'both records collected once it is gone');
    assert.deepEqual((await client.getChildren(`${DIR}/gc`)).children, []);
  });

  it('collects garbage no pinned version reads, even a chunk of a generation one still reads from; a pin without data (an older mount\'s) holds back everything', async () => {
    const names = await upload(store, 'f1', 2);
    await client.multi([store.pendingDone('f1')]);
    // f2 kept f1's chunk 0 and rewrote chunk 1: f1's chunk 1 is garbage, and f2's reader does not read it.
    const { path: reader } = await store.pin({ g: 'f2', size: 2000, cs: 1000, c: ['f1', 'f2'] }, async () => undefined);
    await client.multi([store.garbage('f1', [names[1]!])]);
    const old = `${DIR}/pin/f9-olderpin`;
    await client.create(old, Buffer.alloc(0), OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
    await store.collect('f1');
    assert.deepEqual(await chunks(), names, 'held back by the pin without data');
    await client.delete(old);
    await store.collect('f1');
    assert.deepEqual(await chunks(), [names[0]!], "f1's chunk 1 collected under f2's reader; chunk 0, which it reads, stays");
    await store.unpin(reader);
    await client.delete(`${DIR}/c/${names[0]!}`);
  });

  it('the last reader to unpin collects; a chunk that is gone reads as ESTALE', async () => {
    const names = await upload(store, 'v1', 2);
    await client.multi([store.pendingDone('v1')]);
    const { path: p1 } = await store.pin(version('v1', 2), async () => undefined);
    const { path: p2 } = await store.pin(version('v1', 2), async () => undefined);
    await client.multi([store.garbage('v1', names)]);
    await store.unpin(p1);
    assert.deepEqual(await chunks(), names, 'one reader left');
    await store.unpin(p2);
    assert.deepEqual(await chunks(), []);
    await assert.rejects(store.load(names[0]!), (e: unknown) => (e as { code?: string }).code === 'ESTALE');
  });
});
