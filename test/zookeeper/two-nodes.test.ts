// The ZooKeeper backend read-write: two mounts of one tree in two processes act
// as two nodes, against a real ZooKeeper, with a plain client as a third party.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { type CliMount } from '../helpers/mount.js';
import { assertErrno, errnoOf, eventually, NOBODY, renameat2, RENAME_EXCHANGE, RENAME_NOREPLACE, shSync, sleepMs } from '../helpers/posix.js';
import { startTwoNodes, type TwoNodes } from '../helpers/zookeeper.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 7) % 251;
  return b;
}

/** Polls (this process serves no mount, so blocking is fine) until `cond` holds. */
function waitSync(cond: () => boolean, what: string, timeoutMs = 3000): number {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    sleepMs(1);
  }
  return performance.now() - t0;
}

function readOr(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  }
}

describe('ZooKeeper backend, two nodes', () => {
  let plain: ZkClient;
  let a: CliMount;
  let b: CliMount;
  let seq = 0;
  /** A fresh directory for one test, seen as [on A, on B, its ZooKeeper path]. */
  const fresh = (label: string): [string, string, string] => {
    const name = `${++seq}-${label}`;
    fs.mkdirSync(path.join(a.mnt, name));
    return [path.join(a.mnt, name), path.join(b.mnt, name), `/vol/${name}`];
  };

  let nodes: TwoNodes | undefined;
  before(async () => {
    nodes = await startTwoNodes('/vol');
    ({ plain, a, b } = nodes);
  });
  after(() => nodes?.stop());

  it('shows every type made on one node on the other: files, empty files, directories, empty directories, symlinks', async () => {
    const [da, db, zp] = fresh('types');
    fs.writeFileSync(path.join(da, 'conf'), 'k=v\n');
    fs.writeFileSync(path.join(da, 'empty'), '');
    fs.mkdirSync(path.join(da, 'emptydir'));
    fs.mkdirSync(path.join(da, 'dir'));
    fs.writeFileSync(path.join(da, 'dir/inner'), 'i');
    fs.symlinkSync('conf', path.join(da, 'link'));
    fs.symlinkSync('/etc/hostname', path.join(da, 'abs'));
    assert.deepEqual(fs.readdirSync(db).sort(), ['abs', 'conf', 'dir', 'empty', 'emptydir', 'link']);
    assert.ok(fs.statSync(path.join(db, 'empty')).isFile(), 'an empty file stays a file on the other node');
    assert.ok(fs.statSync(path.join(db, 'emptydir')).isDirectory(), 'an empty directory stays a directory on the other node');
    assert.deepEqual(fs.readdirSync(path.join(db, 'emptydir')), []);
    assert.ok(fs.lstatSync(path.join(db, 'link')).isSymbolicLink());
    assert.equal(fs.readlinkSync(path.join(db, 'link')), 'conf');
    assert.equal(fs.readlinkSync(path.join(db, 'abs')), '/etc/hostname');
    assert.equal(fs.readFileSync(path.join(db, 'link'), 'utf8'), 'k=v\n');
    assert.equal(fs.readFileSync(path.join(db, 'dir/inner'), 'utf8'), 'i');
    // Interop: a plain client reads exactly the bytes; a symlink's znode holds its target.
    assert.equal((await plain.getData(`${zp}/conf`)).data.toString(), 'k=v\n');
    assert.equal((await plain.getData(`${zp}/link`)).data.toString(), 'conf');
    assert.equal((await plain.getData(`${zp}/empty`)).data.length, 0);
    // Both nodes report the same inode numbers.
    for (const n of ['conf', 'empty', 'emptydir', 'link']) assert.equal(fs.lstatSync(path.join(da, n)).ino, fs.lstatSync(path.join(db, n)).ino, n);
  });

  it('round-trips 300 KB and 1,000,000-byte files exactly, both ways and for a plain client', async () => {
    const [da, db, zp] = fresh('big');
    const mid = pattern(300_000, 1);
    const big = pattern(1_000_000, 2);
    fs.writeFileSync(path.join(da, '300k'), mid);
    fs.writeFileSync(path.join(db, '1m'), big);
    assert.equal(sha(fs.readFileSync(path.join(db, '300k'))), sha(mid));
    assert.equal(sha(fs.readFileSync(path.join(da, '1m'))), sha(big));
    assert.equal(fs.statSync(path.join(da, '1m')).size, 1_000_000);
    assert.equal(sha((await plain.getData(`${zp}/300k`)).data), sha(mid));
    assert.equal(sha((await plain.getData(`${zp}/1m`)).data), sha(big));
  });

  it('refuses a file above maxfilesize (64 MiB by default) with EFBIG and keeps the previous content whole', async () => {
    const [da, db, zp] = fresh('efbig');
    const f = path.join(da, 'f');
    fs.writeFileSync(f, 'old');
    const fd = fs.openSync(f, 'w');
    try {
      // A write across the limit stores what fits (the kernel sends it page by page), as under a file size rlimit.
      assert.equal(fs.writeSync(fd, Buffer.from('xy'), 0, 2, 64 * 1024 * 1024 - 1), 1);
      assert.equal(errnoOf(() => fs.writeSync(fd, Buffer.from('z'), 0, 1, 64 * 1024 * 1024)), 'EFBIG');
      assert.equal(errnoOf(() => fs.ftruncateSync(fd, 64 * 1024 * 1024 + 1)), 'EFBIG');
    } finally {
      fs.closeSync(fd);
    }
    // O_TRUNC then a write of the last byte allowed: a sparse 64 MiB file, stored in chunks (one of them).
    assert.equal(fs.statSync(path.join(db, 'f')).size, 64 * 1024 * 1024);
    assert.ok((await plain.getData(`${zp}/f`)).data.toString().startsWith('SWARMVOL-CHUNKED-FILE 1\n'));
    assert.equal(errnoOf(() => fs.truncateSync(f, 64 * 1024 * 1024 + 1)), 'EFBIG');
    fs.truncateSync(f, 3);
    assert.equal(fs.readFileSync(path.join(db, 'f')).toString(), '\0\0\0');
    assert.equal((await plain.getData(`${zp}/f`)).data.length, 3, 'back to a plain znode');
  });

  it('keeps writes invisible elsewhere until close, then shows the whole new content (close-to-open)', () => {
    const [da, db] = fresh('commit');
    fs.writeFileSync(path.join(da, 'f'), 'version 1');
    const fd = fs.openSync(path.join(da, 'f'), 'r+');
    try {
      fs.writeSync(fd, 'VERSION 2', 0);
      const own = Buffer.alloc(9);
      fs.readSync(fd, own, 0, 9, 0);
      assert.equal(own.toString(), 'VERSION 2', 'the writer sees its own writes at once');
      assert.equal(fs.readFileSync(path.join(db, 'f'), 'utf8'), 'version 1', 'another node sees the last committed version');
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    fs.fsyncSync(fd);
    waitSync(() => readOr(path.join(db, 'f')) === 'VERSION 2', 'fsync commits');
    fs.writeSync(fd, '3', 8);
    fs.closeSync(fd);
    waitSync(() => readOr(path.join(db, 'f')) === 'VERSION 3', 'close commits');
  });

  it('never shows a mix of two versions to a reader on the other node during rewrites', () => {
    const [da, db] = fresh('atomic');
    const size = 200_000;
    fs.writeFileSync(path.join(da, 'f'), Buffer.alloc(size, 0));
    const versions = new Set<number>();
    for (let v = 1; v <= 20; v++) {
      // Written in 4 KiB pieces: a reader must never see some pieces new and some old.
      const fd = fs.openSync(path.join(da, 'f'), 'r+');
      for (let off = 0; off < size; off += 4096) fs.writeSync(fd, Buffer.alloc(Math.min(4096, size - off), v), 0, Math.min(4096, size - off), off);
      fs.closeSync(fd);
      const seen = fs.readFileSync(path.join(db, 'f'));
      assert.equal(seen.length, size);
      const first = seen[0]!;
      assert.ok(seen.every((x) => x === first), `version ${v}: a mix of versions was read`);
      versions.add(first);
    }
    assert.ok(versions.size > 1);
  });

  it('measures close() on one node to the new content on the other: p99 under 100 ms', () => {
    const [da, db] = fresh('latency');
    const fa = path.join(da, 'cert.pem');
    const fb = path.join(db, 'cert.pem');
    fs.writeFileSync(fa, 'v0');
    waitSync(() => readOr(fb) === 'v0', 'first version');
    const delays: number[] = [];
    for (let i = 1; i <= 100; i++) {
      fs.readFileSync(fb); // B has it cached in the kernel
      fs.writeFileSync(fa, `v${i}`);
      delays.push(waitSync(() => readOr(fb) === `v${i}`, `version ${i}`));
    }
    delays.sort((x, y) => x - y);
    const p50 = delays[49]!;
    const p99 = delays[98]!;
    console.log(`close() on A -> new content read on B: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${delays[99]!.toFixed(1)} ms (100 rewrites)`);
    assert.ok(p99 < 100, `p99 ${p99} ms`);
  });

  it('persists chmod, chown and utimens, seen on the other node; new entries get the creator as owner', () => {
    const [da, db] = fresh('attrs');
    const f = path.join(da, 'key.pem');
    fs.writeFileSync(f, 'secret');
    fs.chmodSync(f, 0o600);
    fs.chownSync(f, 1000, 1001);
    fs.utimesSync(f, new Date('2021-03-04T05:06:07.5Z'), new Date('2020-01-02T03:04:05.25Z'));
    const sb = fs.statSync(path.join(db, 'key.pem'));
    assert.equal(sb.mode & 0o7777, 0o600);
    assert.equal(sb.uid, 1000);
    assert.equal(sb.gid, 1001);
    assert.equal(sb.mtime.toISOString(), '2020-01-02T03:04:05.250Z');
    assert.equal(sb.atime.toISOString(), '2021-03-04T05:06:07.500Z');
    // A content change makes ZooKeeper's own mtime authoritative again.
    fs.appendFileSync(f, '!');
    eventually(() => assert.ok(fs.statSync(path.join(db, 'key.pem')).mtimeMs > Date.now() - 60_000));
    assert.equal(fs.statSync(path.join(db, 'key.pem')).mode & 0o7777, 0o600, 'mode survives a content change');
    // Made by an unprivileged user: its owner, on both nodes.
    fs.chmodSync(da, 0o777);
    const r = shSync(`umask 077; echo hi > ${da}/mine; mkdir ${da}/mydir`, { uid: NOBODY, gid: NOBODY });
    assert.equal(r.code, 0, r.stderr);
    for (const n of ['mine', 'mydir']) {
      const s = fs.statSync(path.join(db, n));
      assert.equal(s.uid, NOBODY, n);
      assert.equal(s.gid, NOBODY, n);
      assert.equal(s.mode & 0o777, n === 'mine' ? 0o600 : 0o700, n);
    }
    const denied = shSync(`cat ${db}/key.pem`, { uid: NOBODY, gid: NOBODY });
    assert.notEqual(denied.code, 0, 'mode 600 is enforced on the other node');
    assert.match(denied.stderr, /Permission denied/);
  });

  it('lets the kernel keep attributes from a getattr or setattr reply past a second; a change elsewhere still shows at once', () => {
    const [da, db] = fresh('attr-cache');
    fs.writeFileSync(path.join(da, 'f'), 'x');
    fs.chmodSync(path.join(db, 'f'), 0o600);
    sleepMs(300); // B's own change comes back as an event, which drops the attributes...
    assert.equal(fs.statSync(path.join(db, 'f')).mode & 0o777, 0o600); // ...so this is a GETATTR
    sleepMs(1500);
    // With B's mount process stopped, only the kernel's cache can answer.
    b.child.kill('SIGSTOP');
    let stat: ReturnType<typeof spawnSync>;
    try {
      stat = spawnSync('timeout', ['-s', 'KILL', '3', 'stat', '-c', '%a', path.join(db, 'f')], { encoding: 'utf8' });
    } finally {
      b.child.kill('SIGCONT');
    }
    assert.equal(stat.status, 0, `stat needed B's mount process: ${String(stat.stderr)}`);
    assert.equal(String(stat.stdout).trim(), '600');
    fs.chmodSync(path.join(da, 'f'), 0o640);
    waitSync(() => (fs.statSync(path.join(db, 'f')).mode & 0o777) === 0o640, "A's chmod seen on B");
  });

  it("tells its own kernel the attributes its own changes give: a commit after a getattr, a directory's new inode numbers after its rename, a directory's data", () => {
    const [da, db] = fresh('own-attrs');
    const times = (p: string) => {
      const st = fs.statSync(p);
      return { mtime: st.mtimeMs, ctime: st.ctimeMs, size: st.size, ino: st.ino };
    };
    // A commit at close, after the kernel took a getattr's answer for the buffered content.
    const f = path.join(da, 'f');
    fs.writeFileSync(f, 'old');
    const fd = fs.openSync(f, 'w');
    fs.writeSync(fd, 'new content');
    assert.equal(fs.fstatSync(fd).size, 11);
    sleepMs(20); // the commit's times differ from the buffer's
    fs.closeSync(fd);
    waitSync(() => readOr(path.join(db, 'f')) === 'new content', 'the commit seen on B');
    assert.deepEqual(times(f), times(path.join(db, 'f')), 'A shows the stored attributes, as B does');

    // A rename re-creates the znodes below: new inode numbers, the same on both nodes.
    fs.mkdirSync(path.join(da, 'e', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(da, 'e', 'sub', 'y'), 'y');
    const before = times(path.join(da, 'e', 'sub', 'y'));
    fs.renameSync(path.join(da, 'e'), path.join(da, 'e2'));
    waitSync(() => fs.existsSync(path.join(db, 'e2', 'sub', 'y')), 'the rename seen on B');
    for (const p of ['e2/sub', 'e2/sub/y']) assert.equal(times(path.join(da, p)).ino, times(path.join(db, p)).ino, p);
    assert.notEqual(times(path.join(da, 'e2', 'sub', 'y')).ino, before.ino);

    // A directory's own data, written and removed through its .zdata.
    const dir = path.join(da, 'withdata');
    fs.mkdirSync(dir);
    fs.statSync(dir);
    sleepMs(20);
    fs.writeFileSync(path.join(dir, '.zdata'), 'dir bytes');
    waitSync(() => readOr(path.join(db, 'withdata', '.zdata')) === 'dir bytes', 'the data seen on B');
    assert.equal(times(dir).mtime, times(path.join(db, 'withdata')).mtime, "the directory's mtime after its data was written");
    sleepMs(20);
    fs.rmSync(path.join(dir, '.zdata'));
    waitSync(() => readOr(path.join(db, 'withdata', '.zdata')) === 'ENOENT', 'the removal seen on B');
    assert.equal(readOr(path.join(dir, '.zdata')), 'ENOENT');
    assert.equal(errnoOf(() => fs.statSync(path.join(dir, '.zdata'))), 'ENOENT');
    assert.equal(times(dir).mtime, times(path.join(db, 'withdata')).mtime, "the directory's mtime after its data was removed");
  });

  it('a descriptor kept open on the old version leaves no old bytes to opens of the new one, then or after it closes', () => {
    const [da, db] = fresh('older-descriptor');
    const size = 12288;
    fs.writeFileSync(path.join(da, 'f'), Buffer.alloc(size, 'a'));
    const readAt = (fd: number, offset: number, length: number) => {
      const buf = Buffer.alloc(length);
      return buf.subarray(0, fs.readSync(fd, buf, 0, length, offset)).toString();
    };
    const older = fs.openSync(path.join(db, 'f'), 'r');
    let newer: number | undefined;
    try {
      assert.equal(readAt(older, 0, 4096), 'a'.repeat(4096));
      fs.writeFileSync(path.join(da, 'f'), Buffer.alloc(size, 'b')); // the same size: only the content tells
      waitSync(() => readOr(path.join(db, 'f')) === 'b'.repeat(size), "A's rewrite seen by a new open on B");
      newer = fs.openSync(path.join(db, 'f'), 'r');
      // The older descriptor reads on (its own version), filling pages; the newer one reads after it.
      assert.equal(readAt(older, 4096, size - 4096), 'a'.repeat(size - 4096));
      assert.equal(readAt(newer, 0, size), 'b'.repeat(size));
      // Opens meanwhile bypass the page cache (DIRECT_IO); a shared read-only mmap of one still works.
      const mapped = spawnSync('python3', ['-c', 'import mmap,sys; f=open(sys.argv[1],"rb"); m=mmap.mmap(f.fileno(),0,access=mmap.ACCESS_READ); print(m[:3].decode(), len(m))', path.join(db, 'f')], { encoding: 'utf8' });
      assert.equal(mapped.status, 0, String(mapped.stderr));
      assert.equal(String(mapped.stdout).trim(), `bbb ${size}`);
      // A directory's own data (.zdata), held open the same way while a plain client changes it.
      fs.mkdirSync(path.join(da, 'd'));
      fs.writeFileSync(path.join(da, 'd', '.zdata'), 'old data');
      const zdata = fs.openSync(path.join(db, 'd', '.zdata'), 'r');
      try {
        assert.equal(readAt(zdata, 0, 100), 'old data');
        fs.writeFileSync(path.join(da, 'd', '.zdata'), 'new data');
        waitSync(() => readOr(path.join(db, 'd', '.zdata')) === 'new data', "the directory's new data seen by a new open on B while the old one is open");
      } finally {
        fs.closeSync(zdata);
      }
    } finally {
      fs.closeSync(older);
      if (newer !== undefined) fs.closeSync(newer);
    }
    assert.equal(readOr(path.join(db, 'f')), 'b'.repeat(size));
    sleepMs(200);
    assert.equal(readOr(path.join(db, 'f')), 'b'.repeat(size), 'still the new content once every descriptor is closed');
  });

  it('renames files and whole non-empty directories atomically, with NOREPLACE and EXCHANGE', async () => {
    const [da, db, zp] = fresh('rename');
    fs.mkdirSync(path.join(da, 'site/conf.d'), { recursive: true });
    fs.writeFileSync(path.join(da, 'site/index.html'), '<h1>');
    fs.writeFileSync(path.join(da, 'site/conf.d/a.conf'), 'a');
    fs.mkdirSync(path.join(da, 'site/empty'));
    fs.symlinkSync('index.html', path.join(da, 'site/home'));
    fs.chmodSync(path.join(da, 'site/conf.d/a.conf'), 0o640);
    const mtime = fs.statSync(path.join(da, 'site/index.html')).mtimeMs;
    fs.renameSync(path.join(da, 'site'), path.join(da, 'live'));
    assert.deepEqual(fs.readdirSync(db).sort(), ['live']);
    assert.deepEqual(fs.readdirSync(path.join(db, 'live')).sort(), ['conf.d', 'empty', 'home', 'index.html']);
    assert.equal(fs.readFileSync(path.join(db, 'live/conf.d/a.conf'), 'utf8'), 'a');
    assert.equal(fs.statSync(path.join(db, 'live/conf.d/a.conf')).mode & 0o777, 0o640);
    assert.ok(fs.statSync(path.join(db, 'live/empty')).isDirectory());
    assert.equal(fs.readlinkSync(path.join(db, 'live/home')), 'index.html');
    assert.equal(fs.statSync(path.join(db, 'live/index.html')).mtimeMs, mtime, 'rename keeps mtime');
    assert.equal(await plain.exists(`${zp}/site`), null);
    assert.equal((await plain.getData(`${zp}/live/index.html`)).data.toString(), '<h1>');
    // Inode numbers stay unique after a whole subtree was re-created in one transaction.
    const inos = shSync(`find ${db}/live -printf '%i\\n' | sort | uniq -d`);
    assert.equal(inos.stdout, '', 'duplicate inode numbers');
    // Files: over an existing one, NOREPLACE, EXCHANGE.
    fs.writeFileSync(path.join(da, 'new.conf'), 'new');
    fs.writeFileSync(path.join(da, 'cur.conf'), 'cur');
    fs.renameSync(path.join(da, 'new.conf'), path.join(da, 'cur.conf'));
    assert.equal(fs.readFileSync(path.join(db, 'cur.conf'), 'utf8'), 'new');
    assert.ok(!fs.existsSync(path.join(db, 'new.conf')));
    fs.writeFileSync(path.join(da, 'other'), 'other');
    assert.equal(renameat2(path.join(da, 'other'), path.join(da, 'cur.conf'), RENAME_NOREPLACE), 'EEXIST');
    assert.equal(renameat2(path.join(da, 'other'), path.join(da, 'live'), RENAME_EXCHANGE), 'OK');
    eventually(() => {
      assert.ok(fs.statSync(path.join(db, 'other')).isDirectory());
      assert.equal(fs.readFileSync(path.join(db, 'other/index.html'), 'utf8'), '<h1>');
      assert.equal(fs.readFileSync(path.join(db, 'live'), 'utf8'), 'other');
    });
    // Errors as on a local disk.
    fs.mkdirSync(path.join(da, 'full'));
    fs.writeFileSync(path.join(da, 'full/x'), 'x');
    assertErrno(() => fs.renameSync(path.join(da, 'other'), path.join(da, 'full')), 'ENOTEMPTY');
    assertErrno(() => fs.renameSync(path.join(da, 'other'), path.join(da, 'cur.conf')), 'ENOTDIR');
    assertErrno(() => fs.renameSync(path.join(da, 'cur.conf'), path.join(da, 'full')), 'EISDIR');
  });

  it('keeps an open file writable across its rename on the same node, and certbot-style replace is atomic for readers', () => {
    const [da, db] = fresh('open-rename');
    const fd = fs.openSync(path.join(da, 'tmp'), 'w');
    fs.writeSync(fd, 'part1 ');
    fs.renameSync(path.join(da, 'tmp'), path.join(da, 'final'));
    fs.writeSync(fd, 'part2');
    fs.closeSync(fd);
    waitSync(() => readOr(path.join(db, 'final')) === 'part1 part2', 'content written after the rename');
    fs.mkdirSync(path.join(da, 'sub'));
    const fd2 = fs.openSync(path.join(da, 'sub/f'), 'w');
    fs.renameSync(path.join(da, 'sub'), path.join(da, 'moved'));
    fs.writeSync(fd2, 'in a moved directory');
    fs.closeSync(fd2);
    waitSync(() => readOr(path.join(db, 'moved/f')) === 'in a moved directory', 'content written after the directory rename');
  });

  it('O_EXCL is enforced across nodes, O_APPEND appends, truncate works with and without an open file', () => {
    const [da, db] = fresh('flags');
    fs.writeFileSync(path.join(da, 'lock'), String(process.pid), { flag: 'wx' });
    assertErrno(() => fs.writeFileSync(path.join(db, 'lock'), 'other', { flag: 'wx' }), 'EEXIST');
    fs.writeFileSync(path.join(da, 'log'), 'one\n');
    fs.appendFileSync(path.join(db, 'log'), 'two\n');
    fs.appendFileSync(path.join(da, 'log'), 'three\n');
    eventually(() => assert.equal(fs.readFileSync(path.join(db, 'log'), 'utf8'), 'one\ntwo\nthree\n'));
    fs.truncateSync(path.join(da, 'log'), 3);
    eventually(() => assert.equal(fs.readFileSync(path.join(db, 'log'), 'utf8'), 'one'));
    fs.truncateSync(path.join(db, 'log'), 6);
    eventually(() => assert.deepEqual(fs.readFileSync(path.join(da, 'log')), Buffer.from('one\0\0\0')));
    const fd = fs.openSync(path.join(da, 'log'), 'r+');
    fs.ftruncateSync(fd, 1);
    fs.closeSync(fd);
    eventually(() => assert.equal(fs.readFileSync(path.join(db, 'log'), 'utf8'), 'o'));
  });

  it('removes files and directories everywhere; rmdir refuses a non-empty directory', async () => {
    const [da, db, zp] = fresh('remove');
    fs.mkdirSync(path.join(da, 'd'));
    fs.writeFileSync(path.join(da, 'd/f'), 'f');
    assertErrno(() => fs.rmdirSync(path.join(db, 'd')), 'ENOTEMPTY');
    fs.unlinkSync(path.join(db, 'd/f'));
    assert.ok(fs.statSync(path.join(da, 'd')).isDirectory(), 'an emptied directory stays a directory');
    assert.deepEqual(fs.readdirSync(path.join(da, 'd')), []);
    fs.rmdirSync(path.join(da, 'd'));
    eventually(() => assert.ok(!fs.existsSync(path.join(db, 'd'))));
    assert.equal(await plain.exists(`${zp}/d`), null);
    // A directory made by another tool (no marker) stays a directory when emptied through the mount.
    await plain.create(`${zp}/foreign`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
    await plain.create(`${zp}/foreign/only`, Buffer.from('x'), OPEN_ACL_UNSAFE);
    waitSync(() => fs.existsSync(path.join(da, 'foreign/only')), 'foreign tree visible');
    fs.unlinkSync(path.join(da, 'foreign/only'));
    assert.ok(fs.statSync(path.join(db, 'foreign')).isDirectory());
    // rm -rf of a whole tree.
    fs.mkdirSync(path.join(da, 'tree/a/b'), { recursive: true });
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(da, `tree/a/b/${i}`), String(i));
    fs.rmSync(path.join(db, 'tree'), { recursive: true });
    eventually(() => assert.ok(!fs.existsSync(path.join(da, 'tree'))));
  });

  it('hides its markers and refuses reserved names with EPERM', async () => {
    const [da, , zp] = fresh('reserved');
    fs.mkdirSync(path.join(da, 'd'));
    assert.deepEqual(fs.readdirSync(path.join(da, 'd')), []);
    assert.ok((await plain.getChildren(`${zp}/d`)).children.includes('.swarmvol'), 'the marker is in ZooKeeper');
    assertErrno(() => fs.mkdirSync(path.join(da, '.swarmvol')), 'EPERM');
    assertErrno(() => fs.writeFileSync(path.join(da, '.swarmvol'), 'x'), 'EPERM');
    fs.writeFileSync(path.join(da, 'f'), 'f');
    assertErrno(() => fs.renameSync(path.join(da, 'f'), path.join(da, '.swarmvol')), 'EPERM');
  });

  it('refuses names ZooKeeper cannot store with EINVAL, and takes every other odd name', () => {
    const [da, db] = fresh('names');
    for (const bad of ['new\nline', 'tab\there', 'bell\u0007', 'del\u007f', 'emoji\u{1F600}', 'private\ue000']) {
      assertErrno(() => fs.writeFileSync(path.join(da, bad), 'x'), 'EINVAL', JSON.stringify(bad));
      assertErrno(() => fs.mkdirSync(path.join(da, bad)), 'EINVAL', JSON.stringify(bad));
    }
    fs.writeFileSync(path.join(da, 'plain'), 'p');
    assertErrno(() => fs.renameSync(path.join(da, 'plain'), path.join(da, 'emoji\u{1F600}')), 'EINVAL');
    const good = ['x'.repeat(255), 'space and ünïcödé', '...', '.hidden', '-dash', 'quote"\'', 'per%cent', 'back\\slash', '中文名字'];
    for (const name of good) fs.writeFileSync(path.join(da, name), name);
    for (const name of good) assert.equal(fs.readFileSync(path.join(db, name), 'utf8'), name);
    assertErrno(() => fs.writeFileSync(path.join(da, 'x'.repeat(256)), 'x'), 'ENAMETOOLONG');
  });

  it('shows znodes made by a plain client in the mount, and its changes at once', async () => {
    const [da, db, zp] = fresh('plain');
    await plain.create(`${zp}/from-zkcli`, Buffer.from('zk'), OPEN_ACL_UNSAFE);
    waitSync(() => readOr(path.join(da, 'from-zkcli')) === 'zk', 'created by a plain client');
    await plain.setData(`${zp}/from-zkcli`, Buffer.from('zk2'));
    waitSync(() => readOr(path.join(db, 'from-zkcli')) === 'zk2', 'changed by a plain client');
    await plain.delete(`${zp}/from-zkcli`);
    waitSync(() => readOr(path.join(da, 'from-zkcli')) === 'ENOENT', 'deleted by a plain client');
  });
});
