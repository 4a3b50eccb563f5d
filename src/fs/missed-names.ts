// The names the kernel was told are missing (negative entries it may keep for
// the negative timeout). A backend that lost track of its store's changes (a
// ZooKeeper reconnect) needs them dropped, and only these records say which
// they are. (NOTIFY_INC_EPOCH, protocol 7.44, would drop every dentry at once,
// but it also detaches whatever is mounted on a directory of the volume, as
// containers' nested volumes are.)

/** Names kept at most; past it the oldest are dropped from the kernel at once (`evicted`), so none is ever unrecorded. */
export const MAX_MISSED_NAMES = 65_536;

export class MissedNames {
  /** Per parent node id, in the order first missed (a Map keeps insertion order). */
  private readonly byParent = new Map<number, Set<string>>();
  private count = 0;
  /** Bumped by each drain: a miss found before one is from before the backend lost track, and must not be kept. */
  drains = 0;

  constructor(
    private readonly evicted: (parent: number, name: string) => void,
    private readonly limit = MAX_MISSED_NAMES,
  ) {}

  get size(): number {
    return this.count;
  }

  add(parent: number, name: string): void {
    let names = this.byParent.get(parent);
    if (!names) {
      names = new Set();
      this.byParent.set(parent, names);
    }
    if (names.has(name)) return;
    names.add(name);
    if (++this.count > this.limit) this.evictOldest();
  }

  /** The kernel forgot `parent`: its negative entries went with it. */
  forgetParent(parent: number): void {
    const names = this.byParent.get(parent);
    if (!names) return;
    this.count -= names.size;
    this.byParent.delete(parent);
  }

  /** Every recorded name, and forgets them all. */
  drain(): Array<[parent: number, name: string]> {
    const all: Array<[number, string]> = [];
    for (const [parent, names] of this.byParent) for (const name of names) all.push([parent, name]);
    this.byParent.clear();
    this.count = 0;
    this.drains++;
    return all;
  }

  private evictOldest(): void {
    const first = this.byParent.entries().next();
    if (first.done) return;
    const [parent, names] = first.value;
    const name = names.values().next().value as string;
    names.delete(name);
    if (names.size === 0) this.byParent.delete(parent);
    this.count--;
    this.evicted(parent, name);
  }
}
