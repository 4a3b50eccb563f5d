// The lock service (src/backends/zookeeper/locks.ts) through connection
// faults that a real server and proxy cannot produce on demand: a reply lost
// with the request not applied, a listing answered before a create sent
// again, a change whose outcome cannot be read back, requests queued across a
// session expiry. The fake keeps znodes per session as ZooKeeper does.

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { ErrorCode, ZkError, type MultiOp } from '../../src/backends/zookeeper/client/protocol.js';
import { ZkLocks } from '../../src/backends/zookeeper/locks.js';
import { F_RDLCK, F_UNLCK, F_WRLCK } from '../../src/fuse/kernel.js';
import type { LockIn, RequestContext } from '../../src/fuse/types.js';

const FILE = '5.abcdef0123456789';
const OTHER_NODES_WRITE = `ph-${FILE}-w-0-9-aaaaaaaaaaaa.1-7-`;
const ctx = { onInterrupt: () => () => undefined } as unknown as RequestContext;
const hooks = { beforeRelease: async () => undefined, afterAcquire: async () => undefined };
const lock = (owner: bigint, type: number, start: bigint, end: bigint): LockIn => ({ fh: 0, owner, flock: false, lock: { type, start, end, pid: 42 } });
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

/** A ZooKeeper of one lock directory: znode name → the session that made it. */
class FakeZk extends EventEmitter {
  state = 'connected';
  readonly opts = { operationTimeoutMs: 200 };
  nodes = new Map<string, number>();
  session = 1;
  private seq = 0;
  /** Set: multis wait here until reconnect() (sent when the connection is back, before the session event). */
  held: Array<() => void> | undefined;
  /** Hooks to fail a call the test picks. */
  failCreate: ((path: string) => boolean) | undefined;
  failMulti: ((ops: MultiOp[]) => 'drop' | 'lose reply' | undefined) | undefined;
  failList = false;
  /** After a multi was applied: whether its reply is lost. */
  lostReply: ((ops: MultiOp[]) => boolean) | undefined;

  private name(path: string): string {
    return path.slice(path.lastIndexOf('/') + 1);
  }

  create(path: string, _data: Buffer, _acl: unknown, mode: number): Promise<{ path: string }> {
    if (this.failCreate?.(path)) return Promise.reject(new ZkError(ErrorCode.CONNECTIONLOSS, path));
    let name = this.name(path);
    if (name === '.swarmvol-locks') return Promise.reject(new ZkError(ErrorCode.NODEEXISTS, path));
    if (mode === 2 || mode === 3) name += String(this.seq++).padStart(10, '0');
    if (this.nodes.has(name)) return Promise.reject(new ZkError(ErrorCode.NODEEXISTS, path));
    this.nodes.set(name, this.session);
    return Promise.resolve({ path: `/v/.swarmvol-locks/${name}` });
  }

  getChildren(): Promise<{ children: string[] }> {
    if (this.failList) return Promise.reject(new ZkError(ErrorCode.CONNECTIONLOSS));
    return Promise.resolve({ children: [...this.nodes.keys()] });
  }

  delete(path: string): Promise<void> {
    if (this.failList) return Promise.reject(new ZkError(ErrorCode.CONNECTIONLOSS, path));
    if (!this.nodes.delete(this.name(path))) return Promise.reject(new ZkError(ErrorCode.NONODE, path));
    return Promise.resolve();
  }

  multi(ops: MultiOp[]): Promise<unknown[]> {
    const run = (): Promise<unknown[]> => {
      if (this.failMulti?.(ops) === 'drop') return Promise.reject(new ZkError(ErrorCode.CONNECTIONLOSS));
      const next = new Map(this.nodes);
      for (const o of ops) {
        const n = this.name(o.path);
        if (o.op === 'create') {
          if (next.has(n)) return Promise.reject(new ZkError(ErrorCode.NODEEXISTS, o.path));
          next.set(n, this.session);
        } else if (!next.has(n)) return Promise.reject(new ZkError(ErrorCode.NONODE, o.path));
        else if (o.op === 'delete') next.delete(n);
      }
      this.nodes = next;
      if (this.lostReply?.(ops)) return Promise.reject(new ZkError(ErrorCode.CONNECTIONLOSS));
      return Promise.resolve([]);
    };
    if (!this.held) return run();
    return new Promise((resolve, reject) => this.held!.push(() => void run().then(resolve, reject)));
  }

  /** The session expires while the connection is down: its ephemeral znodes go. */
  expire(): void {
    for (const [n, s] of this.nodes) if (s === this.session) this.nodes.delete(n);
    this.session++;
  }

  /** Back on a new session: queued requests go out first, then the session event (as the client does). */
  reconnect(expired: boolean): void {
    this.state = 'connected';
    const queued = this.held ?? [];
    this.held = undefined;
    for (const send of queued) send();
    this.emit('session', { expired });
  }

  ours(): string[] {
    return [...this.nodes.keys()].filter((n) => n !== OTHER_NODES_WRITE);
  }
}

/** Lines the lock service logs while `run` runs. */
async function logged(run: () => Promise<void>): Promise<string> {
  const write = process.stderr.write.bind(process.stderr);
  let out = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await run();
  } finally {
    process.stderr.write = write;
  }
  return out;
}

describe('ZooKeeper locks through connection faults (a fake ZooKeeper)', () => {
  it('a want whose create a lost connection made again, answered after the listing sent before it, is not left behind', async () => {
    const zk = new FakeZk();
    const locks = new ZkLocks(zk as unknown as ZkClient, '/v/.swarmvol-locks', []);
    zk.nodes.set(OTHER_NODES_WRITE, 99); // the lock is another node's: the request waits
    let first = true;
    zk.failCreate = (path) => path.includes('/pw-') && first && !(first = false);
    const waiting = locks.set(ctx, FILE, lock(1n, F_WRLCK, 0n, 9n), true, hooks);
    await tick();
    zk.nodes.delete(OTHER_NODES_WRITE);
    locks.notify();
    await waiting;
    await locks.set(ctx, FILE, lock(1n, F_UNLCK, 0n, 9n), false, hooks);
    await tick();
    assert.deepEqual(zk.ours(), [], 'no want or hold of ours left');
    await locks.set(ctx, FILE, lock(2n, F_WRLCK, 0n, 9n), false, hooks); // another owner is not held up
  });

  it('a grant whose outcome cannot be read back is given up: its hold is deleted once ZooKeeper answers, and others get the lock', async () => {
    const zk = new FakeZk();
    const locks = new ZkLocks(zk as unknown as ZkClient, '/v/.swarmvol-locks', []);
    const log = await logged(async () => {
      zk.lostReply = (ops) => {
        if (!ops.some((o) => o.op === 'create')) return false;
        zk.failList = true; // and the connection stays down past the operation timeout
        return true;
      };
      await assert.rejects(locks.set(ctx, FILE, lock(1n, F_WRLCK, 0n, 9n), false, hooks), { code: 'ENOLCK' });
    });
    assert.equal(zk.ours().filter((n) => n.startsWith('ph-')).length, 1, 'the grant was applied');
    assert.doesNotMatch(log, /LOCK LOST/, 'nothing was held before');
    zk.lostReply = undefined;
    zk.failList = false;
    zk.reconnect(false);
    await tick(50);
    assert.deepEqual(zk.ours(), [], 'the hold nobody knew of is deleted');
    await locks.set(ctx, FILE, lock(2n, F_WRLCK, 0n, 9n), false, hooks);
  });

  it('a grant sent again after lost connections, applied the last time with its reply lost, is known as held (read back before giving up)', async () => {
    const zk = new FakeZk();
    const locks = new ZkLocks(zk as unknown as ZkClient, '/v/.swarmvol-locks', []);
    let sends = 0;
    zk.failMulti = (ops) => (ops.some((o) => o.op === 'create') && ++sends <= 4 ? 'drop' : undefined);
    zk.lostReply = (ops) => ops.some((o) => o.op === 'create') && sends === 5;
    await locks.set(ctx, FILE, lock(1n, F_WRLCK, 0n, 9n), false, hooks);
    assert.equal(sends, 5);
    assert.equal(zk.ours().filter((n) => n.startsWith('ph-')).length, 1);
    await locks.set(ctx, FILE, lock(1n, F_UNLCK, 0n, 9n), false, hooks);
    assert.deepEqual(zk.ours(), [], 'known, so released');
  });

  it('a release whose outcome cannot be read back does not fail and reports no lost lock; its hold goes once ZooKeeper answers', async () => {
    const zk = new FakeZk();
    const locks = new ZkLocks(zk as unknown as ZkClient, '/v/.swarmvol-locks', []);
    await locks.set(ctx, FILE, lock(1n, F_WRLCK, 0n, 9n), false, hooks);
    const log = await logged(async () => {
      zk.failMulti = () => 'drop';
      zk.failList = true;
      await locks.release(FILE, 1n, false);
    });
    assert.doesNotMatch(log, /LOCK LOST/);
    zk.failMulti = undefined;
    zk.failList = false;
    zk.reconnect(false);
    await tick(50);
    assert.deepEqual(zk.ours(), []);
  });

  it('unlocks of parts queued across a session expiry make no lock outside the queue; a lock taken meanwhile elsewhere is reported lost', async () => {
    const zk = new FakeZk();
    const locks = new ZkLocks(zk as unknown as ZkClient, '/v/.swarmvol-locks', []);
    await locks.set(ctx, FILE, lock(1n, F_RDLCK, 0n, 9n), false, hooks);
    await locks.set(ctx, FILE, lock(1n, F_RDLCK, 100n, 109n), false, hooks);
    const log = await logged(async () => {
      zk.state = 'disconnected';
      zk.held = [];
      zk.expire();
      zk.nodes.set(OTHER_NODES_WRITE, 99); // another node's write lock, taken during the outage
      const first = locks.set(ctx, FILE, lock(1n, F_UNLCK, 100n, 109n), false, hooks);
      await tick(5);
      const second = locks.set(ctx, FILE, lock(1n, F_UNLCK, 5n, 5n), false, hooks); // behind it, in the owner's turn
      await tick(5);
      zk.reconnect(true);
      await Promise.allSettled([first, second]);
      await tick(50);
    });
    assert.deepEqual(zk.ours(), [], 'no read lock of ours beside the other node\'s write lock');
    assert.match(log, /LOCK LOST/);
  });

  it('a lock released while its session expired is not taken again; one still held, that nobody took, is', async () => {
    const zk = new FakeZk();
    const locks = new ZkLocks(zk as unknown as ZkClient, '/v/.swarmvol-locks', []);
    await locks.set(ctx, FILE, lock(1n, F_WRLCK, 0n, 9n), false, hooks);
    await locks.set(ctx, FILE, lock(2n, F_WRLCK, 20n, 29n), false, hooks);
    const log = await logged(async () => {
      zk.state = 'disconnected';
      zk.held = [];
      zk.expire();
      const released = locks.release(FILE, 1n, false);
      await tick(5);
      zk.reconnect(true);
      await released;
      await tick(50);
    });
    assert.deepEqual(zk.ours().map((n) => n.replace(/-[0-9a-f]{12}\./, '-M.')), [`ph-${FILE}-w-20-29-M.2-42-`], "only owner 2's lock, taken again");
    assert.match(log, /locks re-taken after a ZooKeeper session expiry/);
    assert.doesNotMatch(log, /LOCK LOST/);
  });
});
