// Faults in the Docker layer under the journaled workload: the plugin killed
// with -9 and dockerd restarted while a volume is in use and being written.
// Acknowledged writes are verified through the plugin's mount and through an
// independent mount of the same ZooKeeper tree (another "node").

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startDockerd, TEST_IMAGE, type Dockerd } from '../helpers/docker.js';
import { mountCli, tempDir, waitFor, type CliMount } from '../helpers/mount.js';
import { Plugin } from '../helpers/plugin.js';
import { startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';
import { verifyJournal } from './verify.js';

const WORKLOAD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'workload.js');
const DRIVER = `swarmvol-f${process.pid}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('faults in the Docker layer: plugin kill -9 and dockerd restart mid-workload', () => {
  let zk: ZooKeeperServer;
  let dockerd: Dockerd;
  let plugin: Plugin;
  let other: CliMount;
  const dir = tempDir('swarmvol-faults-docker-');

  before(async () => {
    zk = await startZooKeeper();
    dockerd = await startDockerd();
    plugin = new Plugin(path.join(dir, 'state'), path.join(dir, 'mounts'), { ZK_HOSTS: zk.connectString }, `/run/docker/plugins/${DRIVER}.sock`);
    await plugin.start();
    assert.equal((await dockerd.docker(['volume', 'create', '-d', DRIVER, 'fv'])).code, 0);
    const holder = await dockerd.docker(['run', '-d', '--name', 'holder', '--network', 'none', '-v', 'fv:/data', TEST_IMAGE, 'sleep', '600']);
    assert.equal(holder.code, 0, holder.stderr);
    // Another node's view of the same volume.
    other = await mountCli(['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', '/swarmvol/volumes/fv']);
  });
  after(async () => {
    await other?.stop();
    if (dockerd) {
      await dockerd.docker(['rm', '-f', 'holder']);
      await dockerd.docker(['volume', 'rm', '-f', 'fv']);
    }
    await plugin?.stop();
    await dockerd?.stop();
    await zk?.destroy();
  });

  async function phase(label: string, fault: () => Promise<void>, viaPlugin: boolean): Promise<void> {
    const workDir = path.join(dir, 'mounts', 'fv', label);
    await fs.promises.mkdir(workDir);
    const work = tempDir('swarmvol-journal-');
    const journal = path.join(work, 'journal');
    const stop = path.join(work, 'stop');
    const child = spawn(process.execPath, [WORKLOAD, 'run', workDir, journal, stop, String(label.length * 104729)], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    await sleep(1500);
    await fault();
    await sleep(1500);
    fs.writeFileSync(stop, '');
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    await exited;
    clearTimeout(timer);
    assert.equal(child.signalCode, null, 'the workload hung');
    const dirs = [{ label: `another node after ${label}`, dir: path.join(other.mnt, label) }];
    if (viaPlugin) dirs.push({ label: `the plugin's mount after ${label}`, dir: workDir });
    const e = await verifyJournal(journal, dirs);
    console.log(`${label}: ${e.ops} operations, ${e.ackedWrites} acknowledged writes, ${e.files.size} files verified, ${e.failures} failed operations`);
    fs.rmSync(work, { recursive: true, force: true });
  }

  it('kill -9 of the plugin mid-workload: the mount keeps serving, the restarted plugin adopts it', async () => {
    await phase(
      'plugin-killed',
      async () => {
        await plugin.kill9();
        await sleep(1000);
        await plugin.start();
        await waitFor(() => /volume still mounted; adopted/.test(plugin.output()), 10_000, 'the running mount adopted');
      },
      true,
    );
  });

  it('dockerd restarted mid-workload: what was acknowledged before is intact on another node', async () => {
    await phase(
      'dockerd-restarted',
      async () => {
        await dockerd.restart();
      },
      false,
    );
    // The volume works again afterwards.
    const r = await dockerd.docker(['run', '--rm', '--network', 'none', '-v', 'fv:/data', TEST_IMAGE, 'ls', '/data']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /plugin-killed/);
  });
});
