import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JuteReader, JuteWriter } from '../../src/backends/zookeeper/client/jute.js';

/** The frame as one buffer, and the payload of its length prefix. */
function joined(pieces: Buffer[]): { bytes: Buffer; length: number } {
  const bytes = Buffer.concat(pieces);
  return { bytes, length: bytes.readInt32BE(0) };
}

describe('jute', () => {
  it('frames small values in one piece, length-prefixed, and reads them back', () => {
    const pieces = new JuteWriter(8).int(7).long(-2n).bool(true).string('/a/b').buffer(null).strings(['x', 'yz']).frame();
    assert.equal(pieces.length, 1);
    const { bytes, length } = joined(pieces);
    assert.equal(length, bytes.length - 4);
    const r = new JuteReader(bytes.subarray(4));
    assert.equal(r.int(), 7);
    assert.equal(r.long(), -2n);
    assert.equal(r.bool(), true);
    assert.equal(r.string(), '/a/b');
    assert.equal(r.buffer(), null);
    assert.deepEqual(r.strings(), ['x', 'yz']);
    assert.equal(r.remaining, 0);
  });

  it('sends big payloads from the caller\'s buffer, between pieces of the rest, with the right length', () => {
    const big1 = Buffer.alloc(20_000, 1);
    const big2 = Buffer.alloc(64 * 1024, 2);
    const w = new JuteWriter(16).int(1).string('/p').buffer(big1).int(-1).buffer(Buffer.from('small')).buffer(big2).bool(false);
    const pieces = w.frame();
    assert.ok(pieces.includes(big1) && pieces.includes(big2), 'big payloads are referenced, not copied');
    const { bytes, length } = joined(pieces);
    assert.equal(length, bytes.length - 4);
    const r = new JuteReader(bytes.subarray(4));
    assert.equal(r.int(), 1);
    assert.equal(r.string(), '/p');
    assert.ok(r.buffer()!.equals(big1));
    assert.equal(r.int(), -1);
    assert.equal(r.buffer()!.toString(), 'small');
    assert.ok(r.buffer()!.equals(big2));
    assert.equal(r.bool(), false);
    assert.equal(r.remaining, 0);
  });

  it('gives big payloads as views of the frame and copies small ones (they must not pin the frame)', () => {
    const big = Buffer.alloc(32 * 1024, 3);
    const { bytes } = joined(new JuteWriter().buffer(Buffer.from('abc')).buffer(big).frame());
    const frame = bytes.subarray(4);
    const r = new JuteReader(frame);
    const small = r.buffer()!;
    const view = r.buffer()!;
    assert.notEqual(small.buffer, frame.buffer);
    assert.equal(view.buffer, frame.buffer);
    assert.ok(view.equals(big));
  });

  it('encodes strings in place as UTF-8, growing the frame as needed, after a payload sent by reference too', () => {
    const strings = ['', 'plain', 'é/ü', '日本語のファイル', 'x'.repeat(5000), '😀 pair', 'lone \ud800 surrogate'];
    const big = Buffer.alloc(20_000, 7);
    const w = new JuteWriter(8);
    for (const v of strings) w.string(v);
    w.buffer(big);
    for (const v of strings) w.string(v);
    const { bytes, length } = joined(w.frame());
    assert.equal(length, bytes.length - 4);
    const r = new JuteReader(bytes.subarray(4));
    // A lone surrogate has no UTF-8 form: it goes as U+FFFD, as Buffer.from writes it.
    const sent = strings.map((v) => Buffer.from(v, 'utf8').toString('utf8'));
    for (const v of sent) assert.equal(r.string(), v);
    assert.ok(r.buffer()!.equals(big));
    for (const v of sent) assert.equal(r.string(), v);
    assert.equal(r.remaining, 0);
  });

  it('reads a time (a long) as a number, exactly, past 32 bits and before the epoch', () => {
    for (const ms of [0, 1, 2 ** 32 - 1, 2 ** 32, 1_700_000_000_123, -1, -1_000_000_000_001, Number.MAX_SAFE_INTEGER]) {
      const { bytes } = joined(new JuteWriter().long(BigInt(ms)).frame());
      assert.equal(new JuteReader(bytes.subarray(4)).longNumber(), ms);
    }
  });

  it('reads a long like an earlier one as that one when equal, as 0n when zero, and as itself otherwise', () => {
    const known = 0x1_0000_0005n;
    for (const v of [known, 0n, known + 1n, -known, 1n << 32n, 5n, -1n, (1n << 63n) - 1n, -(1n << 63n)]) {
      const { bytes } = joined(new JuteWriter().long(known).long(v).frame());
      const r = new JuteReader(bytes.subarray(4));
      assert.equal(r.long(), known);
      assert.equal(r.longLike(known, 0), v);
      assert.equal(r.remaining, 0);
    }
  });

  it('refuses a truncated packet', () => {
    const { bytes } = joined(new JuteWriter().string('/abc').frame());
    assert.throws(() => new JuteReader(bytes.subarray(4, bytes.length - 1)).string(), /truncated/);
  });
});
