// The plugin's cluster-wide registry (src/plugin/registry.ts) against a real
// ZooKeeper server, reached through a proxy that cuts the connection exactly
// before or after a write was applied: `docker volume create`, a mount's
// record and `docker volume rm` wait for the connection and then succeed,
// instead of failing on a blip with a write that may have been made anyway.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OpCode } from '../../src/backends/zookeeper/client/protocol.js';
import type { VolumeSpec } from '../../src/plugin/options.js';
import { Registry, type RegisteredVolume } from '../../src/plugin/registry.js';
import { startProxy, startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('plugin registry, writes cut off by a lost connection', () => {
  let zk: ZooKeeperServer;
  let plain: ZkClient;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let registry: Registry;
  const definition = (name: string): RegisteredVolume => ({
    spec: { hosts: '127.0.0.1:2181', path: `/volumes/${name}`, mode: 'hybrid', uid: 0, gid: 0, umask: 0o022, ro: false } as VolumeSpec,
    createdAt: new Date().toISOString(),
    createdOn: 'node-1',
  });

  /** Loses the next request of these kinds (`request`: the server never sees it) or only its reply; resolves once the connection is back. */
  const loseNext = (lost: 'request' | 'reply', ...opcodes: number[]) => {
    if (lost === 'reply') {
      proxy.holdFromReplyTo(...opcodes);
      return async () => {
        const t0 = performance.now();
        while (proxy.heldReplies() === 0) {
          assert.ok(performance.now() - t0 < 5000, 'no reply within 5 s');
          await sleep(5);
        }
        proxy.cut();
        proxy.release();
        await sleep(200);
        proxy.restore();
      };
    }
    const cut = proxy.cutAtRequest(...opcodes);
    return async () => {
      await Promise.race([cut, sleep(5000).then(() => assert.fail('the request was not sent within 5 s'))]);
      await sleep(200);
      proxy.restore();
    };
  };

  before(async () => {
    zk = await startZooKeeper();
    plain = new ZkClient({ connectString: zk.connectString });
    await plain.connect();
    proxy = await startProxy(zk.port);
    registry = await Registry.open(`127.0.0.1:${proxy.port}`, '/swarmvol-registry', 'node-1', undefined);
  });
  after(async () => {
    registry?.close();
    await proxy?.close();
    plain?.close();
    await zk?.destroy();
  });

  for (const lost of ['request', 'reply'] as const) {
    it(`a volume's creation, its record of use, the record's removal and the volume's removal each succeed when a cut loses the ${lost}`, async () => {
      const name = `v-${lost}`;
      const def = definition(name);

      let back = loseNext(lost, OpCode.multi);
      const created = registry.create(name, def, undefined);
      await back();
      assert.deepEqual(await created, def, 'the definition that won is ours');
      assert.deepEqual(JSON.parse((await plain.getData(`/swarmvol-registry/volumes/${name}`)).data.toString()), def);

      back = loseNext(lost, OpCode.create2);
      const recorded = registry.recordMount(name, 1);
      await back();
      await recorded;
      const record = await plain.getData(`/swarmvol-registry/mounts/${name}/node-1`);
      assert.equal(record.data.toString(), '1');
      assert.notEqual(record.stat.ephemeralOwner, 0n, 'an ephemeral record');
      assert.deepEqual((await plain.getChildren(`/swarmvol-registry/mounts/${name}`)).children, ['node-1'], 'what other nodes see');

      back = loseNext(lost, OpCode.delete);
      const cleared = registry.recordMount(name, 0);
      await back();
      await cleared;
      assert.equal(await plain.exists(`/swarmvol-registry/mounts/${name}/node-1`), null);

      back = loseNext(lost, OpCode.delete);
      const removed = registry.remove(name);
      await back();
      await removed;
      assert.equal(await plain.exists(`/swarmvol-registry/volumes/${name}`), null);
      assert.equal(await registry.get(name), undefined);
    });
  }
});
