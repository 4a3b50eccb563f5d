// The managed plugin: built by packaging/plugin/build.sh (a Debian base made
// with debootstrap, this host's node binary), created, configured with
// docker plugin set, enabled, used by containers and by a Swarm stack.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { runCommand } from '../../src/fuse/mount.js';
import { startDockerd, TEST_IMAGE, type Dockerd } from '../helpers/docker.js';
import { REPO, tempDir, waitFor } from '../helpers/mount.js';
import { startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

const NAME = 'swarmvol-managed';

describe('managed plugin (docker plugin create/set/enable) and a Swarm stack', () => {
  let zk: ZooKeeperServer;
  let dockerd: Dockerd;
  const stateDir = tempDir('swarmvol-managed-state-');
  const run = (args: string[], timeoutMs?: number) => dockerd.docker(args, timeoutMs);

  before(async () => {
    zk = await startZooKeeper();
    dockerd = await startDockerd();
  });
  after(async () => {
    if (dockerd) {
      await run(['stack', 'rm', 'demo']);
      await waitFor(async () => (await run(['ps', '-q'])).stdout.trim() === '', 30_000, 'stack containers gone').catch(() => undefined);
      await run(['swarm', 'leave', '--force']);
      for (const v of (await run(['volume', 'ls', '-q'])).stdout.split('\n').filter(Boolean)) await run(['volume', 'rm', '-f', v]);
      await run(['plugin', 'disable', '-f', NAME]);
      await run(['plugin', 'rm', '-f', NAME]);
      await dockerd.stop();
    }
    await zk?.destroy();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('is built from a Dockerfile, created, configured with docker plugin set and enabled', async () => {
    const t0 = Date.now();
    const r = await runCommand('env', [`DOCKER_HOST=${dockerd.host}`, 'bash', path.join(REPO, 'packaging/plugin/build.sh'), '--name', NAME, '--debootstrap']);
    assert.equal(r.code, 0, r.stderr);
    console.log(`managed plugin built and created in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    for (const args of [['plugin', 'set', NAME, `ZK_HOSTS=${zk.connectString}`, 'DEBUG=1', 'NODE_NAME=managed'], ['plugin', 'set', NAME, `state.source=${stateDir}`], ['plugin', 'enable', NAME]]) {
      const s = await run(args);
      assert.equal(s.code, 0, `${args.join(' ')}: ${s.stderr}`);
    }
    const ls = await run(['plugin', 'ls', '--format', '{{.Name}} {{.Enabled}}']);
    assert.match(ls.stdout, new RegExp(`${NAME}:latest true`));
  });

  it('serves volumes: bad options refused, two containers share writes, rm refused while in use; debug logs in the daemon log', async () => {
    const bad = await run(['volume', 'create', '-d', NAME, '-o', 'mode=tree', 'mv']);
    assert.match(bad.stderr, /mode: expected one of hybrid, dir, file, got "tree"/);
    assert.equal((await run(['volume', 'create', '-d', NAME, 'mv'])).code, 0);
    const bg = await run(['run', '-d', '--name', 'keeper', '--network', 'none', '-v', 'mv:/data', TEST_IMAGE, 'sh', '-c', 'echo one > /data/one; sleep 600']);
    assert.equal(bg.code, 0, bg.stderr);
    await waitFor(async () => (await run(['run', '--rm', '--network', 'none', '-v', 'mv:/data', TEST_IMAGE, 'cat', '/data/one'])).stdout.trim() === 'one', 15_000, 'second container reads the first one\'s file');
    const rm = await run(['volume', 'rm', 'mv']);
    assert.notEqual(rm.code, 0);
    assert.match(rm.stderr, /in use/);
    assert.equal((await run(['rm', '-f', 'keeper'])).code, 0);
    assert.equal((await run(['volume', 'rm', 'mv'])).code, 0);
    // DEBUG=1 set with docker plugin set: every request in the daemon's log, at info level (stdout).
    assert.match(dockerd.log(), /level=info msg=".* debug request route=\/VolumeDriver.Create/);
    assert.doesNotMatch(dockerd.log(), /level=error msg=".* info /, 'plugin info lines are not filed as errors');
  });

  it('runs a docker stack deploy whose volume uses the plugin with driver_opts on a one-node swarm', async () => {
    // Its own manager port: another daemon on this host may be a swarm manager already.
    const port = 20000 + (process.pid % 20000);
    const init = await run(['swarm', 'init', '--advertise-addr', `127.0.0.1:${port}`, '--listen-addr', `127.0.0.1:${port}`]);
    assert.equal(init.code, 0, init.stderr);
    const dir = tempDir('swarmvol-stack-');
    fs.writeFileSync(
      path.join(dir, 'stack.yml'),
      [
        'version: "3.8"',
        'services:',
        '  app:',
        `    image: ${TEST_IMAGE}`,
        '    command: ["sh", "-c", "echo from-stack > /data/stack.txt; sleep 600"]',
        '    volumes:',
        '      - shared:/data',
        'volumes:',
        '  shared:',
        `    driver: ${NAME}`,
        '    driver_opts:',
        `      hosts: ${zk.connectString}`,
        '      path: /swarmvol/stacks/demo',
        '      umask: "027"',
        '',
      ].join('\n'),
    );
    const deploy = await run(['stack', 'deploy', '--resolve-image', 'never', '-c', path.join(dir, 'stack.yml'), 'demo']);
    assert.equal(deploy.code, 0, deploy.stderr);
    const c = new ZkClient({ connectString: zk.connectString });
    await c.connect();
    try {
      await waitFor(async () => (await c.getData('/swarmvol/stacks/demo/stack.txt').catch(() => undefined))?.data.toString() === 'from-stack\n', 60_000, 'the stack service wrote through its volume');
    } finally {
      c.close();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
