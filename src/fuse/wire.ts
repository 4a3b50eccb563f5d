// Encoding and decoding of FUSE structs. Numbers are JS numbers where the
// protocol's u64 fields stay below 2^53 in practice (node ids, handles,
// offsets, sizes); lock ranges and lock owners use bigint.

import {
  ATTR_SIZE,
  DIRENT_HEADER_SIZE,
  ENTRY_OUT_SIZE,
  PAGE_SIZE,
} from './kernel.js';
import type { Attr, EntryOut, StatfsOut } from './types.js';

const TWO_32 = 2 ** 32;

export function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO_32;
}

/**
 * The DataView of a buffer replies are written into. `setUint32` compiles to
 * one store, where four byte stores each check their bounds and
 * `buf.writeUInt32LE` checks the value's range: a READDIRPLUS entry's
 * `fuse_entry_out` took 117-143 ns with byte stores, 31-45 with a DataView.
 * A session writes its replies into a few long-lived buffers (fixed-size
 * replies, directory replies), so the views of the last two are kept.
 */
let lastBuffer: Buffer | undefined;
let lastView: DataView | undefined;
let otherBuffer: Buffer | undefined;
let otherView: DataView | undefined;

function viewOf(buf: Buffer): DataView {
  if (buf === lastBuffer) return lastView!;
  if (buf === otherBuffer) {
    [otherBuffer, lastBuffer] = [lastBuffer, otherBuffer];
    [otherView, lastView] = [lastView, otherView];
    return lastView!;
  }
  otherBuffer = lastBuffer;
  otherView = lastView;
  lastBuffer = buf;
  lastView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return lastView;
}

/** A u32, little-endian; a value that does not fit is taken modulo 2^32. */
export function writeU32(buf: Buffer, off: number, value: number): void {
  viewOf(buf).setUint32(off, value, true);
}

export function writeU64(buf: Buffer, off: number, value: number | bigint): void {
  setU64(viewOf(buf), off, value);
}

function setU64(view: DataView, off: number, value: number | bigint): void {
  // Most fields fit in 32 bits: this path is short enough for V8 to inline into every caller.
  if (typeof value === 'number' && value >= 0 && value <= 0xffffffff) {
    view.setUint32(off, value, true);
    view.setUint32(off + 4, 0, true);
  } else setWideU64(view, off, value);
}

function setWideU64(view: DataView, off: number, value: number | bigint): void {
  if (typeof value === 'bigint') {
    view.setBigUint64(off, BigInt.asUintN(64, value), true);
  } else if (value >= 0 && value <= Number.MAX_SAFE_INTEGER) {
    // `>>> 0` is the value modulo 2^32, exact for any safe integer; so is the division of the rest.
    const low = value >>> 0;
    view.setUint32(off, low, true);
    view.setUint32(off + 4, (value - low) / TWO_32, true);
  } else {
    view.setBigInt64(off, BigInt(Math.trunc(value)), true);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Thrown for a name that is not valid UTF-8 (answered with EILSEQ). */
export class InvalidNameError extends Error {}

function isAscii(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return false;
  return true;
}

/**
 * A NUL-terminated string starting at `off`, not past `end`. Names must be
 * valid UTF-8: the stores we serve (ZooKeeper paths, HTTP paths) cannot keep
 * arbitrary bytes, and a lossy decode would corrupt names silently.
 */
export function readCString(buf: Buffer, off: number, end: number): { value: string; next: number } {
  let zero = buf.indexOf(0, off);
  if (zero < 0 || zero >= end) zero = end;
  if (isAscii(buf, off, zero)) return { value: buf.toString('latin1', off, zero), next: zero + 1 };
  try {
    return { value: strictUtf8.decode(buf.subarray(off, zero)), next: zero + 1 };
  } catch {
    throw new InvalidNameError('name is not valid UTF-8');
  }
}

/** A cache timeout's whole seconds and nanoseconds (two numbers, not an object: this runs per reply). */
function timeoutSec(seconds: number): number {
  return seconds > 0 ? Math.floor(seconds) : 0;
}

function timeoutNsec(seconds: number): number {
  return seconds > 0 ? Math.min(999_999_999, Math.round((seconds - Math.floor(seconds)) * 1e9)) : 0;
}

export function writeAttr(buf: Buffer, off: number, a: Attr): void {
  setAttr(viewOf(buf), off, a);
}

function setAttr(v: DataView, off: number, a: Attr): void {
  setU64(v, off, a.ino);
  setU64(v, off + 8, a.size);
  setU64(v, off + 16, a.blocks ?? Math.ceil(a.size / 512));
  setU64(v, off + 24, a.atime.sec);
  setU64(v, off + 32, a.mtime.sec);
  setU64(v, off + 40, a.ctime.sec);
  v.setUint32(off + 48, a.atime.nsec, true);
  v.setUint32(off + 52, a.mtime.nsec, true);
  v.setUint32(off + 56, a.ctime.nsec, true);
  v.setUint32(off + 60, a.mode, true);
  v.setUint32(off + 64, a.nlink, true);
  v.setUint32(off + 68, a.uid, true);
  v.setUint32(off + 72, a.gid, true);
  v.setUint32(off + 76, a.rdev, true);
  v.setUint32(off + 80, a.blksize ?? PAGE_SIZE, true);
  v.setUint32(off + 84, 0, true);
}

export function writeEntryOut(buf: Buffer, off: number, e: EntryOut): void {
  const v = viewOf(buf);
  setU64(v, off, e.nodeid);
  setU64(v, off + 8, e.generation ?? 0);
  setU64(v, off + 16, timeoutSec(e.entryTimeout));
  setU64(v, off + 24, timeoutSec(e.attrTimeout));
  v.setUint32(off + 32, timeoutNsec(e.entryTimeout), true);
  v.setUint32(off + 36, timeoutNsec(e.attrTimeout), true);
  if (e.attr) setAttr(v, off + 40, e.attr);
  else buf.fill(0, off + 40, off + 40 + ATTR_SIZE);
}

export function writeAttrOut(buf: Buffer, off: number, attr: Attr, timeout: number): void {
  const v = viewOf(buf);
  setU64(v, off, timeoutSec(timeout));
  v.setUint32(off + 8, timeoutNsec(timeout), true);
  v.setUint32(off + 12, 0, true);
  setAttr(v, off + 16, attr);
}

export function writeStatfs(buf: Buffer, off: number, s: StatfsOut): void {
  const v = viewOf(buf);
  setU64(v, off, s.blocks);
  setU64(v, off + 8, s.bfree);
  setU64(v, off + 16, s.bavail);
  setU64(v, off + 24, s.files);
  setU64(v, off + 32, s.ffree);
  v.setUint32(off + 40, s.bsize, true);
  v.setUint32(off + 44, s.namelen, true);
  v.setUint32(off + 48, s.frsize, true);
  buf.fill(0, off + 52, off + 80);
}

/** Writes a `fuse_out_header`: total length, negated errno (0: success), the request's unique. */
export function writeOutHeader(buf: Buffer, length: number, errno: number, unique: number): void {
  const v = viewOf(buf);
  v.setUint32(0, length, true);
  // Not -errno for 0: -0 is a heap-allocated double, and this runs per reply.
  v.setInt32(4, errno === 0 ? 0 : -errno, true);
  setU64(v, 8, unique);
}

/** Size of one `fuse_dirent` record for a name of `nameLen` bytes, padded to 8. */
export function direntSize(nameLen: number): number {
  return (DIRENT_HEADER_SIZE + nameLen + 7) & ~7;
}

export function direntPlusSize(nameLen: number): number {
  return ENTRY_OUT_SIZE + direntSize(nameLen);
}

/** Names up to this length are copied byte by byte when ASCII. */
const SHORT_NAME = 64;

/** Writes one `fuse_dirent` at `off` for a name of `nameLen` UTF-8 bytes; returns the offset after it. */
export function writeDirent(buf: Buffer, off: number, name: string, nameLen: number, ino: number | bigint, mode: number, nextOffset: number): number {
  const v = viewOf(buf);
  setU64(v, off, ino);
  setU64(v, off + 8, nextOffset);
  v.setUint32(off + 16, nameLen, true);
  v.setUint32(off + 20, (mode & 0o170000) >>> 12, true);
  const at = off + DIRENT_HEADER_SIZE;
  // As many UTF-8 bytes as UTF-16 units: all ASCII. Byte stores beat the call into C++ for a short name.
  if (nameLen === name.length && nameLen <= SHORT_NAME) {
    for (let i = 0; i < nameLen; i++) buf[at + i] = name.charCodeAt(i);
  } else buf.write(name, at, nameLen, 'utf8');
  const end = off + direntSize(nameLen);
  for (let i = at + nameLen; i < end; i++) buf[i] = 0;
  return end;
}
