// Garbage collection while the daemon is idle. A burst of requests (creating
// or listing thousands of files) leaves the young generation full of objects
// that live on (new nodes); V8 copies them at its next scavenge, 10 to 20 ms
// of work that otherwise lands in the middle of the next burst. Collected in
// the pause after a burst, nobody waits for it.

import v8 from 'node:v8';
import vm from 'node:vm';
import { log } from './log.js';

/** V8's gc(): a full collection, or with `{ type: 'minor' }` the young generation only ('major' is not understood: it collects the young generation). */
export type GcFunction = (options?: { type: 'minor' }) => void;

/** What the collector decides on (V8's own statistics; tests pass their own). */
export interface HeapProbe {
  /** Bytes in use in the young generation. */
  youngBytes(): number;
  /** Bytes outside the heap that the heap keeps alive (Buffers). */
  externalBytes(): number;
}

/**
 * How long without a request counts as idle, ms: longer than a client's own
 * work between two requests (an `ls -l` stats thousands of cached entries
 * without asking us), so that a collection does not take a CPU it needs.
 */
export const IDLE_MS = 50;
/** Young generation use below which a collection is not worth it, bytes. */
export const MIN_YOUNG_BYTES = 512 << 10;
/**
 * Growth of memory outside the heap (Buffers: file contents) since the last
 * full collection past which one runs at idle: the Buffers of deleted files
 * go only with a full collection, and V8 otherwise starts one (incremental
 * marking, which slows every object write) in the middle of the next burst.
 */
export const MAJOR_AFTER_EXTERNAL_BYTES = 32 << 20;

/** V8's gc() without --expose-gc on the command line (undefined if this V8 refuses). */
export function exposeGc(): GcFunction | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as GcFunction) : undefined;
  } catch {
    return undefined;
  }
}

const v8Heap: HeapProbe = {
  youngBytes() {
    for (const s of v8.getHeapSpaceStatistics()) if (s.space_name === 'new_space') return s.space_used_size;
    return 0;
  },
  externalBytes: () => v8.getHeapStatistics().external_memory,
};

/**
 * Collects once requests have stopped for IDLE_MS. No timer runs while the
 * daemon is idle: the first request after a collection arms one.
 */
export class IdleGc {
  private timer: NodeJS.Timeout | undefined;
  private requests = 0;
  private seen = 0;
  private externalAfterMajor: number;

  private constructor(
    private readonly gc: GcFunction,
    private readonly heap: HeapProbe,
  ) {
    this.externalAfterMajor = heap.externalBytes();
  }

  static create(gc: GcFunction | undefined = exposeGc(), heap: HeapProbe = v8Heap): IdleGc | undefined {
    if (!gc) {
      log.debug('idle-time garbage collection unavailable');
      return undefined;
    }
    return new IdleGc(gc, heap);
  }

  /** One request handled; cheap when a check is already armed. */
  readonly request = (): void => {
    this.requests++;
    if (!this.timer) this.arm();
  };

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.seen = this.requests;
    this.timer = setTimeout(this.check, IDLE_MS).unref();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    if (this.requests !== this.seen) return this.arm();
    if (this.heap.externalBytes() > this.externalAfterMajor + MAJOR_AFTER_EXTERNAL_BYTES) {
      this.gc();
      this.externalAfterMajor = this.heap.externalBytes();
      return;
    }
    if (this.heap.youngBytes() < MIN_YOUNG_BYTES) return;
    // Twice: the first copies the survivors within the young generation, the
    // second promotes them, so the next scavenge finds only new garbage.
    this.gc({ type: 'minor' });
    this.gc({ type: 'minor' });
  };
}
