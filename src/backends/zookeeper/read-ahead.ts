// Reading ahead the files of a directory that is being read file by file,
// and the directories of a tree that is being walked.
//
// A cold small-file read costs one getData, one round trip to ZooKeeper, and
// a client that reads a directory's files one after another (a service
// loading its config directory, `cat dir/*`, `tar c`) pays them one after
// another. Once a directory has shown that pattern, its other files are
// fetched ahead, in multiReads: the same reads the lookups would have made,
// sent before they are needed. A lookup of a file that is
// queued and not yet sent sends it at once, ahead of the queue, so the reader
// never waits behind files it has not asked for. In the same way, when two
// subdirectories of a directory are listed one after the other (ls -R, find,
// du, tar c walking a tree), its other subdirectories are listed ahead.

/** Cold reads in one directory, in quick succession, before its other files are read ahead. */
export const READ_AHEAD_AFTER = 3;
/** Longest gap between two cold reads that still counts as a succession. */
export const READ_AHEAD_GAP_MS = 1000;
/**
 * Files a read-ahead fetches at once: two multiReads of 32 (batch-reads.ts),
 * so the server works on one while the other's reply is handled (measured:
 * 10 % faster than one at a time, no faster with four), few enough that
 * other requests do not queue behind many.
 */
export const READ_AHEAD_WINDOW = 64;
/** Default most files one read-ahead fetches (the `--read-ahead` option). */
export const DEFAULT_READ_AHEAD = 1024;
/** Largest `--read-ahead`. */
export const MAX_READ_AHEAD = 100_000;
/** A read-ahead stops once it has fetched this many bytes (files are mostly small; this bounds memory). */
export const READ_AHEAD_BYTES = 16 * 1024 * 1024;
/** Most content kept that was fetched ahead (read-ahead, listings) and not read yet; past it the oldest is dropped. */
export const READ_AHEAD_UNCLAIMED_BYTES = 64 * 1024 * 1024;
/** Subdirectories of one directory listed cold in quick succession before its others are listed ahead. */
export const LIST_AHEAD_AFTER = 2;
/** Directory listings a walk keeps in flight (each reads its entries' Stats in a few multiReads). */
export const LIST_AHEAD_WINDOW = 4;
/** Most sibling directories listed ahead at once, and most entries they may hold together. */
export const LIST_AHEAD_DIRS = 64;
export const LIST_AHEAD_ENTRIES = 10_000;

/** Distinct names met in a row (each within READ_AHEAD_GAP_MS of the last). */
export interface Succession {
  names: Set<string>;
  at: number;
}

/**
 * Notes `name` in `holder[field]`; true when it completes a succession of
 * `count` distinct names (which then starts over). Reading one name again
 * and again (a poller) never completes one.
 */
export function inSuccession<K extends string>(holder: { [key in K]: Succession | undefined }, name: string, field: K, count: number): boolean {
  const now = performance.now();
  let s = holder[field];
  if (!s || now - s.at > READ_AHEAD_GAP_MS) s = holder[field] = { names: new Set(), at: now };
  s.at = now;
  s.names.add(name);
  if (s.names.size < count) return false;
  holder[field] = undefined;
  return true;
}

interface Queued {
  sent: boolean;
  done: Promise<void>;
  finish: () => void;
}

/**
 * A queue of fetches, sent in order with at most `window` in flight. `fetch`
 * resolves with the bytes it brought; a failed one counts as none, and the
 * lookup is simply made again when the file is really needed. Once `maxBytes`
 * have come in, what is still queued is dropped.
 */
export class ReadAhead {
  private readonly queued = new Map<string, Queued>();
  private readonly order: string[] = [];
  private next = 0;
  private inFlight = 0;
  private bytes = 0;

  constructor(
    private readonly fetch: (path: string) => Promise<number>,
    private readonly window = READ_AHEAD_WINDOW,
    private readonly maxBytes = READ_AHEAD_BYTES,
  ) {}

  /** Paths queued or in flight. */
  get size(): number {
    return this.queued.size;
  }

  /** Queues `paths` (those not queued already) and starts sending. */
  schedule(paths: readonly string[]): void {
    for (const path of paths) {
      if (this.queued.has(path)) continue;
      let finish!: () => void;
      const done = new Promise<void>((resolve) => (finish = resolve));
      this.queued.set(path, { sent: false, done, finish });
      this.order.push(path);
    }
    this.pump();
  }

  /**
   * The fetch of `path` if it is queued or in flight, sent now if it was still
   * waiting its turn; undefined if the read-ahead has nothing for it.
   */
  take(path: string): Promise<void> | undefined {
    const q = this.queued.get(path);
    if (!q) return undefined;
    if (!q.sent) this.send(path, q);
    return q.done;
  }

  /** Drops what has not been sent (a session loss: nothing fetched before it can be trusted after). */
  clear(): void {
    for (const path of this.order.slice(this.next)) {
      const q = this.queued.get(path);
      if (q && !q.sent) {
        this.queued.delete(path);
        q.finish();
      }
    }
    this.order.length = 0;
    this.next = 0;
  }

  private pump(): void {
    while (this.inFlight < this.window && this.next < this.order.length) {
      const path = this.order[this.next++]!;
      const q = this.queued.get(path);
      if (q && !q.sent) this.send(path, q);
    }
    if (this.next === this.order.length) {
      this.order.length = 0;
      this.next = 0;
    }
  }

  private send(path: string, q: Queued): void {
    q.sent = true;
    this.inFlight++;
    void this.fetch(path)
      .catch(() => 0)
      .then((n) => {
        this.inFlight--;
        this.queued.delete(path);
        q.finish();
        this.bytes += n;
        if (this.bytes >= this.maxBytes) this.clear();
        if (this.queued.size === 0) this.bytes = 0;
        this.pump();
      });
  }
}
