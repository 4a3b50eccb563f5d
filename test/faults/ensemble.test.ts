// Faults under a steady workload: a 3-member ZooKeeper ensemble on loopback,
// two swarmvol mounts as two nodes. After each fault every write acknowledged
// to the application (close and fsync returned 0) is present with the right
// checksum on both nodes, nothing is partially written, and nothing hangs.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startEnsemble, type Ensemble } from '../helpers/ensemble.js';
import { mountCli, tempDir, type CliMount } from '../helpers/mount.js';
import { verifyJournal } from './verify.js';

const WORKLOAD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'workload.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('faults: a 3-member ZooKeeper ensemble, two mounts, a steady workload', () => {
  let zk: Ensemble;
  let a: CliMount;
  let b: CliMount;
  const args = () => ['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', '/faults', '--session-timeout', '4', '--op-timeout', '30'];

  before(async () => {
    zk = await startEnsemble(3);
    a = await mountCli(args());
    b = await mountCli(args());
  });
  after(async () => {
    if (a) await a.stop();
    if (b) await b.stop();
    await zk?.destroy();
  });

  /** Runs the workload on A in a fresh directory around `fault`, then checks both nodes. */
  async function phase(label: string, fault: () => Promise<void>, opts: { stopEarly?: boolean } = {}): Promise<void> {
    const dirA = path.join(a.mnt, label);
    await fs.promises.mkdir(dirA);
    const work = tempDir('swarmvol-faults-');
    const journal = path.join(work, 'journal');
    const stop = path.join(work, 'stop');
    const child = spawn(process.execPath, [WORKLOAD, 'run', dirA, journal, stop, String(label.length * 7919)], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    await sleep(1500);
    const t0 = Date.now();
    await fault();
    if (opts.stopEarly) fs.writeFileSync(stop, '');
    else await sleep(2000);
    fs.writeFileSync(stop, '');
    const timeout = setTimeout(() => child.kill('SIGKILL'), 90_000);
    await exited;
    clearTimeout(timeout);
    assert.equal(child.signalCode, null, 'the workload hung past the documented timeouts');
    const e = await verifyJournal(journal, [
      { label: `node A after ${label}`, dir: path.join(a.mnt, label) },
      { label: `node B after ${label}`, dir: path.join(b.mnt, label) },
    ]);
    const verified = 2 * e.files.size;
    console.log(`${label}: ${e.ops} operations, ${e.ackedWrites} acknowledged writes, ${e.files.size} files checked on both nodes (${verified} checks), ${e.failures} failed operations, recovery window ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    fs.rmSync(work, { recursive: true, force: true });
  }

  it('kill -9 of the leader, then of a follower, each restarted', async () => {
    await phase('leader-follower', async () => {
      const leader = await zk.leader();
      await leader.kill();
      await sleep(3000);
      await leader.start();
      await zk.waitQuorum();
      const [follower] = await zk.followers();
      await follower!.kill();
      await sleep(3000);
      await follower!.start();
      await zk.waitQuorum();
    });
  });

  it('a majority stopped for longer than the session timeout, then restored', async () => {
    await phase('quorum-loss', async () => {
      const [m1, m2] = zk.members;
      await m1!.kill();
      await m2!.kill();
      await sleep(8000);
      await m1!.start();
      await m2!.start();
      await zk.waitQuorum();
    });
  });

  it('the writing mount frozen (SIGSTOP) past its session timeout, then resumed', async () => {
    await phase('mount-frozen', async () => {
      a.child.kill('SIGSTOP');
      await sleep(7000);
      a.child.kill('SIGCONT');
    });
    assert.match(a.output(), /ZooKeeper session expired; a new one is up/);
  });

  it('the writing mount killed mid-write, then mounted again', async () => {
    await phase(
      'mount-killed',
      async () => {
        a.child.kill('SIGKILL');
        await sleep(500);
        a = await mountCli(args(), a.mnt);
      },
      { stopEarly: true },
    );
    // No stale mount: exactly one live swarmvol mount at the mountpoint, and it answers.
    const mounts = (await fs.promises.readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(` ${a.mnt} `) && l.includes('fuse.swarmvol'));
    assert.equal(mounts.length, 1, mounts.join('\n'));
    await fs.promises.readdir(a.mnt);
  });
});
