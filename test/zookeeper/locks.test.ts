// flock(2) and fcntl(2) locks across two mounts of one ZooKeeper tree (two
// nodes), against a real ZooKeeper: exclusion, blocking and wake-up latency,
// byte ranges, release on unlock, close, process death, mount death and
// session expiry, interruption, and sqlite3 from both nodes on one database.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OpCode } from '../../src/backends/zookeeper/client/protocol.js';
import { parseLockName } from '../../src/backends/zookeeper/locks.js';
import { Agent, F_RDLCK, F_UNLCK, F_WRLCK, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, settledWithin } from '../helpers/lock-agent.js';
import { mountCli, sh, waitFor, type CliMount } from '../helpers/mount.js';
import { py, PY, PY_PRELUDE } from '../helpers/posix.js';
import { startProxy, startTwoNodes, untilHeldReply, type TwoNodes, type ZkProxy, type ZooKeeperServer } from '../helpers/zookeeper.js';

const CONFLICT = ['EAGAIN', 'EACCES'];

describe('ZooKeeper backend, locks across two nodes', () => {
  let zk: ZooKeeperServer;
  let plain: ZkClient;
  let a: CliMount;
  let b: CliMount;
  let seq = 0;
  const agents: Agent[] = [];
  const agent = async () => {
    const ag = await Agent.start();
    agents.push(ag);
    return ag;
  };
  /** A fresh file, as [path on A, path on B]. */
  const fresh = (label: string, content = 'x'.repeat(100)): [string, string] => {
    const name = `${++seq}-${label}`;
    fs.writeFileSync(path.join(a.mnt, name), content);
    return [path.join(a.mnt, name), path.join(b.mnt, name)];
  };
  /** A fresh file opened by one agent on each node: agent and fd on A (pa, da), on B (pb, db), and the paths. */
  const openOnBoth = async (label: string, content?: string) => {
    const [fa, fb] = fresh(label, content);
    const pa = await agent();
    const pb = await agent();
    return { pa, da: await pa.open(fa), pb, db: await pb.open(fb), fa, fb };
  };
  /**
   * Runs `run` with a mount C that reaches ZooKeeper through a proxy of this
   * process (only asynchronous calls on C's mount then), stopped after.
   */
  const withProxiedMount = async (sessionTimeoutS: number, run: (c: CliMount, proxy: ZkProxy) => Promise<void>, extraArgs: string[] = []) => {
    const proxy = await startProxy(zk.port);
    const c = await mountCli(['--backend', 'zookeeper', '--hosts', `127.0.0.1:${proxy.port}`, '--path', '/locks', '--session-timeout', String(sessionTimeoutS), ...extraArgs]);
    try {
      await run(c, proxy);
    } finally {
      proxy.restore();
      await c.stop();
      await proxy.close();
    }
  };
  /** The lock znodes of the volume. */
  const lockZnodes = async (vol = '/locks') => (await plain.getChildren(`${vol}/.swarmvol-locks`)).children;

  let nodes: TwoNodes | undefined;
  before(async () => {
    nodes = await startTwoNodes('/locks');
    ({ zk, plain, a, b } = nodes);
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((ag) => ag.stop()));
  });
  after(() => nodes?.stop());

  it('flock: LOCK_EX on A excludes B (EWOULDBLOCK); B blocked in flock gets the lock within 100 ms of the unlock', async () => {
    const { pa, da, pb, db } = await openOnBoth('flock');
    assert.equal(await pa.flock(da, LOCK_EX), 'OK');
    assert.equal(await pb.flock(db, LOCK_EX | LOCK_NB), 'EAGAIN', 'EWOULDBLOCK on the other node');
    assert.equal(await pb.flock(db, LOCK_SH | LOCK_NB), 'EAGAIN', 'a shared lock is excluded too');
    const waiting = pb.flock(db, LOCK_EX, 15_000);
    assert.equal(await settledWithin(waiting, 300), 'pending', 'the blocking flock waits');
    const t0 = performance.now();
    assert.equal(await pa.flock(da, LOCK_UN), 'OK');
    assert.equal(await waiting, 'OK');
    const ms = performance.now() - t0;
    assert.ok(ms < 100, `acquired ${ms.toFixed(1)} ms after the unlock on the other node`);
    assert.equal(await pa.flock(da, LOCK_EX | LOCK_NB), 'EAGAIN', 'now B holds it');
    assert.equal(await pb.flock(db, LOCK_UN), 'OK');
    assert.equal(await pa.flock(da, LOCK_EX | LOCK_NB), 'OK');
    assert.equal(await pa.flock(da, LOCK_UN), 'OK');
    console.log(`# flock hand-over between nodes: ${ms.toFixed(1)} ms`);
  });

  it('flock: shared locks are shared across nodes; an upgrade waits for the other reader', async () => {
    const { pa, da, pb, db } = await openOnBoth('flock-sh');
    assert.equal(await pa.flock(da, LOCK_SH), 'OK');
    assert.equal(await pb.flock(db, LOCK_SH | LOCK_NB), 'OK');
    assert.equal(await pa.flock(da, LOCK_EX | LOCK_NB), 'EAGAIN', 'A cannot upgrade while B reads');
    const up = pa.flock(da, LOCK_EX, 15_000);
    assert.equal(await settledWithin(up, 200), 'pending');
    assert.equal(await pb.flock(db, LOCK_UN), 'OK');
    assert.equal(await up, 'OK');
    assert.equal(await pb.flock(db, LOCK_SH | LOCK_NB), 'EAGAIN');
  });

  it('flock: released when the holding process is killed, and when its descriptor is closed', async () => {
    const { pa, da, pb, db, fa } = await openOnBoth('flock-kill');
    assert.equal(await pa.flock(da, LOCK_EX), 'OK');
    const waiting = pb.flock(db, LOCK_EX, 15_000);
    assert.equal(await settledWithin(waiting, 200), 'pending');
    pa.kill('SIGKILL');
    assert.equal(await waiting, 'OK', 'the lock of a killed process is released');
    const pc = await agent();
    const dc = await pc.open(fa);
    assert.equal(await pc.flock(dc, LOCK_EX | LOCK_NB), 'EAGAIN');
    assert.equal(await pb.cmd(`close ${db}`), 'OK');
    await waitFor(async () => (await pc.flock(dc, LOCK_EX | LOCK_NB)) === 'OK', 3000, 'lock free after close');
  });

  it('fcntl: byte ranges across nodes: overlapping ranges conflict, adjacent ones do not; F_GETLK reports the other node', async () => {
    const { pa, da, pb, db } = await openOnBoth('ranges');
    assert.equal(await pa.setlk(da, F_WRLCK, 0, 10), 'OK');
    assert.equal(await pb.setlk(db, F_WRLCK, 10, 10), 'OK', 'adjacent ranges [0,10) and [10,20) do not conflict');
    assert.ok(CONFLICT.includes(await pb.setlk(db, F_WRLCK, 5, 10)), 'overlapping write locks conflict');
    assert.ok(CONFLICT.includes(await pb.setlk(db, F_RDLCK, 9, 1)), 'a read lock over a write lock conflicts');
    assert.equal(await pa.setlk(da, F_RDLCK, 100, 100), 'OK');
    assert.equal(await pb.setlk(db, F_RDLCK, 150, 100), 'OK', 'read locks share');
    assert.ok(CONFLICT.includes(await pb.setlk(db, F_WRLCK, 150, 10)), 'a write lock over another node’s read lock conflicts');
    const seen = await pb.getlk(db, F_WRLCK, 0, 5);
    assert.deepEqual(seen, { type: F_WRLCK, start: 0, len: 10, pid: 0 }, 'F_GETLK shows the other node’s lock (pid 0: it is not a local process)');
    assert.equal((await pb.getlk(db, F_WRLCK, 20, 5)).type, F_UNLCK);
    // A blocked F_SETLKW waits for the whole range, across a partial unlock.
    const waiting = pb.setlkw(db, F_WRLCK, 0, 10);
    assert.equal(await settledWithin(waiting, 200), 'pending');
    assert.equal(await pa.setlk(da, F_UNLCK, 0, 5), 'OK');
    assert.equal(await settledWithin(waiting, 200), 'pending', 'still blocked by [5,10)');
    assert.equal(await pa.setlk(da, F_UNLCK, 5, 5), 'OK');
    assert.equal(await waiting, 'OK');
    // A's read lock on [100,200) is still there; close(2) drops all of A's locks on the file.
    assert.ok(CONFLICT.includes(await pb.setlk(db, F_WRLCK, 100, 10)));
    assert.equal(await pa.cmd(`close ${da}`), 'OK');
    assert.equal(await pb.setlk(db, F_WRLCK, 100, 10), 'OK', 'close released the other node’s locks');
    assert.equal(await pb.cmd(`close ${db}`), 'OK');
    await waitFor(async () => (await lockZnodes()).length === 0, 3000, 'no lock znodes left');
  });

  it('fcntl: a downgrade, a split and a merge of one owner’s locks are seen by the other node', async () => {
    const { pa, da, pb, db } = await openOnBoth('split');
    assert.equal(await pa.setlk(da, F_WRLCK, 0, 100), 'OK');
    assert.equal(await pa.setlk(da, F_RDLCK, 40, 20), 'OK', 'downgrade the middle');
    assert.equal(await pb.setlk(db, F_RDLCK, 45, 5), 'OK', 'the downgraded middle is shared');
    assert.ok(CONFLICT.includes(await pb.setlk(db, F_RDLCK, 39, 1)), 'the write parts stay');
    assert.ok(CONFLICT.includes(await pb.setlk(db, F_RDLCK, 60, 1)));
    assert.equal(await pa.setlk(da, F_UNLCK, 0, 40), 'OK');
    assert.equal(await pb.setlk(db, F_WRLCK, 0, 40), 'OK', 'the unlocked head is free');
    assert.equal(await pb.setlk(db, F_UNLCK, 0, 0), 'OK');
    assert.equal(await pb.setlk(db, F_UNLCK, 0, 0), 'OK');
    // A re-locks [0,40) for writing: merged with nothing (the middle is a read lock), B sees all of it.
    assert.equal(await pa.setlk(da, F_WRLCK, 0, 40), 'OK');
    assert.ok(CONFLICT.includes(await pb.setlk(db, F_RDLCK, 0, 1)));
  });

  it('files moved together by one rename keep locks of their own (they all share the czxid of the rename)', async () => {
    const name = `${++seq}-moved`;
    fs.mkdirSync(path.join(a.mnt, `${name}-old`, 'sub'), { recursive: true });
    for (const f of ['x', 'y', 'sub/x']) fs.writeFileSync(path.join(a.mnt, `${name}-old`, f), f);
    fs.renameSync(path.join(a.mnt, `${name}-old`), path.join(a.mnt, name));
    const onB = path.join(b.mnt, name);
    await waitFor(() => fs.existsSync(path.join(onB, 'sub', 'x')), 5000, 'the rename on B');
    const pa = await agent();
    const pb = await agent();
    assert.equal(await pa.flock(await pa.open(path.join(a.mnt, name, 'x')), LOCK_EX), 'OK');
    assert.equal(await pa.setlk(await pa.open(path.join(a.mnt, name, 'y')), F_WRLCK, 0, 10), 'OK');
    assert.equal(await pb.flock(await pb.open(path.join(onB, 'y')), LOCK_EX | LOCK_NB), 'OK', 'y is another file than x');
    assert.equal(await pb.flock(await pb.open(path.join(onB, 'sub', 'x')), LOCK_EX | LOCK_NB), 'OK', 'sub/x is another file than x');
    assert.equal(await pb.setlk(await pb.open(path.join(onB, 'x')), F_WRLCK, 0, 10), 'OK', 'x has no fcntl lock, y has');
    // Each still excludes the other node on its own file.
    assert.equal(await pb.flock(await pb.open(path.join(onB, 'x')), LOCK_EX | LOCK_NB), 'EAGAIN');
    assert.ok(CONFLICT.includes(await pb.setlk(await pb.open(path.join(onB, 'y')), F_WRLCK, 0, 10)));
  });

  it('a blocked F_SETLKW is interrupted by a signal (EINTR) and its request leaves ZooKeeper', async () => {
    const { pa, da, pb, db } = await openOnBoth('intr');
    assert.equal(await pa.setlk(da, F_WRLCK, 0, 0), 'OK');
    const waiting = pb.setlkw(db, F_WRLCK, 0, 0);
    assert.equal(await settledWithin(waiting, 300), 'pending');
    assert.equal((await lockZnodes()).filter((n) => n.startsWith('pw-')).length, 1, 'one request queued in ZooKeeper');
    pb.kill('SIGALRM');
    assert.equal(await waiting, 'EINTR');
    await waitFor(async () => (await lockZnodes()).filter((n) => n.startsWith('pw-')).length === 0, 2000, 'the interrupted request is removed');
    assert.equal(await pa.setlk(da, F_UNLCK, 0, 0), 'OK');
    assert.equal(await pb.setlk(db, F_WRLCK, 0, 0), 'OK');
  });

  it('waiters are served in order across nodes; a read waiter does not overtake an older write waiter', async () => {
    const [fa, fb] = fresh('fifo');
    const pa = await agent();
    const pb = await agent();
    const pc = await agent();
    const da = await pa.open(fa);
    const db = await pb.open(fb);
    const dc = await pc.open(fa);
    assert.equal(await pa.flock(da, LOCK_SH), 'OK');
    const writer = pb.flock(db, LOCK_EX, 15_000);
    assert.equal(await settledWithin(writer, 200), 'pending');
    assert.equal(await pc.flock(dc, LOCK_SH | LOCK_NB), 'EAGAIN', 'a new reader queues behind the waiting writer');
    assert.equal(await pa.flock(da, LOCK_UN), 'OK');
    assert.equal(await writer, 'OK');
  });

  it("a holder's upgrade or extension does not wait for an older waiter that waits for the holder (no deadlock, as on Linux)", async () => {
    const { pa, da, pb, db } = await openOnBoth('upgrade');
    assert.equal(await pa.setlk(da, F_RDLCK, 0, 10), 'OK');
    const writer = pb.setlkw(db, F_WRLCK, 0, 10, 15_000);
    assert.equal(await settledWithin(writer, 300), 'pending');
    assert.equal(await pa.setlk(da, F_RDLCK, 0, 20), 'OK', 'extending the read lock');
    assert.equal(await pa.setlk(da, F_WRLCK, 0, 10), 'OK', 'upgrading it (F_SETLK)');
    assert.equal(await pa.setlk(da, F_RDLCK, 0, 10), 'OK', 'downgrading it');
    assert.equal(await settledWithin(pa.setlkw(da, F_WRLCK, 0, 10, 10_000), 3000), 'OK', 'upgrading it (F_SETLKW), at once');
    assert.equal(await settledWithin(writer, 200), 'pending', 'the writer still waits');
    assert.equal(await pa.setlk(da, F_UNLCK, 0, 0), 'OK');
    assert.equal(await writer, 'OK');
    // flock: a second open of the same process takes a shared lock past the writer that waits for its first.
    const [fa2, fb2] = fresh('flock-second-open');
    const first = await pa.open(fa2);
    assert.equal(await pa.flock(first, LOCK_SH), 'OK');
    const exclusive = pb.flock(await pb.open(fb2), LOCK_EX, 15_000);
    assert.equal(await settledWithin(exclusive, 300), 'pending');
    const second = await pa.open(fa2);
    assert.equal(await pa.flock(second, LOCK_SH | LOCK_NB), 'OK', 'the same process, through another open');
    const pc = await agent();
    assert.equal(await pc.flock(await pc.open(fa2), LOCK_SH | LOCK_NB), 'EAGAIN', 'another process queues behind the writer');
    assert.equal(await pa.flock(first, LOCK_UN), 'OK');
    assert.equal(await settledWithin(exclusive, 300), 'pending', 'the second open still holds a shared lock');
    assert.equal(await pa.flock(second, LOCK_UN), 'OK');
    assert.equal(await exclusive, 'OK');
  });

  it('two open files of one process racing for OFD locks never both get conflicting ones (an upgrade against a new reader)', () => {
    const [fa] = fresh('ofd-race');
    const r = py(
      `
import threading
F_OFD_SETLK = 37
class Flock(ctypes.Structure):
    _fields_ = [('l_type', ctypes.c_short), ('l_whence', ctypes.c_short), ('l_start', ctypes.c_int64), ('l_len', ctypes.c_int64), ('l_pid', ctypes.c_int)]
libc.fcntl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(Flock)]
def lock(fd, typ):
    fl = Flock(typ, 0, 0, 10, 0)
    return cerr(libc.fcntl(fd, F_OFD_SETLK, ctypes.byref(fl)))
both = 0
for i in range(20):
    name = A[0] + '-' + str(i)
    f1 = os.open(name, os.O_RDWR | os.O_CREAT)
    f2 = os.open(name, os.O_RDWR)
    assert lock(f1, 0) == 'OK'
    out = {}
    t1 = threading.Thread(target=lambda: out.__setitem__('up', lock(f1, 1)))
    t2 = threading.Thread(target=lambda: out.__setitem__('rd', lock(f2, 0)))
    t1.start(); t2.start(); t1.join(); t2.join()
    if out['up'] == 'OK' and out['rd'] == 'OK':
        both += 1
    os.close(f1)
    os.close(f2)
print(both)
`,
      [fa],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '0', 'rounds of 20 in which a write lock and a read lock of the same range were both granted');
  });

  it('a lock taken on a file by another process after a rename is seen by other nodes, while a lock from before the rename lives on', async () => {
    const { pa, da, fa } = await openOnBoth('renamed-live');
    assert.equal(await pa.setlk(da, F_WRLCK, 0, 1), 'OK');
    assert.equal(await pa.cmd(`rename ${fa} ${fa}-new`), 'OK');
    const ps = await agent();
    const ds = await ps.open(`${fa}-new`);
    assert.equal(await ps.setlk(ds, F_WRLCK, 10, 10), 'OK');
    const onB = path.join(b.mnt, `${path.basename(fa)}-new`);
    await waitFor(() => fs.existsSync(onB), 5000, 'the rename on B');
    const pt = await agent();
    const dt = await pt.open(onB);
    assert.ok(CONFLICT.includes(await pt.setlk(dt, F_WRLCK, 10, 10)), "B sees the lock taken after the rename");
    assert.equal(await pa.setlk(da, F_UNLCK, 0, 0), 'OK', 'the lock from before the rename is released');
    assert.equal((await lockZnodes()).filter((n) => parseLockName(n)?.pid === pa.pid).length, 0);
    assert.equal(await ps.setlk(ds, F_UNLCK, 0, 0), 'OK');
    assert.equal(await pt.setlk(dt, F_WRLCK, 10, 10), 'OK');
  });

  it('a downgrade overtaken by an unlock of another thread does not make a new lock outside the queue', async () => {
    const { pb, db, fa } = await openOnBoth('downgrade-race');
    // One process, two threads: the downgrade first stores 8 MiB written (slow), the unlock comes meanwhile.
    const program = `
import threading, fcntl, struct
fd = os.open(A[0], os.O_RDWR)
def lk(typ):
    try:
        fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack('hhqqi', typ, 0, 0, 10, 0))
        return 'OK'
    except OSError as e:
        return ename(e.errno)
assert lk(fcntl.F_WRLCK) == 'OK'
print('held %d' % os.getpid())
sys.stdin.readline()
os.pwrite(fd, b'x' * (8 << 20), 0)
out = {}
t1 = threading.Thread(target=lambda: out.__setitem__('down', lk(fcntl.F_RDLCK)))
t2 = threading.Thread(target=lambda: (time.sleep(0.05), out.__setitem__('un', lk(fcntl.F_UNLCK))))
t1.start(); t2.start(); t1.join(); t2.join()
print(out['down'], out['un'])
sys.stdin.readline()
`;
    const script = spawn(PY, ['-u', '-c', PY_PRELUDE + program, fa], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: script.stdout })[Symbol.asyncIterator]();
    const next = async () => String((await lines.next()).value);
    try {
      const pid = Number(/^held (\d+)$/.exec(await next())?.[1]);
      const waiting = pb.setlkw(db, F_WRLCK, 0, 10, 30_000);
      assert.equal(await settledWithin(waiting, 300), 'pending');
      script.stdin.write('go\n');
      const [down, un] = (await next()).split(' ');
      assert.equal(un, 'OK');
      assert.equal(await settledWithin(waiting, 5000), 'OK', 'B gets the lock the unlock freed');
      const holds = (await lockZnodes()).map(parseLockName).filter((e) => e?.state === 'hold' && e.start === 0n);
      assert.ok(!holds.some((e) => e!.pid === pid && e!.type === F_RDLCK), `A's downgrade (${down}) made a read lock beside B's write lock`);
      assert.ok(CONFLICT.includes(down!), `the downgrade, overtaken, is a new lock that B's refuses: ${down}`);
    } finally {
      script.stdin.end('end\n');
      await new Promise((r) => script.once('exit', r));
    }
    assert.equal(await pb.setlk(db, F_UNLCK, 0, 0), 'OK');
  });

  it('two owners on one node exclude each other on a file renamed while one held a lock', async () => {
    const { pa, da, fa } = await openOnBoth('renamed-two-owners');
    assert.equal(await pa.setlk(da, F_WRLCK, 0, 10), 'OK');
    assert.equal(await pa.cmd(`rename ${fa} ${fa}-new`), 'OK');
    const pc = await agent();
    const dc = await pc.open(`${fa}-new`);
    assert.equal((await pc.getlk(dc, F_WRLCK, 0, 10)).pid, pa.pid, 'F_GETLK shows the lock from before the rename');
    assert.ok(CONFLICT.includes(await pc.setlk(dc, F_WRLCK, 0, 10)), 'and F_SETLK is refused by it');
    assert.equal(await pa.setlk(da, F_UNLCK, 0, 0), 'OK');
    assert.equal(await pc.setlk(dc, F_WRLCK, 0, 10), 'OK');
  });

  it('on a file renamed while locked, the holder upgrades past a waiter of the new name that waits for it (no deadlock across the two keys)', async () => {
    const { pa, da, fa } = await openOnBoth('renamed-upgrade');
    assert.equal(await pa.setlk(da, F_RDLCK, 0, 10), 'OK');
    assert.equal(await pa.cmd(`rename ${fa} ${fa}-new`), 'OK');
    const pc = await agent();
    const dc = await pc.open(`${fa}-new`);
    const waiting = pc.setlkw(dc, F_WRLCK, 0, 10, 20_000);
    assert.equal(await settledWithin(waiting, 300), 'pending');
    assert.equal(await settledWithin(pa.setlkw(da, F_WRLCK, 0, 10, 15_000), 3000), 'OK', 'the upgrade is granted at once');
    assert.equal(await settledWithin(waiting, 200), 'pending');
    assert.equal(await pa.setlk(da, F_UNLCK, 0, 0), 'OK');
    assert.equal(await waiting, 'OK');
  });

  it('a lock whose release a cut connection failed is released once the connection is back (the session kept)', async () => {
    await withProxiedMount(
      30,
      async (c, proxy) => {
        const name = `${++seq}-release-failed`;
        await fs.promises.writeFile(path.join(c.mnt, name), 'x');
        const pc = await agent();
        const pb = await agent();
        const dc = await pc.open(path.join(c.mnt, name));
        const db = await pb.open(path.join(b.mnt, name));
        assert.equal(await pc.setlk(dc, F_WRLCK, 0, 10), 'OK');
        proxy.cut();
        await new Promise((r) => setTimeout(r, 500));
        // The release cannot reach ZooKeeper within --op-timeout: the close does not fail for it.
        assert.equal(await pc.cmd(`close ${dc}`, 15_000), 'OK');
        assert.ok(CONFLICT.includes(await pb.setlk(db, F_WRLCK, 0, 10)), "C's lock znode is still there (its session lives)");
        proxy.restore();
        await waitFor(async () => (await pb.setlk(db, F_WRLCK, 0, 10)) === 'OK', 10_000, "the lock of C's closed file released once C is back");
        assert.equal(await pb.setlk(db, F_UNLCK, 0, 0), 'OK');
        await new Promise((r) => setTimeout(r, 500));
        assert.doesNotMatch(c.output(), /locks re-taken/);
      },
      ['--op-timeout', '2'],
    );
  });

  it('an OFD lock (F_OFD_SETLK) goes with the last close of its open file', async () => {
    const { pa, da, pb, db } = await openOnBoth('ofd');
    assert.equal(await pa.ofdSetlk(da, F_WRLCK, 0, 10), 'OK');
    assert.ok(CONFLICT.includes(await pb.setlk(db, F_WRLCK, 0, 10)));
    assert.equal(await pa.cmd(`close ${da}`), 'OK');
    await waitFor(async () => (await pb.setlk(db, F_WRLCK, 0, 10)) === 'OK', 3000, 'the OFD lock released by the close');
    assert.equal((await lockZnodes()).filter((n) => parseLockName(n)?.pid === pa.pid).length, 0, 'nothing of it left in ZooKeeper');
  });

  it('a lock taken before a rename of its file is released by its unlock or close after the rename', async () => {
    const { pa, da, fa } = await openOnBoth('renamed-flock');
    assert.equal(await pa.flock(da, LOCK_EX), 'OK');
    assert.equal(await pa.cmd(`rename ${fa} ${fa}-moved`), 'OK');
    assert.equal(await pa.flock(da, LOCK_UN), 'OK');
    const { pa: pc, da: dc, fa: fc } = await openOnBoth('renamed-fcntl');
    assert.equal(await pc.setlk(dc, F_WRLCK, 0, 10), 'OK');
    assert.equal(await pc.cmd(`rename ${fc} ${fc}-moved`), 'OK');
    assert.equal(await pc.setlk(dc, F_RDLCK, 0, 10), 'OK', 'a downgrade after the rename');
    assert.equal(await pc.setlk(dc, F_UNLCK, 0, 5), 'OK');
    assert.equal(await pc.cmd(`close ${dc}`), 'OK');
    const left = async () => (await lockZnodes()).filter((n) => [pa.pid, pc.pid].includes(parseLockName(n)?.pid ?? -1));
    await waitFor(async () => (await left()).length === 0, 3000, `no lock left of either: ${(await left()).join(' ')}`);
  });

  it("a waiter whose session expires while it waits is granted the lock released meanwhile, once it is back", async () => {
    await withProxiedMount(2, async (c, proxy) => {
      const [fa] = fresh('waiter-expired');
      const pa = await agent();
      const pc = await agent();
      const da = await pa.open(fa);
      const dc = await pc.open(path.join(c.mnt, path.basename(fa)));
      assert.equal(await pa.setlk(da, F_WRLCK, 0, 0), 'OK');
      const waiting = pc.setlkw(dc, F_WRLCK, 0, 0, 30_000);
      assert.equal(await settledWithin(waiting, 300), 'pending');
      const requestOfC = async () => (await lockZnodes()).some((n) => parseLockName(n)?.state === 'want' && parseLockName(n)?.pid === pc.pid);
      assert.ok(await requestOfC(), "C's request is queued");
      proxy.cut();
      await waitFor(async () => !(await requestOfC()), 10_000, "C's session to expire (its request gone)");
      assert.equal(await pa.setlk(da, F_UNLCK, 0, 0), 'OK');
      proxy.restore();
      assert.equal(await settledWithin(waiting, 8000), 'OK', 'granted once C is back on a new session');
      assert.ok(CONFLICT.includes(await pa.setlk(da, F_WRLCK, 0, 0)), 'C holds it');
      assert.equal(await pc.setlk(dc, F_UNLCK, 0, 0), 'OK');
    });
  });

  it('a lock released by a close while its session expires stays released (it is not taken again for nobody)', async () => {
    await withProxiedMount(2, async (c, proxy) => {
      const name = `${++seq}-released-in-expiry`;
      await fs.promises.writeFile(path.join(c.mnt, name), 'x');
      const pc = await agent();
      const pb = await agent();
      const dc = await pc.open(path.join(c.mnt, name));
      const db = await pb.open(path.join(b.mnt, name));
      assert.equal(await pc.setlk(dc, F_WRLCK, 0, 10), 'OK');
      const ofC = async () => (await lockZnodes()).filter((n) => parseLockName(n)?.pid === pc.pid);
      const held = await ofC();
      assert.equal(held.length, 1);
      proxy.cut();
      await waitFor(async () => (await ofC()).length === 0, 10_000, "C's session to expire (its lock gone)");
      await new Promise((r) => setTimeout(r, 1000)); // C knows it is cut off by now: its release waits to be sent
      const closed = pc.cmd(`close ${dc}`, 30_000);
      await new Promise((r) => setTimeout(r, 300));
      proxy.restore();
      assert.equal(await closed, 'OK');
      await waitFor(async () => (await pb.setlk(db, F_WRLCK, 0, 10)) === 'OK', 5000, 'B takes the lock C released');
      await waitFor(() => /ZooKeeper session expired/.test(c.output()), 5000, 'C on its new session');
      await new Promise((r) => setTimeout(r, 500));
      assert.doesNotMatch(c.output(), /locks re-taken|LOCK LOST/, 'a released lock is neither taken again nor reported lost');
      assert.deepEqual(await ofC(), []);
      assert.equal(await pb.setlk(db, F_UNLCK, 0, 0), 'OK');
    });
  });

  it('a downgrade sent while the session expires leaves no lock behind once released', async () => {
    await withProxiedMount(2, async (c, proxy) => {
      const name = `${++seq}-downgrade-in-expiry`;
      await fs.promises.writeFile(path.join(c.mnt, name), 'x');
      const pc = await agent();
      const pb = await agent();
      const dc = await pc.open(path.join(c.mnt, name));
      const db = await pb.open(path.join(b.mnt, name));
      assert.equal(await pc.setlk(dc, F_WRLCK, 0, 10), 'OK');
      const ofC = async () => (await lockZnodes()).filter((n) => parseLockName(n)?.pid === pc.pid);
      proxy.cut();
      await waitFor(async () => (await ofC()).length === 0, 10_000, "C's session to expire (its lock gone)");
      await new Promise((r) => setTimeout(r, 1000)); // C knows it is cut off: the downgrade waits to be sent
      const downgraded = pc.setlk(dc, F_RDLCK, 0, 10);
      await new Promise((r) => setTimeout(r, 300));
      proxy.restore();
      assert.equal(await downgraded, 'OK');
      await waitFor(() => /locks re-taken|LOCK LOST/.test(c.output()), 10_000, "C's locks taken again");
      assert.ok(CONFLICT.includes(await pb.setlk(db, F_WRLCK, 0, 10)), 'C holds its read lock again');
      assert.equal(await pc.cmd(`close ${dc}`), 'OK');
      await waitFor(async () => (await pb.setlk(db, F_WRLCK, 0, 10)) === 'OK', 5000, 'the lock free once C closed');
      assert.deepEqual(await ofC(), []);
      assert.equal(await pb.setlk(db, F_UNLCK, 0, 0), 'OK');
    });
  });

  it("a lock request made on the holder's node while its session expires waits for the holder, who keeps the lock", async () => {
    await withProxiedMount(2, async (c, proxy) => {
      const name = `${++seq}-local-waiter`;
      await fs.promises.writeFile(path.join(c.mnt, name), 'x');
      const holder = await agent();
      const waiter = await agent();
      const dh = await holder.open(path.join(c.mnt, name));
      const dw = await waiter.open(path.join(c.mnt, name));
      assert.equal(await holder.setlk(dh, F_WRLCK, 0, 0), 'OK');
      proxy.cut();
      await waitFor(async () => !(await lockZnodes()).some((n) => parseLockName(n)?.pid === holder.pid), 10_000, "C's session to expire");
      await new Promise((r) => setTimeout(r, 1000));
      const waiting = waiter.setlkw(dw, F_WRLCK, 0, 0, 30_000);
      await new Promise((r) => setTimeout(r, 300));
      proxy.restore();
      await waitFor(() => /locks re-taken|LOCK LOST/.test(c.output()), 10_000, "C's locks taken again");
      assert.doesNotMatch(c.output(), /LOCK LOST/);
      assert.equal(await settledWithin(waiting, 500), 'pending', 'the waiter waits for the holder');
      assert.equal(await holder.setlk(dh, F_UNLCK, 0, 0), 'OK');
      assert.equal(await settledWithin(waiting, 5000), 'OK');
      assert.equal(await waiter.setlk(dw, F_UNLCK, 0, 0), 'OK');
    });
  });

  it('locks held by a mount whose ZooKeeper session expires are released; the mount logs that it lost them', async () => {
    await withProxiedMount(2, async (c, proxy) => {
      const name = `${++seq}-expiry`;
      await fs.promises.writeFile(path.join(c.mnt, name), 'x');
      const pc = await agent();
      const pb = await agent();
      const dc = await pc.open(path.join(c.mnt, name));
      const db = await pb.open(path.join(b.mnt, name));
      assert.equal(await pc.setlk(dc, F_WRLCK, 0, 0), 'OK');
      assert.ok(CONFLICT.includes(await pb.setlk(db, F_WRLCK, 0, 0)));
      const waiting = pb.setlkw(db, F_WRLCK, 0, 0, 30_000);
      const t0 = performance.now();
      proxy.cut();
      assert.equal(await waiting, 'OK', 'the expired session’s lock is released by ZooKeeper');
      const ms = performance.now() - t0;
      console.log(`# lock of a cut-off node released after ${ms.toFixed(0)} ms (session timeout 2 s)`);
      assert.ok(ms < 10_000, `released within the session timeout plus margin (${ms.toFixed(0)} ms)`);
      proxy.restore();
      await waitFor(() => /LOCK LOST/.test(c.output()), 15_000, 'the mount reports the lost lock');
      assert.equal(await pb.setlk(db, F_UNLCK, 0, 0), 'OK');
    });
  });

  for (const lost of [false, true]) {
    it(`a lock held by a mount whose session expires while no other node wants it is taken again${lost ? ', its reply lost to a cut connection' : ''}`, async () => {
      await withProxiedMount(2, async (c, proxy) => {
        const name = `${++seq}-retaken`;
        await fs.promises.writeFile(path.join(c.mnt, name), 'x');
        const pc = await agent();
        const pb = await agent();
        const dc = await pc.open(path.join(c.mnt, name));
        const db = await pb.open(path.join(b.mnt, name));
        const before = new Set(await lockZnodes().catch(() => [])); // none yet when this test runs alone
        assert.equal(await pc.setlk(dc, F_WRLCK, 0, 0), 'OK');
        const ours = (await lockZnodes()).filter((n) => !before.has(n));
        assert.equal(ours.length, 1, "C's lock, one znode");
        proxy.cut();
        await waitFor(async () => !(await lockZnodes()).includes(ours[0]!), 10_000, "C's session to expire (its lock znode gone)");
        // C comes back on a new session and takes the lock again; with `lost`, that transaction is applied and its reply lost.
        if (lost) proxy.holdFromReplyTo(OpCode.multi);
        proxy.restore();
        if (lost) {
          await untilHeldReply(proxy, 'the lock taken again');
          proxy.cut();
          proxy.release();
          proxy.restore();
        }
        await waitFor(() => /locks re-taken/.test(c.output()), 10_000, `C to take its lock again\n${c.output()}`);
        assert.doesNotMatch(c.output(), /LOCK LOST|could not re-take/);
        assert.ok(CONFLICT.includes(await pb.setlk(db, F_WRLCK, 0, 0)), 'C holds the lock again');
        assert.equal(await pc.setlk(dc, F_UNLCK, 0, 0), 'OK');
        assert.equal(await pb.setlk(db, F_WRLCK, 0, 0), 'OK', 'released by C, the lock is B\'s to take');
        assert.equal(await pb.setlk(db, F_UNLCK, 0, 0), 'OK');
      });
    });
  }

  it('a lock released while the waiting node was disconnected (its session kept) is granted once it reconnects', async () => {
    await withProxiedMount(30, async (c, proxy) => {
      const [fa] = fresh('reconnect');
      const pa = await agent();
      const pc = await agent();
      const da = await pa.open(fa);
      const dc = await pc.open(path.join(c.mnt, path.basename(fa)));
      assert.equal(await pa.setlk(da, F_WRLCK, 0, 0), 'OK');
      const waiting = pc.setlkw(dc, F_WRLCK, 0, 0, 20_000);
      assert.equal(await settledWithin(waiting, 300), 'pending');
      proxy.cut();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await pa.setlk(da, F_UNLCK, 0, 0), 'OK'); // ZooKeeper reports it to nobody on C's side
      await new Promise((r) => setTimeout(r, 300));
      proxy.restore();
      const t0 = performance.now();
      assert.equal(await settledWithin(waiting, 5000), 'OK', 'the waiter on C gets the lock released during its outage');
      console.log(`# lock released during the waiter's outage granted ${(performance.now() - t0).toFixed(0)} ms after its connection came back`);
      assert.ok(CONFLICT.includes(await pa.setlk(da, F_WRLCK, 0, 0)), 'C holds it now');
      assert.equal(await pc.setlk(dc, F_UNLCK, 0, 0), 'OK');
    });
  });

  it('a refused lock request whose clean-up a cut connection interrupts leaves no request behind to hold up later ones', async () => {
    await withProxiedMount(30, async (c, proxy) => {
      const [fa] = fresh('refused');
      const pa = await agent();
      const pa2 = await agent();
      const pc = await agent();
      const da = await pa.open(fa);
      const da2 = await pa2.open(fa);
      const dc = await pc.open(path.join(c.mnt, path.basename(fa)));
      assert.equal(await pa.setlk(da, F_WRLCK, 0, 0), 'OK');
      // C queues a request, finds A's lock, and withdraws its request: the delete is lost with the connection.
      const cut = proxy.cutAtRequest(OpCode.delete);
      const refused = pc.setlk(dc, F_WRLCK, 0, 0);
      await cut;
      await new Promise((r) => setTimeout(r, 200));
      proxy.restore();
      assert.ok(CONFLICT.includes(await refused), 'C is refused: A holds the lock');
      assert.equal(await pa.setlk(da, F_UNLCK, 0, 0), 'OK');
      assert.equal(await pa2.setlk(da2, F_WRLCK, 0, 0), 'OK', `another process gets the released lock, not held up by C's request\n${c.output()}`);
      assert.equal(await pa2.setlk(da2, F_UNLCK, 0, 0), 'OK');
      assert.deepEqual(
        (await lockZnodes()).filter((n) => parseLockName(n)?.state === 'want'),
        [],
        'no lock request left',
      );
    });
  });

  it('locks of a mount process killed with -9 are released when its session times out', async () => {
    const c = await mountCli(['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', '/locks', '--session-timeout', '2']);
    const name = `${++seq}-killed`;
    fs.writeFileSync(path.join(c.mnt, name), 'x');
    const pc = await agent();
    const pb = await agent();
    const dc = await pc.open(path.join(c.mnt, name));
    const db = await pb.open(path.join(b.mnt, name));
    assert.equal(await pc.flock(dc, LOCK_EX), 'OK');
    const waiting = pb.flock(db, LOCK_EX, 30_000);
    const t0 = performance.now();
    c.child.kill('SIGKILL');
    assert.equal(await waiting, 'OK');
    console.log(`# lock of a killed mount released after ${(performance.now() - t0).toFixed(0)} ms (session timeout 2 s)`);
    pc.kill('SIGKILL');
    await c.stop();
  });

  it('sqlite3 run concurrently from both nodes on one database: no lost update, integrity_check ok', async () => {
    const dir = `${++seq}-sqlite`;
    fs.mkdirSync(path.join(a.mnt, dir));
    const dbA = path.join(a.mnt, dir, 'app.db');
    const dbB = path.join(b.mnt, dir, 'app.db');
    const init = await sh(`sqlite3 '${dbA}' "CREATE TABLE counter(n INTEGER); INSERT INTO counter VALUES(0); CREATE TABLE log(node TEXT, i INTEGER, pad TEXT);"`);
    assert.equal(init.code, 0, init.stderr);
    const rounds = 25;
    // Each transaction reads the counter and writes it back plus a row: a stale read on either node would lose an update.
    const loop = (db: string, node: string) =>
      sh(
        `for i in $(seq 1 ${rounds}); do sqlite3 -cmd '.timeout 30000' '${db}' "BEGIN IMMEDIATE; UPDATE counter SET n = n + 1; INSERT INTO log VALUES('${node}', $i, hex(randomblob(300))); COMMIT;" || exit 1; done`,
        { timeoutMs: 120_000 },
      );
    const t0 = performance.now();
    const [ra, rb] = await Promise.all([loop(dbA, 'A'), loop(dbB, 'B')]);
    const ms = performance.now() - t0;
    assert.equal(ra.code, 0, `node A: ${ra.stderr}`);
    assert.equal(rb.code, 0, `node B: ${rb.stderr}`);
    for (const db of [dbA, dbB]) {
      const check = await sh(`sqlite3 '${db}' "PRAGMA integrity_check; SELECT n FROM counter; SELECT count(*) FROM log; SELECT count(DISTINCT node || i) FROM log;"`);
      assert.equal(check.code, 0, check.stderr);
      assert.deepEqual(check.stdout.trim().split('\n'), ['ok', String(2 * rounds), String(2 * rounds), String(2 * rounds)], `on ${db === dbA ? 'A' : 'B'}`);
    }
    console.log(`# sqlite3: ${2 * rounds} concurrent transactions from two nodes in ${ms.toFixed(0)} ms, integrity ok, no lost update`);
  });

  it('a descriptor kept open reads what another node stored after it took the lock', async () => {
    const { pa, da, pb, db, fa, fb } = await openOnBoth('reread', 'version-1');
    assert.equal(fs.readFileSync(fb, 'utf8'), 'version-1');
    assert.equal(await pa.flock(da, LOCK_EX), 'OK');
    const w = await sh(`printf version-2-longer > '${fa}'`);
    assert.equal(w.code, 0);
    const got = pb.flock(db, LOCK_EX, 15_000);
    assert.equal(await pa.flock(da, LOCK_UN), 'OK');
    assert.equal(await got, 'OK');
    assert.equal(await pb.cmd(`read ${db}`), 'version-2-longer', 'the open descriptor on B reads the new content');
  });
});
