// bench/zookeeper/epoch-cost: what the directory epoch (src/backends/zookeeper/dir-epoch.ts)
// costs a node that writes while another node removes directories. Every rmdir
// raises the epoch, and the writer's next transaction then fails once on it,
// reads it again and is sent again. Node B writes FILES new files while node A
// runs `rm -rf` of a tree of DIRS directories (one file each), and, as the
// reference, of a tree of 2*DIRS files (the same number of removals, none of
// which raises the epoch). Each side also runs alone. Requests are counted by
// the server (mntr zk_packets_received): what both send together beyond what
// each sends alone is what their meeting cost. Variants take turns for ROUNDS
// rounds on one server; medians.
//
//   npm run build && sudo node dist/bench/zookeeper/epoch-cost.js
//   FILES=1000 DIRS=500 ROUNDS=3 (defaults)

import path from 'node:path';
import { sh } from '../../test/helpers/mount.js';
import { startTwoNodes } from '../../test/helpers/zookeeper.js';

const FILES = Number(process.env.FILES ?? 1000);
const DIRS = Number(process.env.DIRS ?? 500);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

const nodes = await startTwoNodes('/epoch');
const { zk, a, b } = nodes;

async function run(command: string): Promise<number> {
  const t0 = performance.now();
  const r = await sh(command, { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`${command}: exit ${r.code}: ${r.stderr}`);
  return performance.now() - t0;
}

/** A tree on A to remove: DIRS directories holding one file each, or 2*DIRS files. */
async function makeTree(name: string, kind: 'dirs' | 'files'): Promise<string> {
  const root = path.join(a.mnt, name);
  const body = kind === 'dirs' ? 'mkdir d$i && echo x > d$i/f' : 'echo x > f$i && echo x > g$i';
  await run(`mkdir ${root} && cd ${root} && for i in $(seq ${DIRS}); do ${body}; done`);
  return root;
}

const write = (name: string) => `mkdir ${path.join(b.mnt, name)} && cd ${path.join(b.mnt, name)} && for i in $(seq ${FILES}); do echo data > f$i; done`;

interface Sample {
  writerMs?: number;
  removerMs?: number;
  requests: number;
}

const variants: Record<string, (r: number) => Promise<Sample>> = {};
const measured = async (fn: () => Promise<Omit<Sample, 'requests'>>): Promise<Sample> => {
  const r0 = await zk.requestsReceived();
  const s = await fn();
  return { ...s, requests: (await zk.requestsReceived()) - r0 };
};
variants['B writes alone'] = (r) => measured(async () => ({ writerMs: await run(write(`alone-${r}`)) }));
for (const kind of ['dirs', 'files'] as const) {
  variants[`A removes ${kind} alone`] = async (r) => {
    const tree = await makeTree(`${kind}-alone-${r}`, kind);
    return measured(async () => ({ removerMs: await run(`rm -rf ${tree}`) }));
  };
  variants[`B writes while A removes ${kind}`] = async (r) => {
    const tree = await makeTree(`${kind}-both-${r}`, kind);
    return measured(async () => {
      const [writerMs, removerMs] = await Promise.all([run(write(`while-${kind}-${r}`)), run(`rm -rf ${tree}`)]);
      return { writerMs, removerMs };
    });
  };
}

try {
  await run(write('warm-up'));
  const samples = new Map<string, Sample[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, fn] of Object.entries(variants)) samples.set(name, [...(samples.get(name) ?? []), await fn(r)]);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
  const med = (name: string, key: keyof Sample) => median(samples.get(name)!.map((s) => s[key] ?? 0));
  console.log(`B writes ${FILES} files while A runs rm -rf of ${DIRS} directories (one file each) or of ${2 * DIRS} files; median of ${ROUNDS} rounds`);
  console.log(`${'variant'.padEnd(36)} ${'B ms'.padStart(7)} ${'A ms'.padStart(7)} ${'requests'.padStart(9)}`);
  for (const name of samples.keys()) {
    const w = med(name, 'writerMs');
    const rm = med(name, 'removerMs');
    console.log(`${name.padEnd(36)} ${(w ? w.toFixed(0) : '-').padStart(7)} ${(rm ? rm.toFixed(0) : '-').padStart(7)} ${med(name, 'requests').toFixed(0).padStart(9)}`);
  }
  const alone = med('B writes alone', 'writerMs');
  for (const kind of ['dirs', 'files']) {
    const both = `B writes while A removes ${kind}`;
    const extra = med(both, 'requests') - med('B writes alone', 'requests') - med(`A removes ${kind} alone`, 'requests');
    console.log(`while A removes ${kind}: B's time ${(med(both, 'writerMs') / alone).toFixed(2)}x its time alone; requests beyond both alone: ${extra.toFixed(0)}`);
  }
} finally {
  await nodes.stop();
}
