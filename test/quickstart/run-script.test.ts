// The README's first command, `sudo bash scripts/run.sh`, as a user runs it:
// it installs what is missing, builds, starts ZooKeeper on 127.0.0.1:2181
// (scripts/zookeeper.sh) unless one answers there, and runs swarmvol. Both of
// its modes are exercised: two `--mount` "nodes" sharing one tree, and the
// Docker volume plugin used by containers of a real dockerd.
//
// The dockerd is the harness's (DOCKER_HOST), because a default dockerd
// needs a bridge and iptables this sandbox may not have; the script's own
// "start dockerd if none answers" step is therefore not run here. The plugin
// gets its own socket and state directories so that a swarmvol already
// installed on the machine is never touched.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { startDockerd, TEST_IMAGE, type Dockerd } from '../helpers/docker.js';
import { isMounted, REPO, sh, tempDir, waitFor } from '../helpers/mount.js';
import { fourLetterWord } from '../helpers/zookeeper.js';

const QUICKSTART_ZK = '127.0.0.1:2181';
const DEFAULT_VOLUME = '/swarmvol/volumes/default';
/** install-deps, the build and a ZooKeeper start, on a slow machine. */
const START_TIMEOUT_MS = 180_000;

interface Run {
  child: ChildProcess;
  output(): string;
  /** Sends SIGINT (Ctrl-C) and resolves with the exit code. */
  interrupt(): Promise<number | null>;
}

/** Starts `bash scripts/run.sh ARGS` from the repository and waits until its log says `ready`. */
async function runScript(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = spawn('bash', ['scripts/run.sh', ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor(() => ready.test(out) || child.exitCode !== null, START_TIMEOUT_MS, `scripts/run.sh ${args.join(' ')}`);
  if (child.exitCode !== null) throw new Error(`scripts/run.sh ${args.join(' ')} exited with ${child.exitCode}:\n${out}`);
  return {
    child,
    output: () => out,
    async interrupt() {
      if (child.exitCode === null) child.kill('SIGINT');
      return exited;
    },
  };
}

async function zooKeeperAnswers(): Promise<boolean> {
  try {
    return /^Mode:/m.test(await fourLetterWord(2181, 'srvr'));
  } catch {
    return false;
  }
}

async function deleteTree(zk: ZkClient, zkPath: string): Promise<void> {
  const { children } = await zk.getChildren(zkPath);
  for (const child of children) await deleteTree(zk, `${zkPath}/${child}`);
  await zk.delete(zkPath);
}

describe('the quick start: sudo bash scripts/run.sh', () => {
  let startedZooKeeper = false;
  let zk: ZkClient | undefined;
  /** A plain client of the quick start's ZooKeeper, once the script has started it. */
  const plainClient = async (): Promise<ZkClient> => {
    if (!zk) {
      zk = new ZkClient({ connectString: QUICKSTART_ZK });
      await zk.connect();
    }
    return zk;
  };

  before(async () => {
    // The script starts ZooKeeper only when none answers; the test stops only one it made start.
    startedZooKeeper = !(await zooKeeperAnswers());
  });
  after(async () => {
    zk?.close();
    if (startedZooKeeper) {
      const stopped = await sh('bash scripts/zookeeper.sh stop', { cwd: REPO });
      assert.equal(stopped.code, 0, stopped.stderr);
    }
  });

  it('--mount DIR, twice: two nodes share the default volume, and Ctrl-C unmounts', async () => {
    const a = tempDir('swarmvol-quickstart-a-');
    const b = tempDir('swarmvol-quickstart-b-');
    const name = `quickstart-${process.pid}`;
    // One after the other: each run builds, and two builds at once would write the same files.
    const nodeA = await runScript(['--mount', a], / info mounted /);
    let nodeB: Run | undefined;
    let codeA: number | null;
    let codeB: number | null | undefined;
    try {
      assert.match(nodeA.output(), new RegExp(`mounting ZooKeeper ${QUICKSTART_ZK} ${DEFAULT_VOLUME} at ${a}`));
      assert.ok(await zooKeeperAnswers(), 'ZooKeeper answers on 127.0.0.1:2181 once the script is up');
      nodeB = await runScript(['--mount', b], / info mounted /);
      assert.ok(await isMounted(a));
      assert.ok(await isMounted(b));

      fs.writeFileSync(path.join(a, `${name}.txt`), 'written on node A\n');
      fs.mkdirSync(path.join(b, `${name}.d`));
      fs.symlinkSync(`../${name}.txt`, path.join(b, `${name}.d`, 'link'));
      assert.equal(fs.readFileSync(path.join(b, `${name}.txt`), 'utf8'), 'written on node A\n');
      assert.equal(fs.readFileSync(path.join(a, `${name}.d`, 'link'), 'utf8'), 'written on node A\n');
      assert.ok(fs.statSync(path.join(a, `${name}.d`)).isDirectory());

      // The bytes are in the default volume's znode, as a plain client reads them.
      const zk = await plainClient();
      assert.equal((await zk.getData(`${DEFAULT_VOLUME}/${name}.txt`)).data.toString(), 'written on node A\n');

      fs.rmSync(path.join(a, `${name}.d`), { recursive: true });
      fs.rmSync(path.join(a, `${name}.txt`));
      assert.equal(await zk.exists(`${DEFAULT_VOLUME}/${name}.txt`), null);
    } finally {
      codeB = await nodeB?.interrupt();
      codeA = await nodeA.interrupt();
    }
    assert.equal(codeA, 0, nodeA.output());
    assert.equal(codeB, 0, nodeB.output());
    assert.equal(await isMounted(a), false, 'Ctrl-C unmounted node A');
    assert.equal(await isMounted(b), false, 'Ctrl-C unmounted node B');
  });

  describe('without --mount: the Docker volume plugin', () => {
    let dockerd: Dockerd;
    const driver = `swarmvol-qs${process.pid}`;
    const socket = `/run/docker/plugins/${driver}.sock`;
    const volume = `quickstart-${process.pid}`;

    before(async () => {
      dockerd = await startDockerd();
    });
    after(async () => {
      await dockerd?.docker(['volume', 'rm', '-f', volume]);
      await dockerd?.stop();
      // docker volume rm keeps a volume's data (README, "The Docker volume plugin"); this one was the test's own.
      const zk = await plainClient();
      if (await zk.exists(`/swarmvol/volumes/${volume}`)) await deleteTree(zk, `/swarmvol/volumes/${volume}`);
    });

    it('serves containers a volume made with docker volume create, and Ctrl-C stops it', async () => {
      const dirs = tempDir('swarmvol-quickstart-plugin-');
      const plugin = await runScript(
        ['--socket', socket, '--state-dir', path.join(dirs, 'state'), '--mount-root', path.join(dirs, 'mounts')],
        / info plugin serving /,
        { DOCKER_HOST: dockerd.host },
      );
      let code: number | null;
      try {
        assert.match(plugin.output(), /volumes in ZooKeeper 127\.0\.0\.1:2181 under \/swarmvol\/volumes/);
        const run = async (args: string[]) => {
          const r = await dockerd.docker(args);
          assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}\nplugin:\n${plugin.output()}`);
          return r.stdout;
        };
        await run(['volume', 'create', '-d', driver, volume]);
        await run(['run', '--rm', '--network', 'none', '-v', `${volume}:/data`, TEST_IMAGE, 'sh', '-c', 'echo hello > /data/hello']);
        assert.equal(await run(['run', '--rm', '--network', 'none', '-v', `${volume}:/data`, TEST_IMAGE, 'cat', '/data/hello']), 'hello\n');

        const zk = await plainClient();
        assert.equal((await zk.getData(`/swarmvol/volumes/${volume}/hello`)).data.toString(), 'hello\n');
        await run(['volume', 'rm', volume]);
      } finally {
        code = await plugin.interrupt();
      }
      assert.equal(code, 0, plugin.output());
      assert.equal(fs.existsSync(socket), false, 'Ctrl-C removed the plugin socket');
    });
  });
});
