// Cluster-wide volumes: with a plugin-wide ZooKeeper (ZK_HOSTS), volume
// definitions live in ZooKeeper, so a volume created on one node is listed and
// mountable on every node, and removed everywhere. Each node records the
// volumes it has mounted as ephemeral znodes: a node that dies takes its
// records with its session, so "volume is in use" can never stick.
//
//   REGISTRY/volumes/<name>          {"spec":..., "createdAt":..., "createdOn":...}
//   REGISTRY/secrets/<name>          the volume's auth (ACL: the plugin's identity only)
//   REGISTRY/mounts/<name>/<node>    ephemeral: this node uses the volume (data: mount count)
//
// Every write here is sent again after a lost connection (within the client's
// operation timeout), as what it makes is found: an entry already there, or
// already gone, is the earlier attempt's outcome.

import { ZkClient } from '../backends/zookeeper/client/client.js';
import { againAfterLoss, deleteOwned } from '../backends/zookeeper/owned.js';
import { type Acl, CREATOR_ALL_ACL, CreateMode, ErrorCode, OPEN_ACL_UNSAFE, ZkError } from '../backends/zookeeper/client/protocol.js';
import { log } from '../util/log.js';
import type { VolumeSpec } from './options.js';

export interface RegisteredVolume {
  spec: VolumeSpec;
  createdAt: string;
  createdOn: string;
}

function isCode(err: unknown, code: number): boolean {
  return err instanceof ZkError && err.code === code;
}

export class Registry {
  private readonly acl: Acl[];
  /**
   * This node's use of each volume as last asked (0: to be cleared): asked
   * again after every new connection, so a record that failed while
   * ZooKeeper was away is made (or cleared) once it is back, and an expired
   * session's records are made again.
   */
  private readonly mounted = new Map<string, number>();

  private constructor(
    private readonly zk: ZkClient,
    private readonly base: string,
    readonly node: string,
    private readonly secured: boolean,
  ) {
    this.acl = secured ? CREATOR_ALL_ACL : OPEN_ACL_UNSAFE;
    zk.on('session', (s: { expired: boolean }) => {
      if (s.expired) log.warn('plugin ZooKeeper session expired; recording this node\'s mounts again', { node });
      for (const [name, count] of this.mounted) void this.recordMount(name, count).catch((err: Error) => log.error('could not record a mount again', { volume: name, error: err.message }));
    });
  }

  static async open(hosts: string, base: string, node: string, auth: string | undefined): Promise<Registry> {
    const m = auth ? /^digest:([^:]+):(.+)$/.exec(auth) : null;
    const zk = new ZkClient({ connectString: hosts, auth: m ? [{ scheme: 'digest', credential: `${m[1]}:${m[2]}` }] : [] });
    await zk.connect();
    const r = new Registry(zk, base, node, m !== null);
    for (const p of [base, `${base}/volumes`, `${base}/secrets`, `${base}/mounts`]) await r.ensure(p);
    return r;
  }

  close(): void {
    this.zk.close();
  }

  private async ensure(path: string): Promise<void> {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      await againAfterLoss(this.zk, () =>
        this.zk.create('/' + parts.slice(0, i).join('/'), Buffer.alloc(0), this.acl).catch((err: unknown) => {
          if (!isCode(err, ErrorCode.NODEEXISTS)) throw err;
        }),
      );
    }
  }

  /** Registers a volume; resolves with the definition that won (another node may have created it first). */
  async create(name: string, v: RegisteredVolume, secret: string | undefined): Promise<RegisteredVolume> {
    try {
      const ops = [{ op: 'create' as const, path: `${this.base}/volumes/${name}`, data: Buffer.from(JSON.stringify(v)), acl: this.acl }];
      if (secret !== undefined) {
        if (!this.secured) throw new Error('the auth option needs the plugin-wide AUTH, so that its secret is stored in ZooKeeper readable by the plugin only');
        ops.push({ op: 'create', path: `${this.base}/secrets/${name}`, data: Buffer.from(secret), acl: CREATOR_ALL_ACL });
      }
      // One sent again after a lost connection finds its own definition (NODEEXISTS, below).
      await againAfterLoss(this.zk, () => this.zk.multi(ops));
      return v;
    } catch (err) {
      if (!isCode(err, ErrorCode.NODEEXISTS)) throw err;
      const existing = await this.get(name);
      if (!existing) throw err;
      return existing;
    }
  }

  async get(name: string): Promise<RegisteredVolume | undefined> {
    try {
      return JSON.parse((await this.zk.getData(`${this.base}/volumes/${name}`)).data.toString('utf8')) as RegisteredVolume;
    } catch (err) {
      if (isCode(err, ErrorCode.NONODE)) return undefined;
      throw err;
    }
  }

  async secret(name: string): Promise<string | undefined> {
    try {
      return (await this.zk.getData(`${this.base}/secrets/${name}`)).data.toString('utf8');
    } catch (err) {
      if (isCode(err, ErrorCode.NONODE)) return undefined;
      throw err;
    }
  }

  async list(): Promise<Array<{ name: string; volume: RegisteredVolume }>> {
    const { children } = await this.zk.getChildren(`${this.base}/volumes`);
    const out: Array<{ name: string; volume: RegisteredVolume }> = [];
    await Promise.all(
      children.map(async (name) => {
        const v = await this.get(name).catch(() => undefined);
        if (v) out.push({ name, volume: v });
      }),
    );
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Nodes (other than this one) that have the volume mounted. */
  async usersElsewhere(name: string): Promise<string[]> {
    try {
      const { children } = await this.zk.getChildren(`${this.base}/mounts/${name}`);
      return children.filter((n) => n !== this.node);
    } catch (err) {
      if (isCode(err, ErrorCode.NONODE)) return [];
      throw err;
    }
  }

  /**
   * Removes the definition everywhere; refused while another node uses the
   * volume. With `expected`, only that definition: `other` if the volume was
   * removed and made again since (nothing removed), `gone` if it is gone.
   */
  async remove(name: string, expected?: { createdAt: string; createdOn?: string }): Promise<'removed' | 'other' | 'gone'> {
    const current = await this.get(name);
    if (!current) return 'gone';
    if (expected && (current.createdAt !== expected.createdAt || (expected.createdOn !== undefined && current.createdOn !== expected.createdOn))) return 'other';
    const elsewhere = await this.usersElsewhere(name);
    if (elsewhere.length > 0) throw new Error(`volume ${name} is in use on node ${elsewhere.join(', ')}`);
    for (const p of [`${this.base}/secrets/${name}`, `${this.base}/mounts/${name}`, `${this.base}/volumes/${name}`]) await deleteOwned(this.zk, p);
    return 'removed';
  }

  /** Records (count > 0) or clears (0) this node's use of a volume. */
  async recordMount(name: string, count: number): Promise<void> {
    const dir = `${this.base}/mounts/${name}`;
    const path = `${dir}/${this.node}`;
    this.mounted.set(name, count);
    if (count === 0) {
      await deleteOwned(this.zk, path);
      if (this.mounted.get(name) === 0) this.mounted.delete(name);
      return;
    }
    await this.ensure(dir);
    const data = Buffer.from(String(count));
    await againAfterLoss(this.zk, async () => {
      const existing = await this.zk.exists(path);
      if (existing && existing.ephemeralOwner === this.zk.session.id) {
        await this.zk.setData(path, data);
        return;
      }
      // A record left by this node's previous session (a plugin restarted before
      // that session expired) would vanish with it: replace it with ours.
      if (existing) await deleteOwned(this.zk, path);
      await this.zk.create(path, data, this.acl, CreateMode.EPHEMERAL).catch((e: unknown) => {
        if (!isCode(e, ErrorCode.NODEEXISTS)) throw e;
      });
    });
  }
}
