// bench/zookeeper/list-cost: what the ZooKeeper backend's own work costs per
// listed entry, without FUSE. A cold walk of a DIRS x FILES tree (readdir, then
// the lookup READDIRPLUS makes of each entry) through a fresh backend, against
// a plain client making the reads a careful client would (getChildren, then
// the entries' data in multiReads of 32, all in flight) in the same process.
// Both measure this process's CPU time (user + system) and wall time; they
// take turns for ROUNDS rounds and the medians of the last half are printed
// (the first rounds run in V8's lower tiers).
//
//   npm run build && sudo node dist/bench/zookeeper/list-cost.js
//   DIRS=50 FILES=99 ROUNDS=40 (defaults)

import type { Lookup } from '../../src/fs/backend.js';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { RESERVED_NAMES } from '../../src/backends/zookeeper/layout.js';
import type { ZkNode, ZooKeeperBackend } from '../../src/backends/zookeeper/index.js';
import { openBackend, rootContext, startZooKeeper } from '../../test/helpers/zookeeper.js';

const DIRS = Number(process.env.DIRS ?? 50);
const FILES = Number(process.env.FILES ?? 99);
const ROUNDS = Number(process.env.ROUNDS ?? 40);
const BATCH = 32;
const ENTRIES = DIRS * (FILES + 1);
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

/** Lists `dir` and looks up each entry as READDIRPLUS does; returns the entries seen below it. */
async function walkBackend(backend: ZooKeeperBackend, dir: ZkNode): Promise<number> {
  const entries = await backend.readdir(rootContext, dir);
  let seen = 0;
  for (let i = 0; i < entries.length; i++) {
    const name = entries[i]!.name;
    if (name === '.' || name === '..') continue;
    const found: Lookup<ZkNode> | undefined = backend.listedLookup(dir, entries, i) ?? (await backend.lookup(rootContext, dir, name));
    if (!found) continue;
    seen++;
    if ((found.attr.mode & S_IFMT) === S_IFDIR) seen += await walkBackend(backend, found.node);
  }
  return seen;
}

/** The same tree read by a plain client: children, then their data (and Stats) in multiReads. */
async function walkRaw(client: ZkClient, path: string): Promise<number> {
  const { children } = await client.getChildren(path);
  // The backend's own znodes (the epoch it makes at the root) are no entries.
  const paths = children.filter((c) => !RESERVED_NAMES.has(c)).map((c) => `${path}/${c}`);
  const batches: Array<Promise<unknown[]>> = [];
  for (let i = 0; i < paths.length; i += BATCH) batches.push(client.multiRead(paths.slice(i, i + BATCH).map((p) => ({ op: 'getData' as const, path: p }))));
  const results = (await Promise.all(batches)).flat();
  let seen = results.length;
  for (let i = 0; i < results.length; i++) {
    const r = results[i] as { stat?: { numChildren: number } };
    if (r.stat && r.stat.numChildren > 0) seen += await walkRaw(client, paths[i]!);
  }
  return seen;
}

/** A walker made ready on a new session (outside the time measured), and what ends it. */
type Prepare = (client: ZkClient) => Promise<{ walk: () => Promise<number>; close: () => Promise<void> }>;

async function measure(prepare: Prepare, connectString: string): Promise<{ cpu: number; wall: number }> {
  const client = new ZkClient({ connectString });
  await client.connect();
  const { walk, close } = await prepare(client);
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const seen = await walk();
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if (seen !== ENTRIES) throw new Error(`walked ${seen} entries, expected ${ENTRIES}`);
    return { cpu: (cpu.user + cpu.system) / 1000, wall };
  } finally {
    await close();
    client.close();
  }
}

const zk = await startZooKeeper();
const setup = new ZkClient({ connectString: zk.connectString });
try {
  await setup.connect();
  await setup.create('/bench', Buffer.alloc(0), OPEN_ACL_UNSAFE);
  for (let d = 0; d < DIRS; d++) {
    await setup.create(`/bench/d${d}`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
    await Promise.all(Array.from({ length: FILES }, (_, f) => setup.create(`/bench/d${d}/f${f}`, Buffer.from(`${d}/${f}`), OPEN_ACL_UNSAFE)));
  }
  const variants: Record<string, Prepare> = {
    'backend (fresh per round)': async (client) => {
      const backend = await openBackend(client, '/bench');
      return { walk: () => walkBackend(backend, backend.root), close: () => backend.close() };
    },
    'plain client, same reads': async (client) => ({ walk: () => walkRaw(client, '/bench'), close: async () => undefined }),
  };
  const runs = new Map<string, Array<{ cpu: number; wall: number }>>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, walk] of Object.entries(variants)) runs.set(name, [...(runs.get(name) ?? []), await measure(walk, zk.connectString)]);
  }
  const median = (xs: number[]) => {
    const late = xs.slice(xs.length >> 1).sort((a, b) => a - b);
    return late[late.length >> 1]!;
  };
  const reference = runs.get('plain client, same reads')!;
  const refCpu = median(reference.map((x) => x.cpu));
  console.log(`cold walk of ${ENTRIES} entries (${DIRS} directories of ${FILES} files), medians of the last ${ROUNDS - (ROUNDS >> 1)} of ${ROUNDS} rounds (variants take turns)`);
  for (const [name, xs] of runs) {
    const cpu = median(xs.map((x) => x.cpu));
    const wall = median(xs.map((x) => x.wall));
    console.log(
      `${name.padEnd(28)} cpu ${cpu.toFixed(1).padStart(6)} ms (${((cpu * 1000) / ENTRIES).toFixed(2)} µs/entry)   wall ${wall.toFixed(1).padStart(6)} ms   cpu ratio ${(cpu / refCpu).toFixed(2)}`,
    );
  }
} finally {
  setup.close();
  await zk.destroy();
}
