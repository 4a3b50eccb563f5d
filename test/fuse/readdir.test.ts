// Directory listings on a real mount: a 100,000-entry directory, entries
// added and removed while a listing is under way, rewinddir(3), "." and
// "..", d_type and d_ino, long names.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sh, sharedCliMount } from '../helpers/mount.js';
import { PY, py } from '../helpers/posix.js';

const BIG = 100_000;

/** Python: readdir(3) through libc, so rewinddir and d_ino/d_type are visible. */
const PY_DIRENT = `
class Dirent(ctypes.Structure):
    _fields_ = [('d_ino', ctypes.c_uint64), ('d_off', ctypes.c_int64), ('d_reclen', ctypes.c_ushort),
                ('d_type', ctypes.c_ubyte), ('d_name', ctypes.c_char * 256)]
libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]
def opendir(p):
    dp = libc.opendir(os.fsencode(p))
    if not dp:
        raise OSError(ctypes.get_errno(), 'opendir')
    return dp
def read_entries(dp, n=None):
    out = []
    while n is None or len(out) < n:
        ctypes.set_errno(0)
        e = libc.readdir(dp)
        if not e:
            if ctypes.get_errno():
                raise OSError(ctypes.get_errno(), 'readdir')
            break
        out.append([os.fsdecode(e.contents.d_name), e.contents.d_ino, e.contents.d_type])
    return out
`;

function pyJson<T>(code: string, args: Array<string | number>, timeoutMs = 60_000): T {
  const r = py(PY_DIRENT + code, args, { timeoutMs });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

function duplicates(names: string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const n of names) (seen.has(n) ? dup : seen).add(n);
  return [...dup];
}

/** Creates `count` empty files name(i) in dir from `procs` python processes. */
async function createMany(dir: string, count: number, procs: number, nameExpr: string): Promise<void> {
  const script = `
import os, sys
d, n, P = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pids = []
for k in range(P):
    pid = os.fork()
    if pid == 0:
        try:
            for i in range(k, n, P):
                os.close(os.open(os.path.join(d, ${nameExpr}), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except BaseException as e:
            print(e, file=sys.stderr)
            os._exit(1)
        os._exit(0)
    pids.append(pid)
bad = 0
for p in pids:
    bad += os.waitpid(p, 0)[1] != 0
sys.exit(1 if bad else 0)
`;
  const r = await sh(`${PY} -c '${script.replace(/'/g, `'"'"'`)}' '${dir}' ${count} ${procs}`, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
}

describe('readdir (CLI mount, memory backend)', () => {
  const shared = sharedCliMount();
  const fresh = shared.fresh;

  it(`${BIG.toLocaleString('en')} entries in one directory: all listed exactly once, ls -l works`, async () => {
    const d = fresh('big');
    const t0 = Date.now();
    await createMany(d, BIG, 4, "'entry-%06d' % i");
    const tCreate = Date.now() - t0;

    const t1 = Date.now();
    const names = fs.readdirSync(d);
    const tList = Date.now() - t1;
    assert.equal(names.length, BIG);
    const set = new Set(names);
    assert.equal(set.size, BIG, 'no duplicates');
    const missing: string[] = [];
    for (let i = 0; i < BIG; i++) {
      const name = `entry-${String(i).padStart(6, '0')}`;
      if (!set.has(name)) missing.push(name);
    }
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} names missing`);

    const t2 = Date.now();
    const ls = await sh(`ls -l '${d}' | wc -l`, { timeoutMs: 120_000 });
    const tLs = Date.now() - t2;
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.trim(), String(BIG + 1), '"total" line + one line per entry');
    const lsf = await sh(`ls -f '${d}' | wc -l`, { timeoutMs: 120_000 });
    assert.equal(lsf.stdout.trim(), String(BIG + 2), 'ls -f: every entry plus "." and ".."');
    assert.equal(fs.statSync(path.join(d, 'entry-099999')).size, 0);

    console.log(
      `readdir ${BIG} entries: create ${(tCreate / 1000).toFixed(1)} s (4 processes), readdir ${(tList / 1000).toFixed(2)} s, ls -l ${(tLs / 1000).toFixed(1)} s`,
    );
    assert.ok(tCreate + tList + tLs < 60_000, `create + list took ${tCreate + tList + tLs} ms`);
  });

  it('entries added and removed during a listing: survivors once each, no duplicates, no resurrected ghosts', () => {
    const d = fresh('during');
    const COUNT = 5000;
    const orig = Array.from({ length: COUNT }, (_, i) => `e${String(i).padStart(5, '0')}`);
    const made = py('for name in A[1:]:\n    os.close(os.open(os.path.join(A[0], name), os.O_CREAT | os.O_WRONLY, 0o644))', [d, ...orig]);
    assert.equal(made.code, 0, made.stderr);

    const dir = fs.opendirSync(d, { bufferSize: 1 });
    const seenBefore: string[] = [];
    const seenAfter: string[] = [];
    const deleted = new Set<string>();
    const added: string[] = [];
    try {
      for (let i = 0; i < 1000; i++) {
        const e = dir.readSync();
        assert.ok(e, `entry ${i} of ${COUNT}`);
        seenBefore.push(e.name);
      }
      const seenSet = new Set(seenBefore);
      const unseen = orig.filter((x) => !seenSet.has(x));
      assert.equal(unseen.length, COUNT - 1000);
      // 500 not yet seen (spread over the rest), 100 already seen, 500 new names.
      for (let i = 0; i < 500; i++) deleted.add(unseen[Math.floor((i * unseen.length) / 500)]!);
      for (let i = 0; i < 100; i++) deleted.add(seenBefore[i * 10]!);
      for (const name of deleted) fs.unlinkSync(path.join(d, name));
      for (let i = 0; i < 500; i++) {
        const name = `new${String(i).padStart(4, '0')}`;
        fs.writeFileSync(path.join(d, name), '');
        added.push(name);
      }
      for (let e = dir.readSync(); e; e = dir.readSync()) seenAfter.push(e.name);
    } finally {
      dir.closeSync();
    }
    const all = [...seenBefore, ...seenAfter];
    assert.deepEqual(duplicates(all), [], 'no name listed twice');
    const allSet = new Set(all);
    const survivors = orig.filter((x) => !deleted.has(x));
    const lost = survivors.filter((x) => !allSet.has(x));
    assert.deepEqual(lost.slice(0, 10), [], `${lost.length} entries that existed throughout were not listed`);
    const ghosts = seenAfter.filter((x) => deleted.has(x));
    for (const g of ghosts) assert.throws(() => fs.statSync(path.join(d, g)), { code: 'ENOENT' }, `${g} was deleted`);
    const strangers = all.filter((x) => !orig.includes(x) && !added.includes(x));
    assert.deepEqual(strangers, [], 'only names that existed at some point');
    console.log(
      `listing during changes: ${all.length} listed, ${ghosts.length} of ${deleted.size} deleted names still listed, ${all.filter((x) => added.includes(x)).length} of 500 new names listed`,
    );

    // A new listing sees exactly the new state.
    const now = fs.readdirSync(d).sort();
    assert.deepEqual(now, [...survivors, ...added].sort());
  });

  it('rewinddir: a second pass after changes sees the new state, also when rewound mid-listing', () => {
    const d = fresh('rewind');
    const r = pyJson<{ first: string[]; second: string[]; partial: string[]; third: string[] }>(
      `
d = A[0]
for i in range(300):
    os.close(os.open(os.path.join(d, 'a%03d' % i), os.O_CREAT | os.O_WRONLY, 0o644))
dp = opendir(d)
first = [e[0] for e in read_entries(dp)]
for i in range(0, 300, 3):
    os.unlink(os.path.join(d, 'a%03d' % i))
for i in range(50):
    os.close(os.open(os.path.join(d, 'b%03d' % i), os.O_CREAT | os.O_WRONLY, 0o644))
libc.rewinddir(dp)
second = [e[0] for e in read_entries(dp)]
libc.rewinddir(dp)
partial = [e[0] for e in read_entries(dp, 10)]
os.mkdir(os.path.join(d, 'c-dir'))
os.unlink(os.path.join(d, 'a001'))
libc.rewinddir(dp)
third = [e[0] for e in read_entries(dp)]
libc.closedir(dp)
print(json.dumps({'first': first, 'second': second, 'partial': partial, 'third': third}))
`,
      [d],
    );
    const a = (i: number) => `a${String(i).padStart(3, '0')}`;
    const b = (i: number) => `b${String(i).padStart(3, '0')}`;
    const range = (k: number) => Array.from({ length: k }, (_, i) => i);
    const expectFirst = ['.', '..', ...range(300).map(a)].sort();
    const expectSecond = ['.', '..', ...range(300).filter((i) => i % 3 !== 0).map(a), ...range(50).map(b)].sort();
    const expectThird = [...expectSecond.filter((x) => x !== 'a001'), 'c-dir'].sort();
    assert.deepEqual([...r.first].sort(), expectFirst);
    assert.deepEqual([...r.second].sort(), expectSecond, 'after rewinddir: deletions and creations visible');
    assert.equal(r.partial.length, 10);
    assert.deepEqual([...r.third].sort(), expectThird, 'rewound mid-listing: complete new state');
    for (const list of [r.first, r.second, r.third]) assert.deepEqual(duplicates(list), []);
  });

  it('"." and ".." appear exactly once, in an empty directory too', async () => {
    const d = fresh('dots');
    fs.mkdirSync(path.join(d, 'empty'));
    fs.writeFileSync(path.join(d, 'f'), '');
    const ls = await sh(`ls -a1 '${d}'`);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(ls.stdout.trim().split('\n').sort(), ['.', '..', 'empty', 'f']);
    const empty = await sh(`ls -a1 '${path.join(d, 'empty')}'`);
    assert.deepEqual(empty.stdout.trim().split('\n').sort(), ['.', '..']);
    const root = await sh(`ls -a1 '${shared.m.mnt}' | grep -c -x -e . -e ..`);
    assert.equal(root.stdout.trim(), '2', 'the mount root lists "." and ".." once each');
    // readdir(3) reports them as directories.
    const ents = pyJson<Array<[string, number, number]>>(`print(json.dumps(read_entries(opendir(A[0]))))`, [path.join(d, 'empty')]);
    assert.deepEqual(
      ents.map(([name, , type]) => [name, type]).sort(),
      [
        ['.', 4],
        ['..', 4],
      ],
    );
  });

  it('d_ino: "." is the directory, ".." its parent, entries match stat', () => {
    const d = fresh('dino');
    const sub = path.join(d, 'sub');
    fs.mkdirSync(sub);
    fs.writeFileSync(path.join(sub, 'f'), '');
    fs.mkdirSync(path.join(sub, 'inner'));
    const ents = pyJson<Array<[string, number, number]>>(`print(json.dumps(read_entries(opendir(A[0]))))`, [sub]);
    const ino = Object.fromEntries(ents.map(([name, i]) => [name, i]));
    assert.equal(ino['f'], fs.statSync(path.join(sub, 'f')).ino, 'f');
    assert.equal(ino['inner'], fs.statSync(path.join(sub, 'inner')).ino, 'inner');
    assert.equal(ino['.'], fs.statSync(sub).ino, '"."');
    assert.equal(ino['..'], fs.statSync(d).ino, '".." is the parent directory');
  });

  it('d_type of files, directories, symlinks, FIFOs', () => {
    const d = fresh('dtype');
    fs.writeFileSync(path.join(d, 'file'), 'x');
    fs.mkdirSync(path.join(d, 'dir'));
    fs.symlinkSync('file', path.join(d, 'link'));
    const r = py('os.mkfifo(A[0])', [path.join(d, 'fifo')]);
    assert.equal(r.code, 0, r.stderr);
    const types = Object.fromEntries(
      fs.readdirSync(d, { withFileTypes: true }).map((e) => [e.name, e.isFile() ? 'file' : e.isDirectory() ? 'dir' : e.isSymbolicLink() ? 'link' : e.isFIFO() ? 'fifo' : '?']),
    );
    assert.deepEqual(types, { file: 'file', dir: 'dir', link: 'link', fifo: 'fifo' });
  });

  it('2,000 entries with 255-byte names list completely (many entries per reply page boundary)', async () => {
    const d = fresh('longnames');
    await createMany(d, 2000, 2, "('%04d' % i) + 'n' * 251");
    const names = fs.readdirSync(d);
    assert.equal(names.length, 2000);
    assert.deepEqual(duplicates(names), []);
    assert.ok(names.every((x) => Buffer.byteLength(x) === 255 && /^\d{4}n{251}$/.test(x)));
    const ls = await sh(`ls -1 '${d}' | wc -l`);
    assert.equal(ls.stdout.trim(), '2000');
  });

  it('a listing of a directory that is being filled by another process never shows a name twice', async () => {
    const d = fresh('concurrent');
    await createMany(d, 2000, 1, "'old%05d' % i");
    const writer = createMany(d, 3000, 1, "'new%05d' % i");
    const lists: string[][] = [];
    let done = false;
    void writer.then(() => (done = true));
    while (!done && lists.length < 200) {
      lists.push(fs.readdirSync(d));
      await new Promise((r) => setImmediate(r));
    }
    await writer;
    assert.ok(lists.length >= 1);
    for (const list of lists) {
      assert.deepEqual(duplicates(list), []);
      const old = list.filter((x) => x.startsWith('old')).length;
      assert.equal(old, 2000, 'every pre-existing entry in every listing');
    }
    assert.equal(fs.readdirSync(d).length, 5000);
  });
});
