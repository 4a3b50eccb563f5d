// POSIX behaviour of a real kernel mount of the memory backend: results and
// exact errno codes of file and directory operations, renames (incl.
// renameat2 flags), links, sparse files, timestamps and statfs.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sh, sharedCliMount } from '../helpers/mount.js';
import { assertErrno, py, pyTry, renameat2, RENAME_EXCHANGE, RENAME_NOREPLACE, run, sleepMs } from '../helpers/posix.js';

const { O_CREAT, O_EXCL, O_RDWR, O_WRONLY, O_TRUNC, O_APPEND, O_NOFOLLOW, O_DIRECTORY, O_RDONLY } = fs.constants;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('POSIX semantics (CLI mount, memory backend)', () => {
  const shared = sharedCliMount();
  const fresh = shared.fresh;

  describe('create, read, write, stat', () => {
    it('writes, reads back and stats a new file', () => {
      const d = fresh('basic');
      const f = path.join(d, 'file.txt');
      fs.writeFileSync(f, 'hello world\n', { mode: 0o640 });
      assert.equal(fs.readFileSync(f, 'utf8'), 'hello world\n');
      const st = fs.statSync(f);
      assert.ok(st.isFile());
      assert.equal(st.size, 12);
      assert.equal(st.nlink, 1);
      assert.equal(st.uid, process.getuid!());
      assert.equal(st.gid, process.getgid!());
      assert.equal(st.mode & 0o7777, 0o640 & ~process.umask());
      assert.deepEqual(fs.readdirSync(d), ['file.txt']);
    });

    it('pwrite/pread at offsets, overwrite in the middle, read past EOF', () => {
      const f = path.join(fresh('offsets'), 'f');
      const fd = fs.openSync(f, 'w+');
      try {
        assert.equal(fs.writeSync(fd, Buffer.from('0123456789'), 0, 10, 0), 10);
        assert.equal(fs.writeSync(fd, Buffer.from('abc'), 0, 3, 4), 3);
        const buf = Buffer.alloc(20);
        assert.equal(fs.readSync(fd, buf, 0, 20, 0), 10);
        assert.equal(buf.subarray(0, 10).toString(), '0123abc789');
        assert.equal(fs.readSync(fd, buf, 0, 5, 8), 2);
        assert.equal(buf.subarray(0, 2).toString(), '89');
        assert.equal(fs.readSync(fd, buf, 0, 5, 10), 0, 'read at EOF returns 0');
        assert.equal(fs.readSync(fd, buf, 0, 5, 1000), 0, 'read past EOF returns 0');
        assert.equal(fs.fstatSync(fd).size, 10);
      } finally {
        fs.closeSync(fd);
      }
    });

    it('a multi-megabyte file with a non-trivial pattern round-trips byte for byte', () => {
      const f = path.join(fresh('big'), 'f');
      const data = Buffer.alloc(5 * MiB + 123);
      for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 13)) & 0xff;
      fs.writeFileSync(f, data);
      assert.equal(fs.statSync(f).size, data.length);
      assert.ok(fs.readFileSync(f).equals(data));
    });

    it('directory link counts: 2 + number of subdirectories', () => {
      const d = fresh('nlink');
      assert.equal(fs.statSync(d).nlink, 2);
      fs.mkdirSync(path.join(d, 'a'));
      fs.mkdirSync(path.join(d, 'b'));
      fs.writeFileSync(path.join(d, 'file'), '');
      assert.equal(fs.statSync(d).nlink, 4);
      fs.rmdirSync(path.join(d, 'a'));
      assert.equal(fs.statSync(d).nlink, 3);
      assert.ok(fs.statSync(path.join(d, 'b')).isDirectory());
      assert.equal(fs.statSync(path.join(d, 'b', '..')).ino, fs.statSync(d).ino);
    });
  });

  describe('errno of failing operations', () => {
    it('ENOENT: open, stat, unlink, rmdir, rename of a missing name; a path through a missing directory', () => {
      const d = fresh('enoent');
      const missing = path.join(d, 'missing');
      assertErrno(() => fs.openSync(missing, 'r'), 'ENOENT', 'open');
      assertErrno(() => fs.openSync(missing, 'r+'), 'ENOENT', 'open r+');
      assertErrno(() => fs.statSync(missing), 'ENOENT', 'stat');
      assertErrno(() => fs.lstatSync(missing), 'ENOENT', 'lstat');
      assertErrno(() => fs.unlinkSync(missing), 'ENOENT', 'unlink');
      assertErrno(() => fs.rmdirSync(missing), 'ENOENT', 'rmdir');
      assertErrno(() => fs.renameSync(missing, path.join(d, 'x')), 'ENOENT', 'rename');
      assertErrno(() => fs.readlinkSync(missing), 'ENOENT', 'readlink');
      assertErrno(() => fs.chmodSync(missing, 0o600), 'ENOENT', 'chmod');
      assertErrno(() => fs.truncateSync(missing, 0), 'ENOENT', 'truncate');
      assertErrno(() => fs.linkSync(missing, path.join(d, 'l')), 'ENOENT', 'link of a missing source');
      assertErrno(() => fs.writeFileSync(path.join(d, 'nodir', 'f'), 'x'), 'ENOENT', 'create through a missing dir');
      assertErrno(() => fs.mkdirSync(path.join(d, 'nodir', 'sub')), 'ENOENT', 'mkdir through a missing dir');
      assertErrno(() => fs.statSync(path.join(d, 'nodir', 'f')), 'ENOENT', 'stat through a missing dir');
      fs.writeFileSync(path.join(d, 'src'), 'x');
      assertErrno(() => fs.renameSync(path.join(d, 'src'), path.join(d, 'nodir', 'dst')), 'ENOENT', 'rename into a missing dir');
      assert.equal(fs.readFileSync(path.join(d, 'src'), 'utf8'), 'x');
    });

    it('EEXIST: mkdir over a directory or file, O_CREAT|O_EXCL, link and symlink onto an existing name', () => {
      const d = fresh('eexist');
      const dir = path.join(d, 'dir');
      const file = path.join(d, 'file');
      fs.mkdirSync(dir);
      fs.writeFileSync(file, 'content');
      assertErrno(() => fs.mkdirSync(dir), 'EEXIST', 'mkdir over dir');
      assertErrno(() => fs.mkdirSync(file), 'EEXIST', 'mkdir over file');
      assertErrno(() => fs.openSync(file, O_CREAT | O_EXCL | O_WRONLY, 0o644), 'EEXIST', 'O_EXCL over file');
      assertErrno(() => fs.openSync(dir, O_CREAT | O_EXCL | O_WRONLY, 0o644), 'EEXIST', 'O_EXCL over dir');
      assertErrno(() => fs.linkSync(file, dir), 'EEXIST', 'link onto dir');
      fs.writeFileSync(path.join(d, 'other'), 'o');
      assertErrno(() => fs.linkSync(path.join(d, 'other'), file), 'EEXIST', 'link onto file');
      assertErrno(() => fs.symlinkSync('target', file), 'EEXIST', 'symlink onto file');
      assertErrno(() => fs.symlinkSync('target', dir), 'EEXIST', 'symlink onto dir');
      assert.equal(pyTry('os.mkfifo(A[0])', [file]), 'EEXIST', 'mkfifo onto file');
      assert.equal(fs.readFileSync(file, 'utf8'), 'content', 'the existing file is untouched');
      assert.equal(fs.statSync(file).nlink, 1);
    });

    it('ENOTEMPTY: rmdir of a non-empty directory; rename of a directory over a non-empty one', () => {
      const d = fresh('enotempty');
      const full = path.join(d, 'full');
      const other = path.join(d, 'other');
      fs.mkdirSync(full);
      fs.writeFileSync(path.join(full, 'f'), 'x');
      fs.mkdirSync(other);
      assertErrno(() => fs.rmdirSync(full), 'ENOTEMPTY', 'rmdir of a dir with a file');
      fs.mkdirSync(path.join(other, 'sub'));
      assertErrno(() => fs.rmdirSync(other), 'ENOTEMPTY', 'rmdir of a dir with a subdir');
      assertErrno(() => fs.renameSync(other, full), 'ENOTEMPTY', 'rename dir over non-empty dir');
      assert.deepEqual(fs.readdirSync(full), ['f']);
      assert.deepEqual(fs.readdirSync(other), ['sub']);
    });

    it('ENOTDIR: rmdir of a file, a path component that is a file, rename of a directory over a file', () => {
      const d = fresh('enotdir');
      const file = path.join(d, 'file');
      const dir = path.join(d, 'dir');
      fs.writeFileSync(file, 'x');
      fs.mkdirSync(dir);
      assertErrno(() => fs.rmdirSync(file), 'ENOTDIR', 'rmdir of a file');
      assertErrno(() => fs.statSync(path.join(file, 'x')), 'ENOTDIR', 'stat file/x');
      assertErrno(() => fs.openSync(path.join(file, 'x'), 'w'), 'ENOTDIR', 'create file/x');
      assertErrno(() => fs.mkdirSync(path.join(file, 'x')), 'ENOTDIR', 'mkdir file/x');
      assertErrno(() => fs.readdirSync(file), 'ENOTDIR', 'readdir of a file');
      assertErrno(() => fs.openSync(file, O_RDONLY | O_DIRECTORY), 'ENOTDIR', 'O_DIRECTORY on a file');
      assertErrno(() => fs.renameSync(dir, file), 'ENOTDIR', 'rename dir over file');
      assert.ok(fs.statSync(dir).isDirectory());
      assert.equal(fs.readFileSync(file, 'utf8'), 'x');
    });

    it('EISDIR: unlink of a directory, open of a directory for writing, rename of a file over a directory', () => {
      const d = fresh('eisdir');
      const dir = path.join(d, 'dir');
      const file = path.join(d, 'file');
      fs.mkdirSync(dir);
      fs.writeFileSync(file, 'x');
      assertErrno(() => fs.unlinkSync(dir), 'EISDIR', 'unlink of a dir');
      assertErrno(() => fs.openSync(dir, 'w'), 'EISDIR', 'open dir O_WRONLY|O_CREAT|O_TRUNC');
      assertErrno(() => fs.openSync(dir, O_RDWR), 'EISDIR', 'open dir O_RDWR');
      assertErrno(() => fs.openSync(dir, O_WRONLY), 'EISDIR', 'open dir O_WRONLY');
      assertErrno(() => fs.renameSync(file, dir), 'EISDIR', 'rename file over dir');
      assertErrno(() => fs.readFileSync(dir), 'EISDIR', 'read(2) of a directory');
      assert.ok(fs.statSync(dir).isDirectory());
      assert.ok(fs.statSync(file).isFile());
    });

    it('EINVAL: rename of a directory into its own subdirectory; readlink of a regular file', () => {
      const d = fresh('einval');
      const a = path.join(d, 'a');
      fs.mkdirSync(path.join(a, 'b', 'c'), { recursive: true });
      assertErrno(() => fs.renameSync(a, path.join(a, 'b', 'x')), 'EINVAL', 'a -> a/b/x');
      assertErrno(() => fs.renameSync(a, path.join(a, 'b', 'c', 'x')), 'EINVAL', 'a -> a/b/c/x');
      assertErrno(() => fs.renameSync(a, path.join(a, 'x')), 'EINVAL', 'a -> a/x');
      assert.ok(fs.statSync(path.join(a, 'b', 'c')).isDirectory());
      fs.writeFileSync(path.join(d, 'file'), 'x');
      assertErrno(() => fs.readlinkSync(path.join(d, 'file')), 'EINVAL', 'readlink of a file');
      assertErrno(() => fs.readlinkSync(a), 'EINVAL', 'readlink of a directory');
    });

    it('ENAMETOOLONG: a 256-byte name fails everywhere, 255 bytes work (bytes, not characters)', () => {
      const d = fresh('namelen');
      const long = 'x'.repeat(256);
      const ok = 'y'.repeat(255);
      assertErrno(() => fs.writeFileSync(path.join(d, long), 'x'), 'ENAMETOOLONG', 'create');
      assertErrno(() => fs.mkdirSync(path.join(d, long)), 'ENAMETOOLONG', 'mkdir');
      assertErrno(() => fs.statSync(path.join(d, long)), 'ENAMETOOLONG', 'stat');
      assertErrno(() => fs.symlinkSync('t', path.join(d, long)), 'ENAMETOOLONG', 'symlink');
      fs.writeFileSync(path.join(d, ok), 'fits');
      assert.equal(fs.readFileSync(path.join(d, ok), 'utf8'), 'fits');
      assertErrno(() => fs.renameSync(path.join(d, ok), path.join(d, long)), 'ENAMETOOLONG', 'rename to 256');
      assertErrno(() => fs.linkSync(path.join(d, ok), path.join(d, long)), 'ENAMETOOLONG', 'link to 256');
      // Multi-byte UTF-8: 128 x "é" is 256 bytes; 127 x "é" + "a" is 255.
      const e256 = 'é'.repeat(128);
      const e255 = 'é'.repeat(127) + 'a';
      assertErrno(() => fs.writeFileSync(path.join(d, e256), 'x'), 'ENAMETOOLONG', '256-byte utf-8 name');
      fs.writeFileSync(path.join(d, e255), 'utf8');
      fs.mkdirSync(path.join(d, 'z'.repeat(255)));
      assert.deepEqual(fs.readdirSync(d).sort(), [e255, ok, 'z'.repeat(255)].sort());
    });

    it('EXDEV: rename and link from the mount to another filesystem', () => {
      const f = path.join(fresh('exdev'), 'f');
      fs.writeFileSync(f, 'x');
      const outside = path.join(os.tmpdir(), `swarmvol-exdev-${process.pid}`);
      try {
        assertErrno(() => fs.renameSync(f, outside), 'EXDEV', 'rename out');
        assertErrno(() => fs.linkSync(f, outside), 'EXDEV', 'link out');
        assert.equal(fs.existsSync(outside), false);
        assert.equal(fs.readFileSync(f, 'utf8'), 'x');
      } finally {
        fs.rmSync(outside, { force: true });
      }
    });

    it('EPERM: hard link to a directory', () => {
      const d = fresh('eperm');
      fs.mkdirSync(path.join(d, 'dir'));
      assertErrno(() => fs.linkSync(path.join(d, 'dir'), path.join(d, 'l')), 'EPERM');
    });
  });

  describe('rename', () => {
    it('over a file: the inode and content move, the old name is gone, an open fd of the victim still reads it', () => {
      const d = fresh('rename-file');
      const a = path.join(d, 'a');
      const b = path.join(d, 'b');
      fs.writeFileSync(a, 'AAAA');
      fs.writeFileSync(b, 'BB');
      const inoA = fs.statSync(a).ino;
      const inoB = fs.statSync(b).ino;
      assert.notEqual(inoA, inoB);
      const fdB = fs.openSync(b, 'r');
      try {
        fs.renameSync(a, b);
        assertErrno(() => fs.statSync(a), 'ENOENT');
        assert.equal(fs.statSync(b).ino, inoA);
        assert.equal(fs.readFileSync(b, 'utf8'), 'AAAA');
        assert.deepEqual(fs.readdirSync(d), ['b']);
        const buf = Buffer.alloc(10);
        assert.equal(fs.readSync(fdB, buf, 0, 10, 0), 2);
        assert.equal(buf.subarray(0, 2).toString(), 'BB');
        assert.equal(fs.fstatSync(fdB).nlink, 0);
      } finally {
        fs.closeSync(fdB);
      }
    });

    it('over an empty directory: the directory moves with its contents', () => {
      const d = fresh('rename-dir');
      const src = path.join(d, 'src');
      const dst = path.join(d, 'dst');
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, 'inside'), 'in');
      fs.mkdirSync(dst);
      const ino = fs.statSync(src).ino;
      fs.renameSync(src, dst);
      assertErrno(() => fs.statSync(src), 'ENOENT');
      assert.equal(fs.statSync(dst).ino, ino);
      assert.equal(fs.readFileSync(path.join(dst, 'inside'), 'utf8'), 'in');
      assert.deepEqual(fs.readdirSync(d), ['dst']);
      assert.equal(fs.statSync(d).nlink, 3);
    });

    it('between directories: link counts of both parents and ".." follow', () => {
      const d = fresh('rename-parents');
      const p1 = path.join(d, 'p1');
      const p2 = path.join(d, 'p2');
      fs.mkdirSync(path.join(p1, 'child'), { recursive: true });
      fs.mkdirSync(p2);
      fs.writeFileSync(path.join(p1, 'file'), 'f');
      assert.equal(fs.statSync(p1).nlink, 3);
      fs.renameSync(path.join(p1, 'child'), path.join(p2, 'child'));
      fs.renameSync(path.join(p1, 'file'), path.join(p2, 'renamed'));
      assert.equal(fs.statSync(p1).nlink, 2);
      assert.equal(fs.statSync(p2).nlink, 3);
      assert.equal(fs.statSync(path.join(p2, 'child', '..')).ino, fs.statSync(p2).ino);
      assert.deepEqual(fs.readdirSync(p1), []);
      assert.deepEqual(fs.readdirSync(p2).sort(), ['child', 'renamed']);
      assert.equal(fs.readFileSync(path.join(p2, 'renamed'), 'utf8'), 'f');
    });

    it('to itself, and onto another hard link of the same file, does nothing', () => {
      const d = fresh('rename-self');
      const a = path.join(d, 'a');
      const b = path.join(d, 'b');
      fs.writeFileSync(a, 'same');
      fs.renameSync(a, a);
      assert.equal(fs.readFileSync(a, 'utf8'), 'same');
      fs.linkSync(a, b);
      fs.renameSync(a, b);
      assert.deepEqual(fs.readdirSync(d).sort(), ['a', 'b']);
      assert.equal(fs.statSync(a).nlink, 2);
    });

    it('RENAME_NOREPLACE: EEXIST onto a file or directory (both untouched), succeeds onto a free name', () => {
      const d = fresh('noreplace');
      const a = path.join(d, 'a');
      const b = path.join(d, 'b');
      const dir = path.join(d, 'dir');
      fs.writeFileSync(a, 'A');
      fs.writeFileSync(b, 'B');
      fs.mkdirSync(dir);
      assert.equal(renameat2(a, b, RENAME_NOREPLACE), 'EEXIST');
      assert.equal(renameat2(a, dir, RENAME_NOREPLACE), 'EEXIST');
      assert.equal(renameat2(dir, b, RENAME_NOREPLACE), 'EEXIST');
      assert.equal(fs.readFileSync(a, 'utf8'), 'A');
      assert.equal(fs.readFileSync(b, 'utf8'), 'B');
      assert.equal(renameat2(a, path.join(d, 'c'), RENAME_NOREPLACE), 'OK');
      assert.equal(fs.readFileSync(path.join(d, 'c'), 'utf8'), 'A');
      assertErrno(() => fs.statSync(a), 'ENOENT');
      assert.equal(renameat2(dir, path.join(d, 'dir2'), RENAME_NOREPLACE), 'OK');
      assert.ok(fs.statSync(path.join(d, 'dir2')).isDirectory());
      assert.equal(renameat2(path.join(d, 'nope'), path.join(d, 'x'), RENAME_NOREPLACE), 'ENOENT');
      assert.equal(renameat2(b, path.join(d, 'y'), RENAME_NOREPLACE | RENAME_EXCHANGE), 'EINVAL');
    });

    it('RENAME_EXCHANGE: swaps two files, a file and a directory, and directories in different parents', () => {
      const d = fresh('exchange');
      const a = path.join(d, 'a');
      const b = path.join(d, 'b');
      fs.writeFileSync(a, 'AAA');
      fs.writeFileSync(b, 'B');
      const inoA = fs.statSync(a).ino;
      const inoB = fs.statSync(b).ino;
      assert.equal(renameat2(a, b, RENAME_EXCHANGE), 'OK');
      assert.equal(fs.readFileSync(a, 'utf8'), 'B');
      assert.equal(fs.readFileSync(b, 'utf8'), 'AAA');
      assert.equal(fs.statSync(a).ino, inoB);
      assert.equal(fs.statSync(b).ino, inoA);

      // file <-> directory in different parents: link counts move with the directory.
      const p1 = path.join(d, 'p1');
      const p2 = path.join(d, 'p2');
      fs.mkdirSync(path.join(p1, 'dir'), { recursive: true });
      fs.writeFileSync(path.join(p1, 'dir', 'inside'), 'in');
      fs.mkdirSync(p2);
      fs.writeFileSync(path.join(p2, 'file'), 'F');
      assert.equal(renameat2(path.join(p1, 'dir'), path.join(p2, 'file'), RENAME_EXCHANGE), 'OK');
      assert.ok(fs.statSync(path.join(p1, 'dir')).isFile());
      assert.equal(fs.readFileSync(path.join(p1, 'dir'), 'utf8'), 'F');
      assert.ok(fs.statSync(path.join(p2, 'file')).isDirectory());
      assert.equal(fs.readFileSync(path.join(p2, 'file', 'inside'), 'utf8'), 'in');
      assert.equal(fs.statSync(p1).nlink, 2);
      assert.equal(fs.statSync(p2).nlink, 3);
      assert.equal(fs.statSync(path.join(p2, 'file', '..')).ino, fs.statSync(p2).ino);

      // two directories in different parents.
      fs.mkdirSync(path.join(p1, 'd1'));
      fs.writeFileSync(path.join(p1, 'd1', 'one'), '1');
      const d1 = fs.statSync(path.join(p1, 'd1')).ino;
      const d2 = fs.statSync(path.join(p2, 'file')).ino;
      assert.equal(renameat2(path.join(p1, 'd1'), path.join(p2, 'file'), RENAME_EXCHANGE), 'OK');
      assert.equal(fs.statSync(path.join(p1, 'd1')).ino, d2);
      assert.equal(fs.statSync(path.join(p2, 'file')).ino, d1);
      assert.deepEqual(fs.readdirSync(path.join(p2, 'file')), ['one']);
      assert.deepEqual(fs.readdirSync(path.join(p1, 'd1')), ['inside']);
      assert.equal(fs.statSync(path.join(p1, 'd1', '..')).ino, fs.statSync(p1).ino);
      assert.equal(fs.statSync(path.join(p2, 'file', '..')).ino, fs.statSync(p2).ino);
    });

    it('RENAME_EXCHANGE: ENOENT with a missing target or source, EINVAL into its own subdirectory', () => {
      const d = fresh('exchange-err');
      const a = path.join(d, 'a');
      fs.writeFileSync(a, 'A');
      assert.equal(renameat2(a, path.join(d, 'missing'), RENAME_EXCHANGE), 'ENOENT');
      assert.equal(renameat2(path.join(d, 'missing'), a, RENAME_EXCHANGE), 'ENOENT');
      assert.equal(fs.readFileSync(a, 'utf8'), 'A');
      assertErrno(() => fs.statSync(path.join(d, 'missing')), 'ENOENT');
      fs.mkdirSync(path.join(d, 'top', 'sub'), { recursive: true });
      assert.equal(renameat2(path.join(d, 'top'), path.join(d, 'top', 'sub'), RENAME_EXCHANGE), 'EINVAL');
      assert.ok(fs.statSync(path.join(d, 'top', 'sub')).isDirectory());
    });
  });

  describe('symbolic and hard links', () => {
    it('readlink, lstat vs stat, a dangling link, a link to a directory, O_NOFOLLOW', () => {
      const d = fresh('symlink');
      const target = path.join(d, 'target');
      fs.writeFileSync(target, 'pointed-to');
      const link = path.join(d, 'link');
      fs.symlinkSync('target', link);
      assert.equal(fs.readlinkSync(link), 'target');
      const l = fs.lstatSync(link);
      assert.ok(l.isSymbolicLink());
      assert.equal(l.size, 'target'.length);
      assert.equal(l.mode & 0o777, 0o777);
      const s = fs.statSync(link);
      assert.ok(s.isFile());
      assert.equal(s.ino, fs.statSync(target).ino);
      assert.notEqual(l.ino, s.ino);
      assert.equal(fs.readFileSync(link, 'utf8'), 'pointed-to');
      fs.writeFileSync(link, 'through the link');
      assert.equal(fs.readFileSync(target, 'utf8'), 'through the link');
      assertErrno(() => fs.openSync(link, O_RDONLY | O_NOFOLLOW), 'ELOOP', 'O_NOFOLLOW on a symlink');

      const dangling = path.join(d, 'dangling');
      fs.symlinkSync('no/such/thing', dangling);
      assert.equal(fs.readlinkSync(dangling), 'no/such/thing');
      assert.ok(fs.lstatSync(dangling).isSymbolicLink());
      assertErrno(() => fs.statSync(dangling), 'ENOENT', 'stat of a dangling link');
      assertErrno(() => fs.openSync(dangling, O_CREAT | O_EXCL | O_WRONLY), 'EEXIST', 'O_CREAT|O_EXCL on a dangling link');

      fs.mkdirSync(path.join(d, 'dir'));
      fs.writeFileSync(path.join(d, 'dir', 'in'), 'x');
      const dirLink = path.join(d, 'dirlink');
      fs.symlinkSync(path.join(d, 'dir'), dirLink);
      assert.ok(fs.statSync(dirLink).isDirectory());
      assert.ok(fs.lstatSync(dirLink).isSymbolicLink());
      assert.deepEqual(fs.readdirSync(dirLink), ['in']);
      assert.equal(fs.readFileSync(path.join(dirLink, 'in'), 'utf8'), 'x');
      assertErrno(() => fs.rmdirSync(dirLink), 'ENOTDIR', 'rmdir of a symlink to a dir');

      // The longest target (PATH_MAX - 1 bytes) round-trips.
      const longTarget = ('a'.repeat(200) + '/').repeat(21).slice(0, 4095);
      fs.symlinkSync(longTarget, path.join(d, 'long'));
      assert.equal(fs.readlinkSync(path.join(d, 'long')), longTarget);
      assert.equal(fs.lstatSync(path.join(d, 'long')).size, 4095);

      fs.unlinkSync(link);
      assert.equal(fs.readFileSync(target, 'utf8'), 'through the link', 'unlinking a symlink leaves its target');
    });

    it('hard links: nlink counts, shared content and inode, unlinking one name keeps the other', () => {
      const d = fresh('hardlink');
      const a = path.join(d, 'a');
      const b = path.join(d, 'b');
      const c = path.join(d, 'c');
      fs.writeFileSync(a, 'one');
      fs.linkSync(a, b);
      fs.linkSync(b, c);
      for (const p of [a, b, c]) assert.equal(fs.statSync(p).nlink, 3, p);
      assert.equal(fs.statSync(b).ino, fs.statSync(a).ino);
      fs.appendFileSync(b, '-two');
      assert.equal(fs.readFileSync(a, 'utf8'), 'one-two');
      assert.equal(fs.readFileSync(c, 'utf8'), 'one-two');
      fs.unlinkSync(a);
      assertErrno(() => fs.statSync(a), 'ENOENT');
      assert.equal(fs.statSync(b).nlink, 2);
      fs.unlinkSync(c);
      assert.equal(fs.statSync(b).nlink, 1);
      assert.equal(fs.readFileSync(b, 'utf8'), 'one-two');
      assert.deepEqual(fs.readdirSync(d), ['b']);
    });
  });

  describe('sizes and file contents', () => {
    it('truncate down, then up: the extension reads as zeros (also after a big file is cut inside a chunk)', () => {
      const d = fresh('truncate');
      const f = path.join(d, 'f');
      fs.writeFileSync(f, 'hello world');
      fs.truncateSync(f, 5);
      assert.equal(fs.readFileSync(f, 'utf8'), 'hello');
      fs.truncateSync(f, 10);
      assert.deepEqual(fs.readFileSync(f), Buffer.concat([Buffer.from('hello'), Buffer.alloc(5)]));
      assert.equal(fs.statSync(f).size, 10);

      const g = path.join(d, 'g');
      fs.writeFileSync(g, Buffer.alloc(3 * MiB, 0x78));
      const fd = fs.openSync(g, 'r+');
      try {
        fs.ftruncateSync(fd, 100);
        assert.equal(fs.fstatSync(fd).size, 100);
        fs.ftruncateSync(fd, 3 * MiB);
        const back = fs.readFileSync(g);
        assert.equal(back.length, 3 * MiB);
        assert.ok(back.subarray(0, 100).equals(Buffer.alloc(100, 0x78)));
        assert.equal(back.indexOf(0x78, 100), -1, 'no stale bytes after the old truncation point');
      } finally {
        fs.closeSync(fd);
      }
      fs.truncateSync(g, 0);
      assert.equal(fs.statSync(g).size, 0);
      assert.equal(fs.readFileSync(g).length, 0);
    });

    it('sparse write at a 1 GiB offset: size, zeros in the hole, few blocks', () => {
      const f = path.join(fresh('sparse'), 'f');
      const fd = fs.openSync(f, 'w+');
      try {
        assert.equal(fs.writeSync(fd, Buffer.from('end'), 0, 3, GiB), 3);
        const st = fs.fstatSync(fd);
        assert.equal(st.size, GiB + 3);
        assert.ok(st.blocks * 512 < 4 * MiB, `st_blocks ${st.blocks} is small for a sparse file`);
        const buf = Buffer.alloc(MiB, 0xff);
        assert.equal(fs.readSync(fd, buf, 0, 4096, 0), 4096);
        assert.ok(buf.subarray(0, 4096).equals(Buffer.alloc(4096)), 'zeros at 0');
        assert.equal(fs.readSync(fd, buf, 0, MiB, GiB / 2), MiB);
        assert.ok(buf.equals(Buffer.alloc(MiB)), 'zeros at 512 MiB');
        assert.equal(fs.readSync(fd, buf, 0, 16, GiB - 5), 8);
        assert.deepEqual(buf.subarray(0, 8), Buffer.concat([Buffer.alloc(5), Buffer.from('end')]));
      } finally {
        fs.closeSync(fd);
      }
      fs.unlinkSync(f);
    });

    it('O_APPEND: two fds of one process and two concurrent processes append, never overwrite', async () => {
      const d = fresh('append');
      const f = path.join(d, 'f');
      fs.writeFileSync(f, 'start:');
      const fd1 = fs.openSync(f, 'a');
      const fd2 = fs.openSync(f, O_WRONLY | O_APPEND);
      try {
        fs.writeSync(fd1, 'A1');
        fs.writeSync(fd2, 'B1');
        fs.writeSync(fd1, 'A2');
        // pwrite on an O_APPEND fd still appends on Linux.
        fs.writeSync(fd2, Buffer.from('B2'), 0, 2, 0);
      } finally {
        fs.closeSync(fd1);
        fs.closeSync(fd2);
      }
      assert.equal(fs.readFileSync(f, 'utf8'), 'start:A1B1A2B2');

      const g = path.join(d, 'g');
      fs.writeFileSync(g, '');
      const loop = (ch: string) => sh(`i=0; while [ $i -lt 200 ]; do echo ${ch} >> '${g}'; i=$((i+1)); done`);
      const [r1, r2] = await Promise.all([loop('a'), loop('b')]);
      assert.equal(r1.code, 0, r1.stderr);
      assert.equal(r2.code, 0, r2.stderr);
      const lines = fs.readFileSync(g, 'utf8').split('\n');
      assert.equal(lines.pop(), '');
      assert.equal(lines.length, 400);
      assert.equal(lines.filter((l) => l === 'a').length, 200);
      assert.equal(lines.filter((l) => l === 'b').length, 200);
    });

    it('O_TRUNC empties the file (seen through another open fd too), O_EXCL creates only a new file', () => {
      const d = fresh('otrunc');
      const f = path.join(d, 'f');
      fs.writeFileSync(f, 'long old content');
      const reader = fs.openSync(f, 'r');
      try {
        const fd = fs.openSync(f, O_RDWR | O_TRUNC);
        assert.equal(fs.fstatSync(fd).size, 0);
        fs.writeSync(fd, 'new');
        fs.closeSync(fd);
        const buf = Buffer.alloc(32);
        assert.equal(fs.readSync(reader, buf, 0, 32, 0), 3);
        assert.equal(buf.subarray(0, 3).toString(), 'new');
      } finally {
        fs.closeSync(reader);
      }
      fs.writeFileSync(f, 'x'); // 'w' = O_TRUNC|O_CREAT
      assert.equal(fs.readFileSync(f, 'utf8'), 'x');

      const g = path.join(d, 'g');
      const fd = fs.openSync(g, O_CREAT | O_EXCL | O_RDWR, 0o600);
      fs.writeSync(fd, 'excl');
      fs.closeSync(fd);
      assert.equal(fs.readFileSync(g, 'utf8'), 'excl');
      assert.equal(fs.statSync(g).mode & 0o777, 0o600);
      assertErrno(() => fs.openSync(g, O_CREAT | O_EXCL | O_RDWR, 0o600), 'EEXIST');
    });

    it('fallocate grows the size (not with KEEP_SIZE), punching a hole zeroes it; SEEK_DATA/SEEK_HOLE find data and holes', () => {
      const d = fresh('falloc');
      const f = path.join(d, 'f');
      fs.writeFileSync(f, '');
      assert.equal(pyTry('fd = os.open(A[0], os.O_RDWR)\nos.posix_fallocate(fd, 0, 3 * 1024 * 1024)\nos.close(fd)', [f]), 'OK');
      assert.equal(fs.statSync(f).size, 3 * MiB);
      assert.ok(fs.readFileSync(f).equals(Buffer.alloc(3 * MiB)));
      const keep = pyTry(
        `
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
fd = os.open(A[0], os.O_RDWR)
r = cerr(libc.fallocate(fd, 1, 0, 8 * 1024 * 1024))  # FALLOC_FL_KEEP_SIZE
os.close(fd)
return r`,
        [f],
      );
      assert.equal(keep, 'OK');
      assert.equal(fs.statSync(f).size, 3 * MiB, 'KEEP_SIZE keeps the size');

      // Data at [0, 4096) and [8 MiB, 8 MiB + 4096); a hole in between.
      const g = path.join(d, 'g');
      const fd = fs.openSync(g, 'w+');
      fs.writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 0);
      fs.writeSync(fd, Buffer.alloc(4096, 2), 0, 4096, 8 * MiB);
      fs.closeSync(fd);
      const seek = py(
        `
fd = os.open(A[0], os.O_RDONLY)
out = {}
for name, off, whence in [('data0', 0, os.SEEK_DATA), ('hole0', 0, os.SEEK_HOLE), ('data2m', 2 << 20, os.SEEK_DATA),
                          ('hole8m', 8 << 20, os.SEEK_HOLE), ('dataEnd', (8 << 20) + 4096, os.SEEK_DATA)]:
    try:
        out[name] = os.lseek(fd, off, whence)
    except OSError as e:
        out[name] = ename(e.errno)
print(json.dumps(out))`,
        [g],
      );
      assert.equal(seek.code, 0, seek.stderr);
      const r = JSON.parse(seek.stdout) as Record<string, number | string>;
      const size = 8 * MiB + 4096;
      assert.equal(r.data0, 0);
      assert.ok(typeof r.hole0 === 'number' && r.hole0 >= 4096 && r.hole0 < 8 * MiB, `SEEK_HOLE from 0 finds the hole: ${r.hole0}`);
      assert.ok(typeof r.data2m === 'number' && r.data2m > 2 * MiB && r.data2m <= 8 * MiB, `SEEK_DATA from 2 MiB skips the hole: ${r.data2m}`);
      assert.equal(r.hole8m, size, 'SEEK_HOLE in the last data finds EOF');
      assert.equal(r.dataEnd, 'ENXIO', 'SEEK_DATA at EOF');

      // Punch [1 MiB, 2 MiB) out of a file full of data: zeros there, size unchanged.
      const h = path.join(d, 'h');
      fs.writeFileSync(h, Buffer.alloc(3 * MiB, 7));
      const punch = pyTry(
        `
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
fd = os.open(A[0], os.O_RDWR)
r = cerr(libc.fallocate(fd, 3, 1 << 20, 1 << 20))  # PUNCH_HOLE | KEEP_SIZE
os.close(fd)
return r`,
        [h],
      );
      assert.equal(punch, 'OK');
      const back = fs.readFileSync(h);
      assert.equal(back.length, 3 * MiB);
      assert.ok(back.subarray(0, MiB).equals(Buffer.alloc(MiB, 7)));
      assert.ok(back.subarray(MiB, 2 * MiB).equals(Buffer.alloc(MiB)));
      assert.ok(back.subarray(2 * MiB).equals(Buffer.alloc(MiB, 7)));
    });

    it('unlink of an open file: gone from the listing and by name, still readable and writable through the fd', () => {
      const d = fresh('unlink-open');
      const f = path.join(d, 'f');
      fs.writeFileSync(f, 'abc');
      const fd = fs.openSync(f, 'r+');
      try {
        fs.unlinkSync(f);
        assert.deepEqual(fs.readdirSync(d), []);
        assertErrno(() => fs.statSync(f), 'ENOENT');
        assert.equal(fs.writeSync(fd, Buffer.from('def'), 0, 3, 3), 3);
        const buf = Buffer.alloc(16);
        assert.equal(fs.readSync(fd, buf, 0, 16, 0), 6);
        assert.equal(buf.subarray(0, 6).toString(), 'abcdef');
        const st = fs.fstatSync(fd);
        assert.equal(st.nlink, 0);
        assert.equal(st.size, 6);
        // A new file under the same name is a different file.
        fs.writeFileSync(f, 'new');
        assert.equal(fs.readSync(fd, buf, 0, 16, 0), 6);
        assert.equal(buf.subarray(0, 6).toString(), 'abcdef');
      } finally {
        fs.closeSync(fd);
      }
      assert.equal(fs.readFileSync(f, 'utf8'), 'new');
    });

    it('mkfifo makes a FIFO that carries data between two processes; mknod keeps a device number', async () => {
      const d = fresh('fifo');
      const fifo = path.join(d, 'fifo');
      const r = run(['mkfifo', '-m', '0620', fifo]);
      assert.equal(r.code, 0, r.stderr);
      const st = fs.lstatSync(fifo);
      assert.ok(st.isFIFO());
      assert.equal(st.mode & 0o777, 0o620);
      assert.equal(st.size, 0);
      const [reader, writer] = await Promise.all([
        sh(`cat '${fifo}'`, { timeoutMs: 10_000 }),
        sh(`printf 'through the pipe\\n' > '${fifo}'`, { timeoutMs: 10_000 }),
      ]);
      assert.equal(writer.code, 0, writer.stderr);
      assert.equal(reader.code, 0, reader.stderr);
      assert.equal(reader.stdout, 'through the pipe\n');

      const dev = path.join(d, 'null');
      const mk = run(['mknod', '-m', '0666', dev, 'c', '1', '3']);
      assert.equal(mk.code, 0, mk.stderr);
      const ds = fs.lstatSync(dev);
      assert.ok(ds.isCharacterDevice());
      assert.equal(ds.rdev, (1 << 8) | 3);
      assert.ok(fs.readdirSync(d, { withFileTypes: true }).find((e) => e.name === 'fifo')?.isFIFO());
    });
  });

  describe('attributes and timestamps', () => {
    it('chmod, chown and utimes persist; nanosecond and pre-1970 timestamps survive', () => {
      const d = fresh('attrs');
      const f = path.join(d, 'f');
      fs.writeFileSync(f, 'x');
      fs.chmodSync(f, 0o4751);
      assert.equal(fs.statSync(f).mode & 0o7777, 0o4751);
      fs.chmodSync(f, 0o600);
      assert.equal(fs.statSync(f).mode & 0o7777, 0o600);
      fs.chownSync(f, 1234, 5678);
      let st = fs.statSync(f);
      assert.equal(st.uid, 1234);
      assert.equal(st.gid, 5678);
      fs.chownSync(f, -1, 42);
      st = fs.statSync(f);
      assert.equal(st.uid, 1234, 'uid -1 leaves the owner');
      assert.equal(st.gid, 42);

      fs.utimesSync(f, 1_000_000_000, 1_100_000_000);
      st = fs.statSync(f);
      assert.equal(st.atimeMs, 1_000_000_000_000);
      assert.equal(st.mtimeMs, 1_100_000_000_000);

      const atimeNs = 1_500_000_000_111_111_111n;
      const mtimeNs = 1_600_000_000_123_456_789n;
      assert.equal(pyTry('os.utime(A[0], ns=(int(A[1]), int(A[2])))', [f, atimeNs.toString(), mtimeNs.toString()]), 'OK');
      const big = fs.statSync(f, { bigint: true });
      assert.equal(big.atimeNs, atimeNs);
      assert.equal(big.mtimeNs, mtimeNs);
      // Seen the same way by another process (not only this one's cache).
      const pyStat = py('s = os.stat(A[0]); print(s.st_atime_ns, s.st_mtime_ns)', [f]);
      assert.equal(pyStat.stdout.trim(), `${atimeNs} ${mtimeNs}`);

      const before1970 = -1_234_567_891n; // -1.234567891 s
      assert.equal(pyTry('os.utime(A[0], ns=(int(A[1]), int(A[1])))', [f, before1970.toString()]), 'OK');
      assert.equal(fs.statSync(f, { bigint: true }).mtimeNs, before1970);

      // Directories and symlinks (lutimes) too.
      fs.utimesSync(d, 2_000_000_000, 2_000_000_001);
      assert.equal(fs.statSync(d).mtimeMs, 2_000_000_001_000);
      fs.symlinkSync('f', path.join(d, 'l'));
      fs.lutimesSync(path.join(d, 'l'), 1_234_567_890, 1_234_567_890);
      assert.equal(fs.lstatSync(path.join(d, 'l')).mtimeMs, 1_234_567_890_000);
      assert.equal(fs.statSync(f, { bigint: true }).mtimeNs, before1970, 'lutimes does not follow the link');
    });

    it('write changes mtime and ctime; chmod changes only ctime', () => {
      const f = path.join(fresh('times'), 'f');
      fs.writeFileSync(f, 'x');
      fs.utimesSync(f, 1_000_000_000, 1_000_000_000);
      const t0 = fs.statSync(f, { bigint: true });
      sleepMs(20);
      fs.appendFileSync(f, 'y');
      const t1 = fs.statSync(f, { bigint: true });
      assert.ok(t1.mtimeNs > t0.mtimeNs, 'write moves mtime');
      assert.ok(t1.ctimeNs > t0.ctimeNs, 'write moves ctime');
      assert.ok(t1.mtimeMs >= Date.now() - 5000, 'mtime is now');
      sleepMs(20);
      fs.chmodSync(f, 0o640);
      const t2 = fs.statSync(f, { bigint: true });
      assert.equal(t2.mtimeNs, t1.mtimeNs, 'chmod leaves mtime');
      assert.ok(t2.ctimeNs > t1.ctimeNs, 'chmod moves ctime');
      sleepMs(20);
      fs.truncateSync(f, 1);
      const t3 = fs.statSync(f, { bigint: true });
      assert.ok(t3.mtimeNs > t2.mtimeNs, 'truncate moves mtime');
      assert.ok(t3.ctimeNs > t2.ctimeNs, 'truncate moves ctime');
    });

    it('rename changes the ctime of the file and the mtime and ctime of both directories', () => {
      const d = fresh('rename-times');
      const from = path.join(d, 'from');
      const to = path.join(d, 'to');
      fs.mkdirSync(from);
      fs.mkdirSync(to);
      const f = path.join(from, 'f');
      fs.writeFileSync(f, 'x');
      sleepMs(20);
      const file0 = fs.statSync(f, { bigint: true });
      const from0 = fs.statSync(from, { bigint: true });
      const to0 = fs.statSync(to, { bigint: true });
      sleepMs(20);
      fs.renameSync(f, path.join(to, 'g'));
      const file1 = fs.statSync(path.join(to, 'g'), { bigint: true });
      const from1 = fs.statSync(from, { bigint: true });
      const to1 = fs.statSync(to, { bigint: true });
      assert.ok(file1.ctimeNs > file0.ctimeNs, 'ctime of the renamed file');
      assert.equal(file1.mtimeNs, file0.mtimeNs, 'mtime of the renamed file stays');
      assert.ok(from1.mtimeNs > from0.mtimeNs, 'mtime of the old parent');
      assert.ok(from1.ctimeNs > from0.ctimeNs, 'ctime of the old parent');
      assert.ok(to1.mtimeNs > to0.mtimeNs, 'mtime of the new parent');
      assert.ok(to1.ctimeNs > to0.ctimeNs, 'ctime of the new parent');

      // The same, seen by a fresh process after the attribute timeout (from the backend itself).
      sleepMs(1100);
      const again = fs.statSync(from, { bigint: true });
      assert.equal(again.mtimeNs, from1.mtimeNs);
      assert.equal(fs.statSync(path.join(to, 'g'), { bigint: true }).ctimeNs >= file1.ctimeNs, true);
    });

    it('creating and removing entries changes the directory mtime; link changes the file ctime', () => {
      const d = fresh('dir-times');
      fs.utimesSync(d, 1_000_000_000, 1_000_000_000);
      const t0 = fs.statSync(d, { bigint: true });
      fs.writeFileSync(path.join(d, 'f'), 'x');
      const t1 = fs.statSync(d, { bigint: true });
      assert.ok(t1.mtimeNs > t0.mtimeNs, 'create moves the dir mtime');
      fs.utimesSync(d, 1_000_000_000, 1_000_000_000);
      fs.unlinkSync(path.join(d, 'f'));
      assert.ok(fs.statSync(d, { bigint: true }).mtimeNs > t0.mtimeNs, 'unlink moves the dir mtime');
      fs.writeFileSync(path.join(d, 'g'), 'x');
      const g0 = fs.statSync(path.join(d, 'g'), { bigint: true });
      sleepMs(20);
      fs.linkSync(path.join(d, 'g'), path.join(d, 'h'));
      assert.ok(fs.statSync(path.join(d, 'g'), { bigint: true }).ctimeNs > g0.ctimeNs, 'link moves the ctime');
    });
  });

  describe('statfs', () => {
    it('reports sane sizes, and used space grows by 10 MiB after writing 10 MiB', () => {
      const d = fresh('statfs');
      const s0 = fs.statfsSync(shared.m.mnt);
      assert.ok(s0.bsize > 0, `bsize ${s0.bsize}`);
      assert.ok(s0.blocks > 0, `blocks ${s0.blocks}`);
      assert.ok(s0.bfree <= s0.blocks && s0.bavail <= s0.blocks && s0.bavail > 0);
      assert.ok(s0.files > 0 && s0.ffree > 0 && s0.ffree <= s0.files);
      const df0 = run(['df', '-B1', '--output=size,used,avail', shared.m.mnt]);
      assert.equal(df0.code, 0, df0.stderr);
      const [size, used, avail] = df0.stdout.trim().split('\n')[1]!.trim().split(/\s+/).map(Number) as [number, number, number];
      assert.ok(size > 0 && avail > 0 && used >= 0 && used + avail <= size, `df: ${df0.stdout}`);
      assert.equal(size, s0.blocks * s0.bsize);

      const used0 = (s0.blocks - s0.bfree) * s0.bsize;
      const files0 = s0.files - s0.ffree;
      fs.writeFileSync(path.join(d, 'ten'), Buffer.alloc(10 * MiB, 1));
      const s1 = fs.statfsSync(shared.m.mnt);
      const grown = (s1.blocks - s1.bfree) * s1.bsize - used0;
      assert.ok(grown >= 10 * MiB && grown <= 11 * MiB, `used grew by ${grown} bytes`);
      assert.equal(s1.files - s1.ffree, files0 + 1, 'one more inode in use');
      const df1 = run(['df', '-B1', '--output=used', shared.m.mnt]);
      assert.ok(Number(df1.stdout.trim().split('\n')[1]) - used >= 10 * MiB, df1.stdout);

      fs.unlinkSync(path.join(d, 'ten'));
      const s2 = fs.statfsSync(shared.m.mnt);
      assert.equal((s2.blocks - s2.bfree) * s2.bsize, used0, 'unlink gives the space back');
    });
  });
});

