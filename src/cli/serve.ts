// `swarmvol serve`: the Docker volume plugin (legacy socket mode, and what
// the managed plugin runs).

import os from 'node:os';
import { parseArgs } from 'node:util';
import { MountError } from '../fuse/mount.js';
import { zkPathProblem } from '../backends/zookeeper/client/client.js';
import { isConnectionLoss } from '../backends/zookeeper/owned.js';
import { Registry } from '../plugin/registry.js';
import { serveApi } from '../plugin/api.js';
import { VolumeDriver } from '../plugin/driver.js';
import { defaultsFromEnv, OptionError } from '../plugin/options.js';
import { StateStore } from '../plugin/state.js';
import { log, setLogLevel } from '../util/log.js';
import { parseSeconds, UsageError } from './options.js';

/** Docker hands the plugin's paths to containers and mount(8): they must be absolute. */
function absolutePath(option: string, value: string): string {
  if (!value.startsWith('/') || value.includes('\0')) throw new UsageError(`--${option}: expected an absolute path, got "${value}"`);
  return value;
}

/** How often a plugin that could not reach its plugin-wide ZooKeeper at start tries again. */
const REGISTRY_RETRY_MS = 5000;

export const SERVE_HELP = `Usage: swarmvol serve [options]

Serves Docker's volume plugin API on a unix socket until SIGINT/SIGTERM.
Volume mounts are separate processes: they keep serving running containers
while the plugin restarts, and a restarted plugin adopts them.

Options:
  --socket PATH            Plugin socket (default /run/docker/plugins/swarmvol.sock;
                           the driver name is the file name without .sock).
  --state-dir DIR          Volumes, mount IDs and secrets (default /var/lib/swarmvol/plugin).
  --mount-root DIR         Where volumes are mounted (default /var/lib/swarmvol/mounts).
  --connect-timeout SECS   A mount fails if ZooKeeper does not answer in this time (default 10).
  --debug                  Log every request (also: DEBUG=1).

Environment (plugin-wide defaults; docker plugin set swarmvol NAME=VALUE):
  ZK_HOSTS   ZooKeeper servers for volumes that name none (host:port,...).
  ROOT       ZooKeeper path under which each volume gets its subtree
             (default /swarmvol/volumes: volume v lives at /swarmvol/volumes/v).
  AUTH       digest:USER:PASSWORD for volumes that give none, and the
             identity that owns the cluster registry's znodes.
  REGISTRY   ZooKeeper path of the cluster-wide volume registry
             (default /swarmvol/plugin; used when ZK_HOSTS is set).
  NODE_NAME  This node's name in mount records (default: the host name).
  DEBUG      1 or true: debug logs.
`;

export async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      socket: { type: 'string' },
      'state-dir': { type: 'string' },
      'mount-root': { type: 'string' },
      'connect-timeout': { type: 'string' },
      debug: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const debug = values.debug === true || /^(1|true|yes|on)$/i.test(process.env.DEBUG ?? '');
  if (debug) setLogLevel('debug');
  let defaults;
  try {
    defaults = defaultsFromEnv(process.env);
  } catch (err) {
    if (err instanceof OptionError) throw new UsageError(err.message);
    throw err;
  }
  // A bug in one request must not take the plugin (and every volume's API) down.
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
  const socket = absolutePath('socket', values.socket ?? '/run/docker/plugins/swarmvol.sock');
  const state = new StateStore(absolutePath('state-dir', values['state-dir'] ?? '/var/lib/swarmvol/plugin'));
  const mountRoot = absolutePath('mount-root', values['mount-root'] ?? '/var/lib/swarmvol/mounts');
  const connectTimeoutSeconds = parseSeconds('connect-timeout', values['connect-timeout'], 10, 3600);
  const base = process.env.REGISTRY?.trim() || '/swarmvol/plugin';
  const problem = zkPathProblem(base);
  if (problem) throw new UsageError(`REGISTRY: expected an absolute ZooKeeper path such as /swarmvol/plugin (${problem}), got "${base}"`);
  const node = process.env.NODE_NAME?.trim() || os.hostname();
  // A znode name: the node's record of use is REGISTRY/mounts/<volume>/<node>.
  if (!/^[A-Za-z0-9_.-]{1,200}$/.test(node) || node === '.' || node === '..') {
    throw new UsageError(`NODE_NAME: expected 1 to 200 letters, digits, _ . - (the host name by default), got "${node}"`);
  }
  const driver = new VolumeDriver(state, { mountRoot, defaults, debug, connectTimeoutSeconds });
  // With a plugin-wide ZooKeeper, volume definitions and mount records are cluster-wide.
  let stopping = false;
  if (defaults.hosts) {
    const hosts = defaults.hosts;
    const open = async () => {
      driver.attachRegistry(await Registry.open(hosts, base, node, defaults.auth));
      log.info('cluster-wide volumes', { registry: base, node });
    };
    try {
      await open();
    } catch (err) {
      if (!isConnectionLoss(err)) throw new MountError(`the plugin-wide ZooKeeper ZK_HOSTS=${hosts} refused the plugin: ${(err as Error).message}`);
      // Unreachable (an outage, or the ensemble starts after this node): volumes this node knows keep
      // working (containers must get them back, and be let go of), the rest waits for ZooKeeper.
      const why = `cannot reach the plugin-wide ZooKeeper ZK_HOSTS=${hosts}: ${(err as Error).message}`;
      driver.registryUnavailable(why);
      log.error(`${why}; serving the volumes known on this node, and trying again every ${REGISTRY_RETRY_MS / 1000} s`);
      void (async () => {
        while (!stopping) {
          await new Promise((r) => setTimeout(r, REGISTRY_RETRY_MS).unref());
          if (stopping) return;
          try {
            await open();
            return;
          } catch (again) {
            if (!isConnectionLoss(again)) log.error('the plugin-wide ZooKeeper refused the plugin', { error: (again as Error).message });
          }
        }
      })();
    }
  }
  // Mounts Docker still holds come back at the same paths; a request for one of
  // those volumes waits for it, and a volume slow to come back holds up no other.
  const restored = driver.restore();
  const server = await serveApi(socket, driver);
  log.info('plugin serving', { socket, stateDir: state.dir, zkHosts: defaults.hosts, root: defaults.root });
  await restored;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      stopping = true;
      log.info('plugin stopping; volume mounts keep serving their containers', { signal });
      server.close();
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
