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

/** Distinct names met in a row (each within READ_AHEAD_GAP_MS of the last), in the order met. */
export interface Succession {
  names: Set<string>;
  at: number;
}

/**
 * Notes `name` in `holder[field]`. When it completes a succession of `count`
 * distinct names (which then starts over), returns those names in the order
 * they came. Reading one name again and again (a poller) never completes one.
 */
export function inSuccession<K extends string>(holder: { [key in K]: Succession | undefined }, name: string, field: K, count: number): string[] | undefined {
  const now = performance.now();
  let s = holder[field];
  if (!s || now - s.at > READ_AHEAD_GAP_MS) s = holder[field] = { names: new Set(), at: now };
  s.at = now;
  s.names.add(name);
  if (s.names.size < count) return undefined;
  holder[field] = undefined;
  return [...s.names];
}

const DIGIT_RUNS = /\d+/g;
const NUMBER_WIDTH = 20;
const ZEROS = '0'.repeat(NUMBER_WIDTH);

/**
 * A key under which code-unit order is name order with the numbers in names
 * compared by value: f2 before f10 (code-unit order puts f10, f100 ... f199
 * between f1 and f2). Each run of digits is padded to 20 with zeros; a digit
 * sorts against any other character as before (padding starts with "0").
 * Names equal but for leading zeros, or numbers of more than 20 digits, go
 * by their own code units (the key ends with the name).
 */
export function naturalKey(name: string): string {
  return `${name.replace(DIGIT_RUNS, (d) => (d.length < NUMBER_WIDTH ? ZEROS.slice(d.length) + d : d))}\0${name}`;
}

/** How far apart `read` lie among `sorted` (both in one order): Infinity unless they come in that order. */
function spread(sorted: readonly string[], read: readonly string[]): number {
  const ranks = read.map((r) => {
    let rank = 0;
    for (const n of sorted) if (n < r) rank++;
    return rank;
  });
  for (let k = 1; k < ranks.length; k++) if (ranks[k]! <= ranks[k - 1]!) return Infinity;
  return ranks[ranks.length - 1]! - ranks[0]!;
}

/**
 * `names` in the order a reader that has just read `read` (in that order)
 * seems to follow, starting after the last of them: numbers by value when
 * its reads lie closer together that way (a program reading f0, f1, f2 ...),
 * else code-unit order (ls, a shell glob in the C locale). A read-ahead in
 * the reader's order stays ahead of it; in another it is overtaken at every
 * turn, and each overtaking costs the reader a round trip. Sorts with the
 * engine's own string comparison: a directory may hold tens of thousands.
 */
export function readerOrder(names: readonly string[], read: readonly string[]): string[] {
  const keys = read.length > 1 ? names.map(naturalKey) : undefined;
  const ordered =
    keys && spread(keys, read.map(naturalKey)) < spread(names, read) ? keys.sort().map((k) => k.slice(k.indexOf('\0') + 1)) : [...names].sort();
  const last = read.length > 0 ? ordered.indexOf(read[read.length - 1]!) : -1;
  return last < 0 ? ordered : [...ordered.slice(last + 1), ...ordered.slice(0, last + 1)];
}

/**
 * A queue of fetches, sent in order with at most `window` in flight. `fetch`
 * resolves with the bytes it brought; a failed one counts as none, and the
 * lookup is simply made again when the file is really needed. Once `maxBytes`
 * have come in, what is still queued is dropped. A queued path costs a set
 * entry until it is sent (a directory of thousands is queued at once).
 */
export class ReadAhead {
  /** Queued, not sent yet. */
  private readonly waiting = new Set<string>();
  /** Sent: the end of each fetch. */
  private readonly inFlight = new Map<string, Promise<void>>();
  private order: string[] = [];
  private next = 0;
  private bytes = 0;

  constructor(
    private readonly fetch: (path: string) => Promise<number>,
    private readonly window = READ_AHEAD_WINDOW,
    private readonly maxBytes = READ_AHEAD_BYTES,
  ) {}

  /** Paths queued or in flight. */
  get size(): number {
    return this.waiting.size + this.inFlight.size;
  }

  /** Queues `paths` (those not queued already) and starts sending. */
  schedule(paths: readonly string[]): void {
    for (const path of paths) {
      if (this.waiting.has(path) || this.inFlight.has(path)) continue;
      this.waiting.add(path);
      this.order.push(path);
    }
    this.pump();
  }

  /**
   * The fetch of `path` if it is queued or in flight, sent now if it was still
   * waiting its turn; undefined if the read-ahead has nothing for it.
   */
  take(path: string): Promise<void> | undefined {
    const sent = this.inFlight.get(path);
    if (sent) return sent;
    return this.waiting.has(path) ? this.send(path) : undefined;
  }

  /** Drops what has not been sent (a session loss: nothing fetched before it can be trusted after). */
  clear(): void {
    this.waiting.clear();
    this.order = [];
    this.next = 0;
  }

  private pump(): void {
    while (this.inFlight.size < this.window && this.next < this.order.length) {
      const path = this.order[this.next++]!;
      if (this.waiting.has(path)) this.send(path);
    }
    if (this.next === this.order.length) {
      this.order = [];
      this.next = 0;
    }
  }

  private send(path: string): Promise<void> {
    this.waiting.delete(path);
    const done = this.fetch(path)
      .catch(() => 0)
      .then((n) => {
        this.inFlight.delete(path);
        this.bytes += n;
        if (this.bytes >= this.maxBytes) this.clear();
        if (this.size === 0) this.bytes = 0;
        this.pump();
      });
    this.inFlight.set(path, done);
    return done;
  }
}
