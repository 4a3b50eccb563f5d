// Mount lifecycle: clean unmount on signals, no dead mount left behind when the
// process dies, external unmount ends the process, node ids are forgotten.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { abortConnection, findMount } from '../../src/fuse/mount.js';
import { isMounted, mountCli, mountInProcess, sh, waitFor } from '../helpers/mount.js';

function exitOf(child: import('node:child_process').ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

/**
 * A daemon's source: a memory mount whose LOOKUP of "hang" is never answered,
 * so the kernel holds the root directory's lock while it waits. On SIGUSR1 it
 * sends INVAL_ENTRY notifications for the root (their threadpool threads wait
 * for that lock) and exits as after a fatal error, with the connection up.
 * Inline: the test runner runs every file under dist/test.
 */
function hungLookupDaemon(): string {
  const src = (module: string) => JSON.stringify(pathToFileURL(path.resolve('dist/src', module)).href);
  return `
    import { MemoryBackend } from ${src('backends/memory/index.js')};
    import { NodeFileSystem } from ${src('fs/nodes.js')};
    import { FuseSession } from ${src('fuse/session.js')};
    const backend = new MemoryBackend();
    const lookup = backend.lookup.bind(backend);
    backend.lookup = (ctx, dir, name) => (name === 'hang' ? new Promise(() => {}) : lookup(ctx, dir, name));
    const nodes = new NodeFileSystem(backend);
    const session = new FuseSession(nodes);
    nodes.setNotifier(session);
    await session.mount(process.argv[1]);
    process.on('SIGUSR1', () => {
      for (let i = 0; i < 8; i++) void session.invalEntry(1, 'name' + i);
      setTimeout(() => process.exit(3), 300);
    });
    process.stdout.write('mounted\\n');
  `;
}

describe('mount lifecycle', () => {
  it('SIGTERM unmounts and exits 0', async () => {
    const m = await mountCli();
    fs.writeFileSync(path.join(m.mnt, 'f'), 'x');
    m.child.kill('SIGTERM');
    assert.equal(await exitOf(m.child), 0, m.output());
    assert.equal(await isMounted(m.mnt), false);
    await m.stop();
  });

  it('SIGINT while a process keeps the mount busy detaches it lazily and exits', async () => {
    const m = await mountCli();
    const busy = sh(`cd ${m.mnt} && sleep 3`);
    await new Promise((r) => setTimeout(r, 300));
    m.child.kill('SIGINT');
    assert.equal(await exitOf(m.child), 0, m.output());
    assert.equal(await isMounted(m.mnt), false);
    await busy;
    await m.stop();
  });

  it('an external umount ends the process with status 0', async () => {
    const m = await mountCli();
    const r = await sh(`umount ${m.mnt}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await exitOf(m.child), 0, m.output());
    await m.stop();
  });

  it('SIGKILL leaves no "Transport endpoint is not connected" mount: the watchdog unmounts', async () => {
    const m = await mountCli();
    fs.writeFileSync(path.join(m.mnt, 'f'), 'x');
    m.child.kill('SIGKILL');
    await exitOf(m.child);
    await waitFor(async () => !(await isMounted(m.mnt)), 5000, 'the watchdog to unmount');
    assert.ok(fs.statSync(m.mnt).isDirectory(), 'mountpoint is a plain directory again');
    await m.stop();
  });

  it('a process that exits with requests waiting and notifications stuck behind them ends, and so do the requests', async () => {
    const mnt = fs.mkdtempSync('/tmp/swarmvol-hung-');
    const daemon = spawn(process.execPath, ['--input-type=module', '-e', hungLookupDaemon(), mnt], { stdio: ['ignore', 'pipe', 'inherit'] });
    let lookupDone = false;
    try {
      await new Promise<void>((resolve, reject) => {
        daemon.stdout!.on('data', (d: Buffer) => d.toString().includes('mounted') && resolve());
        daemon.on('exit', (code) => reject(new Error(`the daemon exited with ${code} before mounting`)));
      });
      // The LOOKUP holds the root's lock while it waits; a stat(1) in a child, since it never returns by itself.
      const lookup = sh(`stat ${mnt}/hang`).finally(() => (lookupDone = true));
      await new Promise((r) => setTimeout(r, 300));
      daemon.kill('SIGUSR1');
      // Without the abort at exit, Node waits for the threadpool's threads, which wait for the root's lock: for good.
      const code = await Promise.race([exitOf(daemon), new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
      assert.equal(code, 3, 'the daemon exits with its own status');
      const r = await lookup;
      assert.notEqual(r.code, 0, 'the waiting lookup fails');
    } finally {
      if (daemon.exitCode === null) {
        const info = await findMount(mnt);
        if (info) abortConnection(Number(info.device.split(':')[1]));
        daemon.kill('SIGKILL');
      }
      await waitFor(() => lookupDone, 10_000, 'the lookup to end');
      await waitFor(async () => !(await isMounted(mnt)), 10_000, 'the watchdog to unmount');
      fs.rmSync(mnt, { recursive: true, force: true });
    }
  });

  it('mounting over a dead mount left by a crash clears it first', async () => {
    const first = await mountCli();
    try {
      // Abort the connection: the mount stays, dead, like after a crash without the watchdog.
      const info = await findMount(first.mnt);
      assert.ok(abortConnection(Number(info!.device.split(':')[1])), 'fusectl abort');
      await exitOf(first.child);
      assert.throws(() => fs.statSync(first.mnt), { code: 'ENOTCONN' });
      const second = await mountCli([], first.mnt);
      fs.writeFileSync(path.join(second.mnt, 'g'), 'y');
      assert.equal(fs.readFileSync(path.join(second.mnt, 'g'), 'utf8'), 'y');
      assert.equal(await second.stop(), 0);
    } finally {
      await first.stop();
    }
  });

  it('refuses a missing mountpoint with a clear message', async () => {
    const r = await sh(`bin/swarmvol mount --backend memory /nonexistent/swarmvol-mnt`, { cwd: process.cwd() });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /mountpoint \/nonexistent\/swarmvol-mnt does not exist/);
  });

  it('validates options and names the option', async () => {
    const cases: Array<[string, RegExp]> = [
      ['--attr-timeout abc', /--attr-timeout: expected a number of seconds/],
      ['--max-write 3M', /--max-write: expected a size from 4096 to 1048576/],
      ['--max-write 5000', /--max-write: expected a multiple of 4096/],
      ['--backend nosuch', /--backend: expected one of memory/],
      ['--max-protocol-minor 30', /--max-protocol-minor: expected a whole number from 31 to 45, got "30"/],
      ['--busy-poll 1001', /--busy-poll: expected a whole number from 0 to 1000, got "1001"/],
      ['--busy-poll 5us', /--busy-poll: expected a whole number from 0 to 1000, got "5us"/],
      ['--bogus 1', /Unknown option '--bogus'/],
      // ZooKeeper's options are refused rather than silently ignored by the memory backend.
      ['--uid 1000', /--uid: only with --backend zookeeper/],
      ['--umask 077', /--umask: only with --backend zookeeper/],
      ['--open-acl', /--open-acl: only with --backend zookeeper/],
      ['--op-timeout 5', /--op-timeout: only with --backend zookeeper/],
    ];
    for (const [args, re] of cases) {
      const r = await sh(`bin/swarmvol mount ${args} /tmp`);
      assert.equal(r.code, 2, args);
      assert.match(r.stderr, re, args);
    }
  });

  it('forgets node ids: memory stays flat over many lookups', async () => {
    const m = await mountInProcess();
    try {
      const dir = path.join(m.mnt, 'many');
      await fsp.mkdir(dir);
      const r = await sh(`cd ${dir} && seq 1 20000 | xargs touch && ls -l | wc -l`);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(m.nodes.liveNodes > 10000, `expected the kernel to hold many nodes, got ${m.nodes.liveNodes}`);
      // Dropping the kernel's dentry and inode caches makes it FORGET them all.
      await fsp.writeFile('/proc/sys/vm/drop_caches', '2');
      await waitFor(() => m.nodes.liveNodes < 10, 10_000, `nodes to be forgotten (live: ${m.nodes.liveNodes})`);
      assert.equal(m.nodes.openHandles, 0);
    } finally {
      await m.stop();
    }
  });

  it('hands forgotten node ids out again, each naming the right file', async () => {
    const m = await mountInProcess();
    try {
      const dir = path.join(m.mnt, 'reuse');
      await fsp.mkdir(dir);
      // Each file holds its own name; the ids freed by one FORGET storm name other files after the next lookups.
      const check = `cd ${dir} && bad=0; for f in *; do [ "$(cat "$f")" = "$f" ] || bad=$((bad+1)); done; echo $bad`;
      let r = await sh(`cd ${dir} && for i in $(seq 1 3000); do echo "f$i" > "f$i"; done`);
      assert.equal(r.code, 0, r.stderr);
      for (const order of ['', '| sort -r', '| shuf']) {
        await fsp.writeFile('/proc/sys/vm/drop_caches', '2');
        await waitFor(() => m.nodes.liveNodes < 10, 10_000, `nodes to be forgotten (live: ${m.nodes.liveNodes})`);
        // Look them up in another order than before, so reused ids land on other files.
        r = await sh(`cd ${dir} && ls ${order} | head -1500 | xargs stat -c %n >/dev/null && ${check}`);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), '0', `files that read another file's content after ids were reused (order '${order}')`);
      }
      assert.ok(m.nodes.liveNodes <= 3002, `more node ids live than files: ${m.nodes.liveNodes}`);
    } finally {
      await m.stop();
    }
  });
});
