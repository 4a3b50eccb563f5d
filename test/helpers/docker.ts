// A real dockerd for the plugin tests: its own data root, exec root and
// socket (so it never touches a daemon already running), no bridge and no
// iptables (containers run with --network none), and a busybox image imported
// from Debian's busybox-static (nothing is pulled).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { runCommand } from '../../src/fuse/mount.js';
import { waitFor } from './mount.js';

export const TEST_IMAGE = 'swarmvol-test:busybox';

export interface Dockerd {
  readonly host: string;
  /** Runs the docker CLI against this daemon. */
  docker(args: string[], timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }>;
  log(): string;
  stop(): Promise<void>;
  /** Stops (SIGTERM, as systemctl restart does) and starts again on the same state. */
  restart(): Promise<void>;
}

export async function startDockerd(): Promise<Dockerd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmvol-dockerd-'));
  const sock = path.join(dir, 'docker.sock');
  const host = `unix://${sock}`;
  let child: ChildProcess | undefined;
  let out = '';
  const start = async () => {
    child = spawn(
      'dockerd',
      ['--data-root', path.join(dir, 'root'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'pid'), '-H', host, '--bridge=none', '--iptables=false', '--ip6tables=false'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(async () => (await runCommand('docker', ['-H', host, 'version'])).code === 0, 60_000, 'dockerd').catch((err: Error) => {
      throw new Error(`${err.message}\n${out.split('\n').slice(-20).join('\n')}`);
    });
  };
  const d: Dockerd = {
    host,
    docker: async (args, timeoutMs = 120_000) => {
      const p = spawn('docker', ['-H', host, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout!.on('data', (x: Buffer) => (stdout += x.toString()));
      p.stderr!.on('data', (x: Buffer) => (stderr += x.toString()));
      const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      const code = await new Promise<number | null>((r) => p.on('exit', r));
      clearTimeout(timer);
      return { code, stdout, stderr };
    },
    log: () => out,
    async stop() {
      if (child && child.exitCode === null) {
        const exited = new Promise((r) => child!.on('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await runCommand('sh', ['-c', `grep " ${dir}" /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r umount -l`]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      if (child && child.exitCode === null) {
        const exited = new Promise((r) => child!.on('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await start();
    },
  };
  await start();
  if ((await d.docker(['image', 'inspect', TEST_IMAGE])).code !== 0) {
    const img = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmvol-img-'));
    fs.mkdirSync(path.join(img, 'bin'));
    fs.copyFileSync('/usr/bin/busybox', path.join(img, 'bin/busybox'));
    for (const c of ['sh', 'cat', 'echo', 'ls', 'mkdir', 'sleep', 'true', 'test', 'sha256sum', 'dd', 'rm', 'mv', 'stat']) fs.symlinkSync('busybox', path.join(img, 'bin', c));
    const r = await runCommand('sh', ['-c', `tar -C ${img} -c . | docker -H ${host} import - ${TEST_IMAGE}`]);
    fs.rmSync(img, { recursive: true, force: true });
    if (r.code !== 0) throw new Error(`docker import failed: ${r.stderr}`);
  }
  return d;
}
