// bench/zookeeper/create-cost: what the request a mount sends for a new file
// costs ZooKeeper, against a bare create. The mount's is one multi: a check
// that the directory still has its marker (else another node replaced it and
// the file would turn that into a directory), the create, and a setData of the
// content (a create in a multi answers without a Stat; the setData answers
// with one). Each variant writes FILES files one after another, the variants
// take turns for ROUNDS rounds on one server; medians and ratios to create2.
//
//   npm run build && sudo node dist/bench/zookeeper/create-cost.js
//   FILES=1000 ROUNDS=9 FILE_SIZE=1024 (defaults)

import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { type MultiOp, OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { MARKER_NAME } from '../../src/backends/zookeeper/layout.js';
import { startZooKeeper } from '../../test/helpers/zookeeper.js';

const FILES = Number(process.env.FILES ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 9);
const FILE_SIZE = Number(process.env.FILE_SIZE ?? 1024);

const zk = await startZooKeeper();
const client = new ZkClient({ connectString: zk.connectString });
try {
  await client.connect();
  const marker = `/bench/${MARKER_NAME}`;
  await client.multi([
    { op: 'create', path: '/bench', data: Buffer.alloc(0), acl: OPEN_ACL_UNSAFE },
    { op: 'create', path: marker, data: Buffer.alloc(0), acl: OPEN_ACL_UNSAFE },
  ]);
  const content = (i: number) => Buffer.from(`${i}:`.padEnd(FILE_SIZE, 'x'));
  const create = (path: string, data: Buffer): MultiOp => ({ op: 'create', path, data, acl: OPEN_ACL_UNSAFE });
  const variants: Record<string, (path: string, data: Buffer) => Promise<unknown>> = {
    'create2 (bare)': (p, d) => client.create(p, d, OPEN_ACL_UNSAFE),
    'multi(create)': (p, d) => client.multi([create(p, d)]),
    'multi(check, create)': (p, d) => client.multi([{ op: 'check', path: marker, version: -1 }, create(p, d)]),
    'multi(check, create, setData): the mount': (p, d) =>
      client.multi([{ op: 'check', path: marker, version: -1 }, create(p, Buffer.alloc(0)), { op: 'setData', path: p, data: d, version: 0 }]),
  };
  const times = new Map<string, number[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [v, [name, write]] of Object.entries(variants).entries()) {
      const t0 = performance.now();
      for (let i = 0; i < FILES; i++) await write(`/bench/${r}-${v}-${i}`, content(i));
      times.set(name, [...(times.get(name) ?? []), performance.now() - t0]);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const reference = median(times.get('create2 (bare)')!);
  console.log(`${FILES} files of ${FILE_SIZE} B written one after another, median of ${ROUNDS} rounds (variants take turns)`);
  for (const [name, xs] of times) console.log(`${name.padEnd(42)} ${median(xs).toFixed(0).padStart(6)} ms   ratio ${(median(xs) / reference).toFixed(2)}`);
} finally {
  client.close();
  await zk.destroy();
}
