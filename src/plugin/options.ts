// Volume options (`docker volume create -o`, compose `driver_opts`) and the
// plugin-wide defaults from the environment. Every error names the option
// and what it accepts; unknown options are refused.

import { parseConnectString, zkPathProblem } from '../backends/zookeeper/client/client.js';
import { DEFAULT_MAX_REQUEST, largestFileSize, MAX_JUTE_MAXBUFFER } from '../backends/zookeeper/chunks.js';
import { MODES, type Mode } from '../backends/zookeeper/layout.js';
import { MAX_READ_AHEAD } from '../backends/zookeeper/read-ahead.js';
import { MAX_BUSY_POLL_MICROS } from '../fuse/channel.js';
import { sizeInBytes, wholeNumber } from '../util/numbers.js';

export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

/** What a volume is: everything needed to mount it, except its secret. */
export interface VolumeSpec {
  hosts: string;
  /** Absolute ZooKeeper path of the volume's subtree. */
  path: string;
  mode: Mode;
  uid: number;
  gid: number;
  umask: number;
  ro: boolean;
  /** The volume's quota in bytes, if the volume sets one. */
  quota?: number;
  /** Largest file in bytes, if not the default. */
  maxfilesize?: number;
  /** The ZooKeeper servers' jute.maxbuffer, if not the default. */
  jutemaxbuffer?: number;
  /** Most files read ahead in a directory read file by file, if not the default (0: off). */
  readahead?: number;
  /** Longest busy poll of /dev/fuse after a request, microseconds, if not the default (0: off). */
  busypoll?: number;
}

/** Plugin-wide defaults, from the plugin's environment. */
export interface PluginDefaults {
  /** ZK_HOSTS: the ZooKeeper ensemble used when a volume names none. */
  hosts: string | undefined;
  /** ROOT: the ZooKeeper path under which volumes get their own subtree. */
  root: string;
  /** AUTH: digest:user:password for volumes that give none. */
  auth: string | undefined;
}

export const VOLUME_OPTIONS = ['hosts', 'host', 'path', 'mode', 'auth', 'uid', 'gid', 'umask', 'ro', 'quota', 'maxfilesize', 'jutemaxbuffer', 'readahead', 'busypoll'] as const;

export function defaultsFromEnv(env: NodeJS.ProcessEnv): PluginDefaults {
  const hosts = env.ZK_HOSTS?.trim() || undefined;
  if (hosts) checkHosts('ZK_HOSTS', hosts);
  const root = env.ROOT?.trim() || '/swarmvol/volumes';
  checkZkPath('ROOT', root);
  const auth = env.AUTH?.trim() || undefined;
  if (auth) checkAuth('AUTH', auth);
  return { hosts, root, auth };
}

function checkHosts(option: string, value: string): void {
  try {
    parseConnectString(value);
  } catch (err) {
    throw new OptionError(`${option}: ${(err as Error).message}`);
  }
}

function checkZkPath(option: string, value: string): void {
  const problem = zkPathProblem(value);
  if (problem) throw new OptionError(`${option}: expected an absolute ZooKeeper path such as /swarmvol/volumes/web (${problem}), got "${value}"`);
}

function checkAuth(option: string, value: string): void {
  if (!/^digest:[^:\s]+:\S+$/.test(value)) throw new OptionError(`${option}: expected digest:USER:PASSWORD`);
}

function id(option: string, value: string): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) > 0xfffffffe) throw new OptionError(`${option}: expected a numeric id from 0 to 4294967294, got "${value}"`);
  return Number(value);
}

function size(option: string, value: string): number {
  const n = sizeInBytes(value);
  if (!(n >= 1)) throw new OptionError(`${option}: expected a size in bytes with an optional suffix k, M, G or T (e.g. 512M), got "${value}"`);
  return n;
}

/** maxfilesize and jutemaxbuffer, checked together: the largest file depends on what one znode holds. */
function fileLimits(maxText: string | undefined, juteText: string | undefined): Pick<VolumeSpec, 'maxfilesize' | 'jutemaxbuffer'> {
  const jute = juteText === undefined ? undefined : size('jutemaxbuffer', juteText);
  if (jute !== undefined && (jute < 64 * 1024 || jute > MAX_JUTE_MAXBUFFER)) {
    throw new OptionError(`jutemaxbuffer: expected the ZooKeeper servers' jute.maxbuffer, from 64k to 32M (${MAX_JUTE_MAXBUFFER} bytes), got "${juteText}"`);
  }
  const max = maxText === undefined ? undefined : size('maxfilesize', maxText);
  const largest = largestFileSize(jute ?? DEFAULT_MAX_REQUEST);
  if (max !== undefined && max > largest) throw new OptionError(`maxfilesize: expected at most ${largest} bytes with jutemaxbuffer ${jute ?? DEFAULT_MAX_REQUEST}, got "${maxText}"`);
  return { ...(max !== undefined ? { maxfilesize: max } : {}), ...(jute !== undefined ? { jutemaxbuffer: jute } : {}) };
}

/** A whole number from 0 (the feature off) to `max`; `what` names its unit in the error. */
function offOrUpTo(option: string, what: string, value: string, max: number): number {
  const n = wholeNumber(value);
  if (!(n <= max)) throw new OptionError(`${option}: expected ${what} from 0 (off) to ${max}, got "${value}"`);
  return n;
}

function bool(option: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['', 'true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new OptionError(`${option}: expected true or false, got "${value}"`);
}

/** Docker volume names: what `docker volume create` itself accepts. */
/** Longest volume name: the plugin's files named after a volume (its log, a secret being written) add up to 16 characters, within a file name's 255. */
export const MAX_VOLUME_NAME = 200;

export function checkVolumeName(name: unknown): string {
  if (typeof name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name) || name.length > MAX_VOLUME_NAME) {
    const shown = typeof name === 'string' && name.length > 40 ? `${JSON.stringify(name.slice(0, 40))}... (${name.length} characters)` : JSON.stringify(name);
    throw new OptionError(`invalid volume name ${shown}: expected 1 to ${MAX_VOLUME_NAME} letters, digits, _ . - (starting with a letter or digit)`);
  }
  return name;
}

/**
 * Validates a volume's options against the plugin defaults. Returns the spec
 * and the secret apart, so the secret can be stored where only root reads it.
 */
export function parseVolumeOptions(name: string, opts: Record<string, unknown> | null | undefined, defaults: PluginDefaults): { spec: VolumeSpec; auth: string | undefined } {
  const o: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts ?? {})) {
    if (!(VOLUME_OPTIONS as readonly string[]).includes(k)) {
      throw new OptionError(`unknown option "${k}": swarmvol accepts ${VOLUME_OPTIONS.join(', ')}`);
    }
    if (typeof v !== 'string') throw new OptionError(`${k}: expected a string value`);
    o[k] = v;
  }
  if (o.hosts !== undefined && o.host !== undefined) throw new OptionError('hosts and host: give one of them (they mean the same)');
  const hosts = o.hosts ?? o.host ?? defaults.hosts;
  if (!hosts) {
    throw new OptionError('hosts: no ZooKeeper given: set -o hosts=HOST:PORT[,HOST:PORT...] or the plugin-wide ZK_HOSTS (docker plugin set swarmvol ZK_HOSTS=...)');
  }
  checkHosts(o.hosts !== undefined ? 'hosts' : o.host !== undefined ? 'host' : 'ZK_HOSTS', hosts);
  const path = o.path ?? (defaults.root === '/' ? `/${name}` : `${defaults.root}/${name}`);
  checkZkPath('path', path);
  const modeText = (o.mode ?? 'hybrid').toLowerCase();
  if (!(MODES as readonly string[]).includes(modeText)) throw new OptionError(`mode: expected one of ${MODES.join(', ')}, got "${o.mode}"`);
  const auth = o.auth ?? defaults.auth;
  if (o.auth !== undefined) checkAuth('auth', o.auth);
  const umaskText = o.umask ?? '022';
  if (!/^[0-7]{1,4}$/.test(umaskText)) throw new OptionError(`umask: expected octal digits such as 022, got "${umaskText}"`);
  return {
    spec: {
      hosts,
      path,
      mode: modeText as Mode,
      uid: o.uid !== undefined ? id('uid', o.uid) : 0,
      gid: o.gid !== undefined ? id('gid', o.gid) : 0,
      umask: parseInt(umaskText, 8),
      ro: o.ro !== undefined ? bool('ro', o.ro) : false,
      ...(o.quota !== undefined ? { quota: size('quota', o.quota) } : {}),
      ...fileLimits(o.maxfilesize, o.jutemaxbuffer),
      ...(o.readahead !== undefined ? { readahead: offOrUpTo('readahead', 'a number of files', o.readahead, MAX_READ_AHEAD) } : {}),
      ...(o.busypoll !== undefined ? { busypoll: offOrUpTo('busypoll', 'microseconds', o.busypoll, MAX_BUSY_POLL_MICROS) } : {}),
    },
    auth,
  };
}
