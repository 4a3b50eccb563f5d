// The volume plugin in legacy socket mode against a real dockerd and a real
// ZooKeeper: options refused with clear errors, containers sharing a volume,
// removal while in use, a plugin killed with -9 and a dockerd restarted
// mid-use, an unreachable ZooKeeper, and garbage on the plugin socket.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { startDockerd, TEST_IMAGE, type Dockerd } from '../helpers/docker.js';
import { tempDir, waitFor } from '../helpers/mount.js';
import { Plugin } from '../helpers/plugin.js';
import { startProxy, startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

const DRIVER = `swarmvol-t${process.pid}`;
const SOCKET = `/run/docker/plugins/${DRIVER}.sock`;

/** One request on the plugin socket, as Docker would send it (or not). */
function post(route: string, body: string | Buffer, socketPath = SOCKET): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: route, method: 'POST', headers: { 'Content-Type': 'text/plain' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('Docker volume plugin (legacy socket) with a real dockerd and ZooKeeper', () => {
  let zk: ZooKeeperServer;
  let dockerd: Dockerd;
  let plugin: Plugin;
  const run = (args: string[], timeoutMs?: number) => dockerd.docker(args, timeoutMs);

  before(async () => {
    zk = await startZooKeeper();
    dockerd = await startDockerd();
    const dir = tempDir('swarmvol-plugin-');
    plugin = new Plugin(path.join(dir, 'state'), path.join(dir, 'mounts'), { ZK_HOSTS: zk.connectString }, SOCKET);
    await plugin.start();
  });
  after(async () => {
    if (dockerd) {
      const ps = await run(['ps', '-aq']);
      for (const id of ps.stdout.split('\n').filter(Boolean)) await run(['rm', '-f', id]);
      const vols = await run(['volume', 'ls', '-q']);
      for (const v of vols.stdout.split('\n').filter(Boolean)) await run(['volume', 'rm', '-f', v]);
    }
    await plugin?.stop();
    await dockerd?.stop();
    await zk?.destroy();
  });

  it('refuses bad options at docker volume create, naming the option and what it accepts', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['-o', 'bogus=1'], /unknown option "bogus": swarmvol accepts hosts, host, path, mode, auth, uid, gid, umask, ro/],
      [['-o', 'hosts=zk1'], /hosts: "zk1" is not host:port \(the port is mandatory/],
      [['-o', 'mode=tree'], /mode: expected one of hybrid, dir, file, got "tree"/],
      [['-o', 'uid=root'], /uid: expected a numeric id from 0 to 4294967294, got "root"/],
      [['-o', 'umask=999'], /umask: expected octal digits such as 022, got "999"/],
      [['-o', 'ro=maybe'], /ro: expected true or false, got "maybe"/],
      [['-o', 'path=relative/p'], /path: expected an absolute ZooKeeper path/],
      [['-o', 'auth=user:pw'], /auth: expected digest:USER:PASSWORD/],
    ];
    for (const [opts, message] of cases) {
      const r = await run(['volume', 'create', '-d', DRIVER, ...opts, 'badvol']);
      assert.notEqual(r.code, 0, opts.join(' '));
      assert.match(r.stderr, message);
    }
    assert.equal((await run(['volume', 'ls', '-q'])).stdout.trim(), '', 'nothing was created');
  });

  it('creates a volume with no options (plugin-wide ZK_HOSTS), shared by containers that see each other\'s writes', async () => {
    assert.equal((await run(['volume', 'create', '-d', DRIVER, 'shared'])).code, 0);
    assert.equal((await run(['volume', 'create', '-d', DRIVER, 'shared'])).code, 0, 'create is idempotent');
    const inspect = JSON.parse((await run(['volume', 'inspect', 'shared'])).stdout) as Array<{ Scope: string; Status: { path: string } }>;
    assert.equal(inspect[0]!.Scope, 'global');
    assert.equal(inspect[0]!.Status.path, '/swarmvol/volumes/shared');
    // A long-running container writes; another reads what it wrote, and writes back.
    const writer = await run(['run', '-d', '--network', 'none', '--name', 'writer', '-v', 'shared:/data', TEST_IMAGE, 'sh', '-c', 'echo from-writer > /data/a; while [ ! -f /data/b ]; do sleep 0.1; done; cat /data/b > /data/c; sleep 600']);
    assert.equal(writer.code, 0, writer.stderr);
    const reader = await run(['run', '--rm', '--network', 'none', '-v', 'shared:/data', TEST_IMAGE, 'sh', '-c', 'while [ ! -f /data/a ]; do sleep 0.1; done; cat /data/a; echo from-reader > /data/b']);
    assert.equal(reader.code, 0, reader.stderr);
    assert.equal(reader.stdout.trim(), 'from-writer');
    await waitFor(async () => (await run(['exec', 'writer', 'cat', '/data/c'])).stdout.trim() === 'from-reader', 10_000, 'the writer sees the reader\'s file');
    // The bytes are in ZooKeeper.
    const c = new ZkClient({ connectString: zk.connectString });
    await c.connect();
    assert.equal((await c.getData('/swarmvol/volumes/shared/a')).data.toString(), 'from-writer\n');
    c.close();
  });

  it('keeps a running container\'s volume through docker cp (Docker mounts again under the container\'s mount ID, then unmounts once)', async () => {
    const out = tempDir('swarmvol-cp-');
    const cp = await run(['cp', 'writer:/data/a', path.join(out, 'a')]);
    assert.equal(cp.code, 0, cp.stderr);
    assert.equal(fs.readFileSync(path.join(out, 'a'), 'utf8'), 'from-writer\n');
    const into = await run(['cp', path.join(out, 'a'), 'writer:/data/copied-in']);
    assert.equal(into.code, 0, into.stderr);
    // The container still has its volume, and the plugin still counts it.
    const after = await run(['exec', 'writer', 'sh', '-c', 'cat /data/copied-in; echo after-cp > /data/after-cp; cat /data/after-cp']);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout, 'from-writer\nafter-cp\n');
    const state = JSON.parse(fs.readFileSync(path.join(plugin.stateDir, 'state.json'), 'utf8')) as { volumes: Array<{ name: string; mountIds: string[] }> };
    assert.equal(state.volumes.find((v) => v.name === 'shared')?.mountIds.length, 1, 'the writer\'s one mount, as before the copies');
  });

  it('refuses docker volume rm while a container uses the volume, and removes it after', async () => {
    const refused = await run(['volume', 'rm', 'shared']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /in use/);
    // The plugin itself refuses too (Docker asks it when forced).
    const forced = await post('/VolumeDriver.Remove', JSON.stringify({ Name: 'shared' }));
    assert.equal(forced.status, 500);
    assert.match(JSON.parse(forced.body).Err as string, /volume shared is in use by 1 container\(s\) on this node/);
  });

  it('keeps serving a running container through kill -9 of the plugin, and works after its restart', async () => {
    await plugin.kill9();
    // The container keeps its volume: the mount process outlives the plugin.
    const during = await run(['exec', 'writer', 'sh', '-c', 'echo while-plugin-dead > /data/d; cat /data/d']);
    assert.equal(during.stdout.trim(), 'while-plugin-dead', during.stderr);
    await plugin.start();
    await waitFor(() => /volume still mounted; adopted/.test(plugin.output()), 10_000, 'the running mount adopted');
    const again = await run(['run', '--rm', '--network', 'none', '-v', 'shared:/data', TEST_IMAGE, 'cat', '/data/d']);
    assert.equal(again.stdout.trim(), 'while-plugin-dead', again.stderr);
    assert.equal((await run(['rm', '-f', 'writer'])).code, 0);
    const rm = await run(['volume', 'rm', 'shared']);
    assert.equal(rm.code, 0, rm.stderr);
    const state = JSON.parse(fs.readFileSync(path.join(plugin.stateDir, 'state.json'), 'utf8')) as { volumes: unknown[] };
    assert.deepEqual(state.volumes, []);
    assert.equal(fs.readdirSync(plugin.mountRoot).filter((n) => n === 'shared' && fs.readdirSync(path.join(plugin.mountRoot, n)).length > 0).length, 0);
  });

  it('survives a dockerd restart with a container using the volume', async () => {
    assert.equal((await run(['volume', 'create', '-d', DRIVER, 'survivor'])).code, 0);
    assert.equal((await run(['run', '--rm', '--network', 'none', '-v', 'survivor:/data', TEST_IMAGE, 'sh', '-c', 'echo kept > /data/k'])).code, 0);
    const bg = await run(['run', '-d', '--network', 'none', '--name', 'holder', '-v', 'survivor:/data', TEST_IMAGE, 'sleep', '600']);
    assert.equal(bg.code, 0, bg.stderr);
    await dockerd.restart();
    const r = await run(['run', '--rm', '--network', 'none', '-v', 'survivor:/data', TEST_IMAGE, 'cat', '/data/k']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'kept');
    await run(['rm', '-f', 'holder']);
    const rm = await run(['volume', 'rm', 'survivor']);
    assert.equal(rm.code, 0, rm.stderr);
  });

  it('fails docker run with a clear message when the volume\'s ZooKeeper cannot be reached', async () => {
    assert.equal((await run(['volume', 'create', '-d', DRIVER, '-o', 'hosts=127.0.0.1:1', 'unreachable'])).code, 0);
    const t0 = Date.now();
    const r = await run(['run', '--rm', '--network', 'none', '-v', 'unreachable:/data', TEST_IMAGE, 'true']);
    const seconds = (Date.now() - t0) / 1000;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot mount volume unreachable: .*cannot reach ZooKeeper at 127\.0\.0\.1:1 within 3000 ms/);
    assert.ok(seconds < 20, `took ${seconds} s`);
    console.log(`docker run against an unreachable ZooKeeper failed after ${seconds.toFixed(1)} s (--connect-timeout 3)`);
    assert.equal((await run(['volume', 'rm', 'unreachable'])).code, 0);
  });

  it("isolates volumes: a crashed mount process takes down only its own volume, and the next container gets a fresh mount", async () => {
    for (const v of ['iso-a', 'iso-b']) assert.equal((await run(['volume', 'create', '-d', DRIVER, v])).code, 0);
    for (const v of ['iso-a', 'iso-b']) {
      const r = await run(['run', '-d', '--name', v, '--network', 'none', '-v', `${v}:/data`, TEST_IMAGE, 'sh', '-c', `echo ${v} > /data/name; sleep 600`]);
      assert.equal(r.code, 0, r.stderr);
    }
    const state = () => JSON.parse(fs.readFileSync(path.join(plugin.stateDir, 'state.json'), 'utf8')) as { volumes: Array<{ name: string; pid?: number }> };
    await waitFor(() => state().volumes.filter((v) => v.name.startsWith('iso-') && v.pid).length === 2, 10_000, 'both mounted');
    const pidA = state().volumes.find((v) => v.name === 'iso-a')!.pid!;
    process.kill(pidA, 'SIGKILL');
    // iso-b is untouched.
    const b = await run(['exec', 'iso-b', 'cat', '/data/name']);
    assert.equal(b.stdout.trim(), 'iso-b', b.stderr);
    // iso-a's next user gets a new mount process with the data intact.
    await run(['rm', '-f', 'iso-a']);
    const again = await run(['run', '--rm', '--network', 'none', '-v', 'iso-a:/data', TEST_IMAGE, 'cat', '/data/name']);
    assert.equal(again.stdout.trim(), 'iso-a', again.stderr);
    await run(['rm', '-f', 'iso-b']);
    for (const v of ['iso-a', 'iso-b']) assert.equal((await run(['volume', 'rm', v])).code, 0);
  });

  it("a volume whose mount process is stopped: Mount fails with what to do, not a hang; the plugin restarts and serves the others meanwhile", async () => {
    for (const v of ['frozen', 'thawed']) assert.equal((await run(['volume', 'create', '-d', DRIVER, v])).code, 0);
    // A new file in the volume's root: the kernel then asks the mount for the root's attributes again.
    const r = await run(['run', '-d', '--name', 'frozen-user', '--network', 'none', '-v', 'frozen:/data', TEST_IMAGE, 'sh', '-c', 'echo x > /data/new; sleep 600']);
    assert.equal(r.code, 0, r.stderr);
    const state = () => JSON.parse(fs.readFileSync(path.join(plugin.stateDir, 'state.json'), 'utf8')) as { volumes: Array<{ name: string; pid?: number }> };
    // Seen in ZooKeeper, not through the mount (which would fetch the root's attributes again).
    const zkc = new ZkClient({ connectString: zk.connectString });
    await zkc.connect();
    await waitFor(async () => (await zkc.exists('/swarmvol/volumes/frozen/new')) !== null, 10_000, 'the container wrote');
    zkc.close();
    const pid = state().volumes.find((v) => v.name === 'frozen')!.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      const t0 = performance.now();
      const refused = await post('/VolumeDriver.Mount', JSON.stringify({ Name: 'frozen', ID: 'probe' }));
      const ms = performance.now() - t0;
      assert.equal(refused.status, 500, refused.body);
      assert.match(JSON.parse(refused.body).Err as string, new RegExp(`volume frozen is mounted on this node but its mount process \\(pid ${pid}\\) has not answered for 10 s .*logs/frozen\\.log; kill ${pid} to have the next container mount it anew`));
      assert.ok(ms < 15_000, `answered in ${ms.toFixed(0)} ms`);
      // A restart is not held up by it: other volumes mount at once.
      await plugin.kill9();
      const t1 = performance.now();
      await plugin.start();
      assert.ok(performance.now() - t1 < 8000, `serving ${(performance.now() - t1).toFixed(0)} ms after the restart`);
      const other = await run(['run', '--rm', '--network', 'none', '-v', 'thawed:/data', TEST_IMAGE, 'sh', '-c', 'echo ok > /data/f; cat /data/f']);
      assert.equal(other.stdout, 'ok\n', other.stderr);
      await waitFor(() => /volume still mounted but its mount does not answer within 10 s; adopted as it is/.test(plugin.output()), 20_000, 'the stopped mount adopted');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Going again, it serves its container and new ones.
    assert.equal((await run(['exec', 'frozen-user', 'cat', '/data/new'])).stdout, 'x\n');
    const again = await post('/VolumeDriver.Mount', JSON.stringify({ Name: 'frozen', ID: 'probe' }));
    assert.equal(again.status, 200, again.body);
    assert.equal((await post('/VolumeDriver.Unmount', JSON.stringify({ Name: 'frozen', ID: 'probe' }))).status, 200);
    assert.equal((await run(['rm', '-f', 'frozen-user'])).code, 0);
    for (const v of ['frozen', 'thawed']) assert.equal((await run(['volume', 'rm', v])).code, 0);
  });

  it('starts while the plugin-wide ZooKeeper is unreachable: volumes it knows keep working, the rest says why, and it goes cluster-wide once ZooKeeper answers', async () => {
    const proxy = await startProxy(zk.port);
    const dir = tempDir('swarmvol-plugin-noreg-');
    const sock = `/run/docker/plugins/swarmvol-noreg-${process.pid}.sock`;
    const p = new Plugin(path.join(dir, 'state'), path.join(dir, 'mounts'), { ZK_HOSTS: `127.0.0.1:${proxy.port}`, REGISTRY: '/noreg-registry' }, sock);
    const api = async (route: string, body: object) => {
      const r = await post(route, JSON.stringify(body), sock);
      return { status: r.status, body: JSON.parse(r.body) as { Err?: string; Mountpoint?: string } };
    };
    try {
      // A volume this node knows, whose own ZooKeeper is reached directly.
      await p.start();
      assert.equal((await api('/VolumeDriver.Create', { Name: 'known', Opts: { hosts: zk.connectString } })).status, 200);
      await p.stop();
      proxy.cut();
      const t0 = performance.now();
      await p.start();
      console.log(`# plugin serving ${(performance.now() - t0).toFixed(0)} ms after its start with the plugin-wide ZooKeeper unreachable`);
      assert.match(p.output(), /cannot reach the plugin-wide ZooKeeper ZK_HOSTS=127\.0\.0\.1:\d+: .*; serving the volumes known on this node, and trying again every 5 s/);
      const mounted = await api('/VolumeDriver.Mount', { Name: 'known', ID: 'c1' });
      assert.equal(mounted.status, 200, mounted.body.Err);
      await fs.promises.writeFile(path.join(mounted.body.Mountpoint!, 'f'), 'while the registry is away');
      assert.equal((await api('/VolumeDriver.Unmount', { Name: 'known', ID: 'c1' })).status, 200);
      const refused = await api('/VolumeDriver.Create', { Name: 'later', Opts: {} });
      assert.equal(refused.status, 500);
      assert.match(refused.body.Err!, /^cannot reach the plugin-wide ZooKeeper ZK_HOSTS=127\.0\.0\.1:\d+: .*; the plugin keeps trying \(volumes this node already knows keep working\)$/);
      assert.equal((await api('/VolumeDriver.List', {})).status, 200);
      proxy.restore();
      await waitFor(() => /cluster-wide volumes/.test(p.output()), 15_000, 'the plugin to reach its ZooKeeper');
      assert.equal((await api('/VolumeDriver.Create', { Name: 'later', Opts: {} })).status, 200);
      const c = new ZkClient({ connectString: zk.connectString });
      await c.connect();
      assert.notEqual(await c.exists('/noreg-registry/volumes/later'), null, 'registered cluster-wide');
      assert.equal((await c.getData('/swarmvol/volumes/known/f')).data.toString(), 'while the registry is away');
      c.close();
      for (const name of ['known', 'later']) assert.equal((await api('/VolumeDriver.Remove', { Name: name })).status, 200);
    } finally {
      await p.stop();
      await proxy.close();
    }
  });

  it('with the plugin-wide ZooKeeper away, Mount, Unmount and List of a volume whose own ZooKeeper answers do not wait for it; its use is recorded once it is back', async () => {
    const proxy = await startProxy(zk.port);
    const dir = tempDir('swarmvol-plugin-away-');
    const sock = `/run/docker/plugins/swarmvol-away-${process.pid}.sock`;
    const p = new Plugin(path.join(dir, 'state'), path.join(dir, 'mounts'), { ZK_HOSTS: `127.0.0.1:${proxy.port}`, REGISTRY: '/away-registry', NODE_NAME: 'away' }, sock);
    const api = async (route: string, body: object) => {
      const t0 = performance.now();
      const r = await post(route, JSON.stringify(body), sock);
      return { status: r.status, ms: performance.now() - t0, body: JSON.parse(r.body) as { Err?: string } };
    };
    const c = new ZkClient({ connectString: zk.connectString });
    await c.connect();
    const record = async () => (await c.getData('/away-registry/mounts/away-vol/away').catch(() => undefined))?.data.toString();
    try {
      await p.start();
      assert.equal((await api('/VolumeDriver.Create', { Name: 'away-vol', Opts: { hosts: zk.connectString } })).status, 200);
      assert.equal((await api('/VolumeDriver.Mount', { Name: 'away-vol', ID: 'c1' })).status, 200);
      assert.equal(await record(), '1');
      proxy.cut();
      for (const [route, body] of [
        ['/VolumeDriver.Mount', { Name: 'away-vol', ID: 'c2' }],
        ['/VolumeDriver.Mount', { Name: 'away-vol', ID: 'c3' }],
        ['/VolumeDriver.List', {}],
        ['/VolumeDriver.Unmount', { Name: 'away-vol', ID: 'c3' }],
      ] as const) {
        const r = await api(route, body);
        assert.equal(r.status, 200, `${route}: ${r.body.Err}`);
        assert.ok(r.ms < 4000, `${route} took ${r.ms.toFixed(0)} ms`);
      }
      assert.equal(await record(), '1', 'not recorded while away');
      // Away longer than the client's operation timeout (10 s): the record fails, and is made once ZooKeeper is back.
      await waitFor(() => /could not record the volume's use on this node in ZooKeeper yet/.test(p.output()), 20_000, 'the record to fail');
      proxy.restore();
      await waitFor(async () => (await record()) === '2', 20_000, 'the record of c1 and c2 after the outage');
      for (const id of ['c1', 'c2']) assert.equal((await api('/VolumeDriver.Unmount', { Name: 'away-vol', ID: id })).status, 200);
      await waitFor(async () => (await record()) === undefined, 10_000, 'the record cleared after the last unmount');
      assert.equal((await api('/VolumeDriver.Remove', { Name: 'away-vol' })).status, 200);
    } finally {
      c.close();
      await p.stop();
      await proxy.close();
    }
  });

  it('a node that knew a volume removed and made again on another node uses the new definition, and its rm leaves that one alone', async () => {
    const dir = tempDir('swarmvol-plugin-two-');
    const env = (n: string) => ({ ZK_HOSTS: zk.connectString, REGISTRY: '/redefined-registry', NODE_NAME: n });
    const nodes = ['a', 'b'].map((n) => new Plugin(path.join(dir, n, 'state'), path.join(dir, n, 'mounts'), env(n), `/run/docker/plugins/swarmvol-redef-${n}-${process.pid}.sock`));
    const [a, b] = nodes as [Plugin, Plugin];
    const api = async (node: Plugin, route: string, body: object) => {
      const r = await post(route, JSON.stringify(body), node.socket);
      return { status: r.status, body: JSON.parse(r.body) as { Err?: string; Volume?: { Status?: { path?: string } } } };
    };
    const pathOn = async (node: Plugin) => (await api(node, '/VolumeDriver.Get', { Name: 'redef' })).body.Volume?.Status?.path;
    try {
      for (const node of nodes) await node.start();
      assert.equal((await api(a, '/VolumeDriver.Create', { Name: 'redef', Opts: { path: '/old/redef' } })).status, 200);
      assert.equal((await api(b, '/VolumeDriver.Create', { Name: 'redef', Opts: {} })).status, 200, 'b adopts the definition');
      assert.equal(await pathOn(b), '/old/redef');
      assert.equal((await api(a, '/VolumeDriver.Remove', { Name: 'redef' })).status, 200);
      assert.equal((await api(a, '/VolumeDriver.Create', { Name: 'redef', Opts: { path: '/new/redef' } })).status, 200);
      assert.equal((await api(b, '/VolumeDriver.Create', { Name: 'redef', Opts: {} })).status, 200);
      assert.equal(await pathOn(b), '/new/redef', "b follows the cluster's new definition");
      const mounted = await api(b, '/VolumeDriver.Mount', { Name: 'redef', ID: 'x' });
      assert.equal(mounted.status, 200, mounted.body.Err);
      assert.equal((await api(b, '/VolumeDriver.Unmount', { Name: 'redef', ID: 'x' })).status, 200);
      // Made again once more on a; b's record is now behind, and its rm must not remove a's definition.
      assert.equal((await api(a, '/VolumeDriver.Remove', { Name: 'redef' })).status, 200);
      assert.equal((await api(a, '/VolumeDriver.Create', { Name: 'redef', Opts: { path: '/third/redef' } })).status, 200);
      assert.equal((await api(b, '/VolumeDriver.Remove', { Name: 'redef' })).status, 200);
      assert.equal(await pathOn(a), '/third/redef', "a's definition stays");
      const c = new ZkClient({ connectString: zk.connectString });
      await c.connect();
      assert.equal(JSON.parse((await c.getData('/redefined-registry/volumes/redef')).data.toString()).spec.path, '/third/redef');
      c.close();
      // Removed on a: b, which knows it again from its Get, no longer mounts it, and forgets it at its rm.
      assert.equal(await pathOn(b), '/third/redef');
      assert.equal((await api(a, '/VolumeDriver.Remove', { Name: 'redef' })).status, 200);
      const gone = await api(b, '/VolumeDriver.Mount', { Name: 'redef', ID: 'y' });
      assert.equal(gone.status, 500);
      assert.match(gone.body.Err!, /^volume redef was removed on another node: docker volume rm redef here, or create it again$/);
      assert.equal((await api(b, '/VolumeDriver.Remove', { Name: 'redef' })).status, 200);
      assert.equal((await api(b, '/VolumeDriver.Get', { Name: 'redef' })).status, 500, 'forgotten');
    } finally {
      for (const node of nodes) await node.stop();
    }
  });

  it('answers garbage on its socket with errors and keeps running', async () => {
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ['/VolumeDriver.Create', '{not json', /not valid JSON/],
      ['/VolumeDriver.Create', '[]', /must be a JSON object/],
      ['/VolumeDriver.Create', '{}', /missing field "Name"/],
      ['/VolumeDriver.Create', '{"Name":"../etc","Opts":null}', /invalid volume name/],
      ['/VolumeDriver.Mount', '{"Name":"nope","ID":"x"}', /no such volume: nope/],
      ['/VolumeDriver.Mount', '{"Name":"nope"}', /missing field "ID"/],
      ['/VolumeDriver.Create', '{"Name":"x","Opts":"hosts=1"}', /"Opts" must be an object/],
      ['/Nope', '{}', /unknown endpoint \/Nope/],
      ['/VolumeDriver.List', Buffer.alloc(2 << 20, 0x20), /larger than/],
    ];
    for (const [route, body, message] of cases) {
      const r = await post(route, body).catch((err: Error) => ({ status: 0, body: err.message }));
      if (r.status === 0) continue; // the server may cut a huge body short: it must still be alive below
      assert.equal(r.status, 500, `${route} ${String(body).slice(0, 40)}`);
      assert.match(JSON.parse(r.body).Err as string, message);
    }
    const activate = await post('/Plugin.Activate', '');
    assert.deepEqual(JSON.parse(activate.body), { Implements: ['VolumeDriver'] });
    const caps = await post('/VolumeDriver.Capabilities', 'null');
    assert.equal(caps.status, 500, 'a null body is not an object');
    const list = await post('/VolumeDriver.List', '{}');
    assert.equal(list.status, 200);
    assert.equal(fs.statSync(SOCKET).mode & 0o777, 0o600, 'the socket is root-only');
  });

  it('measures docker run --rm -v vol:/data true with swarmvol against the local driver', async () => {
    assert.equal((await run(['volume', 'create', '-d', DRIVER, 'timed'])).code, 0);
    assert.equal((await run(['volume', 'create', 'localvol'])).code, 0);
    const time = async (vol: string) => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const r = await run(['run', '--rm', '--network', 'none', '-v', `${vol}:/data`, TEST_IMAGE, 'true']);
        assert.equal(r.code, 0, r.stderr);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      return times[2]!;
    };
    const local = await time('localvol');
    const swarmvol = await time('timed');
    console.log(`docker run --rm -v vol:/data true, median of 5: swarmvol ${swarmvol.toFixed(0)} ms, local driver ${local.toFixed(0)} ms (${(swarmvol / local).toFixed(2)}x)`);
    assert.equal((await run(['volume', 'rm', 'timed', 'localvol'])).code, 0);
  });
});

describe('Docker volume plugin: two nodes (two dockerd, two plugins) sharing one ZooKeeper', () => {
  let zk: ZooKeeperServer;
  const nodes: Array<{ dockerd: Dockerd; plugin: Plugin; driver: string; socket: string }> = [];

  before(async () => {
    zk = await startZooKeeper();
    for (const n of ['a', 'b']) {
      const dockerd = await startDockerd();
      const dir = tempDir(`swarmvol-node-${n}-`);
      const driver = `swarmvol-${n}${process.pid}`;
      const socket = `/run/docker/plugins/${driver}.sock`;
      const plugin = new Plugin(path.join(dir, 'state'), path.join(dir, 'mounts'), { ZK_HOSTS: zk.connectString, NODE_NAME: `node-${n}` }, socket);
      await plugin.start();
      nodes.push({ dockerd, plugin, driver, socket });
    }
  });
  after(async () => {
    for (const n of nodes) {
      const ps = await n.dockerd.docker(['ps', '-aq']);
      for (const id of ps.stdout.split('\n').filter(Boolean)) await n.dockerd.docker(['rm', '-f', id]);
      await n.plugin.stop();
      await n.dockerd.stop();
    }
    await zk?.destroy();
  });

  it('a volume created on node A is listed and used on node B; rm is refused while B uses it', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    assert.equal((await a.dockerd.docker(['volume', 'create', '-d', a.driver, '-o', 'umask=027', 'cluster'])).code, 0);
    // B's Docker learns of the volume from B's plugin, which reads the cluster's definition.
    const probe = await b.dockerd.docker(['volume', 'create', '-d', b.driver, 'cluster']);
    assert.equal(probe.code, 0, probe.stderr);
    const inspectB = JSON.parse((await b.dockerd.docker(['volume', 'inspect', 'cluster'])).stdout) as Array<{ Status: { path: string } }>;
    assert.equal(inspectB[0]!.Status.path, '/swarmvol/volumes/cluster');
    const onA = await a.dockerd.docker(['run', '--rm', '--network', 'none', '-v', 'cluster:/data', TEST_IMAGE, 'sh', '-c', 'echo written-on-a > /data/msg']);
    assert.equal(onA.code, 0, onA.stderr);
    const onB = await b.dockerd.docker(['run', '-d', '--name', 'reader', '--network', 'none', '-v', 'cluster:/data', TEST_IMAGE, 'sh', '-c', 'cat /data/msg > /data/seen; sleep 600']);
    assert.equal(onB.code, 0, onB.stderr);
    await waitFor(async () => (await a.dockerd.docker(['run', '--rm', '--network', 'none', '-v', 'cluster:/data', TEST_IMAGE, 'cat', '/data/seen'])).stdout.trim() === 'written-on-a', 15_000, 'B read what A wrote');
    // Removal on A while B uses it: refused, naming B.
    const rm = await a.dockerd.docker(['volume', 'rm', 'cluster']);
    assert.notEqual(rm.code, 0);
    assert.match(rm.stderr, /volume cluster is in use on node node-b/);
    assert.equal((await b.dockerd.docker(['rm', '-f', 'reader'])).code, 0);
    await waitFor(async () => (await a.dockerd.docker(['volume', 'rm', 'cluster'])).code === 0, 15_000, 'rm after B stopped using it');
    // Gone for the cluster: B's plugin no longer knows it once B forgets it locally.
    assert.equal((await b.dockerd.docker(['volume', 'rm', 'cluster'])).code, 0);
    const list = await a.dockerd.docker(['volume', 'ls', '-q']);
    assert.doesNotMatch(list.stdout, /cluster/);
  });
});
