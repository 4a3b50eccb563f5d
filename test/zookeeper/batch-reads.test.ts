// BatchReads against a real ZooKeeper: what it answers, and how many
// requests the server counts for it (mntr).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BatchReads, LIST_DATA_PER_NODE, maxBatchOps, PROBE_OPS } from '../../src/backends/zookeeper/batch-reads.js';
import { chunkSizeFor, DEFAULT_MAX_REQUEST, runPipelined } from '../../src/backends/zookeeper/chunks.js';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { ErrorCode, OPEN_ACL_UNSAFE, Perms, type Stat, ZkError } from '../../src/backends/zookeeper/client/protocol.js';
import { startZooKeeper, statRequests, type ZooKeeperServer } from '../helpers/zookeeper.js';

const MAX_OPS = maxBatchOps(DEFAULT_MAX_REQUEST);
/** Everyone may do everything but read the data. */
const NO_READ_ACL = [{ perms: Perms.ALL & ~Perms.READ, scheme: 'world', id: 'anyone' }];

describe('maxBatchOps', () => {
  it('keeps a reply of znodes as large as the server allows within half the client frame limit', () => {
    assert.equal(maxBatchOps(DEFAULT_MAX_REQUEST), 32);
    assert.equal(maxBatchOps(8 * 1024 * 1024), 4);
    assert.equal(maxBatchOps(32 * 1024 * 1024), 1);
    assert.equal(maxBatchOps(64 * 1024 * 1024), 1);
  });
});

describe('BatchReads against a real ZooKeeper', () => {
  let zk: ZooKeeperServer;
  let c: ZkClient;
  let batch: BatchReads;
  const packets = () => zk.requestsReceived();
  const counted = async <T>(fn: () => Promise<T>): Promise<{ value: T; requests: number }> => {
    const before = await packets();
    const value = await fn();
    return { value, requests: (await packets()) - before };
  };
  const makeChildren = async (dir: string, n: number, data: (i: number) => Buffer, acl = OPEN_ACL_UNSAFE) => {
    await c.create(dir, Buffer.alloc(0), OPEN_ACL_UNSAFE);
    await runPipelined(Array.from({ length: n }, (_, i) => i), (i) => c.create(`${dir}/c${String(i).padStart(3, '0')}`, data(i), acl), 64);
    return Array.from({ length: n }, (_, i) => `${dir}/c${String(i).padStart(3, '0')}`);
  };
  const sameStat = (a: Stat | null, b: Stat | null) => assert.deepEqual(a && { ...a }, b && { ...b });

  before(async () => {
    zk = await startZooKeeper();
    // Long enough that no ping falls inside a counted step.
    c = new ZkClient({ connectString: zk.connectString, sessionTimeoutMs: 30_000 });
    await c.connect();
    batch = new BatchReads(c, MAX_OPS);
  });
  after(async () => {
    c?.close();
    await zk?.destroy();
  });

  it('statMany of a directory of small znodes: the Stats exists() gives and the data, missing ones null, in a few multiReads', async () => {
    const paths = await makeChildren('/small', 100, (i) => Buffer.from(`file ${i}`));
    const asked = [...paths.slice(0, 50), '/small/missing', ...paths.slice(50)];
    const { value: stats, requests } = await counted(() => batch.statMany(asked));
    const expected = await Promise.all(asked.map((p) => c.exists(p)));
    assert.equal(stats.length, asked.length);
    stats.forEach((s, i) => sameStat(s?.stat ?? null, expected[i]!));
    assert.equal(stats[50], null);
    assert.equal(stats[0]?.data?.toString(), 'file 0');
    assert.equal(stats[99]?.data?.toString(), 'file 98');
    // The probe of 8, then 16, 32, 32 and the last 13.
    assert.equal(requests, statRequests(asked.length), `${requests} requests for ${asked.length} Stats`);
    assert.equal(requests, 5);
  });

  it('statMany of a directory of large znodes reads only the probe with data, the rest with one exists each', async () => {
    const size = 2 * LIST_DATA_PER_NODE;
    const paths = await makeChildren('/large', 40, () => Buffer.alloc(size, 1));
    const { value: stats, requests } = await counted(() => batch.statMany(paths));
    stats.forEach((s) => assert.equal(s?.stat.dataLength, size));
    assert.ok(stats.slice(PROBE_OPS).every((s) => s?.data === undefined), 'data read beyond the probe');
    assert.equal(requests, 1 + (paths.length - PROBE_OPS), `${requests} requests: the probe and one exists per other znode`);
  });

  it('statMany of small znodes followed by large ones stops reading data after the first batch that shows them', async () => {
    const size = 2 * LIST_DATA_PER_NODE;
    const paths = await makeChildren('/mixed', 48, (i) => (i < PROBE_OPS ? Buffer.from(`small ${i}`) : Buffer.alloc(size, 2)));
    const { value: stats, requests } = await counted(() => batch.statMany(paths));
    const expected = await Promise.all(paths.map((p) => c.exists(p)));
    stats.forEach((s, i) => sameStat(s?.stat ?? null, expected[i]!));
    // The probe (small), the next 16 (large: the average is now past the limit), then one exists each.
    const withData = PROBE_OPS + 2 * PROBE_OPS;
    assert.ok(stats.slice(0, withData).every((s) => s?.data !== undefined));
    assert.ok(stats.slice(withData).every((s) => s?.data === undefined), 'data read after the large znodes showed');
    assert.equal(requests, 2 + (paths.length - withData));
  });

  it('statMany reads a reply too large for the client again in halves, on the same session', async () => {
    const small = new ZkClient({ connectString: zk.connectString, sessionTimeoutMs: 30_000, maxReplyBytes: 64 * 1024 });
    await small.connect();
    try {
      const paths = await makeChildren('/halves', 10, (i) => Buffer.alloc(20_000, i));
      const session = small.session.id;
      const stats = await new BatchReads(small, MAX_OPS).statMany(paths);
      const expected = await Promise.all(paths.map((p) => c.exists(p)));
      stats.forEach((s, i) => sameStat(s?.stat ?? null, expected[i]!));
      assert.equal(small.session.id, session);
      assert.equal((await small.getData(paths[0]!)).data.length, 20_000, 'the connection still works');
    } finally {
      small.close();
    }
  });

  it('statMany gives the Stat of a znode this session may not read (exists needs no permission)', async () => {
    const paths = await makeChildren('/acl', 20, (i) => Buffer.from(`secret ${i}`), NO_READ_ACL);
    await assert.rejects(c.getData(paths[0]!), (e: ZkError) => e.code === ErrorCode.NOAUTH);
    const stats = await batch.statMany(paths);
    const expected = await Promise.all(paths.map((p) => c.exists(p)));
    stats.forEach((s, i) => sameStat(s?.stat ?? null, expected[i]!));
    assert.ok(stats.every((s) => s !== null && s.data === undefined));
  });

  it('getData calls made in one tick leave in one multiRead per MAX_OPS; each answers on its own', async () => {
    const paths = await makeChildren('/tick', 50, (i) => Buffer.from(`content ${i}`));
    await c.create('/tick-secret', Buffer.from('x'), NO_READ_ACL);
    const { value: outcomes, requests } = await counted(() =>
      Promise.all([...paths, '/tick/missing', '/tick-secret'].map((p) => batch.getData(p).then((f) => f, (err: unknown) => err))),
    );
    paths.forEach((p, i) => {
      const f = outcomes[i] as { data: Buffer } | null;
      assert.equal(f?.data.toString(), `content ${i}`, p);
    });
    assert.equal(outcomes[paths.length], null, 'a missing znode is null');
    const refused = outcomes[paths.length + 1];
    assert.ok(refused instanceof ZkError && refused.code === ErrorCode.NOAUTH, 'a refused read rejects alone');
    assert.equal(requests, Math.ceil((paths.length + 2) / MAX_OPS));
  });

  it('a single read is a plain getData, and a huge znode fits in a batch reply', async () => {
    const big = Buffer.alloc(chunkSizeFor(DEFAULT_MAX_REQUEST), 9);
    await c.create('/big', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    await runPipelined(Array.from({ length: MAX_OPS }, (_, i) => i), (i) => c.create(`/big/b${i}`, big, OPEN_ACL_UNSAFE), 8);
    const found = await Promise.all(Array.from({ length: MAX_OPS }, (_, i) => batch.getData(`/big/b${i}`)));
    assert.ok(found.every((f) => f?.data.equals(big)));
    const one = await counted(() => batch.getData('/big/b0'));
    assert.equal(one.requests, 1);
    assert.ok(one.value?.data.equals(big));
  });
});
