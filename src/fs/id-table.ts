// Ids the kernel holds (node ids, file handles) as small integers: an index
// into an array, so finding the node or open file of a request costs no
// hashing, and ids coming and going (a cold `ls -l` looks up thousands,
// memory pressure forgets them, every close releases a handle) rebuild no
// hash table. An id the kernel is done with (forgotten, released) is handed
// out again, under the next generation number: FUSE allows a node id to be
// reused once forgotten, as long as (node id, generation) stays unique.

export class IdTable<T> {
  private readonly slots: Array<T | undefined>;
  private readonly generations: number[];
  private readonly free: number[] = [];
  private live = 0;

  /** Ids below `firstId` are never handed out (0 is no node; 1 is the root, added by the caller). */
  constructor(firstId: number) {
    this.slots = new Array<T | undefined>(firstId).fill(undefined);
    this.generations = new Array<number>(firstId).fill(0);
  }

  /** Live entries. */
  get size(): number {
    return this.live;
  }

  get(id: number): T | undefined {
    return id < this.slots.length ? this.slots[id] : undefined;
  }

  /** The generation an entry added under `id` now gets. */
  generation(id: number): number {
    return this.generations[id] ?? 0;
  }

  /** An id for a new entry: a forgotten one if any (most recently freed first), else a new one. */
  allocate(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    this.slots.push(undefined);
    this.generations.push(0);
    return this.slots.length - 1;
  }

  set(id: number, value: T): void {
    if (this.slots[id] === undefined) this.live++;
    this.slots[id] = value;
  }

  /** Frees `id` for reuse under the next generation. */
  delete(id: number): void {
    if (this.slots[id] === undefined) return;
    this.slots[id] = undefined;
    this.generations[id]!++;
    this.free.push(id);
    this.live--;
  }

  *values(): IterableIterator<T> {
    for (const value of this.slots) if (value !== undefined) yield value;
  }

  clear(): void {
    for (let id = 0; id < this.slots.length; id++) this.delete(id);
  }
}
