// The byte-store encoders of src/fuse/wire.ts against Node's own Buffer readers.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { direntSize, writeAttr, writeDirent, writeU32, writeU64 } from '../../src/fuse/wire.js';

describe('wire encoding', () => {
  it('writeU32 writes little-endian u32 values, the edges included', () => {
    const buf = Buffer.alloc(8, 0xee);
    for (const v of [0, 1, 0xff, 0x100, 0x12345678, 0x7fffffff, 0x80000000, 0xffffffff]) {
      writeU32(buf, 2, v);
      assert.equal(buf.readUInt32LE(2), v);
      assert.equal(buf[1], 0xee, 'the byte before is untouched');
      assert.equal(buf[6], 0xee, 'the byte after is untouched');
    }
  });

  it('writeU64 writes numbers up to 2^53 - 1 exactly, and bigints', () => {
    const buf = Buffer.alloc(16);
    for (const v of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 0x1234_5678_9abc, 2 ** 52 + 3, Number.MAX_SAFE_INTEGER]) {
      writeU64(buf, 4, v);
      assert.equal(buf.readBigUInt64LE(4), BigInt(v), `value ${v}`);
    }
    writeU64(buf, 4, 0xfedc_ba98_7654_3210n);
    assert.equal(buf.readBigUInt64LE(4), 0xfedc_ba98_7654_3210n);
    writeU64(buf, 4, -1n);
    assert.equal(buf.readBigUInt64LE(4), 2n ** 64n - 1n);
    // A time before the epoch is a negative s64.
    writeU64(buf, 4, -5);
    assert.equal(buf.readBigInt64LE(4), -5n);
  });

  it('writes into the right buffer when writes to several buffers interleave (the kept views)', () => {
    // Pool slices (non-zero byteOffset into one ArrayBuffer) and a buffer of its own.
    const bufs = [Buffer.allocUnsafe(64).fill(0), Buffer.allocUnsafe(64).fill(0), Buffer.alloc(64 * 1024), Buffer.allocUnsafe(64).fill(0)];
    const order = [0, 1, 0, 2, 1, 3, 3, 0, 2, 2, 1, 0, 3, 1];
    order.forEach((b, i) => writeU32(bufs[b]!, 4 * i, 0x01000000 + i));
    order.forEach((b, i) => {
      for (const [k, buf] of bufs.entries()) {
        assert.equal(buf.readUInt32LE(4 * i), k === b ? 0x01000000 + i : 0, `write ${i} landed in buffer ${b} only`);
      }
    });
  });

  it('writeDirent writes any name exactly and zeroes the padding of a reused buffer', () => {
    const names = ['a', 'file-0001', 'x'.repeat(64), 'y'.repeat(65), 'n'.repeat(255), 'café', '日本語', '😀 emoji', 'e\u0301', 'tab\there'];
    for (const name of names) {
      const nameLen = Buffer.byteLength(name, 'utf8');
      const buf = Buffer.alloc(8 + direntSize(nameLen) + 8, 0xee);
      const end = writeDirent(buf, 8, name, nameLen, 2 ** 40 + 3, 0o100644, 17);
      assert.equal(end, 8 + direntSize(nameLen), name);
      assert.equal(buf.readBigUInt64LE(8), 2n ** 40n + 3n);
      assert.equal(buf.readBigUInt64LE(16), 17n);
      assert.equal(buf.readUInt32LE(24), nameLen);
      assert.equal(buf.readUInt32LE(28), 8, 'DT_REG');
      assert.equal(buf.toString('utf8', 32, 32 + nameLen), name);
      assert.ok(buf.subarray(32 + nameLen, end).every((b) => b === 0), `padding of ${name} is zero`);
      assert.ok(buf.subarray(end).every((b) => b === 0xee), 'nothing written past the record');
    }
  });

  it('writeAttr lays out fuse_attr', () => {
    const buf = Buffer.alloc(88, 0xee);
    writeAttr(buf, 0, {
      ino: 2 ** 40 + 7,
      size: 123_456_789_012,
      blocks: 9,
      atime: { sec: 1_700_000_000, nsec: 999_999_999 },
      mtime: { sec: 2 ** 33, nsec: 1 },
      ctime: { sec: 0, nsec: 0 },
      mode: 0o100644,
      nlink: 3,
      uid: 4_294_967_294,
      gid: 1000,
      rdev: 0,
    });
    assert.equal(buf.readBigUInt64LE(0), 2n ** 40n + 7n);
    assert.equal(buf.readBigUInt64LE(8), 123_456_789_012n);
    assert.equal(buf.readBigUInt64LE(16), 9n);
    assert.equal(buf.readBigUInt64LE(24), 1_700_000_000n);
    assert.equal(buf.readBigUInt64LE(32), 2n ** 33n);
    assert.equal(buf.readBigUInt64LE(40), 0n);
    assert.deepEqual([48, 52, 56, 60, 64, 68, 72, 76, 80, 84].map((o) => buf.readUInt32LE(o)), [999_999_999, 1, 0, 0o100644, 3, 4_294_967_294, 1000, 0, 4096, 0]);
  });
});
