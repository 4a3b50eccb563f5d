// The hybrid layout's rules as pure functions (docs/zookeeper-layout.md): which
// names are reserved, how a directory's attribute map is encoded, and how an
// entry's type and attributes follow from its znode's Stat plus that map.

import { constants as C } from 'node:fs';
import type { Attr, Timespec } from '../../fs/backend.js';
import type { Stat } from './client/protocol.js';

/** A directory's hidden child: its presence keeps an empty directory a directory; its data is the attribute map. */
export const MARKER_NAME = '.swarmvol';
/** The file that shows a directory's own znode data (trees made by other tools may have some). */
export const DIR_DATA_NAME = '.zdata';
/** The volume root's hidden directory of lock znodes (src/backends/zookeeper/locks.ts). */
export const LOCKS_NAME = '.swarmvol-locks';
/** The volume root's hidden store of large files' chunks (src/backends/zookeeper/chunks.ts). */
export const CHUNKS_NAME = '.swarmvol-chunks';
/** The volume root's directory epoch (src/backends/zookeeper/dir-epoch.ts). */
export const EPOCH_NAME = '.swarmvol-epoch';
/** Names swarmvol keeps for itself in every directory; never listed; creating them is refused. */
/** The znodes swarmvol keeps in a volume, whichever mode mounts it (a hybrid volume mounted in dir or file mode must not show or lose them). */
const SWARMVOL_ZNODES = [MARKER_NAME, LOCKS_NAME, CHUNKS_NAME, EPOCH_NAME];
export const RESERVED_NAMES: ReadonlySet<string> = new Set([...SWARMVOL_ZNODES, DIR_DATA_NAME]);
/** Key of the volume root's own attributes in the root's map (it has no parent in the volume). */
export const SELF_KEY = '.';
/**
 * In a stored map, a zxid of -1 stands for "the transaction that wrote this
 * version of the map": an entry made in the same multi as its znode cannot
 * know the znode's czxid beforehand, but it is the map's own mzxid.
 */
const THIS_TXN = -1;

export type Kind = 'dir' | 'file' | 'symlink';

/**
 * How znodes map to files. hybrid: swarmvol's own layout (this page).
 * dir and file: zookeeper-fuse's layouts, for existing trees and users: in dir
 * mode every znode is a directory whose data is the file `_zoo_data_` in it;
 * in file mode znodes without children are files, those with children
 * directories. Neither stores types or attributes.
 */
export type Mode = 'hybrid' | 'dir' | 'file';
export const MODES: readonly Mode[] = ['hybrid', 'dir', 'file'];

export interface ModeRules {
  mode: Mode;
  /** Name of the file showing a directory's own data, if the mode has one. */
  dataName: string | undefined;
  /** Whether the data file shows even when the directory's data is empty. */
  dataAlways: boolean;
  /** Markers and attribute maps (hybrid only). */
  markers: boolean;
  /** Names never listed and never created. */
  reserved: ReadonlySet<string>;
}

export const ZOO_DATA_NAME = '_zoo_data_';

export function rulesFor(mode: Mode): ModeRules {
  switch (mode) {
    case 'hybrid':
      return { mode, dataName: DIR_DATA_NAME, dataAlways: false, markers: true, reserved: RESERVED_NAMES };
    case 'dir':
      return { mode, dataName: ZOO_DATA_NAME, dataAlways: true, markers: false, reserved: new Set([ZOO_DATA_NAME, ...SWARMVOL_ZNODES]) };
    case 'file':
      return { mode, dataName: undefined, dataAlways: false, markers: false, reserved: new Set(SWARMVOL_ZNODES) };
  }
}

/** Attributes of one entry that ZooKeeper's Stat cannot hold; only what differs from the defaults. */
export interface EntryMeta {
  /** czxid of the znode these attributes belong to: a znode recreated by another tool does not inherit them. */
  z: number;
  /** 'l': a symlink (the znode's data is the target). */
  t?: 'l';
  /** Permission bits (07777). */
  m?: number;
  u?: number;
  g?: number;
  /** Explicit mtime [sec, nsec], valid while the znode's mzxid is still `mz`. */
  mt?: [number, number];
  /** Explicit atime, valid under the same condition. */
  at?: [number, number];
  mz?: number;
  /** ctime [sec, nsec] of the last attribute change. */
  ct?: [number, number];
  /** Ordinal among the znodes one transaction created (a rename re-creates a whole subtree with one czxid). */
  i?: number;
  /** A large file: its size; the znode holds its chunk manifest (valid while the znode's mzxid is still `sm`). */
  s?: number;
  sm?: number;
}

/** A directory's attribute map as read from its marker. */
export interface DirMeta {
  /** Whether the marker znode exists (a directory made by another tool has none). */
  marker: boolean;
  /** The marker's data version, for version-checked updates. */
  version: number;
  entries: Map<string, EntryMeta>;
}

export const NO_MARKER: DirMeta = Object.freeze({ marker: false, version: -1, entries: new Map() }) as DirMeta;

/** Decodes a marker's data; `mzxid` resolves the entries written in the same transaction. Bad data reads as empty. */
export function decodeMeta(data: Buffer, version: number, mzxid: bigint): DirMeta {
  const entries = new Map<string, EntryMeta>();
  if (data.length > 0) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const e = (parsed as { e?: Record<string, EntryMeta> } | undefined)?.e;
    if (e && typeof e === 'object') {
      const txn = Number(mzxid);
      for (const [name, meta] of Object.entries(e)) {
        if (!meta || typeof meta !== 'object' || typeof meta.z !== 'number') continue;
        const m = { ...meta };
        if (m.z === THIS_TXN) m.z = txn;
        if (m.mz === THIS_TXN) m.mz = txn;
        if (m.sm === THIS_TXN) m.sm = txn;
        entries.set(name, m);
      }
    }
  }
  return { marker: true, version, entries };
}

/** Encodes a map; entries in `newInThisTxn` get their zxids from the transaction that writes them. */
export function encodeMeta(entries: Map<string, EntryMeta>, newInThisTxn: ReadonlySet<string> = new Set()): Buffer {
  if (entries.size === 0) return Buffer.alloc(0);
  // No prototype: a file named __proto__ must be an ordinary key.
  const out = Object.create(null) as Record<string, EntryMeta>;
  for (const [name, meta] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    out[name] = newInThisTxn.has(name) ? { ...meta, z: THIS_TXN, ...(meta.mz !== undefined ? { mz: THIS_TXN } : {}) } : meta;
  }
  return Buffer.from(JSON.stringify({ v: 1, e: out }));
}

/** A large file's size written in the same transaction as its manifest: this entry's `sm` stands for that transaction. */
export function largeFileEntry(meta: EntryMeta, size: number): EntryMeta {
  return { ...meta, s: size, sm: THIS_TXN };
}

/** The entry of a file stored as plain bytes again (no large-file size). */
export function plainFileEntry(meta: EntryMeta): EntryMeta {
  const m = { ...meta };
  delete m.s;
  delete m.sm;
  return m;
}

/** Resolves `sm` of entries written by the transaction `txn` (see largeFileEntry). */
export function resolveThisTxn(meta: EntryMeta, txn: number): EntryMeta {
  return meta.sm === THIS_TXN ? { ...meta, sm: txn } : meta;
}

/** The size of a large file, if the znode with this stat holds a chunk manifest; undefined for a plain file. */
export function largeFileSize(meta: EntryMeta | undefined, stat: Stat): number | undefined {
  return meta?.s !== undefined && meta.sm === Number(stat.mzxid) ? meta.s : undefined;
}

/** The meta of the znode with this stat, if the map holds one for it (and not for an earlier znode of that name). */
export function metaFor(map: DirMeta | undefined, name: string, stat: Stat): EntryMeta | undefined {
  const m = map?.entries.get(name);
  return m && m.z === Number(stat.czxid) ? m : undefined;
}

export function kindOf(stat: Stat, meta: EntryMeta | undefined, isRoot: boolean, mode: Mode = 'hybrid'): Kind {
  if (isRoot || stat.numChildren > 0 || mode === 'dir') return 'dir';
  return meta?.t === 'l' ? 'symlink' : 'file';
}

export interface Defaults {
  uid: number;
  gid: number;
  umask: number;
}

/** The S_IFMT bits of an entry of this kind. */
export function typeBits(kind: Kind): number {
  return kind === 'dir' ? C.S_IFDIR : kind === 'symlink' ? C.S_IFLNK : C.S_IFREG;
}

export function defaultPerms(kind: Kind, d: Defaults): number {
  return kind === 'symlink' ? 0o777 : (kind === 'dir' ? 0o777 : 0o666) & ~d.umask;
}

function msToTimespec(ms: number): Timespec {
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
}

function later(a: Timespec, b: Timespec): Timespec {
  return a.sec > b.sec || (a.sec === b.sec && a.nsec >= b.nsec) ? a : b;
}

/** Low bits of an inode number: the ordinal within the creating transaction. */
const ORDINAL_BITS = 20n;
/** Ordinals of entries without one (made alone, or by other tools) come from their name, above this. */
const HASHED_ORDINALS = 1 << 19;
/** The ordinal of a directory's `.zdata` file. */
export const DIR_DATA_ORDINAL = (1 << 20) - 1;
/** Largest ordinal a rename may assign. */
export const MAX_ORDINAL = HASHED_ORDINALS - 1;

function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * Inode numbers: czxid (64-bit, never reused) shifted left, plus an ordinal, since
 * every znode of one transaction shares its czxid. Every node computes the same
 * number for the same znode.
 */
export function inoOf(czxid: bigint, meta: EntryMeta | undefined, name: string, ordinal?: number): bigint {
  const low = ordinal ?? meta?.i ?? HASHED_ORDINALS + (nameHash(name) % (DIR_DATA_ORDINAL - HASHED_ORDINALS));
  return BigInt.asUintN(64, (czxid << ORDINAL_BITS) | BigInt(low));
}

export function attrOf(kind: Kind, stat: Stat, meta: EntryMeta | undefined, d: Defaults, size: number, name: string): Attr {
  const explicitTimes = meta?.mz !== undefined && meta.mz === Number(stat.mzxid);
  const mtime = explicitTimes && meta.mt ? { sec: meta.mt[0], nsec: meta.mt[1] } : msToTimespec(stat.mtime);
  const atime = explicitTimes && meta.at ? { sec: meta.at[0], nsec: meta.at[1] } : mtime;
  let ctime = later(msToTimespec(stat.mtime), msToTimespec(stat.ctime));
  if (meta?.ct) ctime = later(ctime, { sec: meta.ct[0], nsec: meta.ct[1] });
  const type = typeBits(kind);
  return {
    ino: inoOf(stat.czxid, meta, name),
    size,
    atime,
    mtime,
    ctime,
    mode: type | (meta?.m ?? defaultPerms(kind, d)),
    // 1 for directories: "subdirectory count unknown" (find must not assume leaves).
    nlink: 1,
    uid: meta?.u ?? d.uid,
    gid: meta?.g ?? d.gid,
    rdev: 0,
  };
}

/** Drops fields equal to the defaults; undefined when nothing is left worth storing. */
export function pruneMeta(meta: EntryMeta, kind: Kind, d: Defaults): EntryMeta | undefined {
  const m: EntryMeta = { ...meta };
  if (kind === 'symlink' || m.m === defaultPerms(kind, d)) delete m.m;
  if (m.u === d.uid) delete m.u;
  if (m.g === d.gid) delete m.g;
  if (m.mt === undefined && m.at === undefined) delete m.mz;
  if (m.s === undefined) delete m.sm;
  const keys = Object.keys(m).filter((k) => k !== 'z' && k !== 'ct' && k !== 'i');
  return keys.length > 0 ? m : undefined;
}

const ATTRIBUTE_KEYS = ['t', 'm', 'u', 'g', 'mt', 'at', 'mz'] as const;

/** Whether two entries store the same attributes (the change time aside). */
export function sameAttributes(a: EntryMeta | undefined, b: EntryMeta | undefined): boolean {
  return ATTRIBUTE_KEYS.every((k) => JSON.stringify(a?.[k]) === JSON.stringify(b?.[k]));
}

/**
 * ZooKeeper refuses path characters in these ranges (its PathUtils): control
 * characters, DEL and C1 controls, and everything from U+D800 to U+F8FF (which
 * in UTF-16 includes every character outside the Basic Multilingual Plane,
 * emoji among them, and the private use area) and U+FFF0 to U+FFFF.
 */
export function storableName(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) || c >= 0xfff0) return false;
  }
  return true;
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** Whether `path` is `root` or lies below it. */
export function isUnder(path: string, root: string): boolean {
  return path === root || path.startsWith(`${root}/`);
}

export function parentOf(path: string): { dir: string; name: string } {
  const i = path.lastIndexOf('/');
  return { dir: i <= 0 ? '/' : path.slice(0, i), name: path.slice(i + 1) };
}
