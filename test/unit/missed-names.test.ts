import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend, KernelNode, RequestContext } from '../../src/fs/backend.js';
import { MissedNames } from '../../src/fs/missed-names.js';
import { NodeFileSystem } from '../../src/fs/nodes.js';
import { ROOT_ID } from '../../src/fuse/kernel.js';
import type { Notifier } from '../../src/fuse/session.js';

describe('MissedNames (negative entries to drop after a reconnect)', () => {
  it('records each name once per parent and hands them all back once', () => {
    const m = new MissedNames(() => assert.fail('nothing is evicted below the limit'));
    m.add(1, 'a');
    m.add(1, 'a');
    m.add(1, 'b');
    m.add(7, 'a');
    assert.equal(m.size, 3);
    assert.deepEqual(m.drain(), [
      [1, 'a'],
      [1, 'b'],
      [7, 'a'],
    ]);
    assert.equal(m.size, 0);
    assert.deepEqual(m.drain(), []);
  });

  it('past its limit drops the oldest names from the kernel at once, so none the kernel may keep goes unrecorded', () => {
    const evicted: Array<[number, string]> = [];
    const m = new MissedNames((parent, name) => evicted.push([parent, name]), 3);
    m.add(1, 'a');
    m.add(2, 'b');
    m.add(1, 'c');
    m.add(3, 'd');
    assert.deepEqual(evicted, [[1, 'a']]);
    m.add(3, 'e');
    assert.deepEqual(evicted, [
      [1, 'a'],
      [1, 'c'],
    ]);
    assert.equal(m.size, 3);
    assert.deepEqual(m.drain(), [
      [2, 'b'],
      [3, 'd'],
      [3, 'e'],
    ]);
  });

  it("forgets a parent's names when the kernel forgets the parent", () => {
    const m = new MissedNames(() => undefined);
    m.add(1, 'a');
    m.add(2, 'b');
    m.add(2, 'c');
    m.forgetParent(2);
    m.forgetParent(9);
    assert.equal(m.size, 1);
    assert.deepEqual(m.drain(), [[1, 'a']]);
  });
});

describe('NodeFileSystem: a lookup that finds a name missing across a drain', () => {
  /** A node layer over a backend whose lookups answer when the test says, and the names the kernel is told to drop. */
  const setup = () => {
    const root: KernelNode = { kernelId: 0, kernelLookups: 0, kernelOpened: false };
    const pending: Array<() => void> = [];
    const backend = {
      root,
      lookup: () => new Promise<undefined>((resolve) => pending.push(() => resolve(undefined))),
    } as unknown as Backend<KernelNode, unknown>;
    const layer = new NodeFileSystem(backend, { recordMisses: true, negativeTimeout: 3600 });
    const dropped: string[] = [];
    const notifier: Notifier = {
      invalInode: () => Promise.resolve(),
      invalEntry: (parent, name) => (dropped.push(`${parent}/${name}`), Promise.resolve()),
      delete: () => Promise.resolve(),
    };
    layer.setNotifier(notifier);
    const ctx = { uid: 0, gid: 0, pid: 1 } as unknown as RequestContext;
    const answerAll = () => pending.splice(0).forEach((answer) => answer());
    return { layer, dropped, lookup: (name: string) => layer.lookup(ctx, ROOT_ID, name), answerAll };
  };

  it('is recorded and kept for the negative timeout when no drain came between', async () => {
    const { layer, dropped, lookup, answerAll } = setup();
    const found = lookup('a');
    answerAll();
    assert.deepEqual(await found, { nodeid: 0, entryTimeout: 3600, attrTimeout: 0 });
    await layer.invalidateMissingNames();
    assert.deepEqual(dropped, [`${ROOT_ID}/a`]);
  });

  it('is not kept by the kernel when a drain (a reconnect) came while it was in flight', async () => {
    const { layer, dropped, lookup, answerAll } = setup();
    const found = lookup('a');
    await layer.invalidateMissingNames(); // nothing recorded yet
    answerAll();
    const entry = await found;
    assert.equal(entry.nodeid, 0);
    assert.equal(entry.entryTimeout, 0, 'a miss from before the reconnect must not stay in the kernel');
    await layer.invalidateMissingNames();
    assert.deepEqual(dropped, [], 'not recorded either');
  });
});
