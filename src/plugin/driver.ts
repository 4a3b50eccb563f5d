// Docker's volume driver semantics over the local state and the mount
// processes: the mount IDs Docker holds per volume, one FUSE mount per volume
// on this node shared by its containers, unmounted when the last ID goes.
// Docker mounts again under an ID it already holds (`docker cp` on a running
// container) and unmounts once per mount, so an ID counts once per Mount.
// Calls on one volume are serialized; state is saved before answering.

import path from 'node:path';
import { log } from '../util/log.js';
import { mountHealth, MountFailed, PROBE_TIMEOUT_MS, startMount, stopMount } from './mounts.js';
import { checkVolumeName, OptionError, parseVolumeOptions, type PluginDefaults } from './options.js';
import type { RegisteredVolume, Registry } from './registry.js';
import type { StateStore, VolumeRecord } from './state.js';

/** How long a Mount or Unmount waits for its record in the cluster registry (see publish). */
const PUBLISH_WAIT_MS = 2000;
/** How long a List waits for the cluster's volumes before it shows this node's. */
const LIST_WAIT_MS = 2000;

/** A refusal Docker shows to the user as is. */
export class DriverError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DriverError';
  }
}

export interface DriverOptions {
  mountRoot: string;
  defaults: PluginDefaults;
  debug: boolean;
  connectTimeoutSeconds: number;
}

export interface VolumeInfo {
  Name: string;
  Mountpoint?: string;
  CreatedAt?: string;
  Status?: Record<string, unknown>;
}

export class VolumeDriver {
  private readonly volumes: Map<string, VolumeRecord>;
  private readonly queues = new Map<string, Promise<unknown>>();

  /** Cluster-wide volume definitions and mount records (with a plugin-wide ZooKeeper). */
  private registry: Registry | undefined;
  /** Per volume, the last record of its use on this node being written. */
  private readonly publishing = new Map<string, Promise<void>>();
  /** Why the plugin-wide ZooKeeper is not there yet, while it is not. */
  private registryDown: string | undefined;

  constructor(
    private readonly state: StateStore,
    private readonly opts: DriverOptions,
  ) {
    this.volumes = state.load();
  }

  /** The plugin-wide ZooKeeper answered: cluster-wide volumes from now on, and this node's use of its volumes recorded. */
  attachRegistry(registry: Registry): void {
    this.registry = registry;
    this.registryDown = undefined;
    for (const v of this.volumes.values()) if (v.mountIds.length > 0) void this.publish(v);
  }

  /** The plugin-wide ZooKeeper is configured but unreachable: what needs it fails with `why`, the rest goes on. */
  registryUnavailable(why: string): void {
    this.registryDown = why;
  }

  /** The registry, if the plugin has one; throws while a configured one is unreachable. */
  private cluster(): Registry | undefined {
    if (this.registryDown) throw new DriverError(`${this.registryDown}; the plugin keeps trying (volumes this node already knows keep working)`);
    return this.registry;
  }

  /**
   * Tells the cluster how many containers use a volume on this node, in
   * order per volume. A request waits for it at most PUBLISH_WAIT_MS: a
   * healthy ZooKeeper has it recorded before Docker starts the container
   * (so another node's rm sees it), one that is away does not stall every
   * Mount and Unmount for its operation timeout; the record is made once it
   * is back (Registry).
   */
  private async publish(v: VolumeRecord): Promise<void> {
    const registry = this.registry;
    if (!registry) return;
    const count = v.mountIds.length;
    const before = this.publishing.get(v.name) ?? Promise.resolve();
    const recorded = before.then(() =>
      registry.recordMount(v.name, count).catch((err: Error) => {
        log.warn('could not record the volume\'s use on this node in ZooKeeper yet; it is recorded once ZooKeeper answers', { volume: v.name, error: err.message });
      }),
    );
    this.publishing.set(v.name, recorded);
    void recorded.then(() => {
      if (this.publishing.get(v.name) === recorded) this.publishing.delete(v.name);
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([recorded, new Promise((r) => (timer = setTimeout(r, PUBLISH_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /**
   * The local record, or the cluster's definition of a volume created on
   * another node. With `current`, a local record not in use here is checked
   * against the cluster's: one removed and made again on another node is
   * replaced by the new definition (it may name another ZooKeeper path); one
   * removed there stays known here until `docker volume rm` (Docker keeps
   * its own list), but is not mounted again. A volume in use here stays as
   * it is.
   */
  private async known(name: string, current: false | 'get' | 'mount' = false): Promise<VolumeRecord> {
    checkVolumeName(name);
    const local = this.volumes.get(name);
    if (local && (!current || !this.registry || this.registryDown || local.mountIds.length > 0)) return local;
    const registry = local ? this.registry : this.cluster();
    let remote: RegisteredVolume | undefined;
    try {
      remote = await registry?.get(name);
    } catch (err) {
      if (local) return local; // ZooKeeper away: what this node knows
      throw err;
    }
    if (local) {
      if (remote && sameDefinition(local, remote)) return local;
      if (!remote) {
        if (current === 'get') return local;
        throw new DriverError(`volume ${name} was removed on another node: docker volume rm ${name} here, or create it again`);
      }
      this.volumes.delete(name);
      this.state.removeSecret(name);
      this.state.save(this.volumes);
      log.info('volume removed and made again on another node; its new definition replaces the one known here', { volume: name, createdOn: remote.createdOn });
    }
    if (!remote) throw new DriverError(`no such volume: ${name}`);
    const secret = await registry!.secret(name);
    if (secret) this.state.writeSecret(name, secret);
    const v: VolumeRecord = { name, spec: remote.spec, createdAt: remote.createdAt, createdOn: remote.createdOn, mountIds: [] };
    this.volumes.set(name, v);
    this.state.save(this.volumes);
    log.info('volume known from the cluster', { volume: name, createdOn: remote.createdOn });
    return v;
  }

  private mountpoint(name: string): string {
    return path.join(this.opts.mountRoot, name);
  }

  private logFile(name: string): string {
    return path.join(this.state.dir, 'logs', `${name}.log`);
  }

  /** Runs `fn` after every earlier call on the same volume. */
  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(name) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    this.queues.set(name, run);
    const done = () => {
      if (this.queues.get(name) === run) this.queues.delete(name);
    };
    run.then(done, done);
    return run;
  }

  /**
   * After a plugin restart: volumes Docker still holds are served again at the
   * same paths, by the mount process that survived or by a new one.
   */
  async restore(): Promise<void> {
    const inUse = [...this.volumes.values()].filter((v) => v.mountIds.length > 0);
    // Each in its own turn on the volume (Docker may ask already), all at once: one slow volume holds up no other.
    await Promise.all(inUse.map((v) => this.serial(v.name, () => this.restoreOne(v))));
  }

  private async restoreOne(v: VolumeRecord): Promise<void> {
    const mp = this.mountpoint(v.name);
    const health = await mountHealth(v.pid, mp);
    if (health !== 'down') {
      if (health === 'unresponsive') log.warn(`volume still mounted but its mount does not answer within ${PROBE_TIMEOUT_MS / 1000} s; adopted as it is`, { volume: v.name, pid: v.pid, mountpoint: mp });
      else log.info('volume still mounted; adopted', { volume: v.name, pid: v.pid, mountpoint: mp });
      await this.publish(v);
      return;
    }
    try {
      await this.startMount(v);
      await this.publish(v);
      log.info('volume mounted again after restart', { volume: v.name, mountpoint: mp, ids: v.mountIds.length });
    } catch (err) {
      log.error('could not mount a volume again after restart; the next container start retries', { volume: v.name, error: (err as Error).message });
    }
    this.state.save(this.volumes);
  }

  private async startMount(v: VolumeRecord): Promise<void> {
    v.pid = await startMount({
      name: v.name,
      spec: v.spec,
      authFile: this.state.hasSecret(v.name) ? this.state.secretFile(v.name) : undefined,
      mountpoint: this.mountpoint(v.name),
      logFile: this.logFile(v.name),
      debug: this.opts.debug,
      connectTimeoutSeconds: this.opts.connectTimeoutSeconds,
    });
  }

  create(name: string, opts: Record<string, unknown> | null | undefined): Promise<void> {
    checkVolumeName(name);
    return this.serial(name, async () => {
      let parsed;
      try {
        parsed = parseVolumeOptions(name, opts, this.opts.defaults);
      } catch (err) {
        if (err instanceof OptionError) throw new DriverError(err.message);
        throw err;
      }
      const registry = this.cluster();
      if (registry && Object.keys(opts ?? {}).length === 0) {
        // No options on a node that did not create it (Docker does this on every node): the cluster's definition.
        const remote = await registry.get(name).catch(() => undefined);
        if (remote) {
          await this.known(name, 'get');
          return;
        }
      }
      let won: RegisteredVolume | undefined;
      if (registry) {
        try {
          won = await registry.create(name, { spec: parsed.spec, createdAt: new Date().toISOString(), createdOn: registry.node }, parsed.auth);
        } catch (err) {
          throw new DriverError(`cannot register volume ${name} in ZooKeeper: ${(err as Error).message}`);
        }
        if (JSON.stringify(won.spec) !== JSON.stringify(parsed.spec)) {
          throw new DriverError(`volume ${name} already exists in the cluster with other options (created on ${won.createdOn}); remove it first`);
        }
      }
      const existing = this.volumes.get(name);
      if (existing && !(won && !sameDefinition(existing, won) && existing.mountIds.length === 0)) {
        // Create is idempotent: Docker (and a Swarm deploying on every node) may ask again.
        if (JSON.stringify(existing.spec) === JSON.stringify(parsed.spec)) return;
        throw new DriverError(`volume ${name} already exists with other options (${describe(existing)}); remove it first`);
      }
      // (or the record of a definition removed on another node since, not in use here: replaced)
      if (parsed.auth) this.state.writeSecret(name, parsed.auth);
      else this.state.removeSecret(name);
      this.volumes.set(name, { name, spec: parsed.spec, createdAt: won?.createdAt ?? new Date().toISOString(), createdOn: won?.createdOn, mountIds: [] });
      this.state.save(this.volumes);
      log.info('volume created', { volume: name, hosts: parsed.spec.hosts, path: parsed.spec.path, mode: parsed.spec.mode });
    });
  }

  remove(name: string): Promise<void> {
    checkVolumeName(name);
    return this.serial(name, async () => {
      const v = this.volumes.get(name) ?? (await this.known(name));
      if (v.mountIds.length > 0) throw new DriverError(`volume ${name} is in use by ${v.mountIds.length} container(s) on this node`);
      try {
        // Only the definition this record stands for: one made again on another node since stays.
        const outcome = await this.cluster()?.remove(name, v.createdOn === undefined ? undefined : v);
        if (outcome === 'other') log.warn('the cluster has a newer definition of this volume (made again on another node); only this node forgets the old one', { volume: name });
      } catch (err) {
        throw new DriverError((err as Error).message);
      }
      await stopMount(v.pid, this.mountpoint(name));
      this.volumes.delete(name);
      this.state.removeSecret(name);
      this.state.save(this.volumes);
      log.info('volume removed (its data stays in ZooKeeper)', { volume: name, path: v.spec.path });
    });
  }

  mount(name: string, id: string): Promise<string> {
    checkVolumeName(name);
    return this.serial(name, async () => {
      const v = await this.known(name, 'mount');
      const mp = this.mountpoint(name);
      const health = await mountHealth(v.pid, mp);
      if (health === 'unresponsive') {
        // Its containers wait on it too; a second mount would not be shared with them.
        throw new DriverError(
          `volume ${name} is mounted on this node but its mount process (pid ${v.pid}) has not answered for ${PROBE_TIMEOUT_MS / 1000} s (stopped, stuck, or waiting for ZooKeeper); see ${this.logFile(name)}; kill ${v.pid} to have the next container mount it anew`,
        );
      }
      if (health === 'down') {
        try {
          await this.startMount(v);
        } catch (err) {
          this.state.save(this.volumes);
          if (err instanceof MountFailed) throw new DriverError(`cannot mount volume ${name}: ${err.message}`);
          throw err;
        }
        log.info('volume mounted', { volume: name, mountpoint: mp, pid: v.pid });
      }
      v.mountIds.push(id);
      this.state.save(this.volumes);
      await this.publish(v);
      log.info('mount', { volume: name, id: id.slice(0, 12), users: v.mountIds.length });
      return mp;
    });
  }

  unmount(name: string, id: string): Promise<void> {
    checkVolumeName(name);
    return this.serial(name, async () => {
      const v = await this.known(name);
      const held = v.mountIds.indexOf(id);
      if (held >= 0) v.mountIds.splice(held, 1);
      if (v.mountIds.length === 0) {
        await stopMount(v.pid, this.mountpoint(name));
        v.pid = undefined;
        log.info('volume unmounted (last user gone)', { volume: name });
      }
      this.state.save(this.volumes);
      await this.publish(v);
      log.info('unmount', { volume: name, id: id.slice(0, 12), users: v.mountIds.length });
    });
  }

  async path(name: string): Promise<string> {
    const v = this.volumes.get(checkVolumeName(name));
    return v && v.mountIds.length > 0 ? this.mountpoint(name) : '';
  }

  async get(name: string): Promise<VolumeInfo> {
    return this.info(await this.known(name, 'get'));
  }

  /** This node's volumes and, with a registry, every volume of the cluster. */
  async list(): Promise<VolumeInfo[]> {
    const out = new Map([...this.volumes.values()].map((v) => [v.name, this.info(v)]));
    if (this.registryDown) log.warn('the plugin-wide ZooKeeper is not reachable yet; listing this node\'s volumes', { reason: this.registryDown });
    else if (this.registry) {
      try {
        // At most LIST_WAIT_MS: `docker volume ls` must not hang while ZooKeeper is away.
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${LIST_WAIT_MS} ms`)), LIST_WAIT_MS)));
        const listed = await Promise.race([this.registry.list(), late]).finally(() => clearTimeout(timer));
        for (const { name, volume } of listed) {
          if (!out.has(name)) out.set(name, { Name: name, CreatedAt: volume.createdAt, Status: { hosts: volume.spec.hosts, path: volume.spec.path, mode: volume.spec.mode, createdOn: volume.createdOn } });
        }
      } catch (err) {
        log.warn('could not list the cluster\'s volumes; showing this node\'s', { error: (err as Error).message });
      }
    }
    return [...out.values()];
  }

  private info(v: VolumeRecord): VolumeInfo {
    return {
      Name: v.name,
      ...(v.mountIds.length > 0 ? { Mountpoint: this.mountpoint(v.name) } : {}),
      CreatedAt: v.createdAt,
      Status: { hosts: v.spec.hosts, path: v.spec.path, mode: v.spec.mode, ro: v.spec.ro, mountedBy: v.mountIds.length },
    };
  }
}

/**
 * Whether a local record stands for the cluster's definition `remote` (not
 * one removed and made again since). Records from before 2026-12-07 carry no
 * `createdOn` (and their own creation time): their options tell.
 */
function sameDefinition(v: VolumeRecord, remote: RegisteredVolume): boolean {
  if (v.createdOn === undefined) return JSON.stringify(v.spec) === JSON.stringify(remote.spec);
  return v.createdAt === remote.createdAt && v.createdOn === remote.createdOn;
}

function describe(v: VolumeRecord): string {
  return `hosts=${v.spec.hosts} path=${v.spec.path} mode=${v.spec.mode}`;
}
