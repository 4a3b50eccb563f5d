// swarmvol's own ZooKeeper client against a real ZooKeeper server.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseConnectString, ReplyTooLargeError, ZkClient, type WatchEvent } from '../../src/backends/zookeeper/client/client.js';
import { CREATOR_ALL_ACL, CreateMode, ErrorCode, EventType, OpCode, OPEN_ACL_UNSAFE, ZkError, ZkMultiError } from '../../src/backends/zookeeper/client/protocol.js';
import { waitFor } from '../helpers/mount.js';
import { startProxy, startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

const b = (s: string) => Buffer.from(s);

describe('connect strings', () => {
  it('accept host:port lists with an optional chroot', () => {
    assert.deepEqual(parseConnectString('127.0.0.1:2181'), { hosts: [{ host: '127.0.0.1', port: 2181 }], chroot: '' });
    assert.deepEqual(parseConnectString('zk1:2181,zk2:2182/apps/x'), {
      hosts: [
        { host: 'zk1', port: 2181 },
        { host: 'zk2', port: 2182 },
      ],
      chroot: '/apps/x',
    });
    assert.deepEqual(parseConnectString('[::1]:2181').hosts, [{ host: '::1', port: 2181 }]);
  });

  it('refuse a missing port with a message that shows the form', () => {
    assert.throws(() => parseConnectString('zk1'), /"zk1" is not host:port \(the port is mandatory/);
    assert.throws(() => parseConnectString('zk1:2181,zk2'), /"zk2" is not host:port/);
    assert.throws(() => parseConnectString('zk1:99999'), /out of range/);
    assert.throws(() => parseConnectString('zk1:2181/a/'), /must not end with/);
  });
});

describe('ZkClient against a real ZooKeeper', () => {
  let zk: ZooKeeperServer;
  const clients: ZkClient[] = [];
  const client = async (opts: Partial<ConstructorParameters<typeof ZkClient>[0]> = {}) => {
    const c = new ZkClient({ connectString: zk.connectString, sessionTimeoutMs: 4000, ...opts });
    clients.push(c);
    await c.connect();
    return c;
  };

  before(async () => {
    zk = await startZooKeeper();
  });
  after(async () => {
    for (const c of clients) c.close();
    await zk?.destroy();
  });

  it('fails fast and clearly when no server answers', async () => {
    const start = Date.now();
    const c = new ZkClient({ connectString: '127.0.0.1:1', connectTimeoutMs: 1500 });
    await assert.rejects(c.connect(), /cannot reach ZooKeeper at 127\.0\.0\.1:1 within 1500 ms/);
    assert.ok(Date.now() - start < 3000);
  });

  it('creates, reads, updates, lists and deletes znodes, with ZooKeeper errors as codes', async () => {
    const c = await client();
    const { stat } = await c.create('/crud', b('hello'), OPEN_ACL_UNSAFE);
    assert.ok(stat.czxid > 0n);
    assert.equal((await c.getData('/crud')).data.toString(), 'hello');
    const s2 = await c.setData('/crud', b('world'), 0);
    assert.equal(s2.version, 1);
    await assert.rejects(c.setData('/crud', b('x'), 0), (e: ZkError) => e.code === ErrorCode.BADVERSION);
    await assert.rejects(c.create('/crud', b(''), OPEN_ACL_UNSAFE), (e: ZkError) => e.codeName === 'NODEEXISTS');
    await c.create('/crud/a', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    await c.create('/crud/b', Buffer.alloc(300_000, 7), OPEN_ACL_UNSAFE);
    const { children, stat: ps } = await c.getChildren('/crud');
    assert.deepEqual(children.sort(), ['a', 'b']);
    assert.equal(ps.numChildren, 2);
    assert.equal((await c.getData('/crud/b')).data.length, 300_000);
    await assert.rejects(c.delete('/crud'), (e: ZkError) => e.codeName === 'NOTEMPTY');
    assert.equal(await c.exists('/nope'), null);
    await assert.rejects(c.getData('/nope'), (e: ZkError) => e.codeName === 'NONODE' && e.path === '/nope');
  });

  it('works under a chroot', async () => {
    const root = await client();
    await root.create('/chroot', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    const c = await client({ connectString: `${zk.connectString}/chroot` });
    const r = await c.create('/x', b('1'), OPEN_ACL_UNSAFE);
    assert.equal(r.path, '/x');
    assert.equal((await root.getData('/chroot/x')).data.toString(), '1');
    assert.deepEqual((await c.getChildren('/')).children, ['x']);
  });

  it('multi applies all operations or none', async () => {
    const c = await client();
    const res = await c.multi([
      { op: 'create', path: '/m', data: b('m'), acl: OPEN_ACL_UNSAFE },
      { op: 'create', path: '/m/1', data: b('1'), acl: OPEN_ACL_UNSAFE },
      { op: 'setData', path: '/m', data: b('m2') },
    ]);
    assert.equal(res.length, 3);
    assert.equal(res[0]!.op === 'create' && res[0]!.path, '/m');
    await assert.rejects(
      c.multi([
        { op: 'create', path: '/m/2', data: b('2'), acl: OPEN_ACL_UNSAFE },
        { op: 'delete', path: '/m/missing' },
      ]),
      (e: ZkMultiError) => e.failedIndex === 1 && e.codeName === 'NONODE',
    );
    assert.equal(await c.exists('/m/2'), null, 'the first op was rolled back');
  });

  it('multiRead answers many reads in one round trip, each on its own', async () => {
    const c = await client();
    await c.create('/mr', b('d'), OPEN_ACL_UNSAFE);
    await c.create('/mr/k', b('kid'), OPEN_ACL_UNSAFE);
    const before = (await zk.mntr()).zk_packets_received as number;
    const res = await c.multiRead([
      { op: 'getData', path: '/mr' },
      { op: 'getChildren', path: '/mr' },
      { op: 'getData', path: '/mr/missing' },
      { op: 'getData', path: '/mr/k' },
    ]);
    const after = (await zk.mntr()).zk_packets_received as number;
    assert.ok(after - before <= 3, `one request (plus the mntr and pings), got ${after - before}`);
    assert.equal(res[0] instanceof ZkError ? 'err' : res[0]!.op === 'getData' && res[0]!.data.toString(), 'd');
    assert.deepEqual(res[1] instanceof ZkError ? 'err' : res[1]!.op === 'getChildren' && res[1]!.children, ['k']);
    assert.ok(res[2] instanceof ZkError && res[2].codeName === 'NONODE');
    assert.equal(res[3] instanceof ZkError ? 'err' : res[3]!.op === 'getData' && res[3]!.data.toString(), 'kid');
  });

  it('sends the requests made in one tick in one write, and at once when flushWrites is called', async () => {
    const c = await client();
    await c.create('/coalesced', b(''), OPEN_ACL_UNSAFE);
    const socket = (c as unknown as { socket: net.Socket }).socket;
    // What reaches the socket's handle: one _write or _writev call is one write(2)/writev(2).
    const writes: number[] = [];
    const proto = net.Socket.prototype as unknown as Record<'_write' | '_writev', (this: net.Socket, ...args: unknown[]) => void>;
    const { _write: write, _writev: writev } = proto;
    proto._write = function (...args) {
      if (this === socket) writes.push(1);
      write.apply(this, args);
    };
    proto._writev = function (...args) {
      if (this === socket) writes.push((args[0] as unknown[]).length);
      writev.apply(this, args);
    };
    try {
      const reads = Array.from({ length: 10 }, (_, i) => c.exists(`/coalesced/n${i}`));
      assert.deepEqual(writes, [], 'held until the end of the tick');
      assert.deepEqual(await Promise.all(reads), Array(10).fill(null));
      // (A ping may add a write of its own meanwhile.)
      assert.ok(writes.some((chunks) => chunks >= 10), `ten requests of one tick went in writes of ${writes.join(', ')} chunks`);
      writes.length = 0;
      const read = c.exists('/coalesced');
      c.flushWrites();
      assert.equal(writes.length, 1, 'flushWrites sends at once');
      assert.ok(await read);
    } finally {
      Object.assign(proto, { _write: write, _writev: writev });
    }
  });

  it('skips a reply larger than maxReplyBytes: only its request fails, the session goes on', async () => {
    const c = await client({ maxReplyBytes: 64 * 1024 });
    await c.create('/big-reply', Buffer.alloc(100_000, 3), OPEN_ACL_UNSAFE);
    await c.create('/big-reply/small', b('small'), OPEN_ACL_UNSAFE);
    const session = c.session.id;
    const [big, small, listing] = await Promise.allSettled([c.getData('/big-reply'), c.getData('/big-reply/small'), c.getChildren('/big-reply')]);
    assert.ok(big.status === 'rejected' && big.reason instanceof ReplyTooLargeError, 'the large reply fails on its own');
    assert.match((big as PromiseRejectedResult).reason.message, /reply of 100\d{3} bytes is larger than the 65536 bytes this client takes/);
    assert.equal(small.status === 'fulfilled' && small.value.data.toString(), 'small', 'the request after it is answered');
    assert.deepEqual(listing.status === 'fulfilled' && listing.value.children, ['small']);
    assert.equal(c.session.id, session);
    assert.equal(c.state, 'connected');
  });

  it('a persistent recursive watch reports every change in the subtree made by another client', async () => {
    const watcher = await client();
    const writer = await client();
    await writer.create('/w', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    const events: WatchEvent[] = [];
    watcher.on('watch', (e: WatchEvent) => events.push(e));
    await watcher.addWatch('/w');
    await writer.create('/w/a', b('1'), OPEN_ACL_UNSAFE);
    await writer.create('/w/a/deep', b('2'), OPEN_ACL_UNSAFE);
    await writer.setData('/w/a/deep', b('3'));
    await writer.delete('/w/a/deep');
    await waitFor(() => events.length >= 4, 5000, 'four watch events');
    assert.deepEqual(events.slice(0, 4), [
      { type: EventType.NodeCreated, path: '/w/a' },
      { type: EventType.NodeCreated, path: '/w/a/deep' },
      { type: EventType.NodeDataChanged, path: '/w/a/deep' },
      { type: EventType.NodeDeleted, path: '/w/a/deep' },
    ]);
  });

  it('digest auth: nodes made with CREATOR_ALL_ACL refuse other identities (NOAUTH)', async () => {
    const alice = await client({ auth: [{ scheme: 'digest', credential: 'alice:secret' }] });
    await alice.create('/private', b('mine'), CREATOR_ALL_ACL);
    assert.equal((await alice.getData('/private')).data.toString(), 'mine');
    const { acl } = await alice.getACL('/private');
    assert.equal(acl[0]!.scheme, 'digest');
    assert.match(acl[0]!.id, /^alice:/);
    assert.doesNotMatch(acl[0]!.id, /secret/, 'the ACL holds a hash, never the password');
    const anonymous = await client();
    await assert.rejects(anonymous.getData('/private'), (e: ZkError) => e.codeName === 'NOAUTH');
    const mallory = await client({ auth: [{ scheme: 'digest', credential: 'alice:wrong' }] });
    await assert.rejects(mallory.setData('/private', b('x')), (e: ZkError) => e.codeName === 'NOAUTH');
  });

  it('an unknown auth scheme fails the connection with AUTHFAILED instead of retrying', async () => {
    const c = new ZkClient({ connectString: zk.connectString, auth: [{ scheme: 'nosuch', credential: 'x' }], connectTimeoutMs: 5000 });
    await assert.rejects(c.connect(), (e: ZkError) => e.codeName === 'AUTHFAILED');
  });

  it('survives a server restart: same session, waiting requests complete, watches still fire', async () => {
    const c = await client({ operationTimeoutMs: 20_000 });
    const other = await client();
    await c.create('/restart', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    const events: WatchEvent[] = [];
    c.on('watch', (e: WatchEvent) => events.push(e));
    await c.addWatch('/restart');
    const session = c.session.id;
    await zk.stop();
    await waitFor(() => c.state === 'disconnected', 5000, 'the client to notice');
    const pending = c.create('/restart/during', b('x'), OPEN_ACL_UNSAFE);
    await zk.start();
    assert.equal((await pending).path, '/restart/during');
    assert.equal(c.session.id, session, 'the session survived');
    await waitFor(() => other.state === 'connected', 10_000, 'the other client to reconnect');
    await other.setData('/restart/during', b('y'));
    await waitFor(() => events.some((e) => e.type === EventType.NodeDataChanged && e.path === '/restart/during'), 5000, 'a watch event after the restart');
  });

  it('a reconnect of the same session sends a sync (reads after a lost reply then see that write); a first connect does not', async () => {
    const proxy = await startProxy(zk.port);
    try {
      // A first connect sends no sync: the cut set for one would take the create.
      let cutFirst = false;
      void proxy.cutAtRequest(OpCode.sync).then(() => (cutFirst = true));
      const c = await client({ connectString: `127.0.0.1:${proxy.port}`, operationTimeoutMs: 20_000 });
      await c.create('/synced', Buffer.alloc(0), OPEN_ACL_UNSAFE);
      assert.equal(cutFirst, false, 'no sync on the first connection');
      const session = c.session.id;
      proxy.cut();
      proxy.restore();
      // The cut armed above takes the second connection at its sync; the third goes on.
      await waitFor(() => cutFirst, 5000, 'a sync on the reconnect');
      proxy.restore();
      assert.deepEqual((await c.getData('/synced')).data, Buffer.alloc(0));
      assert.equal(c.session.id, session, 'the same session');
    } finally {
      await proxy.close();
    }
  });

  it('an expired session is replaced by a new one and reported, and its ephemeral nodes are gone', async () => {
    const proxy = await startProxy(zk.port);
    try {
      const c = await client({ connectString: `127.0.0.1:${proxy.port}`, sessionTimeoutMs: 2000, operationTimeoutMs: 30_000 });
      const sessions: Array<{ expired: boolean }> = [];
      c.on('session', (s: { expired: boolean }) => sessions.push(s));
      await c.create('/eph', b('held'), OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
      await c.addWatch('/', 1);
      const first = c.session.id;
      proxy.cut();
      await new Promise((r) => setTimeout(r, 5000)); // > session timeout: the server expires it
      proxy.restore();
      await waitFor(() => sessions.length > 0, 15_000, 'a new session');
      assert.deepEqual(sessions[0], { expired: true });
      assert.notEqual(c.session.id, first);
      assert.equal(await c.exists('/eph'), null, 'ephemeral node of the lost session is gone');
      const events: WatchEvent[] = [];
      c.on('watch', (e: WatchEvent) => events.push(e));
      const other = await client();
      await other.create('/after-expiry', Buffer.alloc(0), OPEN_ACL_UNSAFE);
      await waitFor(() => events.some((e) => e.path === '/after-expiry'), 5000, 'the watch to be re-armed on the new session');
    } finally {
      await proxy.close();
    }
  });
});
