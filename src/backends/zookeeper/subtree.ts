// Rename in ZooKeeper, where a znode cannot move: one multi deletes the
// source subtree (version-checked, so a concurrent change makes it fail as a
// whole) and re-creates it under the new name with the same data and the same
// attributes, so every node sees the old tree or the new one, never a mix.

import type { Acl, MultiOp, Stat } from './client/protocol.js';
import {
  type Defaults,
  type DirMeta,
  type EntryMeta,
  joinPath,
  kindOf,
  type Kind,
  largeFileEntry,
  largeFileSize,
  MARKER_NAME,
  type Mode,
  attrOf,
  metaFor,
  pruneMeta,
} from './layout.js';

/** A znode and everything under it, read before a rename. */
export interface Subtree {
  /** Absolute ZooKeeper path. */
  zkPath: string;
  name: string;
  data: Buffer;
  stat: Stat;
  kind: Kind;
  /** Its attributes from its parent's map (valid for this znode only). */
  meta: EntryMeta | undefined;
  /** Its marker's data version, if it has one: the delete checks it (a child made or replaced meanwhile wrote the map). */
  markerVersion: number | undefined;
  children: Subtree[];
}

/** Bytes a multi spends on one op besides its path and data (header, version, ACL). */
const OP_OVERHEAD = 64;

/** What moving `t` adds to a multi: a delete and a create per znode, and a setData for each but symlinks (see createOps). */
export function subtreeBytes(t: Subtree): number {
  const ops = t.kind === 'symlink' ? 2 : 3;
  return ops * (t.zkPath.length + OP_OVERHEAD) + t.data.length + t.children.reduce((n, c) => n + subtreeBytes(c), 0);
}

export function countNodes(t: Subtree): number {
  return 1 + t.children.reduce((n, c) => n + countNodes(c), 0);
}

/** The czxid of each znode of `t`, by its path below `t` ('' for `t` itself, '/a/b' below). */
export function czxidsOf(t: Subtree, below = '', into = new Map<string, bigint>()): Map<string, bigint> {
  into.set(below, t.stat.czxid);
  for (const c of t.children) czxidsOf(c, `${below}/${c.name}`, into);
  return into;
}

/** Deletes children before parents; each delete checks the data version read. */
export function deleteOps(t: Subtree): MultiOp[] {
  const ops: MultiOp[] = [];
  for (const c of t.children) ops.push(...deleteOps(c));
  if (t.markerVersion !== undefined) ops.push({ op: 'delete', path: `${t.zkPath}/${MARKER_NAME}`, version: t.markerVersion });
  ops.push({ op: 'delete', path: t.zkPath, version: t.stat.version });
  return ops;
}

/** The meta an entry carries to its new place: its attributes, with its mtime pinned (a re-created znode gets a new one). */
export function movedMeta(t: Subtree, d: Defaults, ordinal: number): EntryMeta {
  const a = attrOf(t.kind, t.stat, t.meta, d, 0, t.name);
  let moved: EntryMeta = { ...(t.meta ?? { z: 0 }), z: 0, mt: [a.mtime.sec, a.mtime.nsec], at: [a.atime.sec, a.atime.nsec], mz: 0, i: ordinal };
  // The type goes by what is moved: a znode with children is a directory, whatever its entry said.
  delete moved.t;
  if (t.kind === 'symlink') moved.t = 'l';
  // A large file's manifest is re-created too: its size stays valid for the new znode.
  const large = largeFileSize(t.meta, t.stat);
  delete moved.s;
  delete moved.sm;
  if (large !== undefined) moved = largeFileEntry(moved, large);
  return pruneMeta(moved, t.kind, d) ?? moved;
}

/**
 * Creates `t` at `zkPath`, parents before children; every directory gets a
 * marker holding its children's attributes, all stamped "this transaction".
 * A file or directory is made empty and given its bytes by a setData, so it
 * is at data version 1 as a new entry (and the setData's Stat tells the
 * transaction's zxid, the czxid of every znode made: a create in a multi
 * answers without one); a symlink is made with its target, at version 0, as
 * every symlink (docs/zookeeper-layout.md).
 */
export function createOps(
  t: Subtree,
  zkPath: string,
  acl: Acl[],
  d: Defaults,
  encode: ((entries: Map<string, EntryMeta>, fresh: ReadonlySet<string>) => Buffer) | undefined,
  ordinals: { next: number },
): MultiOp[] {
  const ops: MultiOp[] =
    t.kind === 'symlink'
      ? [{ op: 'create', path: zkPath, data: t.data, acl }]
      : [
          { op: 'create', path: zkPath, data: Buffer.alloc(0), acl },
          { op: 'setData', path: zkPath, data: t.data, version: 0 },
        ];
  if (t.kind !== 'dir') return ops;
  if (!encode) {
    // A layout without markers: the znodes alone.
    for (const c of t.children) ops.push(...createOps(c, joinPath(zkPath, c.name), acl, d, encode, ordinals));
    return ops;
  }
  const entries = new Map<string, EntryMeta>();
  // The directory's own entry ('.') only exists at the volume root, which never moves.
  for (const c of t.children) entries.set(c.name, movedMeta(c, d, ordinals.next++));
  ops.push({ op: 'create', path: `${zkPath}/${MARKER_NAME}`, data: encode(entries, new Set(entries.keys())), acl });
  for (const c of t.children) ops.push(...createOps(c, joinPath(zkPath, c.name), acl, d, encode, ordinals));
  return ops;
}

/** Builds a Subtree node from what was read. */
export function subtreeNode(zkPath: string, name: string, data: Buffer, stat: Stat, parentMeta: DirMeta | undefined, own: DirMeta | undefined, mode: Mode): Omit<Subtree, 'children'> {
  const meta = metaFor(parentMeta, name, stat);
  return {
    zkPath,
    name,
    data,
    stat,
    kind: kindOf(stat, meta, false, mode),
    meta,
    markerVersion: own?.marker ? own.version : undefined,
  };
}
