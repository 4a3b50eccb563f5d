// Garbage collection while the daemon is idle. A burst of requests (creating
// or listing thousands of files) leaves the young generation full of objects
// that live on (new nodes); V8 copies them at its next scavenge, 10 to 20 ms
// of work that otherwise lands in the middle of the next burst. Collected in
// the pause after a burst, nobody waits for it.

import v8 from 'node:v8';
import vm from 'node:vm';
import { log } from './log.js';

type GcFunction = (options: { type: 'minor' | 'major' }) => void;

/** How long without a request counts as idle, ms. */
const IDLE_MS = 10;
/** Young generation use below which a collection is not worth it, bytes. */
const MIN_YOUNG_BYTES = 1 << 20;
/**
 * Growth of memory outside the heap (Buffers: file contents) since the last
 * full collection past which one runs at idle: the Buffers of deleted files
 * go only with a full collection, and V8 otherwise starts one (incremental
 * marking, which slows every object write) in the middle of the next burst.
 */
const MAJOR_AFTER_EXTERNAL_BYTES = 32 << 20;

/** V8's gc() without --expose-gc on the command line (undefined if this V8 refuses). */
function exposeGc(): GcFunction | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as GcFunction) : undefined;
  } catch {
    return undefined;
  }
}

function youngBytes(): number {
  for (const s of v8.getHeapSpaceStatistics()) if (s.space_name === 'new_space') return s.space_used_size;
  return 0;
}

/**
 * Collects the young generation once requests have stopped for IDLE_MS. No
 * timer runs while the daemon is idle: the first request after a collection
 * arms one.
 */
export class IdleGc {
  private timer: NodeJS.Timeout | undefined;
  private requests = 0;
  private seen = 0;
  private externalAfterMajor = v8.getHeapStatistics().external_memory;

  private constructor(private readonly gc: GcFunction) {}

  static create(): IdleGc | undefined {
    const gc = exposeGc();
    if (!gc) {
      log.debug('idle-time garbage collection unavailable');
      return undefined;
    }
    return new IdleGc(gc);
  }

  /** One request handled; cheap when a check is already armed. */
  readonly request = (): void => {
    this.requests++;
    if (!this.timer) this.arm();
  };

  private arm(): void {
    this.seen = this.requests;
    this.timer = setTimeout(this.check, IDLE_MS).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly check = (): void => {
    this.timer = undefined;
    if (this.requests !== this.seen) return this.arm();
    if (v8.getHeapStatistics().external_memory > this.externalAfterMajor + MAJOR_AFTER_EXTERNAL_BYTES) {
      this.gc({ type: 'major' });
      this.externalAfterMajor = v8.getHeapStatistics().external_memory;
      return;
    }
    if (youngBytes() < MIN_YOUNG_BYTES) return;
    // Twice: the first copies the survivors within the young generation, the
    // second promotes them, so the next scavenge finds only new garbage.
    this.gc({ type: 'minor' });
    this.gc({ type: 'minor' });
  };
}
