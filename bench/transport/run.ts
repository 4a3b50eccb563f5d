// Measures the chosen /dev/fuse transport (epoll through libuv) against the
// threadpool alternative, on the same memory backend in the same run.
//
//   UV_THREADPOOL_SIZE=8 node dist/bench/transport/run.js WORKLOAD_BINARY
//
// WORKLOAD_BINARY is bench/cfs/workload.c built with gcc (run.sh does it).

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MemoryBackend } from '../../src/backends/memory/index.js';
import { NodeFileSystem } from '../../src/fs/nodes.js';
import type { FuseChannel } from '../../src/fuse/channel.js';
import { FuseSession } from '../../src/fuse/session.js';
import { ThreadpoolChannel } from './threadpool-channel.js';

const run = promisify(execFile);
const workload = process.argv[2];
if (!workload) {
  console.error('usage: node dist/bench/transport/run.js WORKLOAD_BINARY');
  process.exit(2);
}
const N = Number(process.env.N ?? 5000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const READERS = 4;

interface Transport {
  name: string;
  channel: ((fd: number) => FuseChannel) | undefined;
}

const transports: Transport[] = [
  { name: 'epoll', channel: undefined },
  { name: `threadpool x${READERS}`, channel: (fd) => new ThreadpoolChannel(fd, READERS) },
];

async function result(args: string[]): Promise<number> {
  const { stdout } = await run(workload!, args, { maxBuffer: 1 << 20 });
  const m = /^RESULT \S+ (\d+) ([\d.]+)/m.exec(stdout);
  if (!m) throw new Error(`no RESULT line from ${args.join(' ')}: ${stdout}`);
  return Number(m[1]) / Number(m[2]);
}

async function measure(t: Transport): Promise<Record<string, number>> {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmvol-transport-'));
  const nodes = new NodeFileSystem(new MemoryBackend(), { entryTimeout: 0, attrTimeout: 0, negativeTimeout: 0 });
  const session = new FuseSession(nodes, t.channel ? { channel: t.channel } : {});
  nodes.setNotifier(session);
  await session.mount(mnt);
  const best: Record<string, number> = {};
  const keep = (k: string, v: number) => (best[k] = Math.max(best[k] ?? 0, v));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const dir = path.join(mnt, `r${r}`);
      await fs.promises.mkdir(dir);
      keep('create (1 client)', await result(['create', dir, String(N)]));
      keep('stat, no cache (1 client)', await result(['stat', dir, String(N)]));
      const pdir = path.join(mnt, `p${r}`);
      await fs.promises.mkdir(pdir);
      keep('create (2 clients)', await result(['parallel-create', pdir, String(N), '2']));
    }
  } finally {
    await session.unmount();
    fs.rmSync(mnt, { recursive: true, force: true });
  }
  return best;
}

const results: Array<Record<string, number>> = [];
for (const t of transports) results.push(await measure(t));
const keys = Object.keys(results[0]!);
console.log(`transport comparison, memory backend, timeouts 0, N=${N}, best of ${ROUNDS}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4}`);
console.log(['workload'.padEnd(28), ...transports.map((t) => t.name.padStart(16)), 'epoll/threadpool'.padStart(18)].join(''));
for (const k of keys) {
  const [a, b] = [results[0]![k]!, results[1]![k]!];
  const unit = k.endsWith('ms') ? '' : '/s';
  console.log([k.padEnd(28), ...[a, b].map((v) => (v.toFixed(k.endsWith('ms') ? 3 : 0) + unit).padStart(16)), (k.endsWith('ms') ? '' : (a / b).toFixed(2) + 'x').padStart(18)].join(''));
}
