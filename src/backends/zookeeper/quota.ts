// A volume's byte quota, kept in ZooKeeper's own quota tree: the limit in
// /zookeeper/quota/<root>/zookeeper_limits (a soft limit, "bytes=N"), the usage
// in .../zookeeper_stats, which every ZooKeeper server maintains exactly on
// every create, setData and delete in the subtree. Reading the usage is one
// getData, never a walk; swarmvol refuses writes that would pass the limit.
// (ZooKeeper's hard limits are not used: the server checks each op of a multi
// against the state before the multi, so a rename near the limit would fail.)

import { FsError } from '../../fs/errors.js';
import { createIfMissing, type ZkClient } from './client/client.js';
import { type Acl, ErrorCode, ZkError } from './client/protocol.js';

const QUOTA_TREE = '/zookeeper/quota';

export interface Usage {
  /** Bytes of data in the volume's znodes: file contents plus swarmvol's small attribute maps. */
  bytes: number;
  /** Znodes in the volume. */
  count: number;
}

function parseCounters(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',')) {
    const [k, v] = part.split('=');
    if (k && v !== undefined && /^-?\d+$/.test(v.trim())) out[k.trim()] = Number(v);
  }
  return out;
}

export class VolumeQuota {
  private last: Usage | undefined;

  private constructor(
    private readonly zk: ZkClient,
    private readonly statsPath: string,
    /** The limit in bytes; undefined: no quota. */
    readonly limit: number | undefined,
  ) {}

  /**
   * Sets the volume's quota to `requested` bytes (the mount's --quota), or
   * reads the quota set before (by any node) when none is requested.
   */
  static async setup(zk: ZkClient, root: string, requested: number | undefined, acl: Acl[]): Promise<VolumeQuota> {
    const base = `${QUOTA_TREE}${root}`;
    const limitsPath = `${base}/zookeeper_limits`;
    const statsPath = `${base}/zookeeper_stats`;
    if (requested === undefined) {
      if (zk.chrootPath) return new VolumeQuota(zk, statsPath, undefined);
      const limits = await zk.getData(limitsPath).catch((err: unknown) => {
        if (err instanceof ZkError && err.code === ErrorCode.NONODE) return undefined;
        throw err;
      });
      const bytes = limits ? parseCounters(limits.data.toString()).bytes : undefined;
      return new VolumeQuota(zk, statsPath, bytes !== undefined && bytes >= 0 ? bytes : undefined);
    }
    if (zk.chrootPath) throw new Error(`quota: ZooKeeper keeps quotas in ${QUOTA_TREE}, outside the connect string's chroot ${zk.chrootPath}: give the volume's place with the path option instead of a chroot`);
    if (root === '/') throw new Error('quota: ZooKeeper cannot put a quota on its root; use a volume path below it');
    const parts = base.split('/').filter(Boolean);
    for (let i = 2; i <= parts.length; i++) await createIfMissing(zk, '/' + parts.slice(0, i).join('/'), Buffer.alloc(0), acl);
    const wanted = `count=-1,bytes=${requested}`;
    if (!(await createIfMissing(zk, limitsPath, Buffer.from(wanted), acl))) await zk.setData(limitsPath, Buffer.from(wanted));
    // Creating the stats znode makes the server count what the subtree already holds.
    await createIfMissing(zk, statsPath, Buffer.from('count=0,bytes=0'), acl);
    return new VolumeQuota(zk, statsPath, requested);
  }

  /** The volume's usage, exact as of this read. */
  async usage(): Promise<Usage> {
    const r = await this.zk.getData(this.statsPath);
    const c = parseCounters(r.data.toString());
    this.last = { bytes: Math.max(0, c.bytes ?? 0), count: Math.max(0, c.count ?? 0) };
    return this.last;
  }

  /** Whether `growth` more bytes surely fit, by the last usage read (no request). */
  fitsByLastUsage(growth: number): boolean {
    return this.limit === undefined || growth <= 0 || (this.last !== undefined && this.last.bytes + growth <= this.limit);
  }

  /** EDQUOT if storing `growth` more bytes would pass the quota (asks ZooKeeper for the usage). */
  async check(growth: number): Promise<void> {
    if (this.limit === undefined || growth <= 0) return;
    const used = await this.usage();
    if (used.bytes + growth > this.limit) {
      throw new FsError('EDQUOT', `the volume's quota is ${this.limit} bytes, ${used.bytes} are used and this write needs ${growth} more`);
    }
  }
}
