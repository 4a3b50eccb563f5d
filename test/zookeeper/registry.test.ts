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
import { loseNext, startProxy, startZooKeeper, type ZkProxy, type ZooKeeperServer } from '../helpers/zookeeper.js';

describe('plugin registry, writes cut off by a lost connection', () => {
  let zk: ZooKeeperServer;
  let plain: ZkClient;
  let proxy: ZkProxy;
  let registry: Registry;
  const definition = (name: string): RegisteredVolume => ({
    spec: { hosts: '127.0.0.1:2181', path: `/volumes/${name}`, mode: 'hybrid', uid: 0, gid: 0, umask: 0o022, ro: false } as VolumeSpec,
    createdAt: new Date().toISOString(),
    createdOn: 'node-1',
  });

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

      let back = loseNext(proxy, lost, "the volume's creation", OpCode.multi);
      const created = registry.create(name, def, undefined);
      await back();
      assert.deepEqual(await created, def, 'the definition that won is ours');
      assert.deepEqual(JSON.parse((await plain.getData(`/swarmvol-registry/volumes/${name}`)).data.toString()), def);

      back = loseNext(proxy, lost, 'the record of use', OpCode.create2);
      const recorded = registry.recordMount(name, 1);
      await back();
      await recorded;
      const record = await plain.getData(`/swarmvol-registry/mounts/${name}/node-1`);
      assert.equal(record.data.toString(), '1');
      assert.notEqual(record.stat.ephemeralOwner, 0n, 'an ephemeral record');
      assert.deepEqual((await plain.getChildren(`/swarmvol-registry/mounts/${name}`)).children, ['node-1'], 'what other nodes see');

      back = loseNext(proxy, lost, "the record's removal", OpCode.delete);
      const cleared = registry.recordMount(name, 0);
      await back();
      await cleared;
      assert.equal(await plain.exists(`/swarmvol-registry/mounts/${name}/node-1`), null);

      back = loseNext(proxy, lost, "the volume's removal", OpCode.delete);
      const removed = registry.remove(name);
      await back();
      await removed;
      assert.equal(await plain.exists(`/swarmvol-registry/volumes/${name}`), null);
      assert.equal(await registry.get(name), undefined);
    });
  }
});
