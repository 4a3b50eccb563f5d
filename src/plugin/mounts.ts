// One `swarmvol mount` process per mounted volume: a crash of one volume's
// FUSE session cannot take down another, or the plugin. The processes log to
// a file each and outlive the plugin (a plugin restart or upgrade does not cut
// running containers off their volumes); a restarted plugin adopts them by pid.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findMount, unmountFuse } from '../fuse/mount.js';
import { log } from '../util/log.js';
import type { VolumeSpec } from './options.js';

const CLI_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

export class MountFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MountFailed';
  }
}

export interface StartOptions {
  name: string;
  spec: VolumeSpec;
  authFile: string | undefined;
  mountpoint: string;
  logFile: string;
  debug: boolean;
  /** How long ZooKeeper may take to answer before the mount fails. */
  connectTimeoutSeconds: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** How long a volume's mount may take to answer a `stat` of its root before it counts as unresponsive. */
export const PROBE_TIMEOUT_MS = 10_000;

/**
 * `serving`: the volume's mount process `pid` is alive and its mount at
 * `mountpoint` answers; `down`: either is gone (or the mount is dead);
 * `unresponsive`: both are there but a `stat` of the mount gets no answer
 * (the process is stopped or stuck, or waits for ZooKeeper).
 */
export type MountHealth = 'serving' | 'down' | 'unresponsive';

export async function mountHealth(pid: number | undefined, mountpoint: string): Promise<MountHealth> {
  if (pid === undefined || !alive(pid)) return 'down';
  const m = await findMount(mountpoint);
  if (!m || m.fstype !== 'fuse.swarmvol') return 'down';
  return probe(mountpoint);
}

/**
 * A `stat` of the mount, in a child process: a stopped FUSE server leaves the
 * caller waiting for good, which would hold a thread of this process's pool
 * (four of them block its whole file I/O); a child is killed instead.
 */
function probe(mountpoint: string): Promise<MountHealth> {
  return new Promise((resolve) => {
    execFile('stat', ['-c', '%i', '--', mountpoint], { timeout: PROBE_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err) => {
      if (!err) resolve('serving');
      else resolve((err as { killed?: boolean }).killed ? 'unresponsive' : 'down');
    });
  });
}

/**
 * Starts `swarmvol mount` for a volume and resolves with its pid once the FUSE
 * mount is live and ZooKeeper has answered; rejects with the mount's own error
 * message otherwise (nothing stays mounted then).
 */
export async function startMount(o: StartOptions): Promise<number> {
  fs.mkdirSync(o.mountpoint, { recursive: true });
  // Whatever is mounted there is no volume's: a dead mount left by a crashed
  // process, or one whose pid the plugin never saved (it died while the
  // mount came up; no container got it). Ours would stack on top of it.
  if (await findMount(o.mountpoint)) await unmountFuse(o.mountpoint).catch(() => undefined);
  const s = o.spec;
  const args = [CLI_MAIN, 'mount', '--backend', 'zookeeper', '--hosts', s.hosts, '--path', s.path, '--mode', s.mode];
  args.push('--uid', String(s.uid), '--gid', String(s.gid), '--umask', s.umask.toString(8).padStart(3, '0'));
  args.push('--connect-timeout', String(o.connectTimeoutSeconds), '--fsname', `swarmvol:${o.name}`);
  if (s.ro) args.push('--ro');
  else if (s.quota !== undefined) args.push('--quota', String(s.quota));
  if (s.maxfilesize !== undefined) args.push('--maxfilesize', String(s.maxfilesize));
  if (s.jutemaxbuffer !== undefined) args.push('--jute-maxbuffer', String(s.jutemaxbuffer));
  if (s.readahead !== undefined) args.push('--read-ahead', String(s.readahead));
  if (s.busypoll !== undefined) args.push('--busy-poll', String(s.busypoll));
  if (o.authFile) args.push('--auth-file', o.authFile);
  if (o.debug) args.push('--debug');
  args.push(o.mountpoint);
  fs.mkdirSync(path.dirname(o.logFile), { recursive: true, mode: 0o700 });
  const start = fs.statSync(o.logFile, { throwIfNoEntry: false })?.size ?? 0;
  const out = fs.openSync(o.logFile, 'a', 0o600);
  const child = spawn(process.execPath, args, { stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new MountFailed('could not start the mount process');
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  const readNew = () => {
    try {
      const buf = fs.readFileSync(o.logFile);
      return buf.subarray(start).toString('utf8');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + (o.connectTimeoutSeconds + 20) * 1000;
  for (;;) {
    const text = readNew();
    if (/ info mounted /.test(text)) return pid;
    if (exited !== undefined) {
      // The mount's own words: "swarmvol: cannot reach ZooKeeper at ... within ... ms".
      const reason = text.split('\n').filter((l) => l.startsWith('swarmvol: ') || / (error|warn) /.test(l)).pop() ?? `exited with status ${exited}`;
      throw new MountFailed(reason.replace(/^swarmvol: /, ''));
    }
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new MountFailed(`the mount did not come up within ${o.connectTimeoutSeconds + 20} s`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Stops a volume's mount process (it unmounts on SIGTERM) and makes sure nothing stays mounted. */
export async function stopMount(pid: number | undefined, mountpoint: string): Promise<void> {
  if (pid !== undefined && alive(pid)) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (alive(pid)) {
      log.warn('mount process did not stop within 10 s; killed', { pid, mountpoint });
      process.kill(pid, 'SIGKILL');
    }
  }
  if (await findMount(mountpoint)) await unmountFuse(mountpoint);
}
