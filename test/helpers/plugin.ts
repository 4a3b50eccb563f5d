// `swarmvol serve` as a child process for the plugin and fault tests.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, waitFor } from './mount.js';

export class Plugin {
  private child: ChildProcess | undefined;
  private out = '';
  constructor(
    readonly stateDir: string,
    readonly mountRoot: string,
    private readonly env: Record<string, string>,
    readonly socket: string,
  ) {}

  /** Starts the plugin; output() then holds this run's log only. */
  async start(): Promise<void> {
    this.out = '';
    this.child = spawn(CLI, ['serve', '--socket', this.socket, '--state-dir', this.stateDir, '--mount-root', this.mountRoot, '--connect-timeout', '3'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.env },
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    await waitFor(() => / info plugin serving /.test(this.out) || this.child?.exitCode !== null, 30_000, 'plugin');
    assert.match(this.out, / info plugin serving /);
  }

  output(): string {
    return this.out;
  }

  async kill9(): Promise<void> {
    const c = this.child!;
    const exited = new Promise((r) => c.on('exit', r));
    c.kill('SIGKILL');
    await exited;
    this.out = '';
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.on('exit', r));
    c.kill('SIGTERM');
    await exited;
  }
}

