// The content of a file while it is open: writes land here and are committed
// on flush, fsync and close, so another node sees the old or the new content,
// never a mix. The content is held in chunk-sized slots: a small file's slots
// all hold its bytes; a large file's slots are loaded from its stored chunks
// on demand (reads and writes at any offset never load the whole file), and a
// commit stores only the slots that changed (src/backends/zookeeper/chunks.ts).

import { FsError } from '../../fs/errors.js';
import { chunkName, type Manifest } from './chunks.js';

export interface OpenFileOptions {
  /** Bytes per slot (the chunk size of large files). */
  chunkSize: number;
  /** Largest size the file may reach (EFBIG above). */
  maxSize: number;
  /** Reads a stored chunk (large files only). */
  load?: (name: string) => Promise<Buffer>;
}

export interface Slot {
  /** Generation of the stored chunk that holds this range's committed bytes; null: none (zeros, or bytes of a plain znode). */
  gen: string | null;
  /** The range's first `len` bytes (the rest reads as zeros); undefined: not loaded. */
  buf: Buffer | undefined;
  len: number;
  /** `buf` is also referenced by a commit or a cache: copy before changing it. */
  shared: boolean;
  /** Bumped by every change; `stored` is the version the store holds. */
  version: number;
  stored: number;
  loading: Promise<void> | undefined;
  /** Last use, for dropping loaded chunks beyond the cache bound. */
  used: number;
  /** Operations waiting on this slot's load: it is not dropped under them. */
  busy: number;
}

/** What a commit of a large file stores. */
export interface ChunkPlan {
  manifest: Manifest;
  uploads: Array<{ name: string; data: Buffer }>;
  snapshot: Array<{ slot: Slot; version: number }>;
}

/** Loaded unchanged chunks kept per open file (they can be read again): 32 × 512 KiB. */
const MAX_CACHED_CHUNKS = 32;
/** Chunks read ahead of a sequential reader. */
const READAHEAD_CHUNKS = 3;

function holeSlot(): Slot {
  return { gen: null, buf: undefined, len: 0, shared: false, version: 0, stored: 0, loading: undefined, used: 0, busy: 0 };
}

export class OpenFile {
  private slots: Slot[];
  private len: number;
  private readonly cs: number;
  private clock = 0;
  private lastReadEnd = -1;
  /** The stored version this content is based on, when it is a large file's manifest. */
  base: Manifest | undefined;
  /** Size of the stored version (quota arithmetic). */
  storedSize: number;
  /** Our pin of `base` in the chunk store (its chunks stay while we may read them). */
  pin: string | undefined;
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
    private readonly opts: OpenFileOptions,
    from: Buffer | Manifest,
    pin?: string,
  ) {
    this.cs = opts.chunkSize;
    if (Buffer.isBuffer(from)) {
      this.len = from.length;
      this.slots = [];
      for (let at = 0; at < from.length; at += this.cs) {
        const buf = from.subarray(at, Math.min(from.length, at + this.cs));
        this.slots.push({ ...holeSlot(), buf, len: buf.length, shared: true });
      }
    } else {
      this.base = from;
      this.len = from.size;
      this.slots = from.c.map((gen) => ({ ...holeSlot(), gen }));
    }
    this.storedSize = this.len;
    this.pin = pin;
  }

  get size(): number {
    return this.len;
  }

  /** The whole content, if it is at most `max` bytes and held in memory (a small file as it was loaded or written). */
  whole(max: number): Buffer | undefined {
    if (this.len === 0 || this.len > max || this.slots.length !== 1) return undefined;
    const slot = this.slots[0]!;
    return slot.buf !== undefined && slot.len >= this.len ? slot.buf.subarray(0, this.len) : undefined;
  }

  /** Bytes of the range of slot `i` (its coverage within the current size). */
  private coverage(i: number): number {
    return Math.max(0, Math.min(this.len, (i + 1) * this.cs) - i * this.cs);
  }

  private needsLoad(i: number): boolean {
    const s = this.slots[i];
    return s !== undefined && s.buf === undefined && s.gen !== null;
  }

  private load(i: number): Promise<void> {
    const slot = this.slots[i]!;
    if (slot.buf !== undefined || slot.gen === null) return Promise.resolve();
    const gen = slot.gen;
    slot.loading ??= (async () => {
      try {
        const data = await this.opts.load!(chunkName(gen, i));
        // A write that replaced the whole range meanwhile wins.
        if (slot.buf === undefined && slot.gen === gen) {
          slot.buf = data;
          slot.len = Math.min(data.length, this.cs);
          slot.shared = true;
          slot.used = ++this.clock;
          this.evict();
        }
      } finally {
        slot.loading = undefined;
      }
    })();
    return slot.loading;
  }

  /** Drops the least recently used unchanged chunks beyond the bound (they can be loaded again). */
  private evict(): void {
    const cached = this.slots.filter((s) => s.buf !== undefined && s.gen !== null && s.version === s.stored && s.busy === 0);
    if (cached.length <= MAX_CACHED_CHUNKS) return;
    cached.sort((a, b) => a.used - b.used);
    for (const s of cached.slice(0, cached.length - MAX_CACHED_CHUNKS)) {
      s.buf = undefined;
      s.len = 0;
    }
  }

  /**
   * Loads the slots `wanted()` names until none is missing. Loaded slots stay
   * until this returns (an operation may need more than the cache bound), so
   * the caller uses them before its next await.
   */
  private async loadAll(wanted: () => number[]): Promise<void> {
    this.evict(); // what an earlier operation held beyond the bound
    const held: Slot[] = [];
    try {
      for (;;) {
        const missing = wanted().filter((i) => this.needsLoad(i));
        if (missing.length === 0) return;
        for (const i of missing) {
          this.slots[i]!.busy++;
          held.push(this.slots[i]!);
        }
        await Promise.all(missing.map((i) => this.load(i)));
      }
    } finally {
      for (const s of held) s.busy--;
    }
  }

  private slotRange(offset: number, end: number): number[] {
    const out: number[] = [];
    for (let i = Math.floor(offset / this.cs); i * this.cs < end && i < this.slots.length; i++) out.push(i);
    return out;
  }

  async read(offset: number, size: number): Promise<Buffer> {
    // Sequential: near where the last read ended (the kernel sends a reader's requests a few at a time, not always in order).
    if (Math.abs(offset - this.lastReadEnd) <= this.cs) {
      // Keep the next chunks coming while the reader works through this one.
      const last = Math.floor((Math.min(offset + size, this.len) - 1) / this.cs);
      for (let i = last + 1; i <= last + READAHEAD_CHUNKS && i < this.slots.length; i++) if (this.needsLoad(i)) void this.load(i).catch(() => undefined);
    }
    await this.loadAll(() => this.slotRange(offset, Math.min(offset + size, this.len)));
    const end = Math.min(offset + size, this.len);
    if (offset >= end) return Buffer.alloc(0);
    this.lastReadEnd = Math.abs(offset - this.lastReadEnd) <= this.cs ? Math.max(this.lastReadEnd, end) : end;
    const range = this.slotRange(offset, end);
    for (const i of range) this.slots[i]!.used = ++this.clock;
    const first = this.slots[range[0]!]!;
    const firstStart = range[0]! * this.cs;
    if (first.buf && end <= firstStart + first.len) {
      // Within one slot's bytes: a view, no copy. The reply is written as this resolves; only a write
      // racing it on the same range could change the bytes first, as on a local disk.
      return first.buf.subarray(offset - firstStart, end - firstStart);
    }
    const out = Buffer.alloc(end - offset);
    for (const i of range) {
      const s = this.slots[i]!;
      if (!s.buf) continue; // a hole
      const from = Math.max(offset, i * this.cs) - i * this.cs;
      const to = Math.min(end - i * this.cs, s.len);
      if (to > from) s.buf.copy(out, i * this.cs + from - offset, from, to);
    }
    return out;
  }

  /**
   * Writes `data` at `offset` (append: at the end, as it is when the write
   * lands). A write across maxSize stores the part below it and returns its
   * length, as the kernel does under a file size limit; one starting at or
   * past it fails with EFBIG.
   */
  async write(offset: number, data: Buffer, append = false): Promise<number> {
    const fitting = (at: number) => {
      this.checkSize(at + 1);
      return Math.min(data.length, this.opts.maxSize - at);
    };
    // A range written only in part needs its stored bytes first.
    const partlyWritten = () => {
      const at = append ? this.len : offset;
      const end = at + fitting(at);
      return this.slotRange(at, end).filter((i) => {
        const from = Math.max(at, i * this.cs) - i * this.cs;
        const to = Math.min(end, (i + 1) * this.cs) - i * this.cs;
        return from > 0 || to < this.coverage(i);
      });
    };
    if (data.length === 0) return 0;
    if (partlyWritten().some((i) => this.needsLoad(i))) {
      data = Buffer.from(data); // the caller's buffer is only valid until we await
      await this.loadAll(partlyWritten);
    }
    const at = append ? this.len : offset;
    const n = fitting(at);
    this.writeNow(at, data.subarray(0, n));
    return n;
  }

  private writeNow(at: number, data: Buffer): void {
    const end = at + data.length;
    if (data.length === 0) return;
    while (this.slots.length * this.cs < end) this.slots.push(holeSlot());
    for (let i = Math.floor(at / this.cs); i * this.cs < end; i++) {
      const s = this.slots[i]!;
      const from = Math.max(at, i * this.cs) - i * this.cs;
      const to = Math.min(end, (i + 1) * this.cs) - i * this.cs;
      if (s.buf === undefined) s.len = 0; // replaced whole: nothing stored is kept
      this.writable(s, to);
      if (from > s.len) s.buf!.fill(0, s.len, from);
      data.copy(s.buf!, from, i * this.cs + from - at, i * this.cs + to - at);
      s.len = Math.max(s.len, to);
      s.version++;
      s.used = ++this.clock;
    }
    this.len = Math.max(this.len, end);
    this.dirty = true;
  }

  /** Makes a slot's buffer ours and at least `size` bytes long. */
  private writable(s: Slot, size: number): void {
    if (s.buf && !s.shared && s.buf.length >= size) return;
    const capacity = Math.min(this.cs, Math.max(size, Math.min((s.buf?.length ?? 0) * 2, this.cs), 4096));
    const next = Buffer.allocUnsafe(Math.max(capacity, s.len));
    s.buf?.copy(next, 0, 0, s.len);
    s.buf = next;
    s.shared = false;
  }

  async truncate(size: number): Promise<void> {
    this.checkSize(size);
    // The range cut in the middle needs its stored bytes: they are kept up to the cut.
    await this.loadAll(() => (size < this.len && size % this.cs !== 0 ? [Math.ceil(size / this.cs) - 1] : []));
    if (size < this.len) {
      this.slots.length = Math.ceil(size / this.cs);
      const last = this.slots[this.slots.length - 1];
      const keep = size - (this.slots.length - 1) * this.cs;
      if (last?.buf && last.len > keep) {
        last.len = keep;
        last.version++;
      }
    } else {
      while (this.slots.length * this.cs < size) this.slots.push(holeSlot());
    }
    this.len = size;
    this.dirty = true;
  }

  private checkSize(end: number): void {
    if (end > this.opts.maxSize) throw new FsError('EFBIG', `files are limited to ${this.opts.maxSize} bytes`);
  }

  /** The whole content, to store as one znode; the slots' buffers are then shared with it. */
  async contentBytes(): Promise<{ data: Buffer; snapshot: ChunkPlan['snapshot'] }> {
    await this.loadAll(() => this.slots.map((_, i) => i));
    const snapshot = this.slots.map((slot) => ({ slot, version: slot.version }));
    const only = this.slots[0];
    if (this.slots.length === 1 && only?.buf && only.len === this.len) {
      only.shared = true;
      return { data: only.buf.subarray(0, this.len), snapshot };
    }
    const data = Buffer.alloc(this.len);
    this.slots.forEach((s, i) => s.buf?.copy(data, i * this.cs, 0, Math.min(s.len, this.coverage(i))));
    return { data, snapshot };
  }

  /**
   * What a commit as generation `gen` stores: a new chunk for every range
   * changed since the last commit, and for every unchanged range whose
   * chunk is not `live` (not used by the version now stored, which another
   * node may have written: its garbage could be ours).
   */
  async chunkPlan(gen: string, live: ReadonlySet<string>): Promise<ChunkPlan> {
    const reusable = (s: Slot, i: number) => s.version === s.stored && s.gen !== null && live.has(chunkName(s.gen, i));
    await this.loadAll(() => this.slots.map((_, i) => i).filter((i) => !reusable(this.slots[i]!, i)));
    const c: Array<string | null> = [];
    const uploads: ChunkPlan['uploads'] = [];
    const snapshot: ChunkPlan['snapshot'] = [];
    this.slots.forEach((s, i) => {
      snapshot.push({ slot: s, version: s.version });
      if (reusable(s, i)) c.push(s.gen);
      else if (!s.buf || s.len === 0) c.push(null);
      else {
        s.shared = true;
        uploads.push({ name: chunkName(gen, i), data: s.buf.subarray(0, Math.min(s.len, this.coverage(i))) });
        c.push(gen);
      }
    });
    return { manifest: { g: gen, size: this.len, cs: this.cs, c }, uploads, snapshot };
  }

  /** After a commit stored `snapshot` as `manifest` (undefined: as one plain znode). */
  committed(snapshot: ChunkPlan['snapshot'], manifest: Manifest | undefined, size: number): void {
    this.base = manifest;
    this.storedSize = size;
    snapshot.forEach(({ slot, version }, i) => {
      if (this.slots[i] !== slot) return; // cut off by a truncate meanwhile
      slot.gen = manifest?.c[i] ?? null;
      slot.stored = version;
    });
  }
}
