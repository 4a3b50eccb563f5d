// Permission checks on a real mount, as an unprivileged user (nobody, through
// setpriv): with default_permissions (the default) the kernel checks mode
// bits and ownership; set-id bits are cleared on write and chown; setgid
// directories pass their group on. Without default_permissions, access(2)
// is answered by swarmvol from the mode bits.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mountCli, type CliMount } from '../helpers/mount.js';
import { NOBODY, pyTry, shSync, type RunOptions } from '../helpers/posix.js';

const AS_NOBODY: RunOptions = { uid: NOBODY, gid: NOBODY };
const OTHER_UID = 1000;
const OTHER_GID = 1234;

/** A python snippet run as nobody: 'OK', its return value, or the errno name. */
function nobody(body: string, ...args: Array<string | number>): string {
  return pyTry(body, args, AS_NOBODY);
}

const OPEN_READ = 'os.close(os.open(A[0], os.O_RDONLY))';
const OPEN_WRITE = 'os.close(os.open(A[0], os.O_WRONLY))';
const READ_ALL = 'fd = os.open(A[0], os.O_RDONLY)\nd = os.read(fd, 100)\nos.close(fd)\nreturn d.decode()';
const WRITE_AT_END = 'fd = os.open(A[0], os.O_WRONLY | os.O_APPEND)\nos.write(fd, A[1].encode())\nos.close(fd)';
const CREATE = 'os.close(os.open(A[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))';

function mode(p: string): number {
  return fs.statSync(p).mode & 0o7777;
}

function octal(n: number): string {
  return '0' + n.toString(8);
}

describe('permissions with default_permissions (CLI mount, memory backend)', () => {
  let m: CliMount;
  let n = 0;
  /** A fresh root-owned directory with `perm` for one test. */
  const fresh = (label: string, perm = 0o755): string => {
    const d = path.join(m.mnt, `${label}-${++n}`);
    fs.mkdirSync(d);
    fs.chmodSync(d, perm);
    return d;
  };
  const file = (dir: string, name: string, perm: number, content = 'secret\n', uid = 0, gid = 0): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, content);
    fs.chownSync(f, uid, gid);
    fs.chmodSync(f, perm);
    return f;
  };

  before(async () => {
    m = await mountCli();
    const r = shSync('id -u', AS_NOBODY);
    assert.equal(r.stdout.trim(), String(NOBODY), `setpriv works: ${r.stderr}`);
  });
  after(async () => {
    const code = await m?.stop();
    assert.equal(code, 0, m?.output());
  });

  it('the mount root is reachable and listable by nobody (allow_other)', () => {
    const d = fresh('reach');
    file(d, 'pub', 0o644, 'public\n');
    assert.equal(nobody('return ",".join(sorted(os.listdir(A[0])))', d), 'pub');
    assert.equal(nobody(READ_ALL, path.join(d, 'pub')), 'public');
  });

  it('EACCES: reading a 0600 root file, writing a 0644 root file', () => {
    const d = fresh('rw');
    const secret = file(d, 'secret', 0o600);
    const pub = file(d, 'pub', 0o644);
    assert.equal(nobody(OPEN_READ, secret), 'EACCES', 'read 0600');
    assert.equal(nobody(OPEN_READ, pub), 'OK', 'read 0644');
    assert.equal(nobody(OPEN_WRITE, pub), 'EACCES', 'write 0644');
    assert.equal(nobody(WRITE_AT_END, pub, 'x'), 'EACCES', 'append 0644');
    assert.equal(nobody('os.truncate(A[0], 0)', pub), 'EACCES', 'truncate 0644');
    assert.equal(nobody('os.close(os.open(A[0], os.O_WRONLY | os.O_TRUNC))', pub), 'EACCES', 'O_TRUNC 0644');
    assert.equal(fs.readFileSync(pub, 'utf8'), 'secret\n', 'unchanged');
    // The shell sees the same.
    const sh = shSync(`cat '${secret}'`, AS_NOBODY);
    assert.notEqual(sh.code, 0);
    assert.match(sh.stderr, /Permission denied/);
  });

  it('group and other bits: the group class applies even when "other" would allow more', () => {
    const d = fresh('group');
    const g640 = file(d, 'g640', 0o640, 'grp\n', 0, NOBODY);
    const g604 = file(d, 'g604', 0o604, 'grp\n', 0, NOBODY);
    assert.equal(nobody(READ_ALL, g640), 'grp', 'read via the group class');
    assert.equal(nobody(OPEN_WRITE, g640), 'EACCES', 'no write via the group class');
    assert.equal(nobody(OPEN_READ, g604), 'EACCES', 'group class ---, although other has r');
    const o604 = file(d, 'o604', 0o604, 'oth\n', 0, 0);
    assert.equal(nobody(READ_ALL, o604), 'oth', 'read via the other class');
    const u066 = file(d, 'u066', 0o066, 'usr\n', NOBODY, 0);
    assert.equal(nobody(OPEN_READ, u066), 'EACCES', 'owner class ---, although group and other have rw');
  });

  it('EACCES: creating, removing or renaming entries in a 0755 root directory; traversing a 0700 one', () => {
    const d = fresh('dirperm', 0o755);
    const victim = file(d, 'victim', 0o666, 'v');
    assert.equal(nobody(CREATE, path.join(d, 'new')), 'EACCES', 'create');
    assert.equal(nobody('os.mkdir(A[0])', path.join(d, 'newdir')), 'EACCES', 'mkdir');
    assert.equal(nobody('os.symlink("x", A[0])', path.join(d, 'newlink')), 'EACCES', 'symlink');
    assert.equal(nobody('os.mkfifo(A[0])', path.join(d, 'newfifo')), 'EACCES', 'mkfifo');
    assert.equal(nobody('os.unlink(A[0])', victim), 'EACCES', 'unlink');
    assert.equal(nobody('os.rename(A[0], A[1])', victim, path.join(d, 'moved')), 'EACCES', 'rename');
    assert.equal(nobody('os.link(A[0], A[1])', victim, path.join(d, 'hard')), 'EACCES', 'link');
    assert.deepEqual(fs.readdirSync(d), ['victim']);
    assert.equal(nobody(WRITE_AT_END, victim, '+'), 'OK', 'but the 0666 file itself is writable');
    assert.equal(fs.readFileSync(victim, 'utf8'), 'v+');

    const closed = fresh('closed', 0o700);
    const inside = file(closed, 'inside', 0o644);
    assert.equal(nobody('os.stat(A[0])', inside), 'EACCES', 'stat through a 0700 dir');
    assert.equal(nobody(OPEN_READ, inside), 'EACCES', 'open through a 0700 dir');
    assert.equal(nobody('os.listdir(A[0])', closed), 'EACCES', 'list a 0700 dir');
    assert.equal(nobody('os.chdir(A[0])', closed), 'EACCES', 'chdir into a 0700 dir');
    const listOnly = fresh('listonly', 0o744);
    file(listOnly, 'f', 0o644);
    assert.equal(nobody('return ",".join(os.listdir(A[0]))', listOnly), 'f', 'r without x lists names');
    assert.equal(nobody('os.stat(A[0])', path.join(listOnly, 'f')), 'EACCES', 'but cannot stat them');
  });

  it("EPERM: chmod, chown and setting times of someone else's file", () => {
    const d = fresh('eperm', 0o777);
    const rootFile = file(d, 'root', 0o666);
    assert.equal(nobody('os.chmod(A[0], 0o777)', rootFile), 'EPERM', 'chmod');
    assert.equal(nobody(`os.chown(A[0], ${NOBODY}, -1)`, rootFile), 'EPERM', 'chown to self');
    assert.equal(nobody('os.utime(A[0], (1, 1))', rootFile), 'EPERM', 'explicit times');
    assert.equal(nobody('os.utime(A[0], None)', rootFile), 'OK', '"now" needs only write permission');
    const ro = file(d, 'ro', 0o644);
    assert.equal(nobody('os.utime(A[0], None)', ro), 'EACCES', '"now" without write permission');
    assert.equal(mode(rootFile), 0o666);
    assert.equal(fs.statSync(rootFile).uid, 0);

    const own = path.join(d, 'own');
    assert.equal(nobody(CREATE, own), 'OK');
    assert.equal(fs.statSync(own).uid, NOBODY);
    assert.equal(fs.statSync(own).gid, NOBODY);
    assert.equal(nobody('os.chmod(A[0], 0o600)', own), 'OK', 'chmod of own file');
    assert.equal(mode(own), 0o600);
    assert.equal(nobody('os.chown(A[0], 0, -1)', own), 'EPERM', 'give away own file');
    assert.equal(nobody(`os.chown(A[0], -1, ${OTHER_GID})`, own), 'EPERM', 'chgrp to a group not a member of');
    assert.equal(nobody('os.utime(A[0], (1, 2))', own), 'OK', 'explicit times of own file');
    assert.equal(fs.statSync(own).mtimeMs, 2000);
  });

  it("sticky 1777 directory: nobody cannot unlink or rename another user's file, but can its own", () => {
    const sticky = fresh('sticky', 0o1777);
    assert.equal(mode(sticky), 0o1777);
    const others = file(sticky, 'others', 0o666, 'o', OTHER_UID, OTHER_GID);
    assert.equal(nobody('os.unlink(A[0])', others), 'EPERM', 'unlink in sticky dir');
    assert.equal(nobody('os.rename(A[0], A[1])', others, path.join(sticky, 'stolen')), 'EPERM', 'rename in sticky dir');
    assert.equal(nobody(WRITE_AT_END, others, '+'), 'OK', 'writing the 0666 file is still allowed');
    assert.equal(fs.readFileSync(others, 'utf8'), 'o+');
    const mine = path.join(sticky, 'mine');
    assert.equal(nobody(CREATE, mine), 'OK');
    assert.equal(nobody('os.rename(A[0], A[1])', mine, path.join(sticky, 'mine2')), 'OK');
    assert.equal(nobody('os.unlink(A[0])', path.join(sticky, 'mine2')), 'OK');
    assert.deepEqual(fs.readdirSync(sticky), ['others']);
    fs.unlinkSync(others); // root may

    const open = fresh('nonsticky', 0o777);
    const others2 = file(open, 'others', 0o644, 'o', OTHER_UID, OTHER_GID);
    assert.equal(nobody('os.unlink(A[0])', others2), 'OK', 'without the sticky bit a writable dir suffices');
  });

  it('EACCES: executing a file without an x bit (for root too); 0755 runs', () => {
    const d = fresh('exec');
    const script = '#!/bin/sh\necho ran-as-$(id -u)\n';
    const noX = file(d, 'nox', 0o644, script);
    const ownerX = file(d, 'ownerx', 0o744, script);
    const allX = file(d, 'allx', 0o755, script);
    const runIt = 'import subprocess\nreturn subprocess.run([A[0]], capture_output=True, check=True).stdout.decode().strip()';
    assert.equal(nobody(runIt, noX), 'EACCES', 'nobody, 0644');
    assert.equal(nobody(runIt, ownerX), 'EACCES', 'nobody, 0744 (only the owner may)');
    assert.equal(nobody(runIt, allX), `ran-as-${NOBODY}`);
    assert.equal(pyTry(runIt, [noX]), 'EACCES', 'root, 0644');
    assert.equal(pyTry(runIt, [ownerX]), 'ran-as-0');
    const sh = shSync(`'${noX}'`, AS_NOBODY);
    assert.equal(sh.code, 126, sh.stderr);
  });

  it('chown to the user makes reading, writing and chmod work', () => {
    const d = fresh('chown');
    const f = file(d, 'f', 0o600, 'mine now\n');
    assert.equal(nobody(OPEN_READ, f), 'EACCES');
    fs.chownSync(f, NOBODY, NOBODY);
    assert.equal(nobody(READ_ALL, f), 'mine now');
    assert.equal(nobody(WRITE_AT_END, f, 'more\n'), 'OK');
    assert.equal(fs.readFileSync(f, 'utf8'), 'mine now\nmore\n');
    assert.equal(nobody('os.chmod(A[0], 0o640)', f), 'OK');
    assert.equal(mode(f), 0o640);
    // Group ownership alone, too.
    const g = file(d, 'g', 0o660, 'grp');
    assert.equal(nobody(WRITE_AT_END, g, '!'), 'EACCES');
    fs.chownSync(g, 0, NOBODY);
    assert.equal(nobody(WRITE_AT_END, g, '!'), 'OK');
    assert.equal(fs.readFileSync(g, 'utf8'), 'grp!');
  });

  it('setgid directory: new files and directories inherit its group; subdirectories inherit the bit', () => {
    const sg = fresh('setgid', 0o777);
    fs.chownSync(sg, 0, OTHER_GID);
    fs.chmodSync(sg, 0o2777);
    assert.equal(mode(sg), 0o2777);
    assert.equal(nobody(CREATE, path.join(sg, 'byNobody')), 'OK');
    let st = fs.statSync(path.join(sg, 'byNobody'));
    assert.equal(st.uid, NOBODY);
    assert.equal(st.gid, OTHER_GID, 'file gid from the directory');
    assert.equal(nobody('os.mkdir(A[0], 0o755)', path.join(sg, 'subByNobody')), 'OK');
    st = fs.statSync(path.join(sg, 'subByNobody'));
    assert.equal(st.gid, OTHER_GID, 'dir gid from the directory');
    assert.equal(st.mode & 0o7777, 0o2755, 'subdirectory inherits S_ISGID');
    fs.writeFileSync(path.join(sg, 'byRoot'), 'r');
    assert.equal(fs.statSync(path.join(sg, 'byRoot')).gid, OTHER_GID);
    fs.mkdirSync(path.join(sg, 'subByNobody', 'deeper'), { recursive: true });
    assert.equal(fs.statSync(path.join(sg, 'subByNobody', 'deeper')).gid, OTHER_GID, 'inherited two levels down');
    // Symlinks and FIFOs too.
    assert.equal(nobody('os.symlink("x", A[0])', path.join(sg, 'lnk')), 'OK');
    assert.equal(fs.lstatSync(path.join(sg, 'lnk')).gid, OTHER_GID);

    // Not in the group: a setgid bit asked for on a new file is dropped.
    assert.equal(nobody('os.close(os.open(A[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o2755))', path.join(sg, 'sgidReq')), 'OK');
    assert.equal(mode(path.join(sg, 'sgidReq')) & 0o2000, 0, `mode ${octal(mode(path.join(sg, 'sgidReq')))} has no S_ISGID`);
    // ... and on chmod of one's own file whose group one is not in.
    assert.equal(nobody('os.chmod(A[0], 0o2755)', path.join(sg, 'byNobody')), 'OK');
    assert.equal(mode(path.join(sg, 'byNobody')), 0o755, 'chmod drops S_ISGID for a non-member');
  });

  it('set-user-ID and set-group-ID bits are cleared when nobody writes or truncates, kept for root', () => {
    const d = fresh('killsuid', 0o777);
    const suid = file(d, 'suid', 0o4777, 'x');
    assert.equal(mode(suid), 0o4777);
    assert.equal(nobody(WRITE_AT_END, suid, 'y'), 'OK');
    assert.equal(fs.readFileSync(suid, 'utf8'), 'xy');
    assert.equal(mode(suid), 0o777, `after write by nobody: ${octal(mode(suid))}`);

    const both = file(d, 'both', 0o6777, 'x');
    assert.equal(nobody(WRITE_AT_END, both, 'y'), 'OK');
    assert.equal(mode(both), 0o777, `setgid with group-exec is cleared too: ${octal(mode(both))}`);

    const mandatory = file(d, 'sgidNoGx', 0o2767, 'x');
    assert.equal(nobody(WRITE_AT_END, mandatory, 'y'), 'OK');
    assert.equal(mode(mandatory), 0o2767, `setgid without group-exec stays: ${octal(mode(mandatory))}`);

    const trunc = file(d, 'trunc', 0o4777, 'xxxx');
    assert.equal(nobody('os.close(os.open(A[0], os.O_WRONLY | os.O_TRUNC))', trunc), 'OK');
    assert.equal(fs.statSync(trunc).size, 0);
    assert.equal(mode(trunc), 0o777, `after O_TRUNC by nobody: ${octal(mode(trunc))}`);

    const truncate = file(d, 'truncate', 0o4777, 'xxxx');
    assert.equal(nobody('os.truncate(A[0], 1)', truncate), 'OK');
    assert.equal(mode(truncate), 0o777, `after truncate(2) by nobody: ${octal(mode(truncate))}`);

    const byRoot = file(d, 'byRoot', 0o4777, 'x');
    fs.appendFileSync(byRoot, 'y');
    assert.equal(mode(byRoot), 0o4777, 'root (CAP_FSETID) keeps the bit');

    const chowned = file(d, 'chowned', 0o4755, 'x');
    fs.chownSync(chowned, OTHER_UID, -1);
    assert.equal(fs.statSync(chowned).uid, OTHER_UID);
    assert.equal(mode(chowned), 0o755, `chown clears S_ISUID: ${octal(mode(chowned))}`);
  });
});

describe('permissions with --no-default-permissions (CLI mount, memory backend)', () => {
  let m: CliMount;
  let d: string;
  const p = (name: string) => path.join(d, name);
  const access = (name: string, mask: string, opts: RunOptions = AS_NOBODY) =>
    pyTry(`return "yes" if os.access(A[0], ${mask}) else "no"`, [p(name)], opts);
  const shTest = (flag: string, name: string) => shSync(`test ${flag} '${p(name)}'`, AS_NOBODY).code;

  before(async () => {
    m = await mountCli(['--no-default-permissions']);
    const line = fs.readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.includes(` ${m.mnt} `)) ?? '';
    assert.doesNotMatch(line, /default_permissions/, line);
    d = path.join(m.mnt, 'd');
    fs.mkdirSync(d);
    fs.chmodSync(d, 0o755);
    const mk = (name: string, perm: number, uid = 0, gid = 0) => {
      fs.writeFileSync(p(name), '#!/bin/sh\necho hi\n');
      fs.chownSync(p(name), uid, gid);
      fs.chmodSync(p(name), perm);
    };
    mk('f600', 0o600);
    mk('f644', 0o644);
    mk('f755', 0o755);
    mk('f700', 0o700);
    mk('g640', 0o640, 0, NOBODY);
    mk('g604', 0o604, 0, NOBODY);
    mk('own200', 0o200, NOBODY, NOBODY);
    fs.mkdirSync(p('d700'));
    fs.chmodSync(p('d700'), 0o700);
    fs.mkdirSync(p('d711'));
    fs.chmodSync(p('d711'), 0o711);
  });
  after(async () => {
    const code = await m?.stop();
    assert.equal(code, 0, m?.output());
  });

  it('access(2) for nobody follows the owner/group/other mode bits', () => {
    const cases: Array<[string, string, string]> = [
      ['f600', 'os.R_OK', 'no'],
      ['f600', 'os.W_OK', 'no'],
      ['f600', 'os.F_OK', 'yes'],
      ['f644', 'os.R_OK', 'yes'],
      ['f644', 'os.W_OK', 'no'],
      ['f644', 'os.X_OK', 'no'],
      ['f644', 'os.R_OK | os.W_OK', 'no'],
      ['f755', 'os.R_OK | os.X_OK', 'yes'],
      ['f700', 'os.X_OK', 'no'],
      ['g640', 'os.R_OK', 'yes'],
      ['g640', 'os.W_OK', 'no'],
      ['g604', 'os.R_OK', 'no'],
      ['own200', 'os.W_OK', 'yes'],
      ['own200', 'os.R_OK', 'no'],
      ['d700', 'os.X_OK', 'no'],
      ['d711', 'os.X_OK', 'yes'],
      ['d711', 'os.R_OK', 'no'],
    ];
    const got = cases.map(([name, mask]) => `${name} ${mask}: ${access(name, mask)}`);
    assert.deepEqual(
      got,
      cases.map(([name, mask, want]) => `${name} ${mask}: ${want}`),
    );
  });

  it('`test -r/-w/-x` in sh as nobody agrees', () => {
    assert.equal(shTest('-r', 'f600'), 1);
    assert.equal(shTest('-r', 'f644'), 0);
    assert.equal(shTest('-w', 'f644'), 1);
    assert.equal(shTest('-x', 'f755'), 0);
    assert.equal(shTest('-x', 'f644'), 1);
    assert.equal(shTest('-r', 'g640'), 0);
    assert.equal(shTest('-r', 'g604'), 1);
  });

  it('for root, access(2) allows read/write always and execute only with some x bit', () => {
    const root: RunOptions = {};
    assert.equal(access('f600', 'os.R_OK | os.W_OK', root), 'yes');
    assert.equal(access('own200', 'os.R_OK', root), 'yes');
    assert.equal(access('f644', 'os.X_OK', root), 'no');
    assert.equal(access('f700', 'os.X_OK', root), 'yes');
    assert.equal(access('d700', 'os.X_OK', root), 'yes');
  });

  it('chdir into a 0700 directory is refused to nobody (EACCES), allowed into 0711', () => {
    assert.equal(nobody('os.chdir(A[0])', p('d700')), 'EACCES');
    assert.equal(nobody('os.chdir(A[0])', p('d711')), 'OK');
  });

  it('open(2), chmod(2) and create are NOT checked by swarmvol (documented: the store decides; memory has no access control)', () => {
    for (const [name, perm] of [['v600', 0o600], ['v644', 0o644]] as const) {
      fs.writeFileSync(p(name), 'root only\n');
      fs.chmodSync(p(name), perm);
    }
    const got = {
      'read 0600 root file': nobody(READ_ALL, p('v600')),
      'write 0644 root file': nobody(WRITE_AT_END, p('v644'), 'x'),
      'chmod root file': nobody('os.chmod(A[0], 0o777)', p('v644')),
      'create in 0755 root dir': nobody(CREATE, p('new-by-nobody')),
    };
    assert.deepEqual(got, {
      'read 0600 root file': 'root only',
      'write 0644 root file': 'OK',
      'chmod root file': 'OK',
      'create in 0755 root dir': 'OK',
    });
  });
});
