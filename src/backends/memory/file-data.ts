// Sparse file contents in fixed-size chunks: holes cost nothing, a huge
// truncate is O(1), and small files stay small (a chunk grows by doubling).
// Invariant: bytes of a chunk beyond the file's size are zero, so extending
// the file exposes zeros without extra work.

// Large enough that a 1 GiB file is ~1,000 buffers: V8's cost per GC grows
// with the number of live ArrayBuffers, so many small chunks slow every write.
export const CHUNK_SIZE = 1024 * 1024;

/** Pages touched per step of idle work: a step must end soon enough not to delay the next request much (8 page faults: 15-20 µs here). */
const PAGES_PER_STEP = 8;
const PAGE_SIZE = 4096;

/**
 * One whole chunk kept ready for the next file written on past a full chunk,
 * its pages faulted in while the daemon waits for the kernel's next request.
 * A large sequential write otherwise takes each new page's fault (2-3 µs
 * on a VM) between reading a request and replying: 32 per 128 KiB write, most
 * of the daemon's time per write. Prepared only after a whole chunk was taken
 * (a sequential writer is at work), so it holds at most one chunk that no
 * file uses.
 */
export class ChunkPool {
  private spare: Buffer | undefined;
  /** Pages of `spare` faulted in so far. */
  private faulted = 0;
  private wanted = false;

  /** A zeroed whole chunk, its pages faulted in as far as idle time allowed. */
  take(): Buffer {
    this.wanted = true;
    const chunk = this.spare;
    this.spare = undefined;
    return chunk ?? Buffer.alloc(CHUNK_SIZE);
  }

  /** One step of preparing the next chunk; false when there is nothing (left) to do. */
  prepare(): boolean {
    if (!this.spare) {
      if (!this.wanted) return false;
      this.wanted = false;
      this.spare = Buffer.alloc(CHUNK_SIZE);
      this.faulted = 0;
    }
    const pages = CHUNK_SIZE / PAGE_SIZE;
    if (this.faulted >= pages) return false;
    const end = Math.min(this.faulted + PAGES_PER_STEP, pages);
    // Writing a zero keeps the chunk zeroed; the write makes the kernel back the page.
    for (let page = this.faulted; page < end; page++) this.spare[page * PAGE_SIZE] = 0;
    this.faulted = end;
    return true;
  }
}

export class FileData {
  size = 0;
  private readonly chunks = new Map<number, Buffer>();
  /** The chunks' bytes, kept as they change: every getattr and listed entry asks (a walk of the map cost 5% of a cold `ls -l`). */
  private held = 0;

  /** `pool`: where whole chunks come from (one is prepared in idle time); without it, each is allocated when needed. */
  constructor(private readonly pool?: ChunkPool) {}

  /** Bytes held in memory (for statfs and `du`). */
  get allocated(): number {
    return this.held;
  }

  read(offset: number, length: number): Buffer {
    const end = Math.min(offset + length, this.size);
    if (offset >= end) return Buffer.alloc(0);
    const first = Math.floor(offset / CHUNK_SIZE);
    const last = Math.floor((end - 1) / CHUNK_SIZE);
    if (first === last) {
      const chunk = this.chunks.get(first);
      const start = offset - first * CHUNK_SIZE;
      // One chunk that holds the whole range: answer a view, no copy. The reply
      // is written before any later request can change the chunk.
      if (chunk && chunk.length >= end - first * CHUNK_SIZE) return chunk.subarray(start, start + (end - offset));
    }
    const out = Buffer.alloc(end - offset);
    for (let i = first; i <= last; i++) {
      const chunk = this.chunks.get(i);
      if (!chunk) continue;
      const chunkStart = i * CHUNK_SIZE;
      const from = Math.max(offset, chunkStart) - chunkStart;
      const to = Math.min(end - chunkStart, chunk.length);
      if (to > from) chunk.copy(out, chunkStart + from - offset, from, to);
    }
    return out;
  }

  write(offset: number, data: Buffer): void {
    const end = offset + data.length;
    let pos = offset;
    while (pos < end) {
      const index = Math.floor(pos / CHUNK_SIZE);
      const chunkStart = index * CHUNK_SIZE;
      const within = pos - chunkStart;
      const n = Math.min(end - pos, CHUNK_SIZE - within);
      const chunk = this.ensure(index, within + n);
      data.copy(chunk, within, pos - offset, pos - offset + n);
      pos += n;
    }
    if (end > this.size) this.size = end;
  }

  truncate(size: number): void {
    if (size < this.size) {
      for (const index of [...this.chunks.keys()]) {
        const chunkStart = index * CHUNK_SIZE;
        const chunk = this.chunks.get(index)!;
        if (chunkStart >= size) this.drop(index, chunk);
        else if (chunkStart + CHUNK_SIZE > size && chunk.length > size - chunkStart) chunk.fill(0, size - chunkStart);
      }
    }
    this.size = size;
  }

  /** Zeroes [offset, offset+length) and frees whole chunks inside it. */
  punchHole(offset: number, length: number): void {
    const end = Math.min(offset + length, this.size);
    let pos = offset;
    while (pos < end) {
      const index = Math.floor(pos / CHUNK_SIZE);
      const chunkStart = index * CHUNK_SIZE;
      const within = pos - chunkStart;
      const n = Math.min(end - pos, CHUNK_SIZE - within);
      const chunk = this.chunks.get(index);
      if (chunk) {
        if (within === 0 && n === CHUNK_SIZE) this.drop(index, chunk);
        else chunk.fill(0, within, Math.min(within + n, chunk.length));
      }
      pos += n;
    }
  }

  /** First offset >= `offset` that may hold data (SEEK_DATA), or -1. */
  nextData(offset: number): number {
    let best = -1;
    for (const index of this.chunks.keys()) {
      const start = index * CHUNK_SIZE;
      if (start + CHUNK_SIZE <= offset || start >= this.size) continue;
      const candidate = Math.max(start, offset);
      if (best < 0 || candidate < best) best = candidate;
    }
    return best;
  }

  /** First offset >= `offset` inside a hole, or the size (SEEK_HOLE). */
  nextHole(offset: number): number {
    let pos = offset;
    while (pos < this.size) {
      const index = Math.floor(pos / CHUNK_SIZE);
      if (!this.chunks.has(index)) return pos;
      pos = (index + 1) * CHUNK_SIZE;
    }
    return this.size;
  }

  private ensure(index: number, needed: number): Buffer {
    const chunk = this.chunks.get(index);
    if (chunk && chunk.length >= needed) return chunk;
    if (this.chunks.get(index - 1)?.length === CHUNK_SIZE) {
      // The file is written on past a full chunk (a large sequential write):
      // doubling would copy this chunk's bytes again at every step. A whole
      // chunk from calloc is zeroed lazily, by the kernel. A chunk after a
      // hole still starts small.
      const whole = this.pool ? this.pool.take() : Buffer.alloc(CHUNK_SIZE);
      if (chunk) chunk.copy(whole);
      this.put(index, whole, chunk);
      return whole;
    }
    let capacity = Math.max(64, chunk ? chunk.length : 0);
    while (capacity < needed) capacity *= 2;
    // allocUnsafe: a small chunk is a slice of Node's shared pool instead of an ArrayBuffer
    // of its own (3.7 µs less per new file, measured: +3.5 % creates/s); zeroed by hand.
    const grown = Buffer.allocUnsafe(Math.min(capacity, CHUNK_SIZE));
    grown.fill(0, chunk ? chunk.copy(grown) : 0);
    this.put(index, grown, chunk);
    return grown;
  }

  private put(index: number, chunk: Buffer, replaced: Buffer | undefined): void {
    this.chunks.set(index, chunk);
    this.held += chunk.length - (replaced?.length ?? 0);
  }

  private drop(index: number, chunk: Buffer): void {
    this.chunks.delete(index);
    this.held -= chunk.length;
  }
}
