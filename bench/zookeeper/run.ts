// bench/zookeeper: what a swarmvol mount costs over the ZooKeeper requests it
// makes. Each workload runs through a mount and, in the same run against the
// same server, through a plain ZooKeeper client issuing the same requests in
// the same order and with the same pipelining (the physical limit), plus the
// fewest requests a hand-written client would need. Wall time and requests
// (counted by the server: mntr zk_packets_received) for each.
//
//   npm run build && sudo node dist/bench/zookeeper/run.js
//   FILES=1000 TREE_DIRS=50 TREE_FILES=99 FILE_SIZE=1024 LARGE_MB=32 REPS=3 WARMUP=3 (defaults)

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { chunkSizeFor, DEFAULT_MAX_REQUEST, runPipelined } from '../../src/backends/zookeeper/chunks.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { LIST_BATCHES_IN_FLIGHT, maxBatchOps, PROBE_OPS } from '../../src/backends/zookeeper/batch-reads.js';
import { DEFAULT_READ_AHEAD, LIST_AHEAD_AFTER, LIST_AHEAD_WINDOW, READ_AHEAD_AFTER, READ_AHEAD_WINDOW } from '../../src/backends/zookeeper/read-ahead.js';
import { startZooKeeper, type ZooKeeperServer } from '../../test/helpers/zookeeper.js';

const FILES = Number(process.env.FILES ?? 1000);
const TREE_DIRS = Number(process.env.TREE_DIRS ?? 50);
const TREE_FILES = Number(process.env.TREE_FILES ?? 99);
const FILE_SIZE = Number(process.env.FILE_SIZE ?? 1024);
const REPS = Number(process.env.REPS ?? 3);
const LARGE_MB = Number(process.env.LARGE_MB ?? 32);
/** Unmeasured passes over other files that warm up each fresh mount first (compiled code, as in a daemon that has run for a while). */
const WARMUP = Number(process.env.WARMUP ?? 3);
/** More options for every mount, swarmvol's and the memory one (e.g. MOUNT_ARGS='--busy-poll 0'). */
const MOUNT_ARGS = (process.env.MOUNT_ARGS ?? '').split(' ').filter((a) => a !== '');
const warmups = Array.from({ length: WARMUP }, (_, i) => `warm${i}`);
/** Chunk size of large files under the default server limit (512 KiB). */
const CHUNK = chunkSizeFor(DEFAULT_MAX_REQUEST);
/** getData per multiRead (listings' Stats, read-ahead). */
const MAX_OPS = maxBatchOps(DEFAULT_MAX_REQUEST);
/** Chunk reads the mount keeps in flight: the one needed and three read ahead (creates on commit: runPipelined's default, as the mount). */
const READ_PIPELINE = 4;
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/swarmvol');

interface Measure {
  ms: number;
  requests: number;
}

interface Row {
  workload: string;
  swarmvol: Measure;
  same: Measure;
  minimal: Measure;
  /** The same file operations on a memory-backend mount: what FUSE and the node layer cost without ZooKeeper. */
  fuseOnly?: Measure;
  /** Bytes moved (large-file rows print MB/s). */
  bytes?: number;
}

async function requests(zk: ZooKeeperServer): Promise<number> {
  return (await zk.mntr()).zk_packets_received as number;
}

/** Runs `fn` and counts what the server received meanwhile (the second mntr counts itself as a packet: taken off). */
async function measure(zk: ZooKeeperServer, fn: () => Promise<void> | void): Promise<Measure> {
  const r0 = await requests(zk);
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  return { ms, requests: (await requests(zk)) - r0 - 1 };
}

async function best(zk: ZooKeeperServer, fn: (rep: number) => Promise<void> | void, setup?: (rep: number) => Promise<void>): Promise<Measure> {
  let out: Measure | undefined;
  for (let rep = 0; rep < REPS; rep++) {
    await setup?.(rep);
    const m = await measure(zk, () => fn(rep));
    if (!out || m.ms < out.ms) out = m;
  }
  return out!;
}

/** The fastest of REPS measurements `fn` makes itself (e.g. inside a fresh mount). */
async function fastest(fn: (rep: number) => Promise<Measure>): Promise<Measure> {
  let out: Measure | undefined;
  for (let rep = 0; rep < REPS; rep++) {
    const m = await fn(rep);
    if (!out || m.ms < out.ms) out = m;
  }
  return out!;
}

class Mount {
  private constructor(
    readonly mnt: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(zk: ZooKeeperServer | undefined, root: string): Promise<Mount> {
    const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmvol-bench-'));
    // The memory backend without extended attributes, like the ZooKeeper backend: otherwise the
    // kernel asks for them on every new file and `ls -l` asks twice per entry.
    const backend = zk ? ['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', root] : ['--backend', 'memory', '--negative-timeout', '3600', '--no-xattrs'];
    const child = spawn(CLI, ['mount', ...backend, ...MOUNT_ARGS, mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const t0 = Date.now();
    while (!/ info mounted /.test(out)) {
      if (Date.now() - t0 > 15_000 || child.exitCode !== null) throw new Error(`mount failed:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return new Mount(mnt, child);
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.on('exit', r));
    this.child.kill('SIGTERM');
    await exited;
    fs.rmSync(this.mnt, { recursive: true, force: true });
  }
}

const payload = (i: number) => Buffer.from(`${i}:`.padEnd(FILE_SIZE, 'x'));
/** Writes FILES files (mkdir first), each as one writeFileSync: open(O_CREAT|O_TRUNC), write, close. */
const writeFiles = (dir: string) => {
  fs.mkdirSync(dir);
  for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(dir, `f${i}`), payload(i));
};
const readFiles = (dir: string) => {
  for (let i = 0; i < FILES; i++) fs.readFileSync(path.join(dir, `f${i}`));
};

/** getData of each path, MAX_OPS per multiRead. */
const multiReads = (c: ZkClient, paths: string[]) => {
  const batches: Array<Promise<unknown>> = [];
  for (let i = 0; i < paths.length; i += MAX_OPS) batches.push(c.multiRead(paths.slice(i, i + MAX_OPS).map((path) => ({ op: 'getData' as const, path }))));
  return Promise.all(batches);
};

/**
 * A production ensemble has run for days: its JVM has compiled the read paths.
 * A fresh one answers a multiRead several times slower for its first few
 * hundred (measured: 1,000 files read in multiReads, 40-75 ms on a fresh
 * server, 10 ms once warm), and the mount, measured first in each row, would
 * pay for it alone. So every kind of read the rows make runs a while first.
 */
async function warmUpServer(c: ZkClient): Promise<void> {
  const dir = '/warm-up-server';
  await c.create(dir, Buffer.alloc(0), OPEN_ACL_UNSAFE);
  const paths = Array.from({ length: 1000 }, (_, i) => `${dir}/f${i}`);
  await runPipelined(paths, (p) => c.create(p, Buffer.alloc(FILE_SIZE, 'x'), OPEN_ACL_UNSAFE), 64);
  for (let pass = 0; pass < 20; pass++) {
    await multiReads(c, paths);
    await runPipelined(paths, (p) => c.getData(p), 64);
    await runPipelined(paths, (p) => c.exists(p), 64);
    await c.getChildren(dir);
  }
}

async function main(): Promise<void> {
  // Room for the large-file rows: ZooKeeper holds their chunks, and its last 500 transactions, in memory.
  const zk = await startZooKeeper({ heap: '3g' });
  const c = new ZkClient({ connectString: zk.connectString });
  await c.connect();
  const rows: Row[] = [];
  try {
    await warmUpServer(c);
    // A fresh mount per measurement that must start cold (process and kernel caches empty).
    const coldMount = async <T>(root: string, fn: (m: Mount) => Promise<T> | T): Promise<T> => {
      const m = await Mount.start(zk, root);
      try {
        return await fn(m);
      } finally {
        await m.stop();
      }
    };

    const memoryMount = async <T>(fn: (m: Mount) => Promise<T>): Promise<T> => {
      const m = await Mount.start(undefined, '');
      try {
        return await fn(m);
      } finally {
        await m.stop();
      }
    };

    // ---- write FILES small files (create + write + close each) ----
    {
      // A fresh mount per repetition, warmed up first on sibling directories (a volume
      // daemon runs for days: its code is compiled, its caches hold other files); the
      // measured directory is new to it and to the kernel.
      const sv = await fastest((rep) => {
        const root = `/w${rep}`;
        return c.create(root, Buffer.alloc(0), OPEN_ACL_UNSAFE).then(() =>
          coldMount(root, (mount) => {
            for (const w of warmups) writeFiles(path.join(mount.mnt, w));
            return measure(zk, () => writeFiles(path.join(mount.mnt, 'data')));
          }),
        );
      });
      // The same requests, one round trip after another as a sequence of writeFileSync makes them:
      // the mkdir (the directory and its marker in one multi, fenced by the volume's directory
      // epoch, its Stat read in the same flight; the names of the root and of the new directory
      // are known, so missing names cost nothing), then per file, at close (a file made here
      // gets its znode from its first commit), the mount's transaction: the check of the
      // directory's marker, the create, the setData of the content (which gives the Stat) and
      // the epoch's check.
      const same = await best(zk, async (rep) => {
        const dir = `/ws${rep}/data`;
        const epoch = { op: 'check' as const, path: `/ws${rep}/.swarmvol-epoch`, version: 0 };
        await Promise.all([
          c.multi([
            { op: 'create', path: dir, data: Buffer.alloc(0), acl: OPEN_ACL_UNSAFE },
            { op: 'create', path: `${dir}/.swarmvol`, data: Buffer.alloc(0), acl: OPEN_ACL_UNSAFE },
            { op: 'setData', path: dir, data: Buffer.alloc(0), version: 0 },
            epoch,
          ]),
          c.exists(dir),
        ]);
        for (let i = 0; i < FILES; i++) {
          const file = `${dir}/f${i}`;
          await c.multi([
            { op: 'check', path: `${dir}/.swarmvol`, version: -1 },
            { op: 'create', path: file, data: Buffer.alloc(0), acl: OPEN_ACL_UNSAFE },
            { op: 'setData', path: file, data: payload(i), version: 0 },
            epoch,
          ]);
        }
      }, async (rep) => {
        await c.create(`/ws${rep}`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
        await c.create(`/ws${rep}/.swarmvol-epoch`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
      });
      const minimal = await best(zk, async (rep) => {
        await c.create(`/wm${rep}`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
        for (let i = 0; i < FILES; i++) await c.create(`/wm${rep}/f${i}`, payload(i), OPEN_ACL_UNSAFE);
      });
      const fuseOnly = await memoryMount(async (mount) => {
        writeFiles(path.join(mount.mnt, 'warm'));
        return best(zk, (rep) => writeFiles(path.join(mount.mnt, `w${rep}`)));
      });
      rows.push({ workload: `write ${FILES} files of ${FILE_SIZE} B`, swarmvol: sv, same, minimal, fuseOnly });
    }

    // ---- read FILES small files, cold (a new mount each time, warmed up on other files) ----
    {
      const sv = await fastest(() =>
        coldMount('/w0', (mount) => {
          for (const w of warmups) readFiles(path.join(mount.mnt, w));
          return measure(zk, () => readFiles(path.join(mount.mnt, 'data')));
        }),
      );
      // The directory's lookup (its data, and the root's attribute map is known from the
      // warm-up), its attribute map once, then per file one getData (the lookup fetches the
      // content, which the open then uses): the first READ_AHEAD_AFTER one after another,
      // then the read-ahead's listing and the other files, READ_AHEAD_WINDOW in flight
      // (those that answer together leave together: multiReads of MAX_OPS).
      const same = await best(zk, async () => {
        await c.getData('/w0/data');
        await c.getData('/w0/data/.swarmvol').catch(() => undefined);
        const cold = Math.min(READ_AHEAD_AFTER, FILES);
        for (let i = 0; i < cold; i++) await c.getData(`/w0/data/f${i}`);
        if (cold === FILES) return;
        const { children } = await c.getChildren('/w0/data');
        const read = new Set(['.swarmvol', ...Array.from({ length: cold }, (_, i) => `f${i}`)]);
        const ahead = children.filter((n) => !read.has(n)).sort().slice(0, DEFAULT_READ_AHEAD).map((n) => `/w0/data/${n}`);
        const batches: string[][] = [];
        for (let i = 0; i < ahead.length; i += MAX_OPS) batches.push(ahead.slice(i, i + MAX_OPS));
        await runPipelined(batches, (b) => multiReads(c, b), Math.max(1, Math.floor(READ_AHEAD_WINDOW / MAX_OPS)));
      });
      // Names known, all in flight at once.
      const minimal = await best(zk, async () => {
        await multiReads(c, Array.from({ length: FILES }, (_, i) => `/w0/data/f${i}`));
      });
      const fuseOnly = await memoryMount(async (mount) => {
        writeFiles(path.join(mount.mnt, 'warm'));
        writeFiles(path.join(mount.mnt, 'data'));
        readFiles(path.join(mount.mnt, 'warm'));
        return best(zk, () => readFiles(path.join(mount.mnt, 'data')), async () => fs.writeFileSync('/proc/sys/vm/drop_caches', '3'));
      });
      rows.push({ workload: `read ${FILES} files, cold`, swarmvol: sv, same, minimal, fuseOnly });
    }

    // ---- ls -lR of a tree, cold and warm ----
    {
      // Like trees: the mount is warmed up on the first ones, the last is measured.
      await c.create('/tree', Buffer.alloc(0), OPEN_ACL_UNSAFE);
      for (const top of [...warmups, 'data']) {
        await c.create(`/tree/${top}`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
        const creates: Array<Promise<unknown>> = [];
        for (let d = 0; d < TREE_DIRS; d++) {
          await c.create(`/tree/${top}/d${d}`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
          for (let f = 0; f < TREE_FILES; f++) creates.push(c.create(`/tree/${top}/d${d}/f${f}`, Buffer.from('x'), OPEN_ACL_UNSAFE));
        }
        await Promise.all(creates);
      }
      const entries = TREE_DIRS * (TREE_FILES + 1);
      const lsR = (dir: string) => new Promise<void>((resolve, reject) => {
        const p = spawn('ls', ['-lR', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
        p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ls exited ${code}`))));
      });
      let cold: Measure | undefined;
      let warm: Measure | undefined;
      for (let rep = 0; rep < REPS; rep++) {
        await coldMount('/tree', async (mount) => {
          for (const w of warmups) await lsR(path.join(mount.mnt, w));
          const m1 = await measure(zk, () => lsR(path.join(mount.mnt, 'data')));
          const m2 = await measure(zk, () => lsR(path.join(mount.mnt, 'data')));
          if (!cold || m1.ms < cold.ms) cold = m1;
          if (!warm || m2.ms < warm.ms) warm = m2;
        });
      }
      // Per directory: its listing and attribute map, then the children's Stats (with their
      // data, which is small here) as BatchReads.statMany reads them: PROBE_OPS, then twice
      // as many, then batches doubling up to MAX_OPS, LIST_BATCHES_IN_FLIGHT at a time.
      const listDir = async (dir: string): Promise<string[]> => {
        const [{ children }] = await Promise.all([c.getChildren(dir), c.getData(`${dir}/.swarmvol`).catch(() => undefined)]);
        const paths = children.map((ch) => `${dir}/${ch}`);
        const batches: string[][] = [];
        for (let from = 0, size = PROBE_OPS; from < paths.length; from += size, size = Math.min(size * 2, MAX_OPS)) {
          batches.push(paths.slice(from, from + size));
        }
        for (const b of batches.slice(0, 2)) await multiReads(c, b);
        await runPipelined(batches.slice(2), (b) => multiReads(c, b), LIST_BATCHES_IN_FLIGHT);
        return children.filter((ch) => ch.startsWith('d')).sort();
      };
      // The lookup of the measured tree's top (its data; the root's attribute map is known
      // from the warm-up), its listing, its first LIST_AHEAD_AFTER subdirectories' one after
      // another; then the walk is recognised and the others are listed LIST_AHEAD_WINDOW at a time.
      const same = await best(zk, async () => {
        await c.getData('/tree/data');
        const dirs = await listDir('/tree/data');
        for (const d of dirs.slice(0, LIST_AHEAD_AFTER)) await listDir(`/tree/data/${d}`);
        await runPipelined(dirs.slice(LIST_AHEAD_AFTER), (d) => listDir(`/tree/data/${d}`), LIST_AHEAD_WINDOW);
      });
      // Each listing's Stats all in flight at once, every subdirectory at once.
      const minimalList = async (dir: string): Promise<void> => {
        const { children } = await c.getChildren(dir);
        await multiReads(c, children.map((ch) => `${dir}/${ch}`));
        await Promise.all(children.filter((ch) => ch.startsWith('d')).map((ch) => minimalList(`${dir}/${ch}`)));
      };
      const minimal = await best(zk, () => minimalList('/tree/data'));
      // The same tree on a memory-backend mount, kernel caches dropped: the FUSE requests of a cold walk without ZooKeeper.
      const fuseOnly = await memoryMount(async (mount) => {
        for (const top of ['warm', 'data']) {
          for (let d = 0; d < TREE_DIRS; d++) {
            fs.mkdirSync(path.join(mount.mnt, top, `d${d}`), { recursive: true });
            for (let f = 0; f < TREE_FILES; f++) fs.writeFileSync(path.join(mount.mnt, top, `d${d}`, `f${f}`), 'x');
          }
        }
        for (let i = 0; i < WARMUP; i++) await lsR(path.join(mount.mnt, 'warm'));
        return best(zk, () => lsR(path.join(mount.mnt, 'data')), async () => fs.writeFileSync('/proc/sys/vm/drop_caches', '3'));
      });
      rows.push({ workload: `ls -lR, ${entries} entries, cold`, swarmvol: cold!, same, minimal, fuseOnly });
      rows.push({ workload: `ls -lR, ${entries} entries, warm`, swarmvol: warm!, same: { ms: 0, requests: 0 }, minimal: { ms: 0, requests: 0 } });
    }

    // ---- one large file, LARGE_MB MiB: written through the mount, read cold ----
    {
      const bytes = LARGE_MB * 1024 * 1024;
      const big = Buffer.alloc(bytes);
      for (let i = 0; i < bytes; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
      const chunks = Array.from({ length: Math.ceil(bytes / CHUNK) }, (_, i) => big.subarray(i * CHUNK, (i + 1) * CHUNK));
      await c.create('/large', Buffer.alloc(0), OPEN_ACL_UNSAFE);
      await c.create('/lraw', Buffer.alloc(0), OPEN_ACL_UNSAFE);
      // Each fresh mount is warmed up first by writing (or reading) a smaller file of its own.
      const warmBig = big.subarray(0, Math.min(bytes, 8 * 1024 * 1024));
      const storedChunks = async () => (await c.getChildren('/large/.swarmvol-chunks/c')).children.length;
      // Each repetition writes a new file; the previous one is removed first (outside the
      // measurement) so the server's memory holds one copy at a time.
      const write = await fastest((rep) =>
        coldMount('/large', async (mount) => {
          fs.writeFileSync(path.join(mount.mnt, `warm${rep}`), warmBig);
          if (rep > 0) {
            const before = await storedChunks();
            fs.unlinkSync(path.join(mount.mnt, 'f'));
            // Its chunks are deleted in the background: not part of the next write.
            while ((await storedChunks()) > before - chunks.length) await new Promise((r) => setTimeout(r, 20));
          }
          return measure(zk, () => fs.writeFileSync(path.join(mount.mnt, 'f'), big));
        }),
      );
      const removeRaw = async (prefix: string) => {
        const { children } = await c.getChildren('/lraw');
        await runPipelined(children.filter((n) => n.startsWith(prefix)), (n) => c.delete(`/lraw/${n}`), 64);
      };
      // The same bytes in the same chunks: the pending record, the chunk creates
      // with as many in flight, then the switch of the file's znode.
      const same = await best(
        zk,
        async () => {
          await c.create('/lraw/pending', Buffer.from('[]'), OPEN_ACL_UNSAFE);
          await runPipelined(chunks.map((data, i) => ({ data, i })), ({ data, i }) => c.create(`/lraw/c-${i}`, data, OPEN_ACL_UNSAFE));
          await c.multi([
            { op: 'create', path: '/lraw/f', data: Buffer.from('manifest'), acl: OPEN_ACL_UNSAFE },
            { op: 'delete', path: '/lraw/pending' },
          ]);
        },
        () => removeRaw(''),
      );
      const minimal = await best(
        zk,
        async () => {
          await Promise.all(chunks.map((data, i) => c.create(`/lraw/m-${i}`, data, OPEN_ACL_UNSAFE)));
        },
        () => removeRaw('m-'),
      );
      await removeRaw('m-');
      // The same file through FUSE alone, written and read cold (kernel caches dropped).
      const [fuseWrite, fuseRead] = await memoryMount(async (mount) => {
        const file = path.join(mount.mnt, 'f');
        const w = await fastest(() => measure(zk, () => fs.writeFileSync(file, big)));
        const r = await fastest(() => {
          fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
          return measure(zk, () => void fs.readFileSync(file));
        });
        return [w, r];
      });
      rows.push({ workload: `write one ${LARGE_MB} MiB file`, swarmvol: write, same, minimal, fuseOnly: fuseWrite, bytes });
      const read = await fastest(() =>
        coldMount('/large', (mount) => {
          fs.readFileSync(path.join(mount.mnt, 'warm0'));
          return measure(zk, () => void fs.readFileSync(path.join(mount.mnt, 'f')));
        }),
      );
      // A cold open reads the attribute map, the manifest and takes a pin; then the chunks, a few in flight.
      const sameRead = await best(zk, async () => {
        await Promise.all([c.getData('/large/.swarmvol'), c.getData('/large/f')]);
        await runPipelined(chunks.map((_, i) => i), (i) => c.getData(`/lraw/c-${i}`), READ_PIPELINE);
      });
      const minimalRead = await best(zk, async () => {
        await Promise.all(chunks.map((_, i) => c.getData(`/lraw/c-${i}`)));
      });
      rows.push({ workload: `read one ${LARGE_MB} MiB file, cold`, swarmvol: read, same: sameRead, minimal: minimalRead, fuseOnly: fuseRead, bytes });
    }
  } catch (err) {
    console.error(`ZooKeeper's log, last lines:\n${zk.output().split('\n').slice(-40).join('\n')}`);
    throw err;
  } finally {
    c.close();
    await zk.destroy();
  }

  const f = (m: Measure) => `${m.ms.toFixed(0).padStart(7)} ms ${String(m.requests).padStart(6)} req`;
  const ratio = (a: Measure, b: Measure) => (b.ms > 0 ? (a.ms / b.ms).toFixed(2) : '-');
  console.log(
    `${'workload'.padEnd(34)} ${'swarmvol'.padEnd(22)} ${'raw, same requests'.padEnd(22)} ${'raw, fewest requests'.padEnd(22)} ${'FUSE only (memory)'.padEnd(10)} ratio(same) ratio(fewest) ratio(same+FUSE)`,
  );
  for (const r of rows) {
    const fuse = r.fuseOnly ? `${r.fuseOnly.ms.toFixed(0).padStart(7)} ms` : '       -  ';
    const sum = r.fuseOnly ? ratio(r.swarmvol, { ms: r.same.ms + r.fuseOnly.ms, requests: 0 }) : '-';
    console.log(`${r.workload.padEnd(34)} ${f(r.swarmvol)} ${f(r.same)} ${f(r.minimal)} ${fuse.padEnd(18)} ${ratio(r.swarmvol, r.same).padStart(11)} ${ratio(r.swarmvol, r.minimal).padStart(13)} ${sum.padStart(16)}`);
  }
  for (const r of rows) {
    if (!r.bytes) continue;
    const mbs = (m: Measure) => `${((r.bytes! / 1024 / 1024) / (m.ms / 1000)).toFixed(1).padStart(7)} MB/s`;
    console.log(`${r.workload.padEnd(34)} swarmvol ${mbs(r.swarmvol)}, raw same requests ${mbs(r.same)}, raw all in flight ${mbs(r.minimal)}, FUSE only ${mbs(r.fuseOnly!)}`);
  }
  console.log(`(best of ${REPS}; requests counted by the server; ZooKeeper ${process.env.ZK_NOTE ?? 'standalone on loopback, default forceSync'})`);
  if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify(rows, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
