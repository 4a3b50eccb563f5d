// Which znodes the watch reported as changed while a read was in flight.
//
// ZooKeeper sends a change's event before any reply that reflects the change,
// but a reply read *before* a change can reach us in the same TCP read as that
// change's event. The event is then applied first (it finds nothing cached to
// drop) and the reply's continuation runs after it, and would cache content
// the event already declared old, with nothing left to ever drop it. A reader
// goes through `read` and keeps nothing (or reads again) for a changed path.

export class ChangeLog {
  private seq = 0;
  /** ZooKeeper path → number of its latest event. */
  private readonly latest = new Map<string, number>();
  /** The event number at which events were last missed (see lostTrack). */
  private lostTrackAt = 0;
  /** Reads in flight, by the event number they started at. */
  private readonly reading = new Map<number, number>();

  /** An event for `path` came in (kept only while a read that could predate it is in flight). */
  record(path: string): void {
    if (this.reading.size > 0) this.latest.set(path, ++this.seq);
  }

  /**
   * Runs `fetch` (a read of the znodes `paths`) and says, for each path,
   * whether an event for it came in meanwhile: then the reply may be older
   * than a change already reported.
   */
  async read<T>(paths: readonly string[], fetch: () => Promise<T>): Promise<{ value: T; changed: boolean[] }> {
    const since = this.begin();
    try {
      const value = await fetch();
      // Usually no event came in at all: no path to look up.
      const changed = this.latest.size === 0 && this.lostTrackAt <= since ? new Array<boolean>(paths.length).fill(false) : paths.map((p) => this.changedSince(p, since));
      return { value, changed };
    } finally {
      this.end(since);
    }
  }

  /** Call before sending a read; pass the result to `changedSince` and `end`. */
  begin(): number {
    this.reading.set(this.seq, (this.reading.get(this.seq) ?? 0) + 1);
    return this.seq;
  }

  /** Whether an event for `path` came in since `begin` returned `since`. */
  changedSince(path: string, since: number): boolean {
    return (this.latest.get(path) ?? 0) > since || this.lostTrackAt > since;
  }

  /** Whether an event for a path below `dir` (other than `dir/except`) came in since `begin` returned `since`. */
  changedBelow(dir: string, since: number, except: string): boolean {
    if (this.lostTrackAt > since) return true;
    const prefix = `${dir}/`;
    for (const [path, seq] of this.latest) if (seq > since && path.startsWith(prefix) && path !== prefix + except) return true;
    return false;
  }

  /** Events may have been missed (a new connection): every read in flight counts as changed. */
  lostTrack(): void {
    this.lostTrackAt = ++this.seq;
  }

  /** The read is over (whatever its outcome). Forgets events no read in flight can still need. */
  end(since: number): void {
    const n = this.reading.get(since)! - 1;
    if (n > 0) this.reading.set(since, n);
    else this.reading.delete(since);
    if (this.reading.size === 0) this.latest.clear();
    else if (this.latest.size > 4096) {
      const oldest = Math.min(...this.reading.keys());
      for (const [path, seq] of this.latest) if (seq <= oldest) this.latest.delete(path);
    }
  }

  /** Events remembered (for tests). */
  get size(): number {
    return this.latest.size;
  }
}
