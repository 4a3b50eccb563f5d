// `swarmvol serve`: the Docker volume plugin (legacy socket mode, and what
// the managed plugin runs).

import os from 'node:os';
import { parseArgs } from 'node:util';
import { MountError } from '../fuse/mount.js';
import { Registry } from '../plugin/registry.js';
import { serveApi } from '../plugin/api.js';
import { VolumeDriver } from '../plugin/driver.js';
import { defaultsFromEnv, OptionError } from '../plugin/options.js';
import { StateStore } from '../plugin/state.js';
import { log, setLogLevel } from '../util/log.js';
import { parseSeconds, UsageError } from './options.js';

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
  const socket = values.socket ?? '/run/docker/plugins/swarmvol.sock';
  const state = new StateStore(values['state-dir'] ?? '/var/lib/swarmvol/plugin');
  const connectTimeoutSeconds = parseSeconds('connect-timeout', values['connect-timeout'], 10, 3600);
  // With a plugin-wide ZooKeeper, volume definitions and mount records are cluster-wide.
  let registry: Registry | undefined;
  if (defaults.hosts) {
    const base = process.env.REGISTRY?.trim() || '/swarmvol/plugin';
    const node = process.env.NODE_NAME?.trim() || os.hostname();
    try {
      registry = await Registry.open(defaults.hosts, base, node, defaults.auth);
    } catch (err) {
      throw new MountError(`cannot reach the plugin-wide ZooKeeper ZK_HOSTS=${defaults.hosts}: ${(err as Error).message}`);
    }
    log.info('cluster-wide volumes', { registry: base, node });
  }
  const driver = new VolumeDriver(
    state,
    { mountRoot: values['mount-root'] ?? '/var/lib/swarmvol/mounts', defaults, debug, connectTimeoutSeconds },
    registry,
  );
  // Mounts Docker still holds come back at the same paths before the first answer.
  await driver.restore();
  const server = await serveApi(socket, driver);
  log.info('plugin serving', { socket, stateDir: state.dir, zkHosts: defaults.hosts, root: defaults.root });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('plugin stopping; volume mounts keep serving their containers', { signal });
      server.close();
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
