// flock(2) and fcntl(2) byte-range locks between processes, and extended
// attributes, on a real mount. Locks are driven through python3 agents
// (test/helpers/lock-agent.ts).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { mountCli, sh, type CliMount } from '../helpers/mount.js';
import { Agent, F_RDLCK, F_UNLCK, F_WRLCK, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, settledWithin } from '../helpers/lock-agent.js';
import { NOBODY, py, pyTry } from '../helpers/posix.js';

const CONFLICT = ['EAGAIN', 'EACCES'];

describe('locks and xattrs (CLI mount, memory backend)', () => {
  let m: CliMount;
  let n = 0;
  const agents: Agent[] = [];
  const agent = async () => {
    const a = await Agent.start();
    agents.push(a);
    return a;
  };
  const freshFile = (label: string, content = 'x'.repeat(1000)): string => {
    const f = path.join(m.mnt, `${label}-${++n}`);
    fs.writeFileSync(f, content);
    return f;
  };

  before(async () => {
    m = await mountCli();
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop()));
  });
  after(async () => {
    const code = await m?.stop();
    assert.equal(code, 0, m?.output());
  });

  describe('flock(2)', () => {
    /** Starts `flock [opts] FILE sh -c 'echo locked; sleep S'` and waits until it holds the lock. */
    async function holder(file: string, opts: string, seconds: number) {
      const child = spawn('flock', [...opts.split(' ').filter(Boolean), file, 'sh', '-c', `echo locked; sleep ${seconds}`], { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('holder did not get the lock')), 10_000);
        child.stdout.on('data', () => {
          clearTimeout(t);
          resolve();
        });
      });
      return { child, exited };
    }

    it('flock -n fails (exit 1) while another process holds the lock; a blocking flock waits, then acquires', async () => {
      const f = freshFile('flock');
      const h = await holder(f, '', 2);
      const t0 = Date.now();
      const nb = await sh(`flock -n '${f}' true`);
      assert.equal(nb.code, 1, `flock -n while held: ${nb.stderr}`);
      const nbShared = await sh(`flock -s -n '${f}' true`);
      assert.equal(nbShared.code, 1, 'a shared lock conflicts with the exclusive one');
      const blocking = await sh(`flock '${f}' sh -c 'echo got-it'`, { timeoutMs: 15_000 });
      const waited = Date.now() - t0;
      assert.equal(blocking.code, 0, blocking.stderr);
      assert.equal(blocking.stdout, 'got-it\n');
      assert.ok(waited >= 1500, `blocking flock waited ${waited} ms for the 2 s holder`);
      assert.ok(waited < 8000, `blocking flock acquired promptly after release (${waited} ms)`);
      assert.equal(await h.exited, 0);
      const free = await sh(`flock -n '${f}' true`);
      assert.equal(free.code, 0, 'free again after the holder exited');
    });

    it('shared locks coexist; an exclusive one conflicts with them', async () => {
      const f = freshFile('flock-shared');
      const h1 = await holder(f, '-s', 1.5);
      const h2 = await holder(f, '-s -n', 1.5);
      assert.equal((await sh(`flock -s -n '${f}' true`)).code, 0, 'third shared lock');
      assert.equal((await sh(`flock -x -n '${f}' true`)).code, 1, 'exclusive lock conflicts');
      assert.equal(await h1.exited, 0);
      assert.equal(await h2.exited, 0);
      assert.equal((await sh(`flock -x -n '${f}' true`)).code, 0);
    });

    it('a waiting flock can be interrupted: flock -w 0.5 gives up after its timeout instead of hanging', async () => {
      const f = freshFile('flock-timeout');
      const h = await holder(f, '', 2);
      const t0 = Date.now();
      const r = await sh(`flock -w 0.5 '${f}' true`, { timeoutMs: 10_000 });
      const took = Date.now() - t0;
      assert.equal(r.code, 1, `timed out: ${r.stderr}`);
      assert.ok(took >= 400 && took < 1900, `gave up after ${took} ms, before the holder let go`);
      assert.equal(await h.exited, 0);
      // The interrupted waiter left nothing behind.
      assert.equal((await sh(`flock -n '${f}' true`)).code, 0);
    });

    it('flock locks belong to the open file description: released on its last close and on process death', async () => {
      const f = freshFile('flock-owner');
      const a = await agent();
      const b = await agent();
      const fa = await a.open(f);
      const fb = await b.open(f);
      assert.equal(await a.flock(fa, LOCK_EX | LOCK_NB), 'OK');
      assert.equal(await b.flock(fb, LOCK_EX | LOCK_NB), 'EAGAIN', 'LOCK_NB while another process holds it');
      const fa2 = await a.open(f);
      assert.equal(await a.flock(fa2, LOCK_EX | LOCK_NB), 'EAGAIN', 'another open file description of the same process conflicts');
      assert.equal(await a.cmd(`close ${fa}`), 'OK');
      assert.equal(await b.flock(fb, LOCK_EX | LOCK_NB), 'OK', 'released when its fd was closed');
      assert.equal(await a.flock(fa2, LOCK_SH | LOCK_NB), 'EAGAIN');
      b.kill('SIGKILL');
      await b.exited;
      assert.equal(await a.flock(fa2, LOCK_SH | LOCK_NB), 'OK', 'released when the holder died');
      assert.equal(await a.flock(fa2, LOCK_UN), 'OK');
    });

    it('flock and fcntl locks do not conflict with each other (Linux semantics)', async () => {
      const f = freshFile('flock-vs-posix');
      const h = await holder(f, '-x', 1);
      const a = await agent();
      const fd = await a.open(f);
      assert.equal(await a.setlk(fd, F_WRLCK, 0, 0), 'OK');
      assert.equal(await h.exited, 0);
    });
  });

  describe('fcntl(2) byte-range locks', () => {
    it('overlapping write locks conflict, non-overlapping ones do not; F_GETLK reports the holder', async () => {
      const f = freshFile('posix');
      const a = await agent();
      const b = await agent();
      const fa = await a.open(f);
      const fb = await b.open(f);
      assert.equal(await a.setlk(fa, F_WRLCK, 0, 100), 'OK');
      assert.ok(CONFLICT.includes(await b.setlk(fb, F_WRLCK, 50, 10)), 'overlapping write lock');
      assert.ok(CONFLICT.includes(await b.setlk(fb, F_WRLCK, 99, 1)), 'overlapping in the last byte');
      assert.ok(CONFLICT.includes(await b.setlk(fb, F_RDLCK, 0, 10)), 'read lock over a write lock');
      assert.equal(await b.setlk(fb, F_WRLCK, 100, 100), 'OK', 'adjacent, not overlapping');
      assert.deepEqual(await b.getlk(fb, F_WRLCK, 10, 5), { type: F_WRLCK, start: 0, len: 100, pid: a.pid });
      assert.deepEqual(await a.getlk(fa, F_RDLCK, 150, 1), { type: F_WRLCK, start: 100, len: 100, pid: b.pid });
      const free = await b.getlk(fb, F_WRLCK, 500, 10);
      assert.equal(free.type, F_UNLCK, 'nothing held there');
      // The same process never conflicts with itself.
      assert.equal(await a.setlk(fa, F_WRLCK, 50, 20), 'OK');
    });

    it('read locks are shared; a write lock (or an upgrade) conflicts with another reader', async () => {
      const f = freshFile('posix-read');
      const a = await agent();
      const b = await agent();
      const c = await agent();
      const [fa, fb, fc] = [await a.open(f), await b.open(f), await c.open(f)];
      assert.equal(await a.setlk(fa, F_RDLCK, 0, 100), 'OK');
      assert.equal(await b.setlk(fb, F_RDLCK, 0, 100), 'OK');
      assert.equal(await c.setlk(fc, F_RDLCK, 50, 100), 'OK');
      assert.ok(CONFLICT.includes(await c.setlk(fc, F_WRLCK, 0, 10)), 'write over two readers');
      assert.ok(CONFLICT.includes(await a.setlk(fa, F_WRLCK, 0, 10)), 'upgrade while another process reads');
      const lk = await c.getlk(fc, F_WRLCK, 0, 10);
      assert.equal(lk.type, F_RDLCK);
      assert.ok([a.pid, b.pid].includes(lk.pid), `holder pid ${lk.pid}`);
      assert.equal(await b.setlk(fb, F_UNLCK, 0, 0), 'OK');
      assert.equal(await c.setlk(fc, F_UNLCK, 0, 0), 'OK');
      assert.equal(await a.setlk(fa, F_WRLCK, 0, 10), 'OK', 'upgrade once alone');
    });

    it('unlocking the middle of a lock splits it; len 0 locks to EOF and beyond', async () => {
      const f = freshFile('posix-split');
      const a = await agent();
      const b = await agent();
      const fa = await a.open(f);
      const fb = await b.open(f);
      assert.equal(await a.setlk(fa, F_WRLCK, 0, 100), 'OK');
      assert.equal(await a.setlk(fa, F_UNLCK, 40, 20), 'OK');
      assert.equal(await b.setlk(fb, F_WRLCK, 45, 10), 'OK', 'inside the unlocked middle');
      assert.ok(CONFLICT.includes(await b.setlk(fb, F_WRLCK, 30, 5)), 'left part still locked');
      assert.ok(CONFLICT.includes(await b.setlk(fb, F_WRLCK, 65, 5)), 'right part still locked');
      assert.deepEqual(await b.getlk(fb, F_WRLCK, 60, 40), { type: F_WRLCK, start: 60, len: 40, pid: a.pid });

      assert.equal(await a.setlk(fa, F_UNLCK, 0, 0), 'OK');
      assert.equal(await a.setlk(fa, F_WRLCK, 1000, 0), 'OK');
      assert.ok(CONFLICT.includes(await b.setlk(fb, F_WRLCK, 1_000_000_000_000, 1)), 'far beyond EOF');
      assert.equal(await b.setlk(fb, F_WRLCK, 0, 1000), 'OK', 'before the start');
      const lk = await b.getlk(fb, F_RDLCK, 5000, 1);
      assert.equal(lk.type, F_WRLCK);
      assert.equal(lk.start, 1000);
      assert.equal(lk.len, 0, 'to EOF is reported as len 0');
    });

    it('a lock is released when the holder process exits, and when it closes any fd of the file', async () => {
      const f = freshFile('posix-release');
      const a = await agent();
      const b = await agent();
      const fa = await a.open(f);
      const fb = await b.open(f);
      assert.equal(await a.setlk(fa, F_WRLCK, 0, 0), 'OK');
      assert.ok(CONFLICT.includes(await b.setlk(fb, F_WRLCK, 0, 1)));
      a.kill('SIGKILL');
      await a.exited;
      assert.equal(await b.setlk(fb, F_WRLCK, 0, 0), 'OK', 'released on exit');
      assert.equal(await b.setlk(fb, F_UNLCK, 0, 0), 'OK');

      const c = await agent();
      const fc1 = await c.open(f);
      const fc2 = await c.open(f, fs.constants.O_RDONLY);
      assert.equal(await c.setlk(fc1, F_WRLCK, 0, 10), 'OK');
      assert.ok(CONFLICT.includes(await b.setlk(fb, F_WRLCK, 0, 1)));
      assert.equal(await c.cmd(`close ${fc2}`), 'OK');
      assert.equal(await b.setlk(fb, F_WRLCK, 0, 1), 'OK', 'closing another fd of the file drops the process lock (POSIX)');
    });

    it('an OFD lock (F_OFD_SETLK) belongs to its open file: another fd of the process does not drop it, its last close does', async () => {
      const f = freshFile('ofd-release');
      const a = await agent();
      const b = await agent();
      const fa1 = await a.open(f);
      const fa2 = await a.open(f);
      const fb = await b.open(f);
      assert.equal(await a.ofdSetlk(fa1, F_WRLCK, 0, 10), 'OK');
      assert.ok(CONFLICT.includes(await a.ofdSetlk(fa2, F_WRLCK, 0, 10)), 'another open file of the same process conflicts');
      assert.equal(await a.cmd(`close ${fa2}`), 'OK');
      assert.ok(CONFLICT.includes(await b.setlk(fb, F_WRLCK, 0, 1)), 'still held after another fd closed');
      assert.equal(await a.cmd(`close ${fa1}`), 'OK');
      const t0 = performance.now();
      while ((await b.setlk(fb, F_WRLCK, 0, 1)) !== 'OK') {
        assert.ok(performance.now() - t0 < 3000, 'the OFD lock is released by its last close');
        await new Promise((r) => setTimeout(r, 20));
      }
    });

    it("a process's fcntl lock through one open file is not dropped by the last close of another it closed before (a child kept that one open)", () => {
      const f = freshFile('posix-fork');
      const r = py(
        `
import fcntl
fa = os.open(A[0], os.O_RDWR)
fcntl.lockf(fa, fcntl.LOCK_EX, 10, 0)
child = os.fork()
if child == 0:
    time.sleep(0.5)   # keeps fa open: its exit is fa's last close
    os._exit(0)
os.close(fa)           # drops the process's lock (POSIX)
fb = os.open(A[0], os.O_RDWR)
fcntl.lockf(fb, fcntl.LOCK_EX, 10, 0)
os.waitpid(child, 0)
time.sleep(0.3)        # the release of fa reaches the filesystem after the close
probe = os.fork()
if probe == 0:
    fd = os.open(A[0], os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        os._exit(0)
    except OSError:
        os._exit(1)
print('still locked' if os.waitpid(probe, 0)[1] != 0 else 'lost')
`,
        [f],
        { timeoutMs: 20_000 },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'still locked');
    });

    it('F_SETLKW blocks until the conflicting lock goes away, then takes it', async () => {
      const f = freshFile('posix-wait');
      const a = await agent();
      const b = await agent();
      const fa = await a.open(f);
      const fb = await b.open(f);
      assert.equal(await a.setlk(fa, F_WRLCK, 0, 10), 'OK');
      const waiting = b.setlkw(fb, F_WRLCK, 5, 10);
      assert.equal(await settledWithin(waiting, 500), 'pending', 'SETLKW waits');
      assert.equal(await a.setlk(fa, F_UNLCK, 0, 10), 'OK');
      assert.equal(await settledWithin(waiting, 5000), 'OK', 'granted after the unlock');
      assert.deepEqual(await a.getlk(fa, F_WRLCK, 0, 100), { type: F_WRLCK, start: 5, len: 10, pid: b.pid });
    });

    it('a blocked F_SETLKW is interrupted by a signal (EINTR, no hang) and leaves no lock behind', async () => {
      const f = freshFile('posix-intr');
      const a = await agent();
      const b = await agent();
      const c = await agent();
      const fa = await a.open(f);
      const fb = await b.open(f);
      const fc = await c.open(f);
      assert.equal(await a.setlk(fa, F_WRLCK, 0, 0), 'OK');
      const waiting = b.setlkw(fb, F_WRLCK, 0, 0);
      assert.equal(await settledWithin(waiting, 500), 'pending');
      b.kill('SIGALRM');
      assert.equal(await settledWithin(waiting, 5000), 'EINTR', 'the waiting process got EINTR');
      // b is still alive and responsive.
      assert.ok(CONFLICT.includes(await b.setlk(fb, F_WRLCK, 0, 0)));
      assert.equal(await a.setlk(fa, F_UNLCK, 0, 0), 'OK');
      await new Promise((r) => setTimeout(r, 100));
      // The abandoned request must not have been granted to b behind its back.
      assert.equal(await c.setlk(fc, F_WRLCK, 0, 0), 'OK', 'nobody holds the lock after the interrupted wait');
      assert.equal((await a.getlk(fa, F_WRLCK, 0, 0)).pid, c.pid);

      // SIGINT (KeyboardInterrupt in python) ends a waiting process without hanging it too.
      const d = await agent();
      const fd = await d.open(f);
      const w2 = d.setlkw(fd, F_WRLCK, 0, 1, 5000).catch((err: Error) => err.message);
      assert.equal(await settledWithin(w2, 300), 'pending');
      d.kill('SIGINT');
      const gone = await settledWithin(d.exited, 5000);
      assert.notEqual(gone, 'pending', 'the SIGINTed process exited');
      assert.equal(await w2, '<exited>', 'it died in the wait, without being granted the lock');
      assert.equal(await c.setlk(fc, F_UNLCK, 0, 0), 'OK');
      assert.equal(await a.setlk(fa, F_WRLCK, 0, 0), 'OK');
    });

    it('EBADF for a write lock on a read-only fd (and a read lock on a write-only fd)', async () => {
      const f = freshFile('posix-badf');
      const a = await agent();
      const ro = await a.open(f, fs.constants.O_RDONLY);
      const wo = await a.open(f, fs.constants.O_WRONLY);
      assert.equal(await a.setlk(ro, F_WRLCK, 0, 1), 'EBADF');
      assert.equal(await a.setlk(wo, F_RDLCK, 0, 1), 'EBADF');
      assert.equal(await a.setlk(ro, F_RDLCK, 0, 1), 'OK');
    });
  });

  describe('extended attributes', () => {
    const SET = 'os.setxattr(A[0], A[1], A[2].encode(), int(A[3]) if len(A) > 3 else 0)';
    const GET = 'return os.getxattr(A[0], A[1]).decode()';
    const LIST = 'return ",".join(sorted(os.listxattr(A[0])))';

    it('user.* set, get, list, remove; missing -> ENODATA', () => {
      const f = freshFile('xattr');
      assert.equal(pyTry(LIST, [f]), '');
      assert.equal(pyTry(SET, [f, 'user.color', 'blue']), 'OK');
      assert.equal(pyTry(SET, [f, 'user.shape', 'round']), 'OK');
      assert.equal(pyTry(GET, [f, 'user.color']), 'blue');
      assert.equal(pyTry(LIST, [f]), 'user.color,user.shape');
      assert.equal(pyTry(SET, [f, 'user.color', 'green']), 'OK', 'plain set replaces');
      assert.equal(pyTry(GET, [f, 'user.color']), 'green');
      assert.equal(pyTry('os.removexattr(A[0], A[1])', [f, 'user.color']), 'OK');
      assert.equal(pyTry(GET, [f, 'user.color']), 'ENODATA', 'get after remove');
      assert.equal(pyTry('os.removexattr(A[0], A[1])', [f, 'user.color']), 'ENODATA', 'remove of a missing name');
      assert.equal(pyTry(GET, [f, 'user.never']), 'ENODATA');
      assert.equal(pyTry(LIST, [f]), 'user.shape');
    });

    it('XATTR_CREATE on an existing name -> EEXIST, XATTR_REPLACE on a missing one -> ENODATA', () => {
      const f = freshFile('xattr-flags');
      const CREATE = 1;
      const REPLACE = 2;
      assert.equal(pyTry(SET, [f, 'user.k', 'v1', REPLACE]), 'ENODATA');
      assert.equal(pyTry(GET, [f, 'user.k']), 'ENODATA', 'REPLACE did not create it');
      assert.equal(pyTry(SET, [f, 'user.k', 'v1', CREATE]), 'OK');
      assert.equal(pyTry(SET, [f, 'user.k', 'v2', CREATE]), 'EEXIST');
      assert.equal(pyTry(GET, [f, 'user.k']), 'v1', 'CREATE did not overwrite');
      assert.equal(pyTry(SET, [f, 'user.k', 'v3', REPLACE]), 'OK');
      assert.equal(pyTry(GET, [f, 'user.k']), 'v3');
    });

    it('values: empty, binary with NUL bytes, exactly 64 KiB; larger than 64 KiB -> E2BIG', () => {
      const f = freshFile('xattr-size');
      const out = pyTry(
        `
def attempt(fn):
    try:
        r = fn()
        return 'OK' if r is None else r
    except OSError as e:
        return ename(e.errno)
big = bytes(i % 251 for i in range(65536))
binv = bytes(range(256)) * 3
r = {}
r['set empty'] = attempt(lambda: os.setxattr(A[0], 'user.empty', b''))
r['get empty'] = attempt(lambda: len(os.getxattr(A[0], 'user.empty')))
r['set 100 bytes'] = attempt(lambda: os.setxattr(A[0], 'user.small', b's' * 100))
r['get 100 bytes'] = attempt(lambda: os.getxattr(A[0], 'user.small') == b's' * 100)
r['set 768 binary'] = attempt(lambda: os.setxattr(A[0], 'user.bin', binv))
r['get 768 binary'] = attempt(lambda: os.getxattr(A[0], 'user.bin') == binv)
r['set 64 KiB'] = attempt(lambda: os.setxattr(A[0], 'user.big', big))
r['get 64 KiB'] = attempt(lambda: os.getxattr(A[0], 'user.big') == big)
r['set 64 KiB + 1'] = attempt(lambda: os.setxattr(A[0], 'user.huge', b'z' * 65537))
r['get of the refused one'] = attempt(lambda: os.getxattr(A[0], 'user.huge'))
r['list'] = attempt(lambda: ','.join(sorted(os.listxattr(A[0]))))
return json.dumps(r)`,
        [f],
      );
      assert.deepEqual(JSON.parse(out), {
        'set empty': 'OK',
        'get empty': 0,
        'set 100 bytes': 'OK',
        'get 100 bytes': true,
        'set 768 binary': 'OK',
        'get 768 binary': true,
        'set 64 KiB': 'OK',
        'get 64 KiB': true,
        'set 64 KiB + 1': 'E2BIG',
        'get of the refused one': 'ENODATA',
        list: 'user.big,user.bin,user.empty,user.small',
      });
    });

    it('a too-small buffer: size 0 returns the length, a short buffer gives ERANGE, python retries', () => {
      const f = freshFile('xattr-range');
      assert.equal(pyTry("os.setxattr(A[0], 'user.long', b'L' * 1000)", [f]), 'OK');
      assert.equal(pyTry("os.setxattr(A[0], 'user.other', b'o')", [f]), 'OK');
      const out = pyTry(
        `
libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.getxattr.restype = ctypes.c_ssize_t
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.listxattr.restype = ctypes.c_ssize_t
p = os.fsencode(A[0])
buf = ctypes.create_string_buffer(2000)
def res(n):
    return n if n >= 0 else ename(ctypes.get_errno())
r = {}
r['getxattr size 0'] = res(libc.getxattr(p, b'user.long', None, 0))
r['getxattr 10-byte buffer'] = res(libc.getxattr(p, b'user.long', buf, 10))
r['getxattr 999-byte buffer'] = res(libc.getxattr(p, b'user.long', buf, 999))
r['getxattr 1000-byte buffer'] = res(libc.getxattr(p, b'user.long', buf, 1000))
r['listxattr size 0'] = res(libc.listxattr(p, None, 0))
r['listxattr 5-byte buffer'] = res(libc.listxattr(p, buf, 5))
n = libc.listxattr(p, buf, 2000)
r['listxattr names'] = sorted(buf.raw[:n].decode().split(chr(0))[:-1]) if n >= 0 else ename(ctypes.get_errno())
try:
    r['python os.getxattr'] = len(os.getxattr(A[0], 'user.long'))
except OSError as e:
    r['python os.getxattr'] = ename(e.errno)
return json.dumps(r)`,
        [f],
      );
      assert.deepEqual(JSON.parse(out), {
        'getxattr size 0': 1000,
        'getxattr 10-byte buffer': 'ERANGE',
        'getxattr 999-byte buffer': 'ERANGE',
        'getxattr 1000-byte buffer': 1000,
        'listxattr size 0': 'user.long\0user.other\0'.length,
        'listxattr 5-byte buffer': 'ERANGE',
        'listxattr names': ['user.long', 'user.other'],
        'python os.getxattr': 1000,
      });
    });

    it('directories carry xattrs; user.* on a symlink itself -> EPERM; unknown namespaces -> EOPNOTSUPP', () => {
      const d = path.join(m.mnt, `xattr-dir-${++n}`);
      fs.mkdirSync(d);
      assert.equal(pyTry(SET, [d, 'user.dir', 'yes']), 'OK');
      assert.equal(pyTry(GET, [d, 'user.dir']), 'yes');
      const target = path.join(d, 'target');
      fs.writeFileSync(target, '');
      const link = path.join(d, 'link');
      fs.symlinkSync('target', link);
      assert.equal(pyTry("os.setxattr(A[0], 'user.l', b'v', follow_symlinks=False)", [link]), 'EPERM');
      assert.equal(pyTry("os.getxattr(A[0], 'user.l', follow_symlinks=False)", [link]), 'ENODATA');
      assert.equal(pyTry("os.setxattr(A[0], 'user.through', b'v')", [link]), 'OK', 'following the link sets it on the target');
      assert.equal(pyTry(GET, [target, 'user.through']), 'v');
      assert.equal(pyTry("os.setxattr(A[0], 'bogus.name', b'v')", [target]), 'EOPNOTSUPP');
      assert.equal(pyTry("os.setxattr(A[0], 'trusted.root', b'r')", [target]), 'OK', 'root may use trusted.*');
      assert.equal(pyTry("return os.getxattr(A[0], 'trusted.root').decode()", [target]), 'r');
    });

    it('xattrs follow the inode through hard links and renames; setxattr changes ctime, not mtime', () => {
      const f = freshFile('xattr-inode');
      fs.utimesSync(f, 1_000_000_000, 1_000_000_000);
      const before = fs.statSync(f, { bigint: true });
      assert.equal(pyTry(SET, [f, 'user.k', 'v']), 'OK');
      const after = fs.statSync(f, { bigint: true });
      assert.equal(after.mtimeNs, before.mtimeNs, 'mtime unchanged');
      assert.ok(after.ctimeNs > before.ctimeNs, 'ctime changed');
      const linked = f + '.link';
      fs.linkSync(f, linked);
      assert.equal(pyTry(GET, [linked, 'user.k']), 'v');
      const moved = f + '.moved';
      fs.renameSync(f, moved);
      assert.equal(pyTry(GET, [moved, 'user.k']), 'v');
    });

    it('as nobody: get needs read permission, set needs write permission (EACCES); trusted.* is refused (EPERM)', () => {
      const f = freshFile('xattr-perm');
      fs.chmodSync(f, 0o644);
      assert.equal(pyTry(SET, [f, 'user.k', 'root']), 'OK');
      const asNobody = { uid: NOBODY, gid: NOBODY };
      assert.equal(pyTry(GET, [f, 'user.k'], asNobody), 'root');
      assert.equal(pyTry(SET, [f, 'user.k', 'nobody'], asNobody), 'EACCES');
      assert.equal(pyTry('os.removexattr(A[0], A[1])', [f, 'user.k'], asNobody), 'EACCES');
      fs.chmodSync(f, 0o600);
      assert.equal(pyTry(GET, [f, 'user.k'], asNobody), 'EACCES');
      fs.chmodSync(f, 0o666);
      assert.equal(pyTry(SET, [f, 'user.k', 'nobody'], asNobody), 'OK');
      assert.equal(pyTry(GET, [f, 'user.k']), 'nobody');
      assert.equal(pyTry(SET, [f, 'trusted.k', 'x'], asNobody), 'EPERM');
    });
  });
});
