// Mounting without libfuse: open /dev/fuse, hand the fd to mount(8) (`-i`
// skips the mount.fuse helper), and keep a watchdog that lazily unmounts if
// this process dies without doing so, so no "Transport endpoint is not
// connected" mount is left behind.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

export interface MountOptions {
  /** Shown as the source in /proc/mounts. */
  fsname: string;
  /** Filesystem type becomes `fuse.<subtype>`. */
  subtype: string;
  allowOther: boolean;
  defaultPermissions: boolean;
  readOnly: boolean;
  maxRead: number;
}

export class MountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MountError';
  }
}

interface CommandResult {
  code: number | null;
  stderr: string;
}

export function runCommand(cmd: string, args: string[], extraFds: number[] = []): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe', ...extraFds] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => resolve({ code: -1, stderr: err.message }));
    child.on('close', (code) => resolve({ code, stderr: stderr.trim() }));
  });
}

/** The octal escapes /proc/self/mountinfo uses for space, tab, newline and backslash. */
function escapeMountField(s: string): string {
  return s.replace(/[ \t\n\\]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0'));
}

/** `\040`-style escapes used by /proc/self/mountinfo. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export interface MountInfo {
  /** `major:minor`; for FUSE the minor is the connection id under /sys/fs/fuse/connections. */
  device: string;
  mountpoint: string;
  fstype: string;
  source: string;
}

export async function readMountInfo(): Promise<MountInfo[]> {
  return parseMountInfo(await fsp.readFile('/proc/self/mountinfo', 'utf8'));
}

function parseMountInfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const fields = left!.split(' ');
    const tail = (right ?? '').split(' ');
    mounts.push({
      device: fields[2]!,
      mountpoint: unescapeMountField(fields[4]!),
      fstype: tail[0] ?? '',
      source: unescapeMountField(tail[1] ?? ''),
    });
  }
  return mounts;
}

/** The topmost mount at `mountpoint`, if any. */
export async function findMount(mountpoint: string): Promise<MountInfo | undefined> {
  const target = path.resolve(mountpoint);
  const all = await readMountInfo();
  for (let i = all.length - 1; i >= 0; i--) if (all[i]!.mountpoint === target) return all[i];
  return undefined;
}

/**
 * Prepares a mountpoint: it must be a directory. A dead FUSE mount left there by
 * a crashed process (ENOTCONN) is lazily unmounted first.
 */
async function prepareMountpoint(mountpoint: string): Promise<void> {
  try {
    const st = await fsp.stat(mountpoint);
    if (!st.isDirectory()) throw new MountError(`mountpoint ${mountpoint} is not a directory`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN' || code === 'ECONNABORTED') {
      const r = await runCommand('umount', ['-l', mountpoint]);
      if (r.code !== 0) throw new MountError(`cannot clear the dead mount at ${mountpoint}: ${r.stderr}`);
      return prepareMountpoint(mountpoint);
    }
    if (code === 'ENOENT') throw new MountError(`mountpoint ${mountpoint} does not exist`);
    throw err;
  }
}

export interface MountedFuse {
  fd: number;
  mountpoint: string;
  /** Connection id (minor of the mount's device). */
  connection: number;
  watchdog: Watchdog;
}

export async function mountFuse(mountpoint: string, opts: MountOptions): Promise<MountedFuse> {
  const target = path.resolve(mountpoint);
  await prepareMountpoint(target);
  let fd: number;
  try {
    fd = fs.openSync('/dev/fuse', 'r+');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new MountError(
      e.code === 'ENOENT'
        ? 'no /dev/fuse: load the fuse module (modprobe fuse) or, in a container, pass --device /dev/fuse'
        : `cannot open /dev/fuse: ${e.message} (swarmvol must run as root, with CAP_SYS_ADMIN in a container)`,
    );
  }
  const options = [
    'fd=3',
    'rootmode=40000',
    `user_id=${process.getuid?.() ?? 0}`,
    `group_id=${process.getgid?.() ?? 0}`,
    `max_read=${opts.maxRead}`,
    'nosuid',
    'nodev',
  ];
  if (opts.allowOther) options.push('allow_other');
  if (opts.defaultPermissions) options.push('default_permissions');
  if (opts.readOnly) options.push('ro');
  const r = await runCommand('mount', ['-i', '-t', `fuse.${opts.subtype}`, '-o', options.join(','), opts.fsname, target], [fd]);
  if (r.code !== 0) {
    fs.closeSync(fd);
    throw new MountError(`mount of ${target} failed: ${r.stderr || `mount exited with ${r.code}`}`);
  }
  const info = await findMount(target);
  if (!info || info.fstype !== `fuse.${opts.subtype}`) {
    fs.closeSync(fd);
    throw new MountError(`mount of ${target} did not appear in /proc/self/mountinfo`);
  }
  const connection = Number(info.device.split(':')[1]);
  return { fd, mountpoint: target, connection, watchdog: startWatchdog(target, info.device) };
}

/**
 * Unmounts; a busy mount is detached lazily (`umount -l`) so that the process
 * can still stop. Resolves once the umount command is done; the kernel then
 * ends the connection when the last user lets go.
 */
export async function unmountFuse(mountpoint: string): Promise<void> {
  const r = await runCommand('umount', [mountpoint]);
  if (r.code === 0) return;
  const lazy = await runCommand('umount', ['-l', mountpoint]);
  if (lazy.code !== 0 && !/not mounted/.test(lazy.stderr)) {
    throw new MountError(`cannot unmount ${mountpoint}: ${lazy.stderr}`);
  }
}

const FUSECTL = '/sys/fs/fuse/connections';

/**
 * Aborts a connection through fusectl: every waiting request fails at once.
 * Synchronous, without the libuv threadpool: its threads may all be blocked
 * writing notifications, waiting for directory locks that requests of this
 * very connection hold until they are answered, and only the abort ends
 * those requests. (A sysfs write takes none of those locks.)
 */
export function abortConnection(connection: number): boolean {
  // The fusectl filesystem is not mounted everywhere (containers, minimal hosts).
  if (!parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).some((m) => m.fstype === 'fusectl')) {
    spawnSync('mount', ['-t', 'fusectl', 'fusectl', FUSECTL], { stdio: 'ignore', timeout: 5000 });
  }
  try {
    fs.writeFileSync(`${FUSECTL}/${connection}/abort`, '1');
    return true;
  } catch {
    return false;
  }
}

export interface Watchdog {
  /** Tells the watchdog the mount is gone by our own hand; it exits quietly. */
  disarm(): void;
}

/**
 * A shell that waits for EOF on a pipe from this process. EOF without a
 * "disarm" line means this process died: it then lazily unmounts, but only if
 * the mount at that path is still ours (same device), never a later one.
 */
function startWatchdog(mountpoint: string, device: string): Watchdog {
  const script = [
    'read -r line',
    '[ "$line" = disarm ] && exit 0',
    'DEV="$2" MP="$3" awk \'$3 == ENVIRON["DEV"] && $5 == ENVIRON["MP"] { found = 1 } END { exit !found }\' /proc/self/mountinfo && umount -l "$1"',
  ].join('\n');
  let child: ChildProcess | undefined;
  try {
    child = spawn('/bin/sh', ['-c', script, 'swarmvol-watchdog', mountpoint, device, escapeMountField(mountpoint)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    child.on('error', () => undefined);
    child.stdin!.on('error', () => undefined);
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
  } catch {
    child = undefined;
  }
  return {
    disarm() {
      if (!child?.stdin?.writable) return;
      child.stdin.end('disarm\n');
    },
  };
}
