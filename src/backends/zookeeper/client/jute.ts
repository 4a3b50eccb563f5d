// Jute, ZooKeeper's serialization: big-endian ints and longs, booleans as one
// byte, strings and buffers as an int32 length (-1 = null) then the bytes,
// vectors as an int32 count then the items.

export class JuteWriter {
  private buf: Buffer;
  private off = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.off);
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

  buffer(v: Buffer | null): this {
    if (v === null) return this.int(-1);
    this.int(v.length);
    this.ensure(v.length);
    v.copy(this.buf, this.off);
    this.off += v.length;
    return this;
  }

  string(v: string | null): this {
    return this.buffer(v === null ? null : Buffer.from(v, 'utf8'));
  }

  strings(v: string[]): this {
    this.int(v.length);
    for (const s of v) this.string(s);
    return this;
  }

  /** The bytes written, prefixed with their int32 length (a ZooKeeper frame). */
  frame(): Buffer {
    const out = Buffer.allocUnsafe(4 + this.off);
    out.writeInt32BE(this.off, 0);
    this.buf.copy(out, 4, 0, this.off);
    return out;
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

  bool(): boolean {
    this.need(1);
    return this.buf[this.off++] !== 0;
  }

  buffer(): Buffer | null {
    const len = this.int();
    if (len < 0) return null;
    this.need(len);
    const v = Buffer.from(this.buf.subarray(this.off, this.off + len));
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
