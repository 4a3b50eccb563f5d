// The byte-store encoders of src/fuse/wire.ts against Node's own Buffer readers.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { writeAttr, writeU32, writeU64 } from '../../src/fuse/wire.js';

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
