// READDIRPLUS takes each entry's node from the listing the backend keeps
// (listedLookup) instead of looking its name up. It must answer what a
// lookup would, or nothing (then the name is looked up): never a node that
// changed, moved or was forgotten. Driven against the backend directly.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import type { ZooKeeperBackend, ZkNode } from '../../src/backends/zookeeper/index.js';
import type { DirEntry } from '../../src/fs/backend.js';
import { waitFor } from '../helpers/mount.js';
import { openBackend, rootContext, startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

const ctx = rootContext;
const empty = Buffer.alloc(0);

describe('ZooKeeper backend, lookups from a kept listing', () => {
  let zk: ZooKeeperServer;
  let client: ZkClient;
  let backend: ZooKeeperBackend;

  before(async () => {
    zk = await startZooKeeper();
    client = new ZkClient({ connectString: zk.connectString });
    await client.connect();
    await client.create('/vol', empty, OPEN_ACL_UNSAFE);
    backend = await openBackend(client, '/vol');
  });
  after(async () => {
    await backend?.close();
    await zk?.destroy();
  });

  async function dir(name: string): Promise<ZkNode> {
    const found = await backend.lookup(ctx, backend.root, name);
    assert.ok(found && found.node.kind === 'dir', `${name} is a directory`);
    return found.node;
  }
  const indexOf = (entries: DirEntry[], name: string) => entries.findIndex((e) => e.name === name);

  it('answers what a lookup answers, and nothing once the entry changed elsewhere or was forgotten (its content goes with it)', async () => {
    await client.create('/vol/same', empty, OPEN_ACL_UNSAFE);
    for (let i = 0; i < 10; i++) await client.create(`/vol/same/f${i}`, Buffer.from(`content ${i}`), OPEN_ACL_UNSAFE);
    await client.create('/vol/same/sub', empty, OPEN_ACL_UNSAFE);
    await client.create('/vol/same/sub/leaf', empty, OPEN_ACL_UNSAFE);
    const d = await dir('same');
    const entries = await backend.readdir(ctx, d);
    let answered = 0;
    for (let i = 0; i < entries.length; i++) {
      const name = entries[i]!.name;
      if (name === '.' || name === '..') continue;
      const listed = backend.listedLookup(d, entries, i);
      const looked = await backend.lookup(ctx, d, name);
      assert.ok(listed && looked, `${name} is answered both ways`);
      assert.equal(listed.node, looked.node, `${name}: the same node`);
      assert.deepEqual(listed.attr, looked.attr, `${name}: the same attributes`);
      answered++;
    }
    assert.equal(answered, 11);

    await client.setData('/vol/same/f1', Buffer.from('changed elsewhere, longer'));
    await waitFor(() => backend.listedLookup(d, entries, indexOf(entries, 'f1')) === undefined, 5000, 'the changed entry to be refused from the listing');
    const f1 = await backend.lookup(ctx, d, 'f1');
    assert.equal(f1?.attr.size, 'changed elsewhere, longer'.length, 'its lookup reads the new size');

    const f2 = backend.listedLookup(d, entries, indexOf(entries, 'f2'))!.node;
    assert.ok(f2.data, 'the listing brought the content along');
    backend.forget(f2);
    assert.equal(backend.listedLookup(d, entries, indexOf(entries, 'f2')), undefined, 'a forgotten node is not answered');
    assert.equal(f2.data, undefined, 'a forgotten node keeps no content, though the listing still names it');
    const again = await backend.lookup(ctx, d, 'f2');
    assert.ok(again && again.node !== f2, 'the lookup makes a new node');
  });

  it('answers nothing from the listing of a directory the backend replaced, whose children may have moved since', async () => {
    // A directory made by another tool (no marker) is one while it has children.
    await client.create('/vol/d', empty, OPEN_ACL_UNSAFE);
    await client.create('/vol/d/y', empty, OPEN_ACL_UNSAFE);
    const old = await dir('d');
    // Its last child goes: it is a file now, and `old` is no longer the node at its path.
    await client.delete('/vol/d/y');
    await waitFor(async () => (await backend.lookup(ctx, backend.root, 'd'))?.node.kind === 'file', 5000, 'd to become a file');
    await client.create('/vol/d/x', Buffer.from('x'), OPEN_ACL_UNSAFE);
    await waitFor(async () => (await backend.lookup(ctx, backend.root, 'd'))?.node.kind === 'dir', 5000, 'd to be a directory again');
    // A process still in the old directory lists it: the listing names x's node.
    const entries = await backend.readdir(ctx, old);
    const at = indexOf(entries, 'x');
    assert.ok(at >= 0);
    const x = (await backend.lookup(ctx, await dir('d'), 'x'))!.node;
    // This node renames d: x's node moves to /e/x, the old directory's listing does not hear of it.
    await backend.rename(ctx, backend.root, 'd', backend.root, 'e', 0);
    await backend.getattr(ctx, x);
    assert.equal(x.path, '/e/x');
    // Another d, whose attribute map is read: the old directory's path has one again.
    await client.create('/vol/d', empty, OPEN_ACL_UNSAFE);
    await client.create('/vol/d/z', empty, OPEN_ACL_UNSAFE);
    await waitFor(async () => (await backend.lookup(ctx, backend.root, 'd'))?.node.kind === 'dir', 5000, 'the new d');
    assert.ok(await backend.lookup(ctx, await dir('d'), 'z'));
    assert.equal(backend.listedLookup(old, entries, at), undefined, 'the old directory does not answer for /e/x');
  });
});
