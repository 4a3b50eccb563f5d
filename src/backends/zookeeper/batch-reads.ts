// Reads of many znodes in few requests. ZooKeeper spends most of a small
// read on the request itself (queueing, the processor pipeline), so one
// multiRead of 32 getData costs the server little more than one getData.
// Measured here, a cold walk of 5,000 entries: one `exists` each, 5,051
// requests and 300-550 ms; in multiReads, 250 requests and 25-120 ms.

import { MAX_REPLY_BYTES, type ZkClient } from './client/client.js';
import { ErrorCode, type Stat, ZkError } from './client/protocol.js';

/** A znode read with its data. */
export interface Found {
  data: Buffer;
  stat: Stat;
}

/** A listing's view of a znode: its Stat, and its data when it came along. */
export interface Listed {
  stat: Stat;
  data?: Buffer;
}

/** Znodes of a listing read first, with their data, to learn how large this directory's znodes are. */
export const PROBE_OPS = 8;
/** Average data per znode up to which a listing reads the data along with the Stats (beyond: one `exists` each). */
export const LIST_DATA_PER_NODE = 4096;

/**
 * The most reads one multiRead carries: even if every znode is as large as
 * the server accepts (`maxRequest`), the reply stays within half the
 * client's frame limit.
 */
export function maxBatchOps(maxRequest: number): number {
  return Math.max(1, Math.min(32, Math.floor(MAX_REPLY_BYTES / 2 / maxRequest)));
}

/** One read's outcome: found, missing (null), or the error the server gave that read alone. */
type Outcome = Found | null | ZkError;

interface Queued {
  path: string;
  resolve: (f: Found | null) => void;
  reject: (err: unknown) => void;
}

export class BatchReads {
  private queued: Queued[] = [];

  constructor(
    private readonly zk: ZkClient,
    private readonly maxOps: number,
  ) {}

  /**
   * getData of one znode, or null if it does not exist. The calls made in
   * one tick leave together, maxOps per multiRead.
   */
  getData(path: string): Promise<Found | null> {
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) process.nextTick(() => this.flush());
      this.queued.push({ path, resolve, reject });
    });
  }

  /**
   * The Stat of each znode (null where it does not exist), and its data when
   * it came along. Read with the data, maxOps per multiRead, all in flight
   * at once, while the znodes are small (the first PROBE_OPS tell): a
   * directory of large files gets one `exists` each, so that listing it
   * does not transfer its content.
   */
  async statMany(paths: string[]): Promise<Array<Listed | null>> {
    if (paths.length <= 1) return Promise.all(paths.map((p) => this.zk.exists(p).then((stat) => stat && { stat })));
    const probe = await this.read(paths.slice(0, PROBE_OPS));
    const rest = paths.slice(PROBE_OPS);
    let bytes = 0;
    for (const o of probe) if (o && !(o instanceof ZkError)) bytes += o.data.length;
    const small = bytes <= LIST_DATA_PER_NODE * probe.length;
    const restOutcomes: Array<Outcome | Stat> = small ? await this.readAll(rest) : await Promise.all(rest.map((p) => this.zk.exists(p)));
    return Promise.all([...probe, ...restOutcomes].map((o, i) => this.statOf(o, paths[i]!)));
  }

  private statOf(o: Outcome | Stat, path: string): Listed | null | Promise<Listed | null> {
    if (!(o instanceof ZkError)) return o && ('data' in o ? o : { stat: o });
    // Listing an entry needs no READ permission on it, reading its data does.
    if (o.code === ErrorCode.NOAUTH) return this.zk.exists(path).then((stat) => stat && { stat });
    throw o;
  }

  private flush(): void {
    const queued = this.queued;
    this.queued = [];
    for (let i = 0; i < queued.length; i += this.maxOps) {
      const part = queued.slice(i, i + this.maxOps);
      this.read(part.map((q) => q.path)).then(
        (outcomes) =>
          part.forEach((q, j) => {
            const o = outcomes[j];
            if (o instanceof ZkError) q.reject(o);
            else q.resolve(o ?? null);
          }),
        (err: unknown) => part.forEach((q) => q.reject(err)),
      );
    }
  }

  private readAll(paths: string[]): Promise<Outcome[]> {
    const batches: Array<Promise<Outcome[]>> = [];
    for (let i = 0; i < paths.length; i += this.maxOps) batches.push(this.read(paths.slice(i, i + this.maxOps)));
    return Promise.all(batches).then((parts) => parts.flat());
  }

  /** One request: a multiRead, or a plain getData for a single path. Rejects only when the request as a whole failed. */
  private async read(paths: string[]): Promise<Outcome[]> {
    if (paths.length === 1) {
      try {
        return [await this.zk.getData(paths[0]!)];
      } catch (err) {
        if (err instanceof ZkError && (err.code === ErrorCode.NONODE || err.code === ErrorCode.NOAUTH)) return [err.code === ErrorCode.NONODE ? null : err];
        throw err;
      }
    }
    const results = await this.zk.multiRead(paths.map((path) => ({ op: 'getData', path })));
    if (results.length !== paths.length) throw new ZkError(ErrorCode.MARSHALLINGERROR, paths[0], `multiRead answered ${results.length} of ${paths.length} reads`);
    return results.map((r, i) => {
      if (r instanceof ZkError) return r.code === ErrorCode.NONODE ? null : r;
      if (r.op !== 'getData') return new ZkError(ErrorCode.MARSHALLINGERROR, paths[i], 'multiRead answered a getData with another result');
      return r;
    });
  }
}
