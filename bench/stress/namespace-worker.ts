// One writer of bench/stress/concurrent-namespace: random operations on a small
// shared tree (the same names as every other writer, on this node and the
// other), as a process of its own so that writers really run at once. Prints
// one JSON line: how often each operation answered what, and for answers
// other than OK and the usual race errnos (CORRUPT: a read saw what no writer
// made), the paths of the first such case.
//
//   node dist/bench/stress/namespace-worker.js ROOT SEED OPS
//   (STRESS_LARGE=1 in the environment: large files too)

import fs from 'node:fs';
import path from 'node:path';
import { prng } from '../../test/helpers/namespace-exerciser.js';
import { errnoCode, RENAME_EXCHANGE, renameat2 } from '../../test/helpers/posix.js';
import { RACE_ERRNOS } from './race-errnos.js';

const [root, seedArg, opsArg] = process.argv.slice(2);
if (!root || !seedArg || !opsArg) {
  console.error('usage: namespace-worker ROOT SEED OPS');
  process.exit(2);
}

const rnd = prng(Number(seedArg));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const NAMES = ['a', 'b', 'c'];
/** STRESS_LARGE=1: writers also write files above the znode limit, stored in chunks. */
const LARGE = process.env.STRESS_LARGE === '1';
/** The paths the current operation picked, for the report of an unusual answer. */
let picked: string[] = [];
const randomPath = () => {
  const p = path.join(root, ...Array.from({ length: 1 + Math.floor(rnd() * rnd() * 3) }, () => pick(NAMES)));
  picked.push(p.slice(root.length));
  return p;
};

/** The only symlink targets writers make. */
const TARGETS = ['a', '../b', 'nowhere'];

/** What a read saw that no writer made. */
class Corrupt extends Error {}

const ops: Array<[string, () => unknown]> = [
  ['writeFile', () => fs.writeFileSync(randomPath(), `${seedArg}:${Math.floor(rnd() * 1e9)}\n`.repeat(1 + Math.floor(rnd() * 40)))],
  ['createExcl', () => fs.writeFileSync(randomPath(), 'x', { flag: 'wx' })],
  ['append', () => fs.appendFileSync(randomPath(), 'more\n')],
  ['unlink', () => fs.unlinkSync(randomPath())],
  ['mkdir', () => fs.mkdirSync(randomPath())],
  ['rmdir', () => fs.rmdirSync(randomPath())],
  ['rename', () => fs.renameSync(randomPath(), randomPath())],
  [
    'exchange',
    () => {
      const result = renameat2(randomPath(), randomPath(), RENAME_EXCHANGE);
      if (result !== 'OK') throw Object.assign(new Error(result), { code: result, syscall: 'renameat2' });
    },
  ],
  ['truncate', () => fs.truncateSync(randomPath(), pick([0, 3, 100]))],
  ['symlink', () => fs.symlinkSync(pick(TARGETS), randomPath())],
  ['chmod', () => fs.chmodSync(randomPath(), pick([0o644, 0o600, 0o755]))],
  [
    'read',
    () => {
      // No writer writes a symlink's target as a file's whole content: a symlink that became a file.
      const content = fs.readFileSync(randomPath(), 'utf8');
      if (TARGETS.includes(content)) throw new Corrupt(`a file holding ${JSON.stringify(content)}`);
    },
  ],
  [
    'readlink',
    () => {
      // Only these are ever made: anything else is a file's content taken for a target.
      const target = fs.readlinkSync(randomPath());
      if (!TARGETS.includes(target)) throw new Corrupt(`a symlink to ${JSON.stringify(target.slice(0, 40))} (${target.length} bytes)`);
    },
  ],
  ['readdir', () => fs.readdirSync(randomPath())],
  ['stat', () => fs.statSync(randomPath())],
  [
    'keepOpen',
    () => {
      const fd = fs.openSync(randomPath(), pick(['w', 'r+', 'a']));
      try {
        fs.writeSync(fd, 'kept open\n');
        fs.readdirSync(path.dirname(randomPath()));
      } finally {
        fs.closeSync(fd);
      }
    },
  ],
];

if (LARGE) {
  // 1.1 to 1.6 MiB: three or four chunks of 512 KiB under ZooKeeper's default request limit.
  ops.push([
    'writeLarge',
    () => {
      const line = Buffer.from(`${seedArg}:${Math.floor(rnd() * 1e9)} large\n`);
      fs.writeFileSync(randomPath(), Buffer.alloc(Math.floor((1.1 + rnd() * 0.5) * 1024 * 1024), line));
    },
  ]);
}

/** The symlinks on the way to `paths` and the start of their targets: which one took a long target, and from where. */
function symlinksOn(paths: string[]): string {
  const seen: string[] = [];
  for (const p of paths) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const sub = path.join(root!, ...parts.slice(0, i));
      try {
        if (!fs.lstatSync(sub).isSymbolicLink()) continue;
        const target = fs.readlinkSync(sub);
        seen.push(`${sub.slice(root!.length)} -> ${JSON.stringify(target.slice(0, 40))} (${target.length} bytes)`);
      } catch (err) {
        seen.push(`${sub.slice(root!.length)}: ${(err as NodeJS.ErrnoException).code}`);
      }
    }
  }
  return `; symlinks on the way: ${seen.join(', ') || 'none'}`;
}

const usual = (result: string) => result === 'OK' || RACE_ERRNOS.has(result);
const counts: Record<string, number> = {};
const examples: Record<string, string> = {};
for (let i = 0; i < Number(opsArg); i++) {
  const [name, op] = pick(ops);
  picked = [];
  let result = 'OK';
  try {
    op();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (err instanceof Corrupt) {
      result = 'CORRUPT';
      picked.push(err.message);
    } else {
      result = errnoCode(e) ?? `threw ${String(err)}`;
      if (!usual(result) && e.syscall) result += ` (${e.syscall})`;
    }
  }
  const key = `${name} ${result}`;
  counts[key] = (counts[key] ?? 0) + 1;
  if (!usual(result)) examples[key] ??= `${picked.join(' ')} at ${new Date().toISOString()}${result.startsWith('ENAMETOOLONG') ? symlinksOn(picked) : ''}`;
}
console.log(JSON.stringify({ counts, examples }));
