// Test helpers: real kernel mounts of swarmvol, either as a child process
// running the CLI (the test may then use synchronous fs calls on the mount)
// or inside the test process (to reach the backend; then only asynchronous
// fs calls on the mount, or the event loop that serves it deadlocks).

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemoryBackend, type MemHandle, type MemNode, type MemoryBackendOptions } from '../../src/backends/memory/index.js';
import { NodeFileSystem, type NodeLayerOptions } from '../../src/fs/nodes.js';
import { findMount, runCommand } from '../../src/fuse/mount.js';
import { FuseSession, type SessionOptions } from '../../src/fuse/session.js';

/** Repository root (tests run from dist/test/...). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(REPO, 'bin', 'swarmvol');

export function tempDir(prefix = 'swarmvol-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function isMounted(mountpoint: string): Promise<boolean> {
  const m = await findMount(mountpoint);
  return m?.fstype === 'fuse.swarmvol';
}

export interface CliMount {
  mnt: string;
  child: ChildProcess;
  output(): string;
  /** Unmounts with umount(8) and waits for the process to exit; returns its exit code. */
  stop(): Promise<number | null>;
}

/** Runs `swarmvol mount` as a child process on a fresh directory. */
export async function mountCli(args: string[] = [], mnt = tempDir()): Promise<CliMount> {
  const child = spawn(CLI, ['mount', '--backend', 'memory', ...args, mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let dead = false;
  void exited.then(() => (dead = true));
  // The CLI logs "mounted" once the kernel's INIT was answered.
  await waitFor(() => dead || / info mounted /.test(out), 10_000, `mount at ${mnt}`);
  if (dead) throw new Error(`swarmvol mount exited early:\n${out}`);
  return {
    mnt,
    child,
    output: () => out,
    async stop() {
      if (await findMount(mnt)) {
        const r = await runCommand('umount', [mnt]);
        if (r.code !== 0) await runCommand('umount', ['-l', mnt]);
      }
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise<null>((r) => (timer = setTimeout(() => r(null), 10_000)))]);
      clearTimeout(timer);
      if (!dead) child.kill('SIGKILL');
      fs.rmSync(mnt, { recursive: true, force: true });
      return code;
    },
  };
}

export interface SharedMount {
  /** The mount (available inside tests, after the suite's before hook). */
  readonly m: CliMount;
  /** A new empty directory on the mount, for one test. */
  fresh(label: string): string;
}

/**
 * One CLI mount for the enclosing describe(): mounted before its tests,
 * unmounted after them, and the process must exit 0.
 */
export function sharedCliMount(args: string[] = []): SharedMount {
  let mount: CliMount | undefined;
  let n = 0;
  before(async () => {
    mount = await mountCli(args);
  });
  after(async () => {
    const code = await mount?.stop();
    assert.equal(code, 0, mount?.output());
  });
  const shared: SharedMount = {
    get m() {
      if (!mount) throw new Error('the mount is not ready: use it inside tests');
      return mount;
    },
    fresh(label) {
      const d = path.join(shared.m.mnt, `${label}-${++n}`);
      fs.mkdirSync(d);
      return d;
    },
  };
  return shared;
}

export interface InProcessMount {
  mnt: string;
  backend: MemoryBackend;
  nodes: NodeFileSystem<MemNode, MemHandle>;
  session: FuseSession;
  stop(): Promise<void>;
}

/** Mounts the memory backend inside this process. Use only async fs calls on it. */
export async function mountInProcess(
  opts: { node?: Partial<NodeLayerOptions>; session?: Partial<SessionOptions>; memory?: Partial<MemoryBackendOptions> } = {},
): Promise<InProcessMount> {
  const mnt = tempDir();
  const backend = new MemoryBackend(opts.memory);
  const nodes = new NodeFileSystem(backend, opts.node);
  const session = new FuseSession(nodes, opts.session);
  nodes.setNotifier(session);
  await session.mount(mnt);
  return {
    mnt,
    backend,
    nodes,
    session,
    async stop() {
      await session.unmount();
      await fs.promises.rm(mnt, { recursive: true, force: true });
    },
  };
}

/** Runs a shell command; resolves with its exit code and output. */
export function sh(command: string, opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/bash', ['-c', command], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
