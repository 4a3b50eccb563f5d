// Files created through the mount get their znode from their first commit,
// with the content: one request per new file. Until then they exist on their
// node only; everything that needs the znode makes it first. Two mounts of
// one tree (two nodes), a plain client beside them, a real ZooKeeper.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { type CliMount } from '../helpers/mount.js';
import { assertErrno, eventually, pyTry } from '../helpers/posix.js';
import { startTwoNodes, type TwoNodes, type ZooKeeperServer } from '../helpers/zookeeper.js';

describe('ZooKeeper backend, files created by their first commit', () => {
  let zk: ZooKeeperServer;
  let plain: ZkClient;
  let a: CliMount;
  let b: CliMount;
  let seq = 0;
  /** A fresh directory for one test, seen as [on A, on B, its ZooKeeper path]. */
  const fresh = (label: string): [string, string, string] => {
    const name = `${++seq}-${label}`;
    fs.mkdirSync(path.join(a.mnt, name));
    return [path.join(a.mnt, name), path.join(b.mnt, name), `/cl/${name}`];
  };
  const exists = async (zkPath: string) => (await plain.exists(zkPath)) !== null;
  const stored = async (zkPath: string) => (await plain.getData(zkPath)).data.toString();
  const packets = () => zk.requestsReceived();

  let nodes: TwoNodes | undefined;
  before(async () => {
    nodes = await startTwoNodes('/cl', ['--session-timeout', '30']);
    ({ zk, plain, a, b } = nodes);
  });
  after(() => nodes?.stop());

  it('stores a new file at its close, with one request: nothing in ZooKeeper or on the other node before, the whole content after', async () => {
    const [da, db, zp] = fresh('one');
    const fd = fs.openSync(path.join(da, 'conf'), 'w');
    fs.writeSync(fd, 'k=v\n');
    // Here it is a file like any other: listed, stat'ed, read back through another descriptor.
    assert.deepEqual(fs.readdirSync(da), ['conf']);
    assert.equal(fs.statSync(path.join(da, 'conf')).size, 4);
    assert.equal(fs.readFileSync(path.join(da, 'conf'), 'utf8'), 'k=v\n');
    assert.equal(fs.readdirSync(da, { withFileTypes: true })[0]!.isFile(), true);
    assert.equal(await exists(`${zp}/conf`), false, 'no znode before the commit');
    assert.deepEqual(fs.readdirSync(db), []);
    fs.closeSync(fd);
    assert.equal(await stored(`${zp}/conf`), 'k=v\n');
    eventually(() => assert.equal(fs.readFileSync(path.join(db, 'conf'), 'utf8'), 'k=v\n'));
    // Once stored, its inode number is the one from its czxid, the same on both nodes.
    assert.equal(fs.statSync(path.join(da, 'conf')).ino, fs.statSync(path.join(db, 'conf')).ino);

    // Counted by the server: 50 new files (open, write, close each) cost 50 requests.
    const before = await packets();
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(da, `f${i}`), `content ${i}\n`);
    const used = (await packets()) - before;
    assert.ok(used >= 50 && used <= 52, `50 new files cost ${used} requests (50 expected, at most 2 pings beside)`);
    for (let i = 0; i < 50; i++) assert.equal(await stored(`${zp}/f${i}`), `content ${i}\n`);
  });

  it('creates with O_EXCL or without O_TRUNC at open, and stores files closed without a write', async () => {
    const [da, db, zp] = fresh('excl');
    const fd = fs.openSync(path.join(da, 'lock'), 'wx');
    assert.equal(await exists(`${zp}/lock`), true, 'O_EXCL: the znode is made at open');
    eventually(() => assertErrno(() => fs.openSync(path.join(db, 'lock'), 'wx'), 'EEXIST'));
    fs.closeSync(fd);
    // Without O_TRUNC (logs, databases: the inode number must not change under them), at open too.
    const appending = fs.openSync(path.join(da, 'log'), 'a');
    assert.equal(await exists(`${zp}/log`), true, 'O_APPEND without O_TRUNC: the znode is made at open');
    fs.closeSync(appending);
    fs.closeSync(fs.openSync(path.join(da, 'empty'), 'w'));
    assert.equal((await plain.getData(`${zp}/empty`)).data.length, 0);
    const touched = pyTry(`import subprocess; subprocess.run(['touch', sys.argv[1]], check=True)`, [path.join(da, 'touched')]);
    assert.equal(touched, 'OK');
    assert.equal(await exists(`${zp}/touched`), true);
    eventually(() => assert.ok(fs.statSync(path.join(db, 'empty')).isFile() && fs.statSync(path.join(db, 'touched')).isFile()));
  });

  it('makes the znode first when a file still being written is renamed, removed, locked, chmod-ed or fsync-ed', async () => {
    const [da, db, zp] = fresh('ops');
    // rename: the znode moves; writes after it land at the new name.
    let fd = fs.openSync(path.join(da, 'tmp'), 'w');
    fs.writeSync(fd, 'first ');
    fs.renameSync(path.join(da, 'tmp'), path.join(da, 'final'));
    assert.equal(await exists(`${zp}/final`), true);
    assert.equal(await exists(`${zp}/tmp`), false);
    fs.writeSync(fd, 'second');
    fs.closeSync(fd);
    assert.equal(await stored(`${zp}/final`), 'first second');
    // unlink: nothing is left, on either node.
    fd = fs.openSync(path.join(da, 'gone'), 'w');
    fs.writeSync(fd, 'x');
    fs.unlinkSync(path.join(da, 'gone'));
    fs.closeSync(fd);
    assert.equal(await exists(`${zp}/gone`), false);
    assert.deepEqual(fs.readdirSync(da).sort(), ['final']);
    // fchmod: the mode is stored with it.
    fd = fs.openSync(path.join(da, 'secret'), 'w');
    fs.writeSync(fd, 'pw');
    fs.fchmodSync(fd, 0o600);
    fs.closeSync(fd);
    eventually(() => assert.equal(fs.statSync(path.join(db, 'secret')).mode & 0o7777, 0o600));
    assert.equal(fs.readFileSync(path.join(db, 'secret'), 'utf8'), 'pw');
    // fsync: stored before the close.
    fd = fs.openSync(path.join(da, 'synced'), 'w');
    fs.writeSync(fd, 'durable');
    fs.fsyncSync(fd);
    assert.equal(await stored(`${zp}/synced`), 'durable');
    fs.closeSync(fd);
    // fsync of the directory: the files created in it have their znodes.
    fd = fs.openSync(path.join(da, 'in-dir'), 'w');
    const dirFd = fs.openSync(da, 'r');
    fs.fsyncSync(dirFd);
    fs.closeSync(dirFd);
    assert.equal(await exists(`${zp}/in-dir`), true);
    fs.closeSync(fd);
    // flock: locks are kept by czxid, so the znode is made first; the content still lands at close.
    const locked = pyTry(
      `
import fcntl
with open(sys.argv[1], 'w') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.write('locked')
    f.flush()
`,
      [path.join(da, 'locked')],
    );
    assert.equal(locked, 'OK');
    assert.equal(await stored(`${zp}/locked`), 'locked');
    // rmdir of a directory holding a file still being written: not empty.
    fs.mkdirSync(path.join(da, 'sub'));
    fd = fs.openSync(path.join(da, 'sub', 'f'), 'w');
    assertErrno(() => fs.rmdirSync(path.join(da, 'sub')), 'ENOTEMPTY');
    fs.closeSync(fd);
    assert.equal(await exists(`${zp}/sub/f`), true);
  });

  it('replaces a file another node made under the same name meanwhile: the last commit wins, no error', async () => {
    const [da, db, zp] = fresh('race');
    const fd = fs.openSync(path.join(da, 'f'), 'w');
    const ino = fs.fstatSync(fd).ino;
    await plain.create(`${zp}/f`, Buffer.from('theirs'), OPEN_ACL_UNSAFE);
    eventually(() => assert.equal(fs.readFileSync(path.join(db, 'f'), 'utf8'), 'theirs'));
    // Listing here meanwhile shows this node's file once, still the one being written.
    assert.deepEqual(fs.readdirSync(da), ['f']);
    assert.equal(fs.statSync(path.join(da, 'f')).ino, ino);
    assert.equal(fs.readFileSync(path.join(da, 'f'), 'utf8'), '');
    fs.writeSync(fd, 'mine');
    fs.closeSync(fd);
    assert.equal(await stored(`${zp}/f`), 'mine');
    eventually(() => assert.equal(fs.readFileSync(path.join(db, 'f'), 'utf8'), 'mine'));
    assert.equal(fs.readFileSync(path.join(da, 'f'), 'utf8'), 'mine');
    assert.equal(fs.statSync(path.join(da, 'f')).ino, fs.statSync(path.join(db, 'f')).ino);
  });

  it('an empty new file still replaces a file another node made meanwhile when an operation makes its znode before the close (O_TRUNC)', async () => {
    const [da, db, zp] = fresh('trunc');
    const fd = fs.openSync(path.join(da, 'f'), 'w');
    await plain.create(`${zp}/f`, Buffer.from('theirs'), OPEN_ACL_UNSAFE);
    eventually(() => assert.equal(fs.readFileSync(path.join(db, 'f'), 'utf8'), 'theirs'));
    // The rename needs the znode: it takes theirs, and moves it.
    fs.renameSync(path.join(da, 'f'), path.join(da, 'g'));
    fs.closeSync(fd);
    assert.equal(await stored(`${zp}/g`), '', 'opened with O_TRUNC and closed: empty');
    eventually(() => assert.equal(fs.readFileSync(path.join(db, 'g'), 'utf8'), ''));
  });

  it('fails the close with ENOENT when the directory was removed and made again on another node meanwhile', async () => {
    const [da, db, zp] = fresh('replaced');
    fs.mkdirSync(path.join(da, 'd'));
    const before = fs.statSync(path.join(da, 'd')).ino;
    const fd = fs.openSync(path.join(da, 'd', 'f'), 'w');
    fs.writeSync(fd, 'for the old directory');
    eventually(() => assert.ok(fs.statSync(path.join(db, 'd')).isDirectory()));
    fs.rmdirSync(path.join(db, 'd'));
    fs.mkdirSync(path.join(db, 'd'));
    eventually(() => assert.notEqual(fs.statSync(path.join(da, 'd')).ino, before));
    assertErrno(() => fs.closeSync(fd), 'ENOENT');
    assert.equal(await exists(`${zp}/d/f`), false, 'not stored in the new directory');
    eventually(() => assert.deepEqual(fs.readdirSync(path.join(da, 'd')), []));
  });

  it('fails the close with EISDIR when another node made a directory of that name meanwhile; the file is gone, the directory shows', async () => {
    const [da, db, zp] = fresh('kind');
    const writer = fs.openSync(path.join(da, 'x'), 'w');
    const reader = fs.openSync(path.join(da, 'x'), 'r');
    fs.writeSync(writer, 'lost');
    fs.mkdirSync(path.join(db, 'x'));
    // A listing here meanwhile learns the name exists in ZooKeeper; dropping the file must not unlearn it.
    eventually(() => assert.deepEqual(fs.readdirSync(da), ['x']));
    assertErrno(() => fs.closeSync(writer), 'EISDIR');
    // The last close (a reader's) tries once more, then the file is dropped.
    fs.closeSync(reader);
    eventually(() => assert.ok(fs.statSync(path.join(da, 'x')).isDirectory()));
    assert.deepEqual(fs.readdirSync(da), ['x']);
    assert.equal((await plain.getData(`${zp}/x`)).data.length, 0, 'the directory\'s own data is untouched');
  });

  it('stores a new file larger than one znode in chunks, and keeps touch and unlink of a file being written free of requests', async () => {
    const [da, db, zp] = fresh('misc');
    const big = Buffer.alloc(3_000_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
    fs.writeFileSync(path.join(da, 'big'), big);
    eventually(() => assert.ok(fs.readFileSync(path.join(db, 'big')).equals(big)));
    // Times set to now on a file being written: nothing stored for them (the commit stamps it later).
    const touched = pyTry(
      `
fd = os.open(A[0], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.utime(fd)
os.close(fd)
`,
      [path.join(da, 'touched')],
    );
    assert.equal(touched, 'OK');
    // A new znode's create sets its content in the same transaction: version 1; a write after it would make 2.
    assert.equal((await plain.exists(`${zp}/touched`))?.version, 1, 'one create, no write after it');
    assert.ok(!(await plain.getData(`${zp}/.swarmvol`)).data.toString().includes('touched'), 'no attributes stored for it');
    // coreutils touch (no O_TRUNC: made at open): the times it sets to now through that descriptor need no request either.
    const before0 = await packets();
    pyTry(`import subprocess; subprocess.run(['touch', A[0]], check=True)`, [path.join(da, 'marker')]);
    const touchCost = (await packets()) - before0;
    assert.ok(touchCost >= 1 && touchCost <= 2, `touch of a new file cost ${touchCost} requests (1, the create, expected; at most a ping beside)`);
    assert.ok(!(await plain.getData(`${zp}/.swarmvol`)).data.toString().includes('marker'), 'no attributes stored for it');
    // A file removed before its first close never reaches ZooKeeper.
    const before = await packets();
    const fd = fs.openSync(path.join(da, 'scratch'), 'w');
    fs.writeSync(fd, 'x');
    fs.unlinkSync(path.join(da, 'scratch'));
    fs.closeSync(fd);
    const used = (await packets()) - before;
    assert.ok(used <= 1, `a file removed before its close cost ${used} requests (0 expected, at most a ping beside)`);
    assert.equal(await exists(`${zp}/scratch`), false);
    assert.deepEqual(fs.readdirSync(da).sort(), ['big', 'marker', 'touched']);
  });

  it('fails the close with ENOENT when the directory was removed on another node meanwhile, and the file is gone', async () => {
    const [da, , zp] = fresh('orphan');
    fs.mkdirSync(path.join(da, 'd'));
    const fd = fs.openSync(path.join(da, 'd', 'f'), 'w');
    fs.writeSync(fd, 'lost');
    await plain.delete(`${zp}/d/.swarmvol`);
    await plain.delete(`${zp}/d`);
    assertErrno(() => fs.closeSync(fd), 'ENOENT');
    eventually(() => assertErrno(() => fs.statSync(path.join(da, 'd', 'f')), 'ENOENT'));
  });
});
