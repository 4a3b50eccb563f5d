// bench/zookeeper/fsck-cost: what `swarmvol fsck` costs on a volume of FILES
// small files in directories of 100, plus LARGE large files: its time and
// requests (mntr zk_packets_received) against a plain client that reads the
// same tree the same way (getChildren of each directory, getData of every
// znode, 8 in flight per directory), the least a check of every manifest
// needs. After a warm-up pass of each, variants take turns for ROUNDS
// rounds, each round starting with the next; medians.
//
//   npm run build && sudo node dist/bench/zookeeper/fsck-cost.js
//   FILES=5000 LARGE=4 ROUNDS=3 (defaults)

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { runPipelined } from '../../src/backends/zookeeper/chunks.js';
import { fsckVolume } from '../../src/backends/zookeeper/fsck.js';
import { CHUNKS_NAME, EPOCH_NAME, joinPath, LOCKS_NAME } from '../../src/backends/zookeeper/layout.js';
import { mountCli } from '../../test/helpers/mount.js';
import { startZooKeeper } from '../../test/helpers/zookeeper.js';

const FILES = Number(process.env.FILES ?? 5000);
const LARGE = Number(process.env.LARGE ?? 4);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const VOL = '/fsck-cost';

const zk = await startZooKeeper();
const client = new ZkClient({ connectString: zk.connectString });
await client.connect();
try {
  // The small files straight from a plain client (faster than through a mount), the large ones through one.
  await client.create(VOL, Buffer.alloc(0), OPEN_ACL_UNSAFE);
  for (let d = 0; d < Math.ceil(FILES / 100); d++) {
    await client.create(`${VOL}/d${d}`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
    const names = Array.from({ length: Math.min(100, FILES - d * 100) }, (_, i) => `${VOL}/d${d}/f${i}`);
    await runPipelined(names, (p) => client.create(p, randomBytes(200), OPEN_ACL_UNSAFE), 64);
  }
  const mount = await mountCli(['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', VOL]);
  try {
    for (let i = 0; i < LARGE; i++) fs.writeFileSync(path.join(mount.mnt, `large${i}`), randomBytes(3 * 1024 * 1024));
  } finally {
    await mount.stop();
  }

  const skipAtTop = new Set([CHUNKS_NAME, LOCKS_NAME, EPOCH_NAME]);
  const plainWalk = async (p: string, top: boolean): Promise<void> => {
    const { stat } = await client.getData(p);
    if (stat.numChildren === 0) return;
    const { children } = await client.getChildren(p);
    await runPipelined(
      children.filter((c) => !(top && skipAtTop.has(c))).map((c) => joinPath(p, c)),
      (c) => plainWalk(c, false),
    );
  };
  const variants: Record<string, () => Promise<unknown>> = {
    'plain client, same reads': () => plainWalk(VOL, true),
    'swarmvol fsck': () => fsckVolume(client, VOL, { repair: false, minAgeMs: 600_000 }),
    'swarmvol fsck --repair': () => fsckVolume(client, VOL, { repair: true, minAgeMs: 600_000 }),
  };
  const samples = new Map<string, { ms: number; requests: number }[]>();
  // One unmeasured pass of each warms the JIT and the server; then each round starts with another variant.
  for (const run of Object.values(variants)) await run();
  const order = Object.entries(variants);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, run] of [...order.slice(r % order.length), ...order.slice(0, r % order.length)]) {
      const r0 = await zk.requestsReceived();
      const t0 = performance.now();
      await run();
      const ms = performance.now() - t0;
      const requests = (await zk.requestsReceived()) - r0;
      samples.set(name, [...(samples.get(name) ?? []), { ms, requests }]);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ref = median(samples.get('plain client, same reads')!.map((s) => s.ms));
  console.log(`${FILES} small files in directories of 100, ${LARGE} files of 3 MiB; medians of ${ROUNDS} rounds`);
  console.log('variant                     time      requests  ratio');
  for (const [name, s] of samples) {
    const ms = median(s.map((x) => x.ms));
    console.log(`${name.padEnd(27)} ${ms.toFixed(0).padStart(6)} ms ${String(median(s.map((x) => x.requests))).padStart(9)}  ${(ms / ref).toFixed(2)}`);
  }
} finally {
  client.close();
  await zk.destroy();
}
