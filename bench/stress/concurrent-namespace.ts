// A stress tool, not part of the test suite (it still finds races: see
// bench/README.md, "Stress"). Writers racing on one small tree from two nodes at once: creates, writes,
// renames, removals, symlinks, chmod, descriptors kept open, each writer a
// process of its own (bench/stress/namespace-worker.ts). Races have no single
// right outcome, so what is checked is what must hold whatever the order:
// every failure is an errno a local file system gives for such races, or the
// documented ESTALE (never EIO), and once the writers stop, both nodes and a fresh mount (no caches:
// what ZooKeeper holds) show the same tree. With STRESS_CUTS=1, node A reaches ZooKeeper through a
// proxy that cuts its connection at random moments (bench/stress/flaky-proxy.ts), within its session.
// With STRESS_LARGE=1, writers also write files stored in chunks, and the chunk store must hold
// exactly what the files use once they stop. With STRESS_FSCK=1 too, `swarmvol fsck --repair
// --min-age 0` runs over and over while they write: it must never find a file damaged, and
// the files must keep every chunk.

import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chunkNames, decodeManifest } from '../../src/backends/zookeeper/chunks.js';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { fsckVolume } from '../../src/backends/zookeeper/fsck.js';
import { ErrorCode, ZkError } from '../../src/backends/zookeeper/client/protocol.js';
import { CHUNKS_NAME } from '../../src/backends/zookeeper/layout.js';
import { mountCli } from '../../test/helpers/mount.js';
import { snapshot } from '../../test/helpers/namespace-exerciser.js';
import { eventually } from '../../test/helpers/posix.js';
import { startTwoNodes } from '../../test/helpers/zookeeper.js';
import { watchLayout } from './layout-watch.js';
import { RACE_ERRNOS } from './race-errnos.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'namespace-worker.js');
const FLAKY_PROXY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'flaky-proxy.js');
const CUTS = process.env.STRESS_CUTS === '1';
/** Writers write large files too (see namespace-worker.ts); the chunk store is checked for leftovers. */
const LARGE = process.env.STRESS_LARGE === '1';
const FSCK = process.env.STRESS_FSCK === '1';
/** Node A's session outlives every cut of the proxy (at most 0.8 s, and the client's back-off). */
const CUT_SESSION_TIMEOUT_S = 20;

/** The end of a mount's log, without its reconnect lines (one per cut with STRESS_CUTS). */
const logTail = (log: string) => {
  const lines = log.split('\n').filter((l) => !l.includes('reconnected to ZooKeeper'));
  // Why each EIO was answered, wherever it is in the log: the tail may not reach back to it.
  const eio = lines.filter((l) => l.includes('answered EIO')).slice(0, 20);
  return `${eio.length > 0 ? `EIO answered:\n${eio.join('\n')}\n...\n` : ''}${lines.join('\n').slice(-3000)}`;
};

/**
 * What the chunk store of volume `vol` still holds that nothing needs, with
 * every writer stopped and every file closed: chunks no file's manifest
 * uses, pins, commits still pending, garbage not collected; and chunks a
 * manifest uses that are missing.
 */
async function chunkStoreLeftovers(zk: ZkClient, vol: string): Promise<string[]> {
  const store = `${vol}/${CHUNKS_NAME}`;
  const used = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    const { children } = await zk.getChildren(dir);
    await Promise.all(
      children
        .filter((name) => `${dir}/${name}` !== store)
        .map(async (name) => {
          for (const chunk of chunkNames(decodeManifest((await zk.getData(`${dir}/${name}`)).data))) used.add(chunk);
          await walk(`${dir}/${name}`);
        }),
    );
  };
  await walk(vol);
  const list = async (sub: string) => {
    try {
      return (await zk.getChildren(`${store}/${sub}`)).children;
    } catch (err) {
      if (err instanceof ZkError && err.code === ErrorCode.NONODE) return [];
      throw err;
    }
  };
  const [chunks, pins, pending, gc] = await Promise.all(['c', 'pin', 'pending', 'gc'].map(list));
  const stored = new Set(chunks);
  return [
    ...chunks.filter((c) => !used.has(c)).map((c) => `chunk ${c}, used by no file`),
    ...[...used].filter((c) => !stored.has(c)).map((c) => `chunk ${c} MISSING`),
    ...pins.map((p) => `pin ${p}`),
    ...pending.map((p) => `pending commit ${p}`),
    ...gc.map((g) => `garbage record ${g}`),
  ];
}

interface FlakyProxy {
  port: number;
  /** Stops cutting; returns the number of cuts made. */
  calm(): number;
  close(): void;
}

async function startFlakyProxy(targetPort: number, seed: number): Promise<FlakyProxy> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [FLAKY_PROXY, String(targetPort), String(seed)], { stdio: 'pipe' });
  const lines = readline.createInterface({ input: child.stdout });
  let cuts = 0;
  const port = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    lines.once('line', (l) => resolve(Number(l)));
  });
  lines.on('line', (l) => void (l.startsWith('cut ') && cuts++));
  return {
    port,
    calm: () => {
      child.stdin.write('calm\n');
      return cuts;
    },
    close: () => child.stdin.end(),
  };
}
const WRITERS_PER_NODE = 3;
const OPS = Number(process.env.CONCURRENT_OPS ?? 1500);
const SEED = Number(process.env.CONCURRENT_SEED ?? 20261130);

interface WorkerReport {
  counts: Record<string, number>;
  examples: Record<string, string>;
}

function runWorker(root: string, seed: number): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, root, String(seed), String(OPS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`writer ${seed} exited with ${code}: ${err}`));
      resolve(JSON.parse(out) as WorkerReport);
    });
  });
}

/**
 *   npm run build && sudo node dist/bench/stress/concurrent-namespace.js
 *   CONCURRENT_OPS=1500 CONCURRENT_SEED=20261130 ROUNDS=1
 * Exits 1 at the first round that breaks a rule, with what it saw.
 */
async function round(seed: number): Promise<string> {
  let proxy: FlakyProxy | undefined;
  const nodes = await startTwoNodes(
    '/race',
    CUTS
      ? async (zk) => {
          proxy = await startFlakyProxy(zk.port, seed);
          return ['--hosts', `127.0.0.1:${proxy.port}`, '--session-timeout', String(CUT_SESSION_TIMEOUT_S)];
        }
      : [],
  );
  let layout: ReturnType<typeof watchLayout> | undefined;
  /** What the round did besides the writes (cuts, fsck runs), for its summary line. */
  let extras = '';
  try {
    const { a, b, zk } = nodes;
    layout = watchLayout(nodes.plain, '/race');
    const writers = [a.mnt, b.mnt].flatMap((mnt, n) => Array.from({ length: WRITERS_PER_NODE }, (_, i) => runWorker(mnt, seed + n * WRITERS_PER_NODE + i)));
    const totals: Record<string, number> = {};
    const examples: string[] = [];
    const repairs = FSCK ? repairWhile(zk.connectString, Promise.allSettled(writers)) : undefined;
    const reports = await Promise.all(writers);
    if (repairs) {
      const { runs, unsettled, deleted, damaged } = await repairs;
      assert.deepEqual(damaged, [], 'fsck found files damaged while the writers ran');
      extras += `, ${runs} fsck repairs during the writes (${unsettled} unsettled, ${deleted} chunks deleted)`;
    }
    // The comparisons below happen with A connected: its caches must have caught up by then.
    if (proxy) extras += `, ${proxy.calm()} cuts of node A's connection`;
    for (const [n, r] of reports.entries()) {
      for (const [k, v] of Object.entries(r.counts)) totals[k] = (totals[k] ?? 0) + v;
      for (const [k, v] of Object.entries(r.examples)) examples.push(`writer ${n} (node ${n < WRITERS_PER_NODE ? 'A' : 'B'}): ${k}: ${v}`);
    }

    const unexpected = Object.entries(totals).filter(([k]) => {
      const result = k.slice(k.indexOf(' ') + 1).replace(/ \(.*\)$/, '');
      return result !== 'OK' && !RACE_ERRNOS.has(result);
    });
    const broken = await layout.stop();
    if (broken.length > 0) {
      // The server's transaction log tells which transaction did it (bench/README.md, "Stress").
      const kept = `/tmp/stress-zk-${seed}`;
      fs.cpSync(zk.dataDir, kept, { recursive: true });
      assert.fail(`symlinks broken in ZooKeeper (server data kept in ${kept}):\n${broken.join('\n')}\n${examples.join('\n')}`);
    }
    const succeeded = Object.entries(totals).filter(([k]) => k.endsWith(' OK')).reduce((n, [, v]) => n + v, 0);
    assert.ok(succeeded > OPS, `the writers did something: ${JSON.stringify(totals)}`);

    // The trees are compared even after unusual answers: whether something wrong stayed tells where to look.
    let trees = 'one tree on both nodes and in ZooKeeper';
    try {
      eventually(() => assert.deepEqual(Object.fromEntries(snapshot(b.mnt)), Object.fromEntries(snapshot(a.mnt)), 'both nodes show the same tree'), 10_000);
      const fresh = await mountCli(['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', '/race']);
      try {
        assert.deepEqual(Object.fromEntries(snapshot(fresh.mnt)), Object.fromEntries(snapshot(a.mnt)), 'a fresh mount (what ZooKeeper holds) shows that tree too');
      } finally {
        assert.equal(await fresh.stop(), 0, fresh.output());
      }
    } catch (err) {
      if (unexpected.length === 0) throw err;
      trees = `and the trees differ: ${(err as Error).message}`;
    }
    if (LARGE) {
      // Pins go and garbage is collected in the background after the last close.
      const t0 = performance.now();
      let left = await chunkStoreLeftovers(nodes.plain, '/race');
      while (left.length > 0 && performance.now() - t0 < 15_000) {
        await new Promise((r) => setTimeout(r, 500));
        left = await chunkStoreLeftovers(nodes.plain, '/race');
      }
      if (left.length > 0) {
        // The server's transaction log tells which transaction dropped them (bench/README.md, "Stress").
        const kept = `/tmp/stress-zk-${seed}`;
        fs.cpSync(zk.dataDir, kept, { recursive: true });
        left.push(`(server data kept in ${kept})`);
      }
      assert.deepEqual(left.slice(-21), [], `the chunk store keeps ${left.length} things nothing needs 15 s after the writers stopped\nnode A:\n${logTail(a.output())}\nnode B:\n${logTail(b.output())}`);
    }
    assert.deepEqual(unexpected, [], `answers no local file system gives: ${JSON.stringify(unexpected)}\n${examples.join('\n')}\n(${trees})\nall: ${JSON.stringify(totals)}\nnode A:\n${logTail(a.output())}\nnode B:\n${logTail(b.output())}`);
    return extras;
  } finally {
    await layout?.stop().catch(() => undefined);
    await nodes.stop();
    proxy?.close();
  }
}

/** `swarmvol fsck --repair --min-age 0` over and over until `writing` settles. */
async function repairWhile(connectString: string, writing: Promise<unknown>): Promise<{ runs: number; unsettled: number; deleted: number; damaged: string[] }> {
  const zk = new ZkClient({ connectString });
  await zk.connect();
  let done = false;
  void writing.then(() => (done = true));
  const result = { runs: 0, unsettled: 0, deleted: 0, damaged: [] as string[] };
  try {
    while (!done) {
      const r = await fsckVolume(zk, '/race', { repair: true, minAgeMs: 0 });
      result.runs++;
      if (!r.settled) result.unsettled++;
      result.deleted += r.deleted;
      for (const d of r.damaged) result.damaged.push(`${d.path}: ${d.missing.join(', ')}`);
    }
  } catch (err) {
    // Reported with the round's other findings, once the writers are done.
    result.damaged.push(`fsck failed: ${(err as Error).message}`);
  } finally {
    zk.close();
  }
  return result;
}

const ROUNDS = Number(process.env.ROUNDS ?? 1);
for (let r = 0; r < ROUNDS; r++) {
  const seed = SEED + r * 1000;
  try {
    const extras = await round(seed);
    console.log(`round ${r + 1} (seed ${seed}): only race errnos, one tree on both nodes and in ZooKeeper${LARGE ? ", the chunk store holds what the files use" : ""}${extras}`);
  } catch (err) {
    console.error(`round ${r + 1} (seed ${seed}) failed:\n${(err as Error).message}`);
    process.exit(1);
  }
}
