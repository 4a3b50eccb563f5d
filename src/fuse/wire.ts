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
 * A u32, little-endian, as four byte stores: several times faster than
 * `buf.writeUInt32LE`, whose range checks run for every field of every reply.
 * Callers pass values that fit (a byte store keeps the low 8 bits).
 */
export function writeU32(buf: Buffer, off: number, value: number): void {
  buf[off] = value;
  buf[off + 1] = value >>> 8;
  buf[off + 2] = value >>> 16;
  buf[off + 3] = value >>> 24;
}

export function writeU64(buf: Buffer, off: number, value: number | bigint): void {
  // Most fields fit in 32 bits: this path is short enough for V8 to inline into every caller.
  if (typeof value === 'number' && value >= 0 && value <= 0xffffffff) {
    writeU32(buf, off, value);
    writeU32(buf, off + 4, 0);
  } else writeWideU64(buf, off, value);
}

function writeWideU64(buf: Buffer, off: number, value: number | bigint): void {
  if (typeof value === 'bigint') {
    buf.writeBigUInt64LE(BigInt.asUintN(64, value), off);
  } else if (value >= 0 && value <= Number.MAX_SAFE_INTEGER) {
    // `>>> 0` is the value modulo 2^32, exact for any safe integer; so is the division of the rest.
    const low = value >>> 0;
    writeU32(buf, off, low);
    writeU32(buf, off + 4, (value - low) / TWO_32);
  } else {
    buf.writeBigInt64LE(BigInt(Math.trunc(value)), off);
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
  writeU64(buf, off, a.ino);
  writeU64(buf, off + 8, a.size);
  writeU64(buf, off + 16, a.blocks ?? Math.ceil(a.size / 512));
  writeU64(buf, off + 24, a.atime.sec);
  writeU64(buf, off + 32, a.mtime.sec);
  writeU64(buf, off + 40, a.ctime.sec);
  writeU32(buf, off + 48, a.atime.nsec);
  writeU32(buf, off + 52, a.mtime.nsec);
  writeU32(buf, off + 56, a.ctime.nsec);
  writeU32(buf, off + 60, a.mode >>> 0);
  writeU32(buf, off + 64, a.nlink >>> 0);
  writeU32(buf, off + 68, a.uid >>> 0);
  writeU32(buf, off + 72, a.gid >>> 0);
  writeU32(buf, off + 76, a.rdev >>> 0);
  writeU32(buf, off + 80, a.blksize ?? PAGE_SIZE);
  writeU32(buf, off + 84, 0);
}

export function writeEntryOut(buf: Buffer, off: number, e: EntryOut): void {
  writeU64(buf, off, e.nodeid);
  writeU64(buf, off + 8, e.generation ?? 0);
  writeU64(buf, off + 16, timeoutSec(e.entryTimeout));
  writeU64(buf, off + 24, timeoutSec(e.attrTimeout));
  writeU32(buf, off + 32, timeoutNsec(e.entryTimeout));
  writeU32(buf, off + 36, timeoutNsec(e.attrTimeout));
  if (e.attr) writeAttr(buf, off + 40, e.attr);
  else buf.fill(0, off + 40, off + 40 + ATTR_SIZE);
}

export function writeAttrOut(buf: Buffer, off: number, attr: Attr, timeout: number): void {
  writeU64(buf, off, timeoutSec(timeout));
  writeU32(buf, off + 8, timeoutNsec(timeout));
  writeU32(buf, off + 12, 0);
  writeAttr(buf, off + 16, attr);
}

export function writeStatfs(buf: Buffer, off: number, s: StatfsOut): void {
  writeU64(buf, off, s.blocks);
  writeU64(buf, off + 8, s.bfree);
  writeU64(buf, off + 16, s.bavail);
  writeU64(buf, off + 24, s.files);
  writeU64(buf, off + 32, s.ffree);
  buf.writeUInt32LE(s.bsize, off + 40);
  buf.writeUInt32LE(s.namelen, off + 44);
  buf.writeUInt32LE(s.frsize, off + 48);
  buf.fill(0, off + 52, off + 80);
}

/** Writes a `fuse_out_header`: total length, negated errno (0: success), the request's unique. */
export function writeOutHeader(buf: Buffer, length: number, errno: number, unique: number): void {
  writeU32(buf, 0, length);
  // Not -errno for 0: -0 is a heap-allocated double, and this runs per reply.
  buf.writeInt32LE(errno === 0 ? 0 : -errno, 4);
  writeU64(buf, 8, unique);
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
  writeU64(buf, off, ino);
  writeU64(buf, off + 8, nextOffset);
  writeU32(buf, off + 16, nameLen);
  writeU32(buf, off + 20, (mode & 0o170000) >>> 12);
  const at = off + DIRENT_HEADER_SIZE;
  // As many UTF-8 bytes as UTF-16 units: all ASCII. Byte stores beat the call into C++ for a short name.
  if (nameLen === name.length && nameLen <= SHORT_NAME) {
    for (let i = 0; i < nameLen; i++) buf[at + i] = name.charCodeAt(i);
  } else buf.write(name, at, nameLen, 'utf8');
  const end = off + direntSize(nameLen);
  for (let i = at + nameLen; i < end; i++) buf[i] = 0;
  return end;
}
