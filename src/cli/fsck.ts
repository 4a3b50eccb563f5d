// `swarmvol fsck`: checks a ZooKeeper volume's chunk store against its files.

import { parseArgs } from 'node:util';
import { ZkClient } from '../backends/zookeeper/client/client.js';
import { ErrorCode, ZkError } from '../backends/zookeeper/client/protocol.js';
import { type FsckReport, fsckVolume } from '../backends/zookeeper/fsck.js';
import { parseSeconds, UsageError } from './options.js';
import { parseZkConnection } from './zk-connection.js';

export const FSCK_HELP = `Usage: swarmvol fsck --hosts HOST:PORT[,...] --path /ZK/PATH [options]

Checks the chunk store of a ZooKeeper volume (where files above one znode
keep their bytes) against every file of the volume. Safe beside live mounts
on any node: it reads, and with --repair deletes only chunks that no file
uses and no record of the mounts accounts for.

Reports:
  unreferenced chunks   stored, used by no file, in no garbage or pending
                        record: space nothing will free. --repair deletes them.
  damaged files         large files naming chunks that are not stored.
                        Nothing can repair them: restore them from a copy.

Options:
  --hosts HOST:PORT[,...]     ZooKeeper servers.
  --path /ZK/PATH             The volume's subtree.
  --auth digest:USER:PASSWORD, --auth-file FILE
                              As for mount.
  --repair                    Delete unreferenced chunks at least --min-age
                              old, and first do what the mounts' periodic
                              sweep does (garbage whose readers are gone,
                              commits unfinished for 10 minutes).
  --min-age SECONDS           Age (by the servers' clock) below which an
                              unreferenced chunk is kept (default 600).
  --connect-timeout SECONDS   Give up if ZooKeeper does not answer (default 10).

Exit status: 0 nothing found; 1 unreferenced chunks found and all deleted
(or gone meanwhile); 4 unreferenced chunks left (no --repair, younger than
--min-age, or files kept changing while it read them, so it could not be
sure: run it again) or damaged files; 8 the check could not run (ZooKeeper
unreachable, no such volume, no permission); 2 bad options.
`;

export async function fsckCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      hosts: { type: 'string' },
      path: { type: 'string' },
      auth: { type: 'string' },
      'auth-file': { type: 'string' },
      repair: { type: 'boolean' },
      'min-age': { type: 'string' },
      'connect-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(FSCK_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`fsck: unexpected argument "${positionals[0]}" (the volume is --path)`);
  const { hosts, root, auth } = parseZkConnection(values, 'by fsck');
  const minAgeMs = parseSeconds('min-age', values['min-age'], 600) * 1000;
  const repair = values.repair ?? false;
  const connectTimeoutMs = parseSeconds('connect-timeout', values['connect-timeout'], 10, 86400) * 1000;
  const zk = new ZkClient({ connectString: hosts, sessionTimeoutMs: 30_000, connectTimeoutMs, operationTimeoutMs: 30_000, auth });
  const fail = (message: string) => {
    process.stderr.write(`swarmvol fsck: ${message}\n`);
    return 8;
  };
  try {
    try {
      await zk.connect();
    } catch (err) {
      return fail(`cannot reach ZooKeeper at ${hosts}: ${(err as Error).message}`);
    }
    if (!(await zk.exists(root))) return fail(`no volume at ${root}: the znode does not exist`);
    const report = await fsckVolume(zk, root, { repair, minAgeMs });
    process.stdout.write(describe(root, report, repair, minAgeMs));
    return exitStatus(report, repair);
  } catch (err) {
    if (err instanceof ZkError && err.code === ErrorCode.NOAUTH) return fail(`not allowed to read ${err.path ?? root}: give the volume's --auth (or --auth-file)`);
    return fail((err as Error).message);
  } finally {
    zk.close();
  }
}

function describe(root: string, r: FsckReport, repair: boolean, minAgeMs: number): string {
  const bytes = r.unreferenced.reduce((n, c) => n + c.bytes, 0);
  const lines = [
    `${root}: ${r.znodes} znodes read, ${r.largeFiles} large files`,
    `chunks: ${r.chunks} stored, ${r.used} used by files, ${r.recorded} recorded as garbage or by a commit under way, ${r.unreferenced.length} unreferenced (${bytes} bytes)`,
  ];
  for (const c of r.unreferenced.slice(0, 20)) lines.push(`  unreferenced ${c.name}: ${c.bytes} bytes, ${Math.round(c.ageMs / 1000)} s old`);
  if (r.unreferenced.length > 20) lines.push(`  ... and ${r.unreferenced.length - 20} more`);
  if (!r.settled && r.unreferenced.length > 0) {
    lines.push(`${repair ? 'repair: deleted nothing: ' : ''}files kept changing while the check read them, so some of these may be in use; run it again`);
  } else if (repair) {
    lines.push(`repair: deleted ${r.deleted} unreferenced chunks${r.young > 0 ? `; kept ${r.young} younger than ${minAgeMs / 1000} s (run again later)` : ''}`);
  } else if (r.unreferenced.length > 0) lines.push('run again with --repair to delete them');
  for (const d of r.damaged) lines.push(`damaged: ${d.path} names ${d.missing.length} chunks that are not stored (${d.missing.slice(0, 3).join(', ')}${d.missing.length > 3 ? ', ...' : ''}); restore it from a copy`);
  return `${lines.join('\n')}\n`;
}

function exitStatus(r: FsckReport, repair: boolean): number {
  if (r.damaged.length > 0) return 4;
  if (r.unreferenced.length === 0) return 0;
  return repair && r.settled && r.young === 0 ? 1 : 4;
}
