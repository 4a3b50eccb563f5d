// The options that reach a ZooKeeper volume, shared by the commands that open one.

import fs from 'node:fs';
import { parseConnectString, zkPathProblem } from '../backends/zookeeper/client/client.js';
import { UsageError } from './options.js';

export interface ZkConnection {
  hosts: string;
  /** The volume's subtree. */
  root: string;
  /** Digest credentials (empty without --auth/--auth-file). */
  auth: { scheme: 'digest'; credential: string }[];
}

/** --hosts, --path and --auth/--auth-file, validated; `context` says when --hosts is required. */
export function parseZkConnection(values: Record<string, unknown>, context: string): ZkConnection {
  const str = (k: string) => values[k] as string | undefined;
  const hosts = str('hosts');
  if (!hosts) throw new UsageError(`--hosts: required ${context}, e.g. --hosts 127.0.0.1:2181`);
  try {
    parseConnectString(hosts);
  } catch (err) {
    throw new UsageError(`--hosts: ${(err as Error).message}`);
  }
  const root = str('path') ?? '';
  const problem = root ? zkPathProblem(root) : 'it is required';
  if (problem) throw new UsageError(`--path: expected an absolute ZooKeeper path such as /swarmvol/volumes/v1 (${problem}), got "${root}"`);
  const authFile = str('auth-file');
  if (authFile !== undefined && str('auth') !== undefined) throw new UsageError('--auth and --auth-file: give one of them');
  const authOption = authFile !== undefined ? 'auth-file' : 'auth';
  const auth = authFile !== undefined ? readSecretFile(authFile) : str('auth');
  const authMatch = auth === undefined ? undefined : /^digest:([^:]+):(.+)$/.exec(auth);
  if (auth !== undefined && !authMatch) throw new UsageError(`--${authOption}: expected digest:USER:PASSWORD`);
  return { hosts, root, auth: authMatch ? [{ scheme: 'digest', credential: `${authMatch[1]}:${authMatch[2]}` }] : [] };
}

/** A secret from a file that only its owner may read (like ssh keys). */
function readSecretFile(file: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw new UsageError(`--auth-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`);
  }
  if (st.mode & 0o077) throw new UsageError(`--auth-file: ${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  return fs.readFileSync(file, 'utf8').trim();
}
