import assert from 'node:assert/strict';
import { constants as C } from 'node:fs';
import { describe, it } from 'node:test';
import type { Stat } from '../../src/backends/zookeeper/client/protocol.js';
import {
  attrOf,
  decodeMeta,
  DIR_DATA_ORDINAL,
  encodeMeta,
  inoOf,
  joinPath,
  kindOf,
  metaFor,
  parentOf,
  pruneMeta,
  type Defaults,
  type DirMeta,
  type EntryMeta,
} from '../../src/backends/zookeeper/layout.js';

const D: Defaults = { uid: 1000, gid: 1001, umask: 0o022 };

function stat(over: Partial<Stat> = {}): Stat {
  return {
    czxid: 0x100n,
    mzxid: 0x200n,
    ctime: 1_700_000_000_123,
    mtime: 1_700_000_000_123,
    version: 0,
    cversion: 0,
    aversion: 0,
    ephemeralOwner: 0n,
    dataLength: 0,
    numChildren: 0,
    pzxid: 0x100n,
    ...over,
  };
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const entriesOf = (m: DirMeta) => Object.fromEntries(m.entries);
const typeBits = (mode: number) => mode & C.S_IFMT;
const permBits = (mode: number) => mode & 0o7777;
const HASHED = 1n << 19n;
const LOW_MASK = (1n << 20n) - 1n;

describe('decodeMeta', () => {
  it('reads a valid map with its version', () => {
    const data = json({ v: 1, e: { a: { z: 5, m: 0o600 }, b: { z: 7, t: 'l', u: 0 } } });
    const m = decodeMeta(data, 3, 99n);
    assert.equal(m.marker, true);
    assert.equal(m.version, 3);
    assert.deepEqual(entriesOf(m), { a: { z: 5, m: 0o600 }, b: { z: 7, t: 'l', u: 0 } });
  });

  it('resolves z:-1 and mz:-1 to the map’s own mzxid', () => {
    const data = json({ v: 1, e: { a: { z: -1, mz: -1, mt: [1, 2] }, b: { z: -1 }, c: { z: 4, mz: 6, mt: [3, 4] } } });
    const m = decodeMeta(data, 0, 42n);
    assert.deepEqual(m.entries.get('a'), { z: 42, mz: 42, mt: [1, 2] });
    assert.deepEqual(m.entries.get('b'), { z: 42 });
    assert.deepEqual(m.entries.get('c'), { z: 4, mz: 6, mt: [3, 4] });
  });

  it('reads an empty buffer as an empty map with a marker', () => {
    const m = decodeMeta(Buffer.alloc(0), 0, 1n);
    assert.equal(m.marker, true);
    assert.equal(m.version, 0);
    assert.equal(m.entries.size, 0);
  });

  it('reads malformed data or wrong shapes as an empty map without throwing', () => {
    const bad: Buffer[] = [
      Buffer.from('{not json'),
      Buffer.from([0xff, 0xfe, 0x00]),
      Buffer.from('null'),
      Buffer.from('42'),
      Buffer.from('"str"'),
      Buffer.from('[]'),
      json({}),
      json({ v: 1 }),
      json({ v: 1, e: null }),
      json({ v: 1, e: 'x' }),
      json({ v: 1, e: 7 }),
      json({ v: 1, e: [] }),
      json({ v: 1, e: { a: null, b: 3, c: 'x', d: {}, f: { z: '5' }, g: [1, 2], h: { m: 0o644 } } }),
    ];
    for (const data of bad) {
      const m = decodeMeta(data, 2, 9n);
      assert.equal(m.marker, true, data.toString());
      assert.equal(m.version, 2, data.toString());
      assert.equal(m.entries.size, 0, data.toString());
    }
  });

  it('keeps the well-formed entries next to bad ones', () => {
    const m = decodeMeta(json({ e: { bad: 'x', good: { z: 1 }, worse: { z: null } } }), 1, 1n);
    assert.deepEqual(entriesOf(m), { good: { z: 1 } });
  });
});

describe('encodeMeta', () => {
  it('encodes an empty map as an empty buffer', () => {
    assert.equal(encodeMeta(new Map()).length, 0);
    assert.equal(encodeMeta(new Map(), new Set(['a'])).length, 0);
  });

  it('writes fresh names with z:-1, and mz:-1 only where mz was present', () => {
    const entries = new Map<string, EntryMeta>([
      ['fresh', { z: 10, mz: 11, mt: [1, 0] }],
      ['freshNoMz', { z: 10, m: 0o600 }],
      ['old', { z: 3, mz: 4, mt: [2, 0] }],
    ]);
    const out = JSON.parse(encodeMeta(entries, new Set(['fresh', 'freshNoMz'])).toString()) as { v: number; e: Record<string, EntryMeta> };
    assert.equal(out.v, 1);
    assert.deepEqual(out.e.fresh, { z: -1, mz: -1, mt: [1, 0] });
    assert.deepEqual(out.e.freshNoMz, { z: -1, m: 0o600 });
    assert.equal('mz' in out.e.freshNoMz, false);
    assert.deepEqual(out.e.old, { z: 3, mz: 4, mt: [2, 0] });
  });

  it('does not change the entries it encodes', () => {
    const meta: EntryMeta = { z: 10, mz: 11, mt: [1, 0] };
    encodeMeta(new Map([['a', meta]]), new Set(['a']));
    assert.deepEqual(meta, { z: 10, mz: 11, mt: [1, 0] });
  });

  it('writes names in sorted order whatever the insertion order', () => {
    const names = ['zeta', 'alpha', 'Beta', 'mid', '.x', 'alpha2'];
    const a = new Map<string, EntryMeta>(names.map((n, i) => [n, { z: i }]));
    const b = new Map<string, EntryMeta>([...names].reverse().map((n) => [n, { z: names.indexOf(n) }]));
    const bytes = encodeMeta(a);
    assert.ok(bytes.equals(encodeMeta(b)));
    const keys = Object.keys((JSON.parse(bytes.toString()) as { e: object }).e);
    assert.deepEqual(keys, ['.x', 'Beta', 'alpha', 'alpha2', 'mid', 'zeta']);
  });

  it('round-trips when nothing is fresh', () => {
    const entries = new Map<string, EntryMeta>([
      ['f', { z: 12, m: 0o600, u: 0, g: 0 }],
      ['l', { z: 13, t: 'l' }],
      ['t', { z: 14, mt: [5, 6], at: [7, 8], mz: 15, ct: [9, 10], i: 3 }],
      ['ünï cödé', { z: 16, i: 0 }],
    ]);
    const back = decodeMeta(encodeMeta(entries), 4, 999n);
    assert.equal(back.marker, true);
    assert.equal(back.version, 4);
    assert.deepEqual(back.entries, entries);
  });

  it('round-trips fresh entries to the writing transaction’s mzxid', () => {
    const entries = new Map<string, EntryMeta>([
      ['n', { z: 0, mz: 0, mt: [1, 1] }],
      ['o', { z: 5 }],
    ]);
    const back = decodeMeta(encodeMeta(entries, new Set(['n'])), 0, 77n);
    assert.deepEqual(back.entries.get('n'), { z: 77, mz: 77, mt: [1, 1] });
    assert.deepEqual(back.entries.get('o'), { z: 5 });
  });
});

describe('metaFor', () => {
  const map: DirMeta = { marker: true, version: 0, entries: new Map([['a', { z: 0x100, m: 0o600 }]]) };

  it('returns the entry for the znode’s czxid', () => {
    assert.deepEqual(metaFor(map, 'a', stat({ czxid: 0x100n })), { z: 0x100, m: 0o600 });
  });

  it('ignores an entry left by an earlier znode of that name', () => {
    assert.equal(metaFor(map, 'a', stat({ czxid: 0x101n })), undefined);
  });

  it('returns undefined for unknown names and a missing map', () => {
    assert.equal(metaFor(map, 'b', stat({ czxid: 0x100n })), undefined);
    assert.equal(metaFor(undefined, 'a', stat({ czxid: 0x100n })), undefined);
  });
});

describe('kindOf', () => {
  it('is dir for the root, whatever its children and meta', () => {
    assert.equal(kindOf(stat(), undefined, true), 'dir');
    assert.equal(kindOf(stat(), { z: 1, t: 'l' }, true), 'dir');
  });

  it('is dir for a znode with children', () => {
    assert.equal(kindOf(stat({ numChildren: 1 }), undefined, false), 'dir');
    assert.equal(kindOf(stat({ numChildren: 3 }), { z: 1, t: 'l' }, false), 'dir');
  });

  it('is symlink for t:l without children', () => {
    assert.equal(kindOf(stat(), { z: 1, t: 'l' }, false), 'symlink');
  });

  it('is file otherwise', () => {
    assert.equal(kindOf(stat(), undefined, false), 'file');
    assert.equal(kindOf(stat(), { z: 1, m: 0o600 }, false), 'file');
  });

  it('is always dir in dir mode', () => {
    assert.equal(kindOf(stat(), undefined, false, 'dir'), 'dir');
  });
});

describe('attrOf', () => {
  it('gives defaults from umask, uid and gid', () => {
    const dir = attrOf('dir', stat(), undefined, D, 0, 'd');
    assert.equal(typeBits(dir.mode), C.S_IFDIR);
    assert.equal(permBits(dir.mode), 0o755);
    const file = attrOf('file', stat(), undefined, D, 0, 'f');
    assert.equal(typeBits(file.mode), C.S_IFREG);
    assert.equal(permBits(file.mode), 0o644);
    const link = attrOf('symlink', stat(), undefined, D, 0, 'l');
    assert.equal(typeBits(link.mode), C.S_IFLNK);
    assert.equal(permBits(link.mode), 0o777);
    for (const a of [dir, file, link]) {
      assert.equal(a.uid, 1000);
      assert.equal(a.gid, 1001);
      assert.equal(a.nlink, 1);
      assert.equal(a.rdev, 0);
    }
  });

  it('follows another umask', () => {
    const d: Defaults = { uid: 0, gid: 0, umask: 0o077 };
    assert.equal(permBits(attrOf('dir', stat(), undefined, d, 0, 'd').mode), 0o700);
    assert.equal(permBits(attrOf('file', stat(), undefined, d, 0, 'f').mode), 0o600);
    assert.equal(permBits(attrOf('symlink', stat(), undefined, d, 0, 'l').mode), 0o777);
  });

  it('uses stored mode, uid and gid over the defaults (0 included)', () => {
    const a = attrOf('file', stat(), { z: 0x100, m: 0o4750, u: 0, g: 0 }, D, 0, 'f');
    assert.equal(typeBits(a.mode), C.S_IFREG);
    assert.equal(permBits(a.mode), 0o4750);
    assert.equal(a.uid, 0);
    assert.equal(a.gid, 0);
    const z = attrOf('file', stat(), { z: 0x100, m: 0 }, D, 0, 'f');
    assert.equal(permBits(z.mode), 0);
  });

  it('passes the size through', () => {
    assert.equal(attrOf('file', stat({ dataLength: 5 }), undefined, D, 12345, 'f').size, 12345);
  });

  it('takes mtime and atime from the znode’s mtime without pinned times', () => {
    const a = attrOf('file', stat({ mtime: 1_700_000_123_456, ctime: 1_600_000_000_000 }), undefined, D, 0, 'f');
    assert.deepEqual(a.mtime, { sec: 1_700_000_123, nsec: 456_000_000 });
    assert.deepEqual(a.atime, { sec: 1_700_000_123, nsec: 456_000_000 });
  });

  it('uses pinned mtime and atime while mz equals the znode’s mzxid', () => {
    const meta: EntryMeta = { z: 0x100, mt: [100, 5], at: [200, 6], mz: 0x200 };
    const a = attrOf('file', stat({ mzxid: 0x200n }), meta, D, 0, 'f');
    assert.deepEqual(a.mtime, { sec: 100, nsec: 5 });
    assert.deepEqual(a.atime, { sec: 200, nsec: 6 });
  });

  it('drops pinned times once the znode has been written again', () => {
    const meta: EntryMeta = { z: 0x100, mt: [100, 5], at: [200, 6], mz: 0x200 };
    const a = attrOf('file', stat({ mzxid: 0x201n, mtime: 1_700_000_000_500 }), meta, D, 0, 'f');
    assert.deepEqual(a.mtime, { sec: 1_700_000_000, nsec: 500_000_000 });
    assert.deepEqual(a.atime, { sec: 1_700_000_000, nsec: 500_000_000 });
  });

  it('ignores mt/at without mz', () => {
    const a = attrOf('file', stat({ mtime: 3_000 }), { z: 0x100, mt: [100, 5], at: [200, 6] }, D, 0, 'f');
    assert.deepEqual(a.mtime, { sec: 3, nsec: 0 });
    assert.deepEqual(a.atime, { sec: 3, nsec: 0 });
  });

  it('uses the pinned mtime as atime when only mt is pinned, and the stat mtime when only at is', () => {
    const onlyMt = attrOf('file', stat({ mzxid: 0x200n, mtime: 9_000 }), { z: 0x100, mt: [100, 5], mz: 0x200 }, D, 0, 'f');
    assert.deepEqual(onlyMt.mtime, { sec: 100, nsec: 5 });
    assert.deepEqual(onlyMt.atime, { sec: 100, nsec: 5 });
    const onlyAt = attrOf('file', stat({ mzxid: 0x200n, mtime: 9_000 }), { z: 0x100, at: [200, 6], mz: 0x200 }, D, 0, 'f');
    assert.deepEqual(onlyAt.mtime, { sec: 9, nsec: 0 });
    assert.deepEqual(onlyAt.atime, { sec: 200, nsec: 6 });
  });

  it('takes ctime as the latest of stat mtime, stat ctime and meta ct', () => {
    const mtimeLatest = attrOf('file', stat({ mtime: 5_250, ctime: 4_000 }), undefined, D, 0, 'f');
    assert.deepEqual(mtimeLatest.ctime, { sec: 5, nsec: 250_000_000 });
    const ctimeLatest = attrOf('file', stat({ mtime: 4_000, ctime: 5_250 }), undefined, D, 0, 'f');
    assert.deepEqual(ctimeLatest.ctime, { sec: 5, nsec: 250_000_000 });
    const ctLatest = attrOf('file', stat({ mtime: 4_000, ctime: 5_250 }), { z: 0x100, ct: [5, 250_000_001] }, D, 0, 'f');
    assert.deepEqual(ctLatest.ctime, { sec: 5, nsec: 250_000_001 });
    const ctOlder = attrOf('file', stat({ mtime: 4_000, ctime: 5_250 }), { z: 0x100, ct: [5, 249_999_999] }, D, 0, 'f');
    assert.deepEqual(ctOlder.ctime, { sec: 5, nsec: 250_000_000 });
  });

  it('does not let a pinned mtime move ctime', () => {
    const a = attrOf('file', stat({ mzxid: 0x200n, mtime: 4_000, ctime: 3_000 }), { z: 0x100, mt: [9_999, 0], mz: 0x200 }, D, 0, 'f');
    assert.deepEqual(a.mtime, { sec: 9_999, nsec: 0 });
    assert.deepEqual(a.ctime, { sec: 4, nsec: 0 });
  });

  it('builds ino from czxid and meta.i', () => {
    const a = attrOf('file', stat({ czxid: 0x1234n }), { z: 0x1234, i: 7 }, D, 0, 'f');
    assert.equal(a.ino, (0x1234n << 20n) | 7n);
    const zero = attrOf('file', stat({ czxid: 0x1234n }), { z: 0x1234, i: 0 }, D, 0, 'f');
    assert.equal(zero.ino, 0x1234n << 20n);
  });

  it('builds ino from a name hash at or above 2^19 without meta.i', () => {
    const names = ['a', 'b', 'file.txt', 'some-longer-name', '', 'ünï'];
    const inos = names.map((n) => attrOf('file', stat({ czxid: 0x55n }), undefined, D, 0, n).ino as bigint);
    for (const ino of inos) {
      assert.equal(typeof ino, 'bigint');
      assert.equal(ino >> 20n, 0x55n);
      const low = ino & LOW_MASK;
      assert.ok(low >= HASHED, `low ${low}`);
      assert.ok(low < BigInt(DIR_DATA_ORDINAL), `low ${low}`);
    }
    assert.equal(new Set(inos).size, names.length);
    // The same name gives the same ino, with or without an unrelated meta.
    assert.equal(attrOf('dir', stat({ czxid: 0x55n }), { z: 0x55, m: 0o700 }, D, 0, 'file.txt').ino, inos[2]);
  });

  it('hashes names with 32-bit FNV-1a (inode numbers must stay stable)', () => {
    // FNV-1a("a") = 0xe40c292c; 0xe40c292c % (2^20 - 1 - 2^19) = 279981.
    assert.equal(inoOf(1n, undefined, 'a'), (1n << 20n) | (HASHED + 279_981n));
  });
});

describe('inoOf', () => {
  it('uses an explicit ordinal over meta.i and the hash', () => {
    assert.equal(inoOf(0x10n, { z: 0x10, i: 3 }, 'x', 9), (0x10n << 20n) | 9n);
    assert.equal(inoOf(0x10n, undefined, 'x', 0), 0x10n << 20n);
    assert.equal(inoOf(0x10n, undefined, 'x', DIR_DATA_ORDINAL), (0x10n << 20n) | LOW_MASK);
  });

  it('uses meta.i without an explicit ordinal', () => {
    assert.equal(inoOf(0x10n, { z: 0x10, i: 3 }, 'x'), (0x10n << 20n) | 3n);
  });

  it('gives different znodes of one transaction different inos', () => {
    assert.notEqual(inoOf(0x10n, undefined, 'x', 1), inoOf(0x10n, undefined, 'x', 2));
    assert.notEqual(inoOf(0x10n, undefined, 'x', 1), inoOf(0x11n, undefined, 'x', 1));
  });

  it('stays within 64 bits', () => {
    const ino = inoOf((1n << 44n) - 1n, undefined, 'x', 5);
    assert.equal(ino, (((1n << 44n) - 1n) << 20n) | 5n);
    assert.ok(ino < 1n << 64n);
  });
});

describe('pruneMeta', () => {
  it('returns undefined when only defaults are stored', () => {
    assert.equal(pruneMeta({ z: 1, m: 0o644, u: 1000, g: 1001 }, 'file', D), undefined);
    assert.equal(pruneMeta({ z: 1, m: 0o755 }, 'dir', D), undefined);
    assert.equal(pruneMeta({ z: 1 }, 'file', D), undefined);
  });

  it('returns undefined when only z, ct and i are left', () => {
    assert.equal(pruneMeta({ z: 1, ct: [1, 2], i: 4, m: 0o644, u: 1000 }, 'file', D), undefined);
  });

  it('keeps fields that differ from the defaults, with z, ct and i', () => {
    assert.deepEqual(pruneMeta({ z: 1, ct: [1, 2], i: 4, m: 0o600, u: 1000, g: 5 }, 'file', D), { z: 1, ct: [1, 2], i: 4, m: 0o600, g: 5 });
    assert.deepEqual(pruneMeta({ z: 1, u: 0 }, 'file', D), { z: 1, u: 0 });
  });

  it('judges m against the kind’s default', () => {
    assert.deepEqual(pruneMeta({ z: 1, m: 0o755 }, 'file', D), { z: 1, m: 0o755 });
    assert.deepEqual(pruneMeta({ z: 1, m: 0o644 }, 'dir', D), { z: 1, m: 0o644 });
  });

  it('never keeps m for a symlink, and keeps its type', () => {
    assert.deepEqual(pruneMeta({ z: 1, t: 'l', m: 0o700 }, 'symlink', D), { z: 1, t: 'l' });
    assert.deepEqual(pruneMeta({ z: 1, t: 'l', m: 0o777, u: 0 }, 'symlink', D), { z: 1, t: 'l', u: 0 });
  });

  it('drops mz without mt or at, and keeps it with either', () => {
    assert.equal(pruneMeta({ z: 1, mz: 5 }, 'file', D), undefined);
    assert.deepEqual(pruneMeta({ z: 1, mz: 5, mt: [1, 2] }, 'file', D), { z: 1, mz: 5, mt: [1, 2] });
    assert.deepEqual(pruneMeta({ z: 1, mz: 5, at: [1, 2] }, 'file', D), { z: 1, mz: 5, at: [1, 2] });
  });

  it('does not change its argument', () => {
    const meta: EntryMeta = { z: 1, t: 'l', m: 0o700, mz: 4, u: 1000 };
    pruneMeta(meta, 'symlink', D);
    assert.deepEqual(meta, { z: 1, t: 'l', m: 0o700, mz: 4, u: 1000 });
  });
});

describe('joinPath and parentOf', () => {
  it('joins under the root and below it', () => {
    assert.equal(joinPath('/', 'a'), '/a');
    assert.equal(joinPath('/a', 'b'), '/a/b');
    assert.equal(joinPath('/a/b', 'c d'), '/a/b/c d');
  });

  it('splits a path into its directory and name', () => {
    assert.deepEqual(parentOf('/a'), { dir: '/', name: 'a' });
    assert.deepEqual(parentOf('/a/b'), { dir: '/a', name: 'b' });
    assert.deepEqual(parentOf('/a/b/c'), { dir: '/a/b', name: 'c' });
  });

  it('inverts joinPath', () => {
    for (const [dir, name] of [
      ['/', 'x'],
      ['/x', 'y'],
      ['/x/y', '.swarmvol'],
    ] as const) {
      assert.deepEqual(parentOf(joinPath(dir, name)), { dir, name });
    }
  });

  it('keeps the attributes of a file named __proto__', () => {
    const entries = new Map([['__proto__', { z: 5, m: 0o600 }]]);
    const back = decodeMeta(encodeMeta(entries), 1, 9n);
    assert.deepEqual(back.entries.get('__proto__'), { z: 5, m: 0o600 });
  });
});
