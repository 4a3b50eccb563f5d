#!/usr/bin/env node
// swarmvol command line.

import { parseArgs } from 'node:util';
import { MemoryBackend } from '../backends/memory/index.js';
import { NodeFileSystem } from '../fs/nodes.js';
import { MountError } from '../fuse/mount.js';
import { FuseSession } from '../fuse/session.js';
import { log, setLogLevel } from '../util/log.js';
import { parseChoice, parseSeconds, parseSize, UsageError } from './options.js';

const HELP = `Usage: swarmvol <command> [options]

Commands:
  mount [options] MOUNTPOINT   Mount a volume in the foreground until it is
                               unmounted (umount MOUNTPOINT) or signalled
                               (SIGINT, SIGTERM: unmounts cleanly, lazily if busy).
  help                         Show this help.

mount options:
  --backend memory             Where the files live. memory: in this process,
                               gone when it exits (reference and benchmarks).
  --entry-timeout SECONDS      How long the kernel trusts a name (default 1).
  --attr-timeout SECONDS       How long the kernel trusts attributes (default 1).
  --negative-timeout SECONDS   How long the kernel remembers a missing name
                               (default 1; 0 disables).
  --max-write SIZE             Largest read/write request, 4k..1M (default 1M).
  --no-default-permissions     Do not let the kernel check mode bits: only the
                               store's own access control applies, and
                               access(2)/chdir follow the mode bits. The memory
                               backend has none: every local user may read and
                               write everything.
  --no-xattrs                  Answer ENOSYS to extended attribute calls: the
                               kernel then stops asking (saves a round trip
                               per new file).
  --writeback-cache            Let the kernel buffer writes (faster, but other
                               nodes see data later; memory backend only).
  --ro                         Mount read-only.
  --fsname NAME                Source shown in /proc/mounts (default swarmvol).
  --debug                      Log every request outcome at debug level.
  -h, --help                   Show this help.

Examples:
  swarmvol mount --backend memory /mnt/scratch
`;

async function mountCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      backend: { type: 'string' },
      'entry-timeout': { type: 'string' },
      'attr-timeout': { type: 'string' },
      'negative-timeout': { type: 'string' },
      'max-write': { type: 'string' },
      'no-default-permissions': { type: 'boolean' },
      'no-xattrs': { type: 'boolean' },
      'writeback-cache': { type: 'boolean' },
      ro: { type: 'boolean' },
      fsname: { type: 'string' },
      debug: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('mount: expected exactly one MOUNTPOINT');
  const mountpoint = positionals[0]!;
  if (values.debug) setLogLevel('debug');
  parseChoice('backend', values.backend, ['memory'] as const, 'memory');
  const maxWrite = parseSize('max-write', values['max-write'], 1 << 20, 4096, 1 << 20);
  if (maxWrite % 4096 !== 0) throw new UsageError(`--max-write: expected a multiple of 4096, got ${maxWrite}`);
  const timeouts = {
    entryTimeout: parseSeconds('entry-timeout', values['entry-timeout'], 1),
    attrTimeout: parseSeconds('attr-timeout', values['attr-timeout'], 1),
    negativeTimeout: parseSeconds('negative-timeout', values['negative-timeout'], 1),
  };

  const backend = new MemoryBackend();
  const nodes = new NodeFileSystem(backend, { ...timeouts, xattrs: !values['no-xattrs'] });
  const session = new FuseSession(nodes, {
    fsname: values.fsname ?? 'swarmvol',
    maxWrite,
    defaultPermissions: !values['no-default-permissions'],
    writebackCache: values['writeback-cache'] ?? false,
    readOnly: values.ro ?? false,
  });
  nodes.setNotifier(session);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('unmounting', { mountpoint, signal });
    session.unmount().catch((err: unknown) => log.error('unmount failed', { err: String(err) }));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => stop('SIGHUP'));

  await session.mount(mountpoint);
  log.info('mounted', { mountpoint, backend: 'memory', connection: session.connection });
  await session.closed();
  log.info('unmounted', { mountpoint });
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'mount':
        return await mountCommand(rest);
      case undefined:
      case 'help':
      case '-h':
      case '--help':
        process.stdout.write(HELP);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`swarmvol: ${(err as Error).message}\nRun "swarmvol help" for usage.\n`);
      return 2;
    }
    if (err instanceof MountError) {
      process.stderr.write(`swarmvol: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    log.error('fatal', { err: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  },
);
