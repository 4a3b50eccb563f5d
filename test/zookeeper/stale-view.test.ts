// A node acting on a view that is behind: node B reaches ZooKeeper through a
// proxy that holds back what the server sends (replies and watch events) while
// B's requests still go through. So B's write is applied after another node's
// change that B has not heard of yet, as happens when events are in flight.
// Whatever B did, what the other node made must stay as it was made.
// B is only ever touched asynchronously here: its proxy runs in this process.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE, OpCode } from '../../src/backends/zookeeper/client/protocol.js';
import { decodeMeta, MARKER_NAME } from '../../src/backends/zookeeper/layout.js';
import { mountCli, type CliMount } from '../helpers/mount.js';
import { errnoCode, PY_PRELUDE, RENAME_EXCHANGE } from '../helpers/posix.js';
import { startProxy, startZooKeeper, untilHeldReply, type ZooKeeperServer } from '../helpers/zookeeper.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Retries an assertion while a change propagates. Asynchronous: B's proxy runs
 * in this process, so nothing here may block on B's mount.
 */
async function eventually(check: () => Promise<void>, timeoutMs = 3000): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (performance.now() - t0 > timeoutMs) throw err;
      await sleep(5);
    }
  }
}

/** The errno a promise rejects with, or 'ok'. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return errnoCode(err as NodeJS.ErrnoException) ?? String(err);
  }
}

/** renameat2(2) in a child process (B may not be blocked on here): resolves to 'OK' or the errno name. */
function renameat2Async(from: string, to: string, flags: number): Promise<string> {
  const code = `
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
print(cerr(libc.renameat2(-100, os.fsencode(A[0]), -100, os.fsencode(A[1]), int(A[2]))))
`;
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', PY_PRELUDE + code, from, to, String(flags)], (err, stdout) => (err ? reject(err) : resolve(stdout.trim())));
  });
}

describe('ZooKeeper backend, a node whose view is behind', () => {
  let zk: ZooKeeperServer;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let plain: ZkClient;
  let a: CliMount;
  let b: CliMount;
  let seq = 0;

  before(async () => {
    zk = await startZooKeeper();
    proxy = await startProxy(zk.port);
    plain = new ZkClient({ connectString: zk.connectString });
    await plain.connect();
    const args = ['--backend', 'zookeeper', '--path', '/vol'];
    a = await mountCli([...args, '--hosts', zk.connectString]);
    b = await mountCli([...args, '--hosts', `127.0.0.1:${proxy.port}`]);
  });
  after(async () => {
    const codes = [await b?.stop(), await a?.stop()];
    plain?.close();
    await proxy?.close();
    await zk?.destroy();
    assert.deepEqual(codes, [0, 0], `${a.output()}\n${b.output()}`);
  });

  /**
   * Runs `elsewhere` (on A, or with the plain client) while B hears nothing, then
   * starts `onB`, lets its request reach ZooKeeper, and only then lets B hear
   * everything. Returns how `onB` ended.
   */
  async function behind(elsewhere: () => void | Promise<void>, onB: () => Promise<unknown>): Promise<string> {
    proxy.hold();
    let result: Promise<string>;
    try {
      await elsewhere();
      result = outcome(onB());
      await sleep(300);
    } finally {
      proxy.release();
    }
    return result;
  }

  /** A fresh directory D holding a directory X, made on A and known to B (listed there). */
  async function setUp(): Promise<{ onA: string; onB: string; zkPath: string }> {
    const name = `${++seq}`;
    const onA = path.join(a.mnt, name);
    fs.mkdirSync(path.join(onA, 'X'), { recursive: true });
    const onB = path.join(b.mnt, name);
    await eventually(async () => assert.deepEqual(await fs.promises.readdir(path.join(onB, 'X')), []));
    return { onA, onB, zkPath: `/vol/${name}` };
  }

  /** X, replaced on A by a file, must still be that file everywhere. */
  async function assertStillFile(t: { onA: string; onB: string; zkPath: string }): Promise<void> {
    const x = `${t.zkPath}/X`;
    assert.deepEqual((await plain.getChildren(x)).children, [], 'X in ZooKeeper has no children (it is not a directory)');
    assert.equal((await plain.getData(x)).data.toString(), 'a file now');
    assert.equal(fs.readFileSync(path.join(t.onA, 'X'), 'utf8'), 'a file now');
    await eventually(async () => assert.equal(await fs.promises.readFile(path.join(t.onB, 'X'), 'utf8'), 'a file now'));
  }

  const replaceXByFile = (onA: string) => () => {
    fs.rmSync(path.join(onA, 'X'), { recursive: true });
    fs.writeFileSync(path.join(onA, 'X'), 'a file now');
  };

  it('mkdir in a directory another node has just replaced by a file: ENOTDIR, the file stays a file', async () => {
    const t = await setUp();
    const r = await behind(replaceXByFile(t.onA), () => fs.promises.mkdir(path.join(t.onB, 'X', 'sub')));
    assert.equal(r, 'ENOTDIR', b.output());
    await assertStillFile(t);
  });

  it('creating a file (O_EXCL) there: ENOTDIR, the file stays a file', async () => {
    const t = await setUp();
    const r = await behind(replaceXByFile(t.onA), () => fs.promises.writeFile(path.join(t.onB, 'X', 'new'), 'data', { flag: 'wx' }));
    assert.equal(r, 'ENOTDIR', b.output());
    await assertStillFile(t);
  });

  it('a whole file written there (created by its first commit): the close fails, nothing is stored, the file stays a file', async () => {
    const t = await setUp();
    const r = await behind(replaceXByFile(t.onA), () => fs.promises.writeFile(path.join(t.onB, 'X', 'new'), 'data'));
    assert.equal(r, 'ENOENT', b.output());
    await assertStillFile(t);
  });

  it('a symlink made there: ENOTDIR, the file stays a file', async () => {
    const t = await setUp();
    const r = await behind(replaceXByFile(t.onA), () => fs.promises.symlink('target', path.join(t.onB, 'X', 'link')));
    assert.equal(r, 'ENOTDIR', b.output());
    await assertStillFile(t);
  });

  /**
   * A directory F made by another tool (no marker) in a fresh directory, known to B.
   * `onB` starts on B; once ZooKeeper has answered B's first request (B asked
   * whether F is still a directory: yes, held back), F becomes a file, and
   * only then does B hear anything. Returns how `onB` ended.
   */
  async function foreignReplacedMidway(onB: (t: { onB: string; f: string }) => Promise<unknown>): Promise<{ result: string; zkPath: string; f: string }> {
    const t = await setUp();
    const zkPath = `${t.zkPath}/X/F`;
    await plain.create(zkPath, Buffer.alloc(0), OPEN_ACL_UNSAFE);
    await plain.create(`${zkPath}/child`, Buffer.from('made by another tool'), OPEN_ACL_UNSAFE);
    const f = path.join(t.onB, 'X', 'F');
    // Written first: a write that finds a directory removed elsewhere since B last wrote (the tests before) drops B's cached maps.
    await fs.promises.writeFile(path.join(t.onB, 'moved'), 'to be moved');
    await eventually(async () => assert.deepEqual(await fs.promises.readdir(f), ['child']));
    proxy.hold();
    let result: Promise<string>;
    try {
      result = outcome(onB({ onB: t.onB, f }));
      await eventually(async () => assert.ok(proxy.heldChunks() > 0));
      await plain.delete(`${zkPath}/child`);
      await plain.delete(zkPath);
      await plain.create(zkPath, Buffer.from('a file now'), OPEN_ACL_UNSAFE);
    } finally {
      proxy.release();
    }
    return { result: await result, zkPath, f };
  }

  async function assertForeignNowFile({ zkPath, f }: { zkPath: string; f: string }): Promise<void> {
    assert.deepEqual((await plain.getChildren(zkPath)).children, [], 'F in ZooKeeper has no children (it is not a directory)');
    assert.equal((await plain.getData(zkPath)).data.toString(), 'a file now');
    await eventually(async () => assert.equal(await fs.promises.readFile(f, 'utf8'), 'a file now'));
  }

  it('a file written in a directory made by another tool (no marker), replaced by a file between B\'s check and its write: nothing is stored, the file stays a file', async () => {
    const r = await foreignReplacedMidway(({ f }) => fs.promises.writeFile(path.join(f, 'new'), 'data'));
    assert.equal(r.result, 'ENOENT', b.output());
    await assertForeignNowFile(r);
  });

  it('a rename into such a directory: ENOTDIR, the file stays a file', async () => {
    const r = await foreignReplacedMidway(({ onB, f }) => fs.promises.rename(path.join(onB, 'moved'), path.join(f, 'moved')));
    assert.equal(r.result, 'ENOTDIR', b.output());
    await assertForeignNowFile(r);
  });

  it("chmod of an entry of such a directory (which writes the directory's first map): ENOENT (the entry is gone), the file stays a file", async () => {
    const r = await foreignReplacedMidway(({ f }) => fs.promises.chmod(path.join(f, 'child'), 0o600));
    assert.equal(r.result, 'ENOENT', b.output());
    await assertForeignNowFile(r);
  });

  it('a directory made on B, in which A makes a symlink before B hears back: B sees the symlink, not a file holding its target', async () => {
    const t = await setUp();
    // B knows the directory's names: its lookup of the new name costs no request, the mkdir is the first.
    await fs.promises.readdir(t.onB);
    proxy.holdFromReplyTo(OpCode.multi);
    let made: Promise<string>;
    try {
      made = outcome(fs.promises.mkdir(path.join(t.onB, 'D')));
      // B's mkdir is applied (its reply held back): A makes a symlink in the new directory.
      await untilHeldReply(proxy, "B's mkdir");
      await eventually(async () => fs.symlinkSync('target', path.join(t.onA, 'D', 'L')));
    } finally {
      proxy.release();
    }
    assert.equal(await made, 'ok', b.output());
    await eventually(async () => assert.equal(await fs.promises.readlink(path.join(t.onB, 'D', 'L')), 'target'));
    assert.equal(await outcome(fs.promises.readFile(path.join(t.onB, 'D', 'L'), 'utf8')), 'ENOENT', 'a symlink to nothing');
  });

  it('a rename on B of a directory A has just added to: what A added moves with it', async () => {
    const t = await setUp();
    const r = await behind(
      () => fs.writeFileSync(path.join(t.onA, 'X', 'new'), 'added on A'),
      () => fs.promises.rename(path.join(t.onB, 'X'), path.join(t.onB, 'Y')),
    );
    assert.equal(r, 'ok', b.output());
    assert.equal((await plain.getData(`${t.zkPath}/Y/new`)).data.toString(), 'added on A');
    assert.equal(await plain.exists(`${t.zkPath}/X`), null);
    await eventually(async () => assert.equal(fs.readFileSync(path.join(t.onA, 'Y', 'new'), 'utf8'), 'added on A'));
    await eventually(async () => assert.equal(await fs.promises.readFile(path.join(t.onB, 'Y', 'new'), 'utf8'), 'added on A'));
  });

  it('a rename on B of a file A has just replaced by a symlink: the symlink moves, a symlink with its target', async () => {
    const t = await setUp();
    await fs.promises.writeFile(path.join(t.onB, 'F'), 'a file');
    await eventually(async () => assert.equal(fs.readFileSync(path.join(t.onA, 'F'), 'utf8'), 'a file'));
    const r = await behind(
      () => {
        fs.rmSync(path.join(t.onA, 'F'));
        fs.symlinkSync('target', path.join(t.onA, 'F'));
      },
      () => fs.promises.rename(path.join(t.onB, 'F'), path.join(t.onB, 'G')),
    );
    assert.equal(r, 'ok', b.output());
    // B's rename found F was not what B knew (ESTALE: the kernel looked F up again and retried), so B's
    // file node did not move to G as if it were the symlink: G on B is the symlink at once.
    assert.equal(await fs.promises.readlink(path.join(t.onB, 'G')), 'target');
    assert.equal(await outcome(fs.promises.readFile(path.join(t.onB, 'G'), 'utf8')), 'ENOENT', 'G on B is the symlink, to nothing');
    assert.equal((await plain.getData(`${t.zkPath}/G`)).data.toString(), 'target');
    await eventually(async () => assert.equal(fs.readlinkSync(path.join(t.onA, 'G')), 'target'));
  });

  it('a rename on B of a directory in which A has just replaced a file by a symlink: B never reads the target as the file', async () => {
    const t = await setUp();
    await fs.promises.writeFile(path.join(t.onB, 'X', 'F'), 'a file');
    await eventually(async () => assert.equal(fs.readFileSync(path.join(t.onA, 'X', 'F'), 'utf8'), 'a file'));
    const r = await behind(
      () => {
        fs.rmSync(path.join(t.onA, 'X', 'F'));
        fs.symlinkSync('target', path.join(t.onA, 'X', 'F'));
      },
      () => fs.promises.rename(path.join(t.onB, 'X'), path.join(t.onB, 'Y')),
    );
    assert.equal(r, 'ok', b.output());
    // B's node for X/F (a file) moved to Y/F with the directory, but it does not stand for the symlink there.
    assert.equal(await outcome(fs.promises.readFile(path.join(t.onB, 'Y', 'F'), 'utf8')), 'ENOENT', 'Y/F on B is the symlink, to nothing');
    await eventually(async () => assert.equal(await fs.promises.readlink(path.join(t.onB, 'Y', 'F')), 'target'));
    assert.equal((await plain.getData(`${t.zkPath}/Y/F`)).data.toString(), 'target');
  });

  it("a rename on B whose reply a lost connection cuts off: B reads the file under its new name at once", async () => {
    const t = await setUp();
    await fs.promises.writeFile(path.join(t.onB, 'F'), 'renamed across a lost connection');
    const stale = path.join(t.onB, 'G');
    proxy.hold();
    let renamed: Promise<string>;
    try {
      renamed = outcome(fs.promises.rename(path.join(t.onB, 'F'), stale));
      // B's reads before the transaction are answered; then its reply is held, and lost with the connection.
      await eventually(async () => assert.ok(proxy.heldChunks() > 0));
      await sleep(50);
      proxy.release();
      proxy.hold();
      await eventually(async () => assert.notEqual(await plain.exists(`${t.zkPath}/G`), null), 5000);
      proxy.cut();
      proxy.restore();
    } finally {
      proxy.release();
    }
    assert.equal(await renamed, 'ok', b.output());
    assert.equal(await fs.promises.readFile(stale, 'utf8'), 'renamed across a lost connection');
    assert.equal((await fs.promises.stat(stale)).size, 'renamed across a lost connection'.length);
  });

  it('a rename on B of a file onto a name where A has just made a directory with an entry: EISDIR, both stay as they were', async () => {
    const t = await setUp();
    await fs.promises.writeFile(path.join(t.onB, 'F'), 'a file');
    const r = await behind(
      () => void fs.mkdirSync(path.join(t.onA, 'G', 'inside'), { recursive: true }),
      () => fs.promises.rename(path.join(t.onB, 'F'), path.join(t.onB, 'G')),
    );
    assert.equal(r, 'EISDIR', b.output());
    assert.deepEqual((await plain.getChildren(`${t.zkPath}/G`)).children.sort(), ['.swarmvol', 'inside']);
    assert.equal((await plain.getData(`${t.zkPath}/F`)).data.toString(), 'a file');
    await eventually(async () => assert.deepEqual(await fs.promises.readdir(path.join(t.onB, 'G')), ['inside']));
  });

  it('a file written on B while A replaces it by a symlink: the close fails with ESTALE, the symlink keeps its target', async () => {
    const t = await setUp();
    const onB = path.join(t.onB, 'F');
    // Both at the version a new znode has: a version check alone cannot tell them apart.
    await fs.promises.writeFile(onB, 'old');
    await eventually(async () => assert.equal(fs.readFileSync(path.join(t.onA, 'F'), 'utf8'), 'old'));
    const fh = await fs.promises.open(onB, 'r+');
    await fh.write('new content, longer than a symlink target should be', 0);
    const r = await behind(
      () => {
        fs.rmSync(path.join(t.onA, 'F'));
        fs.symlinkSync('target', path.join(t.onA, 'F'));
      },
      () => fh.close(),
    );
    assert.equal(r, 'ESTALE', b.output());
    assert.equal((await plain.getData(`${t.zkPath}/F`)).data.toString(), 'target');
    assert.equal(fs.readlinkSync(path.join(t.onA, 'F')), 'target');
    await eventually(async () => assert.equal(await fs.promises.readlink(onB), 'target'));
  });

  it('a file written on B while A re-creates its directory with a symlink of that name: the close fails with ESTALE, the symlink keeps its target', async () => {
    const t = await setUp();
    const onB = path.join(t.onB, 'X', 'F');
    await fs.promises.writeFile(onB, 'old');
    // One write of X's map, so that the re-created X's map (one symlink made in it) is at the same version.
    await fs.promises.chmod(onB, 0o600);
    await eventually(async () => assert.equal(fs.readFileSync(path.join(t.onA, 'X', 'F'), 'utf8'), 'old'));
    const fh = await fs.promises.open(onB, 'r+');
    await fh.write('new content, longer than a symlink target should be', 0);
    const r = await behind(
      () => {
        fs.renameSync(path.join(t.onA, 'X'), path.join(t.onA, 'X2'));
        fs.mkdirSync(path.join(t.onA, 'X'));
        fs.symlinkSync('target', path.join(t.onA, 'X', 'F'));
      },
      () => fh.close(),
    );
    assert.equal(r, 'ESTALE', b.output());
    assert.equal((await plain.getData(`${t.zkPath}/X/F`)).data.toString(), 'target');
    assert.equal(fs.readlinkSync(path.join(t.onA, 'X', 'F')), 'target');
    assert.equal(fs.readFileSync(path.join(t.onA, 'X2', 'F'), 'utf8'), 'old');
  });

  it("another node's write right after B's own, heard in the same read as B's reply, is not taken for B's echo", async () => {
    const t = await setUp();
    const onB = path.join(t.onB, 'F');
    await fs.promises.writeFile(onB, 'v1');
    const fh = await fs.promises.open(onB, 'r+');
    await fh.write('from B', 0);
    const r = await behind(
      async () => undefined,
      async () => {
        const closed = fh.close();
        // B's write reaches ZooKeeper first; then the plain client's, which B hears with its own reply.
        await sleep(100);
        await plain.setData(`${t.zkPath}/F`, Buffer.from('from the plain client'));
        return closed;
      },
    );
    assert.equal(r, 'ok', b.output());
    await eventually(async () => assert.equal(await fs.promises.readFile(onB, 'utf8'), 'from the plain client'));
  });

  it("a file B re-reads while its own exchange is applied, the replies heard together: each name keeps its node", async () => {
    const t = await setUp();
    const [fileOnB, linkOnB] = [path.join(t.onB, 'F'), path.join(t.onB, 'L')];
    fs.writeFileSync(path.join(t.onA, 'F'), 'the file');
    fs.symlinkSync('target', path.join(t.onA, 'L'));
    await eventually(async () => assert.equal(await fs.promises.readlink(linkOnB), 'target'));
    const fd = await fs.promises.open(fileOnB, 'r');
    try {
      // A writes F: B's node for it is stale, and the next fstat on B re-reads it.
      fs.writeFileSync(path.join(t.onA, 'F'), 'written on A');
      await eventually(async () => assert.equal((await plain.getData(`${t.zkPath}/F`)).stat.version, 2));
      await sleep(100);
      proxy.hold();
      let exchanged: Promise<string>;
      let stat: Promise<fs.Stats>;
      try {
        exchanged = renameat2Async(fileOnB, linkOnB, RENAME_EXCHANGE);
        // B hears the replies to its reads, until its transaction is applied (F is the symlink now) ...
        for (let i = 0; (await plain.getData(`${t.zkPath}/F`)).data.toString() !== 'target'; i++) {
          assert.ok(i < 500, 'B sent its transaction');
          proxy.release();
          proxy.hold();
          await sleep(10);
        }
        // ... then its events, not its reply.
        await eventually(async () => assert.ok(proxy.heldReplies() > 0));
        proxy.releaseEvents();
        await sleep(50);
        // B re-reads F now (after the transaction): its reply and the transaction's reach B in one read.
        const replies = proxy.heldReplies();
        stat = fd.stat();
        await eventually(async () => assert.ok(proxy.heldReplies() > replies));
        await sleep(50);
      } finally {
        proxy.release();
      }
      assert.equal(await exchanged, 'OK', b.output());
      // The open file moved to L with its name, and is still the file (A's version of it), on B as in ZooKeeper.
      const st = await stat.catch((err: NodeJS.ErrnoException) => assert.fail(`fstat: ${err.code}\n${b.output()}`));
      assert.ok(st.isFile());
      assert.equal(st.size, 'written on A'.length);
      assert.equal(await fs.promises.readFile(linkOnB, 'utf8'), 'written on A');
      assert.equal(await fs.promises.readlink(fileOnB), 'target');
      assert.equal((await plain.getData(`${t.zkPath}/L`)).data.toString(), 'written on A');
    } finally {
      await fd.close();
    }
  });

  it('chmod on B of a file in a directory its own exchange is moving: the attributes go to the file, the symlink the exchange put in its place stays one', async () => {
    const t = await setUp();
    for (const d of ['D1', 'D2']) fs.mkdirSync(path.join(t.onA, d));
    fs.writeFileSync(path.join(t.onA, 'D1', 'x'), 'the file');
    fs.symlinkSync('nowhere', path.join(t.onA, 'D2', 'x'));
    const [d1, d2] = [path.join(t.onB, 'D1'), path.join(t.onB, 'D2')];
    await eventually(async () => assert.equal(await fs.promises.readlink(path.join(d2, 'x')), 'nowhere'));
    assert.equal(await fs.promises.readFile(path.join(d1, 'x'), 'utf8'), 'the file');
    proxy.hold();
    let exchanged: Promise<string>;
    let chmodded: Promise<string>;
    try {
      exchanged = renameat2Async(d1, d2, RENAME_EXCHANGE);
      // B hears the replies to its reads, until its transaction is applied (D1/x is the symlink now) ...
      for (let i = 0; (await plain.getData(`${t.zkPath}/D1/x`)).data.toString() !== 'nowhere'; i++) {
        assert.ok(i < 500, 'B sent its transaction');
        proxy.release();
        proxy.hold();
        await sleep(10);
      }
      // ... and its events, not its reply: the exchange is applied, B's nodes are still at their old paths.
      await eventually(async () => assert.ok(proxy.heldReplies() > 0));
      proxy.releaseEvents();
      await sleep(50);
      // chmod of the file, by the name the kernel still has (D1/x). Whatever B reads for it now is
      // heard together with the exchange's reply, which moves the file and gives it the czxid the
      // symlink has too.
      chmodded = outcome(fs.promises.chmod(path.join(d1, 'x'), 0o600));
      await sleep(300);
    } finally {
      proxy.release();
    }
    assert.equal(await exchanged, 'OK', b.output());
    assert.equal(await chmodded, 'ok', b.output());
    // In ZooKeeper: D1/x the symlink (its map entry says so), D2/x the file with the new mode.
    const map = await plain.getData(`${t.zkPath}/D1/${MARKER_NAME}`);
    assert.equal(decodeMeta(map.data, map.stat.version, map.stat.mzxid).entries.get('x')?.t, 'l', map.data.toString());
    assert.equal(fs.readlinkSync(path.join(t.onA, 'D1', 'x')), 'nowhere');
    assert.equal(fs.readFileSync(path.join(t.onA, 'D2', 'x'), 'utf8'), 'the file');
    await eventually(async () => assert.equal(fs.statSync(path.join(t.onA, 'D2', 'x')).mode & 0o7777, 0o600));
    assert.equal(await fs.promises.readlink(path.join(d1, 'x')), 'nowhere');
    assert.equal((await fs.promises.stat(path.join(d2, 'x'))).mode & 0o7777, 0o600);
  });

  it("chmod on B of a file in a directory A's exchange re-creates, with a map at the same version: the symlink put there keeps its type", async () => {
    const t = await setUp();
    // Both directories made by a rename: a rename creates their maps with their content, at version 0.
    for (const d of ['S0', 'T0']) fs.mkdirSync(path.join(t.onA, d));
    fs.writeFileSync(path.join(t.onA, 'S0', 'F'), 'the file');
    fs.symlinkSync('nowhere', path.join(t.onA, 'T0', 'F'));
    fs.renameSync(path.join(t.onA, 'S0'), path.join(t.onA, 'S'));
    fs.renameSync(path.join(t.onA, 'T0'), path.join(t.onA, 'T'));
    const onB = path.join(t.onB, 'S', 'F');
    await eventually(async () => assert.equal(await fs.promises.readFile(onB, 'utf8'), 'the file'));
    // A chown to the same owner reads S's map on B (and keeps it) but writes nothing.
    const { uid, gid } = await fs.promises.stat(onB);
    await fs.promises.chown(onB, uid, gid);
    const versions = await Promise.all(['S', 'T'].map(async (d) => (await plain.exists(`${t.zkPath}/${d}/${MARKER_NAME}`))?.version));
    assert.deepEqual(versions, [0, 0], 'both maps at one version: the map check alone cannot tell them apart');
    const r = await behind(
      () => renameat2Async(path.join(t.onA, 'S'), path.join(t.onA, 'T'), RENAME_EXCHANGE).then((e) => assert.equal(e, 'OK')),
      () => fs.promises.chmod(onB, 0o600),
    );
    // B's file was moved to T by A: the name it had (S/F) is the symlink now, to nothing.
    assert.equal(r, 'ENOENT', b.output());
    const map = await plain.getData(`${t.zkPath}/S/${MARKER_NAME}`);
    assert.equal(decodeMeta(map.data, map.stat.version, map.stat.mzxid).entries.get('F')?.t, 'l', map.data.toString());
    assert.equal(fs.readlinkSync(path.join(t.onA, 'S', 'F')), 'nowhere');
    assert.equal(fs.readFileSync(path.join(t.onA, 'T', 'F'), 'utf8'), 'the file');
    await eventually(async () => assert.equal(await fs.promises.readlink(onB), 'nowhere'));
  });

  it('chmod on B of a file A has just replaced by a symlink: the symlink keeps its type and target', async () => {
    const t = await setUp();
    const onB = path.join(t.onB, 'F');
    await fs.promises.writeFile(onB, 'a file');
    await eventually(async () => assert.equal(fs.readFileSync(path.join(t.onA, 'F'), 'utf8'), 'a file'));
    const r = await behind(
      () => {
        fs.rmSync(path.join(t.onA, 'F'));
        fs.symlinkSync('nowhere', path.join(t.onA, 'F'));
      },
      () => fs.promises.chmod(onB, 0o600),
    );
    // ESTALE makes the kernel look F up again: a symlink, which chmod follows, to nothing.
    assert.equal(r, 'ENOENT', b.output());
    assert.equal(fs.readlinkSync(path.join(t.onA, 'F')), 'nowhere');
    await eventually(async () => assert.equal(await fs.promises.readlink(onB), 'nowhere'));
    assert.equal((await plain.getData(`${t.zkPath}/F`)).data.toString(), 'nowhere');
  });
});
