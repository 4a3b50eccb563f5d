// The content of a file while it is open: writes land here and are committed
// to the znode as one setData on flush, fsync and close, so another node sees
// the old or the new content, never a mix.

import { FsError } from '../../fs/errors.js';

export class OpenFile {
  private buf: Buffer;
  private len: number;
  /** The buffer is shared with the committed copy: copy before the next change. */
  private shared = true;
  /** Changed since the last commit. */
  dirty = false;
  /** Open handles in this process. */
  opens = 0;
  /** The last commit in flight: commits of one file are serialized. */
  committing: Promise<void> = Promise.resolve();
  /** A write was refused for the quota: this open's changes are never stored (nothing partial), every commit fails with it. */
  refused: Error | undefined;
  /** Another node stored newer content since this was read (handles keep reading this version until a lock grant). */
  stale = false;

  constructor(
    content: Buffer,
    /** Largest size the store takes (EFBIG above). */
    private readonly maxSize: number,
  ) {
    this.buf = content;
    this.len = content.length;
  }

  get size(): number {
    return this.len;
  }

  /** The current content; valid until the next change. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  /** Marks the current content as committed; the next change copies it. */
  committed(): Buffer {
    this.shared = true;
    return this.bytes();
  }

  read(offset: number, size: number): Buffer {
    return Buffer.from(this.buf.subarray(Math.min(offset, this.len), Math.min(offset + size, this.len)));
  }

  write(offset: number, data: Buffer): void {
    const end = offset + data.length;
    if (end > this.maxSize) throw new FsError('EFBIG', `files are limited to ${this.maxSize} bytes`);
    this.reserve(end);
    if (offset > this.len) this.buf.fill(0, this.len, offset);
    data.copy(this.buf, offset);
    this.len = Math.max(this.len, end);
    this.dirty = true;
  }

  truncate(size: number): void {
    if (size > this.maxSize) throw new FsError('EFBIG', `files are limited to ${this.maxSize} bytes`);
    this.reserve(size);
    if (size > this.len) this.buf.fill(0, this.len, size);
    this.len = size;
    this.dirty = true;
  }

  private reserve(size: number): void {
    if (!this.shared && size <= this.buf.length) return;
    const capacity = Math.min(this.maxSize, Math.max(size, Math.min(this.buf.length * 2, this.maxSize), 4096));
    // Never below the current length: content written by another tool may exceed our limit, and must stay whole.
    const next = Buffer.allocUnsafe(Math.max(capacity, size, this.len));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
    this.shared = false;
  }
}
