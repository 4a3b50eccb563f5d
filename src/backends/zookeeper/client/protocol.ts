// ZooKeeper's client wire protocol (zookeeper.jute, ZooDefs): op codes, error
// codes, records and their encodings.

import { JuteReader, JuteWriter } from './jute.js';

export const OpCode = {
  notification: 0,
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getACL: 6,
  setACL: 7,
  getChildren: 8,
  sync: 9,
  ping: 11,
  getChildren2: 12,
  check: 13,
  multi: 14,
  create2: 15,
  multiRead: 22,
  auth: 100,
  setWatches2: 105,
  addWatch: 106,
  closeSession: -11,
  error: -1,
} as const;

/** Reserved xids. */
export const Xid = {
  notification: -1,
  ping: -2,
  auth: -4,
  setWatches: -8,
} as const;

export const Perms = { READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16, ALL: 31 } as const;

export const CreateMode = {
  PERSISTENT: 0,
  EPHEMERAL: 1,
  PERSISTENT_SEQUENTIAL: 2,
  EPHEMERAL_SEQUENTIAL: 3,
} as const;

export const AddWatchMode = { PERSISTENT: 0, PERSISTENT_RECURSIVE: 1 } as const;

export const EventType = {
  None: -1,
  NodeCreated: 1,
  NodeDeleted: 2,
  NodeDataChanged: 3,
  NodeChildrenChanged: 4,
  DataWatchRemoved: 5,
  ChildWatchRemoved: 6,
  PersistentWatchRemoved: 7,
} as const;

/** ZooKeeper's KeeperException codes, by name. */
export const ErrorCode = {
  OK: 0,
  SYSTEMERROR: -1,
  RUNTIMEINCONSISTENCY: -2,
  DATAINCONSISTENCY: -3,
  CONNECTIONLOSS: -4,
  MARSHALLINGERROR: -5,
  UNIMPLEMENTED: -6,
  OPERATIONTIMEOUT: -7,
  BADARGUMENTS: -8,
  UNKNOWNSESSION: -12,
  APIERROR: -100,
  NONODE: -101,
  NOAUTH: -102,
  BADVERSION: -103,
  NOCHILDRENFOREPHEMERALS: -108,
  NODEEXISTS: -110,
  NOTEMPTY: -111,
  SESSIONEXPIRED: -112,
  INVALIDCALLBACK: -113,
  INVALIDACL: -114,
  AUTHFAILED: -115,
  SESSIONMOVED: -118,
  NOTREADONLY: -119,
  NOWATCHER: -121,
  QUOTAEXCEEDED: -125,
  THROTTLEDOP: -127,
} as const;

export type ErrorName = keyof typeof ErrorCode;

const errorNames = new Map<number, ErrorName>(Object.entries(ErrorCode).map(([k, v]) => [v, k as ErrorName]));

/** A ZooKeeper error answer (or a client-side CONNECTIONLOSS / OPERATIONTIMEOUT / SESSIONEXPIRED). */
export class ZkError extends Error {
  readonly code: number;
  readonly codeName: ErrorName | 'UNKNOWN';
  constructor(
    code: number,
    readonly path?: string,
    detail?: string,
  ) {
    const name = errorNames.get(code) ?? 'UNKNOWN';
    super(`ZooKeeper ${name} (${code})${path ? ` on ${path}` : ''}${detail ? `: ${detail}` : ''}`);
    this.name = 'ZkError';
    this.code = code;
    this.codeName = name;
  }
}

/**
 * An error the server answered. Its stack would only show the socket's data
 * handler, and capturing it costs more than decoding the reply: a cold
 * listing of a tree made by other tools meets one per directory (no marker).
 */
export function answeredError(code: number, path?: string): ZkError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new ZkError(code, path);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export interface Stat {
  czxid: bigint;
  mzxid: bigint;
  /** Milliseconds since the epoch (ZooKeeper's longs, well within a double's exact range). */
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  dataLength: number;
  numChildren: number;
  pzxid: bigint;
}

/** A listing reads thousands: the zxids share one BigInt while equal (a znode never changed has one zxid). */
export function readStat(r: JuteReader): Stat {
  const at = r.off;
  const czxid = r.long();
  return {
    czxid,
    mzxid: r.longLike(czxid, at),
    ctime: r.longNumber(),
    mtime: r.longNumber(),
    version: r.int(),
    cversion: r.int(),
    aversion: r.int(),
    ephemeralOwner: r.longLike(czxid, at),
    dataLength: r.int(),
    numChildren: r.int(),
    pzxid: r.longLike(czxid, at),
  };
}

export interface Acl {
  perms: number;
  scheme: string;
  id: string;
}

export const OPEN_ACL_UNSAFE: Acl[] = [{ perms: Perms.ALL, scheme: 'world', id: 'anyone' }];
/** All permissions for the identities this session authenticated as. */
export const CREATOR_ALL_ACL: Acl[] = [{ perms: Perms.ALL, scheme: 'auth', id: '' }];

export function writeAcls(w: JuteWriter, acls: Acl[]): void {
  w.int(acls.length);
  for (const a of acls) w.int(a.perms).string(a.scheme).string(a.id);
}

export function readAcls(r: JuteReader): Acl[] {
  const n = r.int();
  const out: Acl[] = [];
  for (let i = 0; i < n; i++) out.push({ perms: r.int(), scheme: r.string() ?? '', id: r.string() ?? '' });
  return out;
}

/** One operation of a multi (atomic) transaction. */
export type MultiOp =
  | { op: 'create'; path: string; data: Buffer; acl: Acl[]; mode?: number }
  | { op: 'delete'; path: string; version?: number }
  | { op: 'setData'; path: string; data: Buffer; version?: number }
  | { op: 'check'; path: string; version: number };

export type MultiResult =
  | { op: 'create'; path: string; stat?: Stat }
  | { op: 'delete' }
  | { op: 'setData'; stat: Stat }
  | { op: 'check' };

/** One read of a multiRead: answered in one round trip, each op on its own. */
export type ReadOp = { op: 'getData'; path: string } | { op: 'getChildren'; path: string };
export type ReadResult = { op: 'getData'; data: Buffer; stat: Stat } | { op: 'getChildren'; children: string[] } | ZkError;

export function writeCreate(w: JuteWriter, path: string, data: Buffer, acl: Acl[], mode: number): void {
  w.string(path).buffer(data);
  writeAcls(w, acl);
  w.int(mode);
}

export function writeMulti(w: JuteWriter, ops: MultiOp[]): void {
  for (const o of ops) {
    switch (o.op) {
      case 'create':
        w.int(OpCode.create2).bool(false).int(-1);
        writeCreate(w, o.path, o.data, o.acl, o.mode ?? CreateMode.PERSISTENT);
        break;
      case 'delete':
        w.int(OpCode.delete).bool(false).int(-1).string(o.path).int(o.version ?? -1);
        break;
      case 'setData':
        w.int(OpCode.setData).bool(false).int(-1).string(o.path).buffer(o.data).int(o.version ?? -1);
        break;
      case 'check':
        w.int(OpCode.check).bool(false).int(-1).string(o.path).int(o.version);
        break;
    }
  }
  w.int(-1).bool(true).int(-1);
}

/** `path` gives the path to send for each op's (the client's chroot). */
export function writeMultiRead(w: JuteWriter, ops: ReadOp[], path: (p: string) => string): void {
  for (const o of ops) w.int(o.op === 'getData' ? OpCode.getData : OpCode.getChildren).bool(false).int(-1).string(path(o.path)).bool(false);
  w.int(-1).bool(true).int(-1);
}

/** Error of a failed multi: the first op that failed, and each op's own code. */
export class ZkMultiError extends ZkError {
  constructor(
    readonly failedIndex: number,
    readonly codes: number[],
    path?: string,
    /** What the failed op was. */
    readonly failedOp?: MultiOp['op'],
  ) {
    super(codes[failedIndex] ?? ErrorCode.SYSTEMERROR, path, `multi op #${failedIndex} failed`);
  }
}

export function readMultiResult(r: JuteReader, ops: MultiOp[]): MultiResult[] {
  const results: MultiResult[] = [];
  const codes: number[] = [];
  let failed = -1;
  for (;;) {
    const type = r.int();
    const done = r.bool();
    const err = r.int();
    if (done) break;
    if (type === OpCode.error) {
      const code = r.int();
      codes.push(code);
      if (failed < 0 && code !== 0 && code !== ErrorCode.RUNTIMEINCONSISTENCY) failed = codes.length - 1;
      continue;
    }
    codes.push(err);
    // Inside a multi, ZooKeeper 3.8 answers create2 with a plain create result (no stat).
    if (type === OpCode.create) results.push({ op: 'create', path: r.string() ?? '' });
    else if (type === OpCode.create2) results.push({ op: 'create', path: r.string() ?? '', stat: readStat(r) });
    else if (type === OpCode.delete) results.push({ op: 'delete' });
    else if (type === OpCode.setData) results.push({ op: 'setData', stat: readStat(r) });
    else if (type === OpCode.check) results.push({ op: 'check' });
  }
  if (failed >= 0) throw new ZkMultiError(failed, codes, ops[failed]?.path, ops[failed]?.op);
  return results;
}

export function readMultiReadResult(r: JuteReader, ops: ReadOp[]): ReadResult[] {
  const results: ReadResult[] = [];
  for (;;) {
    const type = r.int();
    const done = r.bool();
    r.int();
    if (done) break;
    const i = results.length;
    if (type === OpCode.error) results.push(answeredError(r.int(), ops[i]?.path));
    else if (type === OpCode.getData) results.push({ op: 'getData', data: r.buffer() ?? Buffer.alloc(0), stat: readStat(r) });
    else results.push({ op: 'getChildren', children: r.strings() });
  }
  return results;
}
