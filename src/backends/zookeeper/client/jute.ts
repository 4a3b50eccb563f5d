// Jute, ZooKeeper's serialization: big-endian ints and longs, booleans as one
// byte, strings and buffers as an int32 length (-1 = null) then the bytes,
// vectors as an int32 count then the items.

/** Payloads at least this big are sent from the caller's buffer, not copied into the frame. */
const BY_REFERENCE = 16 * 1024;

export class JuteWriter {
  /** Finished pieces of the frame; the first starts with room for the frame length. */
  private pieces: Buffer[] = [];
  private buf: Buffer;
  /** The current piece's start in `buf` (after a payload sent by reference, a new piece starts). */
  private start = 0;
  private off = 4;
  private length = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off - this.start + n) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, this.start, this.off);
    this.off -= this.start;
    this.start = 0;
    this.buf = grown;
  }

  int(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.off);
    this.off += 4;
    return this;
  }

  long(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigInt64BE(v, this.off);
    this.off += 8;
    return this;
  }

  bool(v: boolean): this {
    this.ensure(1);
    this.buf[this.off++] = v ? 1 : 0;
    return this;
  }

  /** A big `v` is referenced, not copied: the caller must not change it while the request may be (re)sent. */
  buffer(v: Buffer | null): this {
    if (v === null) return this.int(-1);
    this.int(v.length);
    if (v.length >= BY_REFERENCE) {
      this.endPiece();
      this.pieces.push(v);
      this.length += v.length;
      return this;
    }
    this.ensure(v.length);
    v.copy(this.buf, this.off);
    this.off += v.length;
    return this;
  }

  /** Encoded in place (no Buffer per string: a multiRead carries dozens of paths). */
  string(v: string | null): this {
    if (v === null) return this.int(-1);
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    this.ensure(4 + 3 * v.length);
    const n = this.buf.write(v, this.off + 4, 'utf8');
    this.buf.writeInt32BE(n, this.off);
    this.off += 4 + n;
    return this;
  }

  strings(v: string[]): this {
    this.int(v.length);
    for (const s of v) this.string(s);
    return this;
  }

  private endPiece(): void {
    const piece = this.buf.subarray(this.start, this.off);
    this.pieces.push(piece);
    this.length += piece.length;
    this.start = this.off;
  }

  /** The frame: the bytes written prefixed with their int32 length, in pieces (big payloads by reference). */
  frame(): Buffer[] {
    if (this.off > this.start || this.pieces.length === 0) this.endPiece();
    this.pieces[0]!.writeInt32BE(this.length - 4, 0);
    return this.pieces;
  }
}

export class JuteError extends Error {}

export class JuteReader {
  off = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.off + n > this.buf.length) throw new JuteError(`truncated ZooKeeper packet (need ${n} bytes at ${this.off} of ${this.buf.length})`);
  }

  get remaining(): number {
    return this.buf.length - this.off;
  }

  int(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.off);
    this.off += 4;
    return v;
  }

  long(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.off);
    this.off += 8;
    return v;
  }

  /**
   * A long that is often zero or equal to `known`, the long read at offset
   * `knownAt`: those come back without a new BigInt (a Stat's zxids are one
   * value until the znode changes, and most znodes are not ephemeral).
   */
  longLike(known: bigint, knownAt: number): bigint {
    this.need(8);
    const b = this.buf;
    const at = this.off;
    this.off += 8;
    const hi = b.readInt32BE(at);
    const lo = b.readInt32BE(at + 4);
    if (hi === 0 && lo === 0) return 0n;
    if (hi === b.readInt32BE(knownAt) && lo === b.readInt32BE(knownAt + 4)) return known;
    return b.readBigInt64BE(at);
  }

  /** A long known to fit a double exactly (a time in ms): no BigInt to make and convert. */
  longNumber(): number {
    this.need(8);
    const v = this.buf.readInt32BE(this.off) * 2 ** 32 + this.buf.readUInt32BE(this.off + 4);
    this.off += 8;
    return v;
  }

  bool(): boolean {
    this.need(1);
    return this.buf[this.off++] !== 0;
  }

  buffer(): Buffer | null {
    const len = this.int();
    if (len < 0) return null;
    this.need(len);
    // A big payload is a view of the received frame (no copy); a small one is copied so it does not keep the frame alive.
    const view = this.buf.subarray(this.off, this.off + len);
    const v = len >= BY_REFERENCE ? view : Buffer.from(view);
    this.off += len;
    return v;
  }

  string(): string | null {
    const len = this.int();
    if (len < 0) return null;
    this.need(len);
    const v = this.buf.toString('utf8', this.off, this.off + len);
    this.off += len;
    return v;
  }

  strings(): string[] {
    const n = this.int();
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.string() ?? '');
    return out;
  }
}
