// A random exerciser of the namespace, in the spirit of fsx but for trees:
// every operation (whole-file writes, large files, O_EXCL creates, appends,
// truncates, unlinks, mkdir/rmdir/rm -r, renames of files and directories,
// symlinks, chmod, and descriptors kept open across all of these) runs on a
// tmpfs directory and on a mount, and must answer the same (result or
// errno). At checkpoints the whole tree is compared; with two mounts of one
// volume (two nodes), on both, and the operations then move to the other
// node, which works on what the first left. tmpfs is the model: the kernel's
// own answer to every case, errors included.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errnoOf, eventually } from './posix.js';

export interface ExerciseOptions {
  /** A directory on tmpfs, empty. */
  model: string;
  /** One mount, or two mounts of the same volume. */
  mounts: [string] | [string, string];
  seed: number;
  ops: number;
}

/** Operations between two comparisons of the whole tree. */
export const CHECK_EVERY = 150;
/** The run's seed and length: the test's defaults unless EXERCISER_SEED / EXERCISER_OPS say otherwise. */
export const SEED = Number(process.env.EXERCISER_SEED ?? 20261130);
export const opsOr = (defaultOps: number): number => Number(process.env.EXERCISER_OPS ?? defaultOps);

/** A new empty directory to serve as the model, on tmpfs where there is one. */
export function tmpfsModel(): string {
  return fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'swarmvol-model-'));
}
const NAMES = ['a', 'b', 'c', 'd'];
const MAX_OPEN = 3;

/** mulberry32: small, seedable, good enough to pick operations. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What an operation answered: its value (made comparable) or its errno. */
function outcome(fn: () => unknown): string {
  let v: unknown;
  const code = errnoOf(() => {
    v = fn();
  });
  if (code !== 'OK' || v === undefined) return code;
  if (Buffer.isBuffer(v)) return `OK ${v.length} bytes ${v.toString('base64').slice(0, 64)}`;
  return `OK ${JSON.stringify(v)}`;
}

interface Entry {
  type: 'file' | 'dir' | 'symlink';
  perm: number;
  content?: string;
  target?: string;
}

/** The tree under `root`: type, permission bits, file size and digest, symlink targets. */
export function snapshot(root: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const perm = st.mode & 0o7777;
      if (st.isSymbolicLink()) out.set(r, { type: 'symlink', perm: 0, target: fs.readlinkSync(p) });
      else if (st.isDirectory()) {
        out.set(r, { type: 'dir', perm });
        walk(r);
      } else {
        const data = fs.readFileSync(p);
        out.set(r, { type: 'file', perm, content: `${data.length} B, sha1 ${crypto.createHash('sha1').update(data).digest('hex')}` });
      }
    }
  };
  walk('');
  return out;
}

function assertSameTree(model: string, actual: string, what: string): void {
  assert.deepEqual(Object.fromEntries(snapshot(actual)), Object.fromEntries(snapshot(model)), what);
}

/** Runs `ops` random operations on the model and the mount(s); throws at the first difference, with the operations before it. */
export function exercise({ model, mounts, seed, ops: OPS }: ExerciseOptions): void {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  // Shallow paths more often than deep ones, so that operations meet existing entries.
  const randomPath = () => Array.from({ length: 1 + Math.floor(rnd() * rnd() * 3) }, () => pick(NAMES)).join('/');
  const randomData = () => Buffer.from(`${Math.floor(rnd() * 1e9)}:`.repeat(Math.floor(rnd() * 120)));
  /** Descriptors kept open: [on the model, on the mount], and the path they were opened with. */
  const open: Array<{ fds: [number, number]; path: string }> = [];
  /** [the model, the mount operating now]. */
  const roots = [model, mounts[0]];
  const other = () => mounts[(mounts.indexOf(roots[1]!) + 1) % mounts.length]!;
  const nodeName = () => (mounts.length === 1 ? 'the mount' : `node ${'AB'[mounts.indexOf(roots[1]!)]}`);
  const log: string[] = [];

  /** Runs `op` on the model and on the mount (given each one's root); both must answer the same. */
  const both = (what: string, op: (root: string, side: 0 | 1) => unknown) => {
    const results = roots.map((root, side) => outcome(() => op(root, side as 0 | 1)));
    log.push(`${what} -> ${results[0]}`);
    assert.equal(results[1], results[0], `op ${log.length - 1}: ${what} answered ${results[1]} on ${nodeName()}, ${results[0]} on tmpfs\nlast operations:\n${log.slice(-15).join('\n')}`);
    return results[0]!;
  };

  const closeAll = () => {
    for (const f of open.splice(0)) both(`close ${f.path}`, (_root, side) => fs.closeSync(f.fds[side]));
  };

  const checkpoint = (i: number) => {
    assertSameTree(model, roots[1]!, `after ${i} operations, ${nodeName()}`);
    closeAll();
    assertSameTree(model, roots[1]!, `after ${i} operations and closing every descriptor, ${nodeName()}`);
    if (mounts.length === 1) return;
    eventually(() => assertSameTree(model, other(), `after ${i} operations, the other node`), 5000);
    log.push('(the other node goes on)');
    roots[1] = other();
  };

  const ops: Array<[number, () => void]> = [
    [20, () => {
      const p = randomPath();
      const data = randomData();
      both(`writeFile ${p} (${data.length} B)`, (root) => fs.writeFileSync(path.join(root, p), data));
    }],
    [1, () => {
      // Over the inline limit (512 KiB by default): a large file, stored in chunks under a manifest.
      const p = randomPath();
      const size = 300_000 + Math.floor(rnd() * 1_200_000);
      const data = Buffer.alloc(size, Math.floor(rnd() * 256));
      data.write(`${size}`, Math.floor(rnd() * (size - 16)));
      both(`writeFile ${p} (${size} B)`, (root) => fs.writeFileSync(path.join(root, p), data));
    }],
    [5, () => {
      const p = randomPath();
      both(`create O_EXCL ${p}`, (root) => fs.writeFileSync(path.join(root, p), 'excl', { flag: 'wx' }));
    }],
    [5, () => {
      const p = randomPath();
      both(`append ${p}`, (root) => fs.appendFileSync(path.join(root, p), 'more;'));
    }],
    [4, () => {
      const p = randomPath();
      const len = Math.floor(rnd() * 300);
      both(`truncate ${p} ${len}`, (root) => fs.truncateSync(path.join(root, p), len));
    }],
    [8, () => {
      const p = randomPath();
      both(`unlink ${p}`, (root) => fs.unlinkSync(path.join(root, p)));
    }],
    [7, () => {
      const p = randomPath();
      both(`mkdir ${p}`, (root) => fs.mkdirSync(path.join(root, p)));
    }],
    [2, () => {
      const p = randomPath();
      both(`rm -r ${p}`, (root) => fs.rmSync(path.join(root, p), { recursive: true }));
    }],
    [6, () => {
      const p = randomPath();
      both(`rmdir ${p}`, (root) => fs.rmdirSync(path.join(root, p)));
    }],
    [12, () => {
      const from = randomPath();
      const to = randomPath();
      both(`rename ${from} ${to}`, (root) => fs.renameSync(path.join(root, from), path.join(root, to)));
    }],
    [4, () => {
      const p = randomPath();
      const target = pick(['a', 'b', '../c', 'd/a', 'nowhere']);
      both(`symlink ${target} ${p}`, (root) => fs.symlinkSync(target, path.join(root, p)));
    }],
    [4, () => {
      const p = randomPath();
      const mode = pick([0o644, 0o600, 0o755, 0o640]);
      both(`chmod ${p} ${mode.toString(8)}`, (root) => fs.chmodSync(path.join(root, p), mode));
    }],
    [5, () => {
      const p = randomPath();
      both(`read ${p}`, (root) => fs.readFileSync(path.join(root, p)));
    }],
    [3, () => {
      const p = randomPath();
      both(`readdir ${p}`, (root) => fs.readdirSync(path.join(root, p)).sort());
    }],
    [7, () => {
      if (open.length >= MAX_OPEN) return;
      const p = randomPath();
      const flags = pick(['w', 'r+', 'a', 'wx']);
      const fds: number[] = [];
      const r = both(`open ${p} ${flags}`, (root) => {
        fds.push(fs.openSync(path.join(root, p), flags));
      });
      if (r === 'OK') open.push({ fds: [fds[0]!, fds[1]!], path: p });
      else for (const fd of fds) fs.closeSync(fd); // opened on one side only: the assertion above has failed already
    }],
    [7, () => {
      if (open.length === 0) return;
      const f = pick(open);
      const data = randomData();
      const at = rnd() < 0.5 ? null : Math.floor(rnd() * 200);
      both(`write fd of ${f.path} ${data.length} B at ${at ?? 'current'}`, (_root, side) => fs.writeSync(f.fds[side], data, 0, data.length, at));
    }],
    [2, () => {
      if (open.length === 0) return;
      const f = pick(open);
      both(`fsync fd of ${f.path}`, (_root, side) => fs.fsyncSync(f.fds[side]));
    }],
    [6, () => {
      if (open.length === 0) return;
      const f = open.splice(Math.floor(rnd() * open.length), 1)[0]!;
      both(`close ${f.path}`, (_root, side) => fs.closeSync(f.fds[side]));
    }],
  ];
  const total = ops.reduce((n, [w]) => n + w, 0);

  for (let i = 1; i <= OPS; i++) {
    let r = rnd() * total;
    for (const [w, op] of ops) {
      if ((r -= w) < 0) {
        op();
        break;
      }
    }
    if (i % CHECK_EVERY === 0) checkpoint(i);
  }
  checkpoint(OPS);
  assert.ok(snapshot(model).size > 0, 'the run left a tree to compare');
}
