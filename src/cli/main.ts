#!/usr/bin/env node
// swarmvol command line.

import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { MemoryBackend } from '../backends/memory/index.js';
import { ZkClient } from '../backends/zookeeper/client/client.js';
import { CREATOR_ALL_ACL, OPEN_ACL_UNSAFE } from '../backends/zookeeper/client/protocol.js';
import { DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_REQUEST, largestFileSize, MAX_JUTE_MAXBUFFER, MODES, ZooKeeperBackend } from '../backends/zookeeper/index.js';
import { DEFAULT_READ_AHEAD, MAX_READ_AHEAD } from '../backends/zookeeper/read-ahead.js';
import type { Backend, KernelNode } from '../fs/backend.js';
import { NodeFileSystem } from '../fs/nodes.js';
import { KERNEL_MINOR, MIN_KERNEL_MINOR } from '../fuse/kernel.js';
import { DEFAULT_BUSY_POLL_MICROS, MAX_BUSY_POLL_MICROS } from '../fuse/channel.js';
import { MountError } from '../fuse/mount.js';
import { FuseSession } from '../fuse/session.js';
import { IdleGc } from '../util/idle-gc.js';
import { log, setLogLevel } from '../util/log.js';
import { parseChoice, parseCount, parseSeconds, parseSize, UsageError } from './options.js';
import { fsckCommand } from './fsck.js';
import { serveCommand } from './serve.js';
import { parseZkConnection } from './zk-connection.js';

const HELP = `Usage: swarmvol <command> [options]

Commands:
  mount [options] MOUNTPOINT   Mount a volume in the foreground until it is
                               unmounted (umount MOUNTPOINT) or signalled
                               (SIGINT, SIGTERM, SIGHUP: unmounts cleanly,
                               lazily if busy).
  serve [options]              Serve the Docker volume plugin API (swarmvol
                               serve --help).
  fsck [options]               Check a ZooKeeper volume's chunk store against
                               its files; --repair frees what nothing uses
                               (swarmvol fsck --help).
  help                         Show this help.

mount options:
  --backend memory|zookeeper   Where the files live. memory: in this process,
                               gone when it exits (reference and benchmarks).
                               zookeeper: a ZooKeeper subtree, the same on
                               every node.
  --hosts HOST:PORT[,...]      ZooKeeper servers (zookeeper backend; the port is
                               mandatory).
  --path /ZK/PATH              The volume's subtree in ZooKeeper (created if
                               missing, unless --ro).
  --mode hybrid|dir|file       How znodes map to files (default hybrid, a real
                               filesystem). dir and file are zookeeper-fuse's
                               layouts: dir shows every znode as a directory
                               with its data in _zoo_data_; file shows znodes
                               without children as files. Neither stores
                               modes, owners, times or symlinks.
  --auth digest:USER:PASSWORD  ZooKeeper digest authentication. Other users can
                               read a command line: prefer --auth-file.
  --auth-file FILE             Read digest:USER:PASSWORD from FILE (which must
                               not be readable by group or others).
                               With auth, new znodes get an ACL for that
                               identity only (ZooKeeper's CREATOR_ALL).
  --open-acl                   Create znodes readable and writable by every
                               ZooKeeper client even with auth (world:anyone).
  --uid N, --gid N             Owner shown for entries (default 0).
  --umask OCTAL                Permission bits removed from 0777/0666 (default 022).
  --quota SIZE                 Limit the volume to SIZE bytes (suffixes k, M, G,
                               T), for every node: stored in ZooKeeper's quota
                               tree, which counts usage exactly. A write past it
                               fails with EDQUOT; df shows the quota and usage.
                               Without it, a quota set before applies.
  --maxfilesize SIZE           Largest file (default 64M; suffixes k, M, G, T).
                               Files above one znode (about 1 MB) are stored
                               in chunks (hybrid mode). A write across SIZE
                               stores what fits; one at or past it, or a
                               truncate past it, fails with EFBIG.
  --jute-maxbuffer SIZE        The ZooKeeper servers' jute.maxbuffer, the
                               largest request they accept (default 1048575,
                               ZooKeeper's own default): sets how much one
                               znode holds and the chunk size of large files
                               (64k to 32M).
  --read-ahead FILES           Once three files of a directory are read cold
                               in a row, fetch up to FILES of its other files
                               ahead, 64 at a time in multiReads of 32
                               (default 1024); once two of its subdirectories
                               are listed in a row, list the others ahead.
                               0: neither. Costs requests for what is then
                               not read.
  --session-timeout SECONDS    ZooKeeper session timeout (default 10).
  --connect-timeout SECONDS    Give up mounting if ZooKeeper does not answer
                               within this time (default 10).
  --op-timeout SECONDS         While ZooKeeper is unreachable, an operation
                               waits this long for it to come back, then
                               fails with EIO (default 30).
  --entry-timeout SECONDS      How long the kernel trusts a name (default 1;
                               memory backend: the zookeeper backend lets the
                               kernel cache for an hour, its watch invalidates).
  --attr-timeout SECONDS       How long the kernel trusts the attributes of a
                               getattr or setattr reply (default 1, zookeeper
                               3600: its watch invalidates; zookeeper lookups
                               always carry an hour).
  --negative-timeout SECONDS   How long the kernel remembers a missing name
                               (default 1, zookeeper 3600; 0 disables).
  --max-write SIZE             Largest read/write request, 4k..1M (default 1M).
  --busy-poll MICROSECONDS     After answering a request, keep reading for the
                               next one before sleeping: about three times the
                               client's turnaround, at most this long (0..1000;
                               default 200 when the process may run on two or
                               more CPUs, else 0). Saves waking the daemon for
                               each request of a busy client; costs at most
                               that much CPU time per request.
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
  --max-protocol-minor N       Agree to at most FUSE protocol 7.N with the
                               kernel (31..45, default 45): behaves as with an
                               older kernel (for tests, or to avoid a newer
                               feature).
  --debug                      Log every request outcome at debug level.
  -h, --help                   Show this help.

Examples:
  swarmvol mount --backend memory /mnt/scratch
  swarmvol mount --backend zookeeper --hosts 127.0.0.1:2181 --path /configs /mnt/configs
`;

async function mountCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      backend: { type: 'string' },
      hosts: { type: 'string' },
      path: { type: 'string' },
      auth: { type: 'string' },
      'auth-file': { type: 'string' },
      'open-acl': { type: 'boolean' },
      'max-protocol-minor': { type: 'string' },
      mode: { type: 'string' },
      uid: { type: 'string' },
      gid: { type: 'string' },
      umask: { type: 'string' },
      'session-timeout': { type: 'string' },
      'connect-timeout': { type: 'string' },
      'op-timeout': { type: 'string' },
      quota: { type: 'string' },
      maxfilesize: { type: 'string' },
      'jute-maxbuffer': { type: 'string' },
      'read-ahead': { type: 'string' },
      'entry-timeout': { type: 'string' },
      'attr-timeout': { type: 'string' },
      'negative-timeout': { type: 'string' },
      'max-write': { type: 'string' },
      'busy-poll': { type: 'string' },
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
  const backendName = parseChoice('backend', values.backend, ['memory', 'zookeeper'] as const, 'memory');
  const maxWrite = parseSize('max-write', values['max-write'], 1 << 20, 4096, 1 << 20);
  if (maxWrite % 4096 !== 0) throw new UsageError(`--max-write: expected a multiple of 4096, got ${maxWrite}`);
  // On one CPU a poll would only keep the client from running.
  const pollMicros = parseCount('busy-poll', values['busy-poll'], availableParallelism() > 1 ? DEFAULT_BUSY_POLL_MICROS : 0, 0, MAX_BUSY_POLL_MICROS);
  const timeouts = {
    entryTimeout: parseSeconds('entry-timeout', values['entry-timeout'], 1),
    // ZooKeeper's watch tells the kernel when attributes change or a missing
    // name appears: it may trust attributes and remember misses long.
    attrTimeout: parseSeconds('attr-timeout', values['attr-timeout'], backendName === 'zookeeper' ? 3600 : 1),
    negativeTimeout: parseSeconds('negative-timeout', values['negative-timeout'], backendName === 'zookeeper' ? 3600 : 1),
  };

  if (values['writeback-cache'] && backendName !== 'memory') {
    throw new UsageError('--writeback-cache: only with --backend memory (the zookeeper backend commits each file at close, and the kernel would hold writes back past it)');
  }
  if (backendName === 'memory') {
    const zkOnly = (
      ['hosts', 'path', 'mode', 'auth', 'auth-file', 'open-acl', 'uid', 'gid', 'umask', 'quota', 'maxfilesize', 'jute-maxbuffer', 'read-ahead', 'session-timeout', 'connect-timeout', 'op-timeout'] as const
    ).find((k) => values[k] !== undefined);
    if (zkOnly) throw new UsageError(`--${zkOnly}: only with --backend zookeeper`);
  }
  const maxMinor = parseCount('max-protocol-minor', values['max-protocol-minor'], KERNEL_MINOR, MIN_KERNEL_MINOR, KERNEL_MINOR);
  const fsname = parseFsname(values.fsname);
  const backend = backendName === 'memory' ? new MemoryBackend() : await openZooKeeper(values);
  const nodes = new NodeFileSystem<KernelNode, unknown>(backend as unknown as Backend<KernelNode, unknown>, {
    ...timeouts,
    xattrs: !values['no-xattrs'],
    // ZooKeeper's watch misses what changes while a connection is down: then every name the kernel keeps is dropped.
    recordMisses: backendName === 'zookeeper',
  });
  const session = new FuseSession(nodes, {
    fsname,
    maxWrite,
    defaultPermissions: !values['no-default-permissions'],
    writebackCache: values['writeback-cache'] ?? false,
    readOnly: values.ro ?? false,
    maxMinor,
    pollMicros,
  });
  nodes.setNotifier(session);
  const idleGc = process.env.SWARMVOL_NO_IDLE_GC ? undefined : IdleGc.create();
  session.onRequest = idleGc?.request;

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
  log.info('mounted', { mountpoint, backend: backendName, connection: session.connection, protocol: `7.${session.info?.minor ?? '?'}` });
  await session.closed();
  idleGc?.stop();
  log.info('unmounted', { mountpoint });
  return 0;
}

/** What /proc/mounts shows as the mount's source: mount(8) would read a leading - as an option, and , or whitespace would break the mount table. */
function parseFsname(value: string | undefined): string {
  if (value === undefined) return 'swarmvol';
  if (!/^[A-Za-z0-9_.:@+=][A-Za-z0-9_.:@+=/-]{0,254}$/.test(value)) {
    throw new UsageError(`--fsname: expected 1 to 255 letters, digits and _ . : @ + = / - (not starting with - or /), got "${value}"`);
  }
  return value;
}

/** Connects to ZooKeeper (failing fast when it cannot be reached) and opens the volume's subtree. */
async function openZooKeeper(values: Record<string, string | boolean | undefined>): Promise<ZooKeeperBackend> {
  const str = (k: string) => values[k] as string | undefined;
  const { hosts, root, auth } = parseZkConnection(values, 'with --backend zookeeper');
  const umaskText = str('umask') ?? '022';
  if (!/^[0-7]{1,4}$/.test(umaskText)) throw new UsageError(`--umask: expected octal digits such as 022, got "${umaskText}"`);
  const id = (k: string) => {
    const v = str(k) ?? '0';
    if (!/^\d{1,10}$/.test(v) || Number(v) > 0xfffffffe) throw new UsageError(`--${k}: expected a numeric id from 0 to 4294967294, got "${v}"`);
    return Number(v);
  };
  const uid = id('uid');
  const gid = id('gid');
  const mode = parseChoice('mode', str('mode'), MODES, 'hybrid');
  const quota = str('quota') === undefined ? undefined : parseSize('quota', str('quota'), 0, 1);
  if (quota !== undefined && values.ro) throw new UsageError('--quota: a read-only mount cannot set the quota');
  const maxRequest = parseSize('jute-maxbuffer', str('jute-maxbuffer'), DEFAULT_MAX_REQUEST, 64 * 1024, MAX_JUTE_MAXBUFFER);
  const maxFileSize = parseSize('maxfilesize', str('maxfilesize'), DEFAULT_MAX_FILE_SIZE, 1, largestFileSize(maxRequest));
  const readAhead = parseCount('read-ahead', str('read-ahead'), DEFAULT_READ_AHEAD, 0, MAX_READ_AHEAD);
  const zk = new ZkClient({
    connectString: hosts,
    sessionTimeoutMs: parseSeconds('session-timeout', str('session-timeout'), 10, 86400) * 1000,
    connectTimeoutMs: parseSeconds('connect-timeout', str('connect-timeout'), 10, 86400) * 1000,
    operationTimeoutMs: parseSeconds('op-timeout', str('op-timeout'), 30, 86400) * 1000,
    auth,
  });
  try {
    await zk.connect();
    // Everything happens below the chroot, which ZooKeeper does not make: say so, not NONODE on the volume.
    if (zk.chrootPath && !(await zk.exists('/'))) throw new MountError(`--hosts: the chroot ${zk.chrootPath} does not exist in ZooKeeper; create it, or give the whole path with --path instead`);
    const acl = auth.length > 0 && !values['open-acl'] ? CREATOR_ALL_ACL : OPEN_ACL_UNSAFE;
    return await ZooKeeperBackend.open(
      zk,
      { root, uid, gid, umask: parseInt(umaskText, 8), cacheTimeout: 3600, acl, maxRequest, maxFileSize, mode, quota, readAhead },
      !values.ro,
    );
  } catch (err) {
    zk.close();
    throw new MountError(err instanceof Error ? err.message : String(err));
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'mount':
        return await mountCommand(rest);
      case 'serve':
        return await serveCommand(rest);
      case 'fsck':
        return await fsckCommand(rest);
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
