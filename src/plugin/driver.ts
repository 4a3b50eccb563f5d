// Docker's volume driver semantics over the local state and the mount
// processes: a set of mount IDs per volume (not a counter), one FUSE mount per
// volume on this node shared by its containers, unmounted when the last ID
// goes. Calls on one volume are serialized; state is saved before answering.

import path from 'node:path';
import { log } from '../util/log.js';
import { isServing, MountFailed, startMount, stopMount } from './mounts.js';
import { checkVolumeName, OptionError, parseVolumeOptions, type PluginDefaults } from './options.js';
import type { StateStore, VolumeRecord } from './state.js';

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

  constructor(
    private readonly state: StateStore,
    private readonly opts: DriverOptions,
  ) {
    this.volumes = state.load();
  }

  private mountpoint(name: string): string {
    return path.join(this.opts.mountRoot, name);
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

  private record(name: string): VolumeRecord {
    const v = this.volumes.get(checkVolumeName(name));
    if (!v) throw new DriverError(`no such volume: ${name}`);
    return v;
  }

  /**
   * After a plugin restart: volumes Docker still holds are served again at the
   * same paths, by the mount process that survived or by a new one.
   */
  async restore(): Promise<void> {
    for (const v of this.volumes.values()) {
      if (v.mountIds.length === 0) continue;
      const mp = this.mountpoint(v.name);
      if (await isServing(v.pid, mp)) {
        log.info('volume still mounted; adopted', { volume: v.name, pid: v.pid, mountpoint: mp });
        continue;
      }
      try {
        await this.startMount(v);
        log.info('volume mounted again after restart', { volume: v.name, mountpoint: mp, ids: v.mountIds.length });
      } catch (err) {
        log.error('could not mount a volume again after restart; the next container start retries', { volume: v.name, error: (err as Error).message });
      }
    }
    this.state.save(this.volumes);
  }

  private async startMount(v: VolumeRecord): Promise<void> {
    v.pid = await startMount({
      name: v.name,
      spec: v.spec,
      authFile: this.state.hasSecret(v.name) ? this.state.secretFile(v.name) : undefined,
      mountpoint: this.mountpoint(v.name),
      logFile: path.join(this.state.dir, 'logs', `${v.name}.log`),
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
      const existing = this.volumes.get(name);
      if (existing) {
        // Create is idempotent: Docker (and a Swarm deploying on every node) may ask again.
        if (JSON.stringify(existing.spec) === JSON.stringify(parsed.spec)) return;
        throw new DriverError(`volume ${name} already exists with other options (${describe(existing)}); remove it first`);
      }
      if (parsed.auth) this.state.writeSecret(name, parsed.auth);
      this.volumes.set(name, { name, spec: parsed.spec, createdAt: new Date().toISOString(), mountIds: [] });
      this.state.save(this.volumes);
      log.info('volume created', { volume: name, hosts: parsed.spec.hosts, path: parsed.spec.path, mode: parsed.spec.mode });
    });
  }

  remove(name: string): Promise<void> {
    checkVolumeName(name);
    return this.serial(name, async () => {
      const v = this.record(name);
      if (v.mountIds.length > 0) throw new DriverError(`volume ${name} is in use by ${v.mountIds.length} container(s) on this node`);
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
      const v = this.record(name);
      const mp = this.mountpoint(name);
      if (!(await isServing(v.pid, mp))) {
        try {
          await this.startMount(v);
        } catch (err) {
          this.state.save(this.volumes);
          if (err instanceof MountFailed) throw new DriverError(`cannot mount volume ${name}: ${err.message}`);
          throw err;
        }
        log.info('volume mounted', { volume: name, mountpoint: mp, pid: v.pid });
      }
      if (!v.mountIds.includes(id)) v.mountIds.push(id);
      this.state.save(this.volumes);
      log.info('mount', { volume: name, id: id.slice(0, 12), users: v.mountIds.length });
      return mp;
    });
  }

  unmount(name: string, id: string): Promise<void> {
    checkVolumeName(name);
    return this.serial(name, async () => {
      const v = this.record(name);
      v.mountIds = v.mountIds.filter((x) => x !== id);
      if (v.mountIds.length === 0) {
        await stopMount(v.pid, this.mountpoint(name));
        v.pid = undefined;
        log.info('volume unmounted (last user gone)', { volume: name });
      }
      this.state.save(this.volumes);
      log.info('unmount', { volume: name, id: id.slice(0, 12), users: v.mountIds.length });
    });
  }

  async path(name: string): Promise<string> {
    const v = this.record(name);
    return v.mountIds.length > 0 ? this.mountpoint(name) : '';
  }

  async get(name: string): Promise<VolumeInfo> {
    return this.info(this.record(name));
  }

  async list(): Promise<VolumeInfo[]> {
    return [...this.volumes.values()].map((v) => this.info(v));
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

function describe(v: VolumeRecord): string {
  return `hosts=${v.spec.hosts} path=${v.spec.path} mode=${v.spec.mode}`;
}
