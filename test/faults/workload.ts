// A steady workload on a mount, run as its own process by the fault tests:
// creates, rewrites, renames, deletes and checksum-verified reads, each
// journaled as intended and then as acknowledged (the call returned) or
// failed. The journal tells the checker what must be there after a fault.
//
//   node workload.js run MOUNTDIR JOURNAL STOPFILE SEED

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 16);

export interface Expectation {
  /** name → the acknowledged content's checksum, plus later unacknowledged ones that may have landed. */
  files: Map<string, { acked: string; maybe: Set<string> }>;
  /** Names whose fate is unknown (a rename or delete that failed or was cut off). */
  uncertain: Set<string>;
  /** Names acknowledged as deleted. */
  deleted: Set<string>;
  /** Every checksum ever intended: a file's content must be one of them (never a mix). */
  intended: Set<string>;
  ackedWrites: number;
  failures: number;
  badReads: string[];
  ops: number;
}

/** Replays a journal into what must hold on every node. */
export function expectations(journal: string): Expectation {
  // A new file opened with O_TRUNC and without O_EXCL is stored with its content by its first close or fsync; one opened with
  // O_EXCL exists, empty, from its open until then (as on a local disk after a crash between creat and write):
  // empty is a state the application was told about, not a mix.
  const e: Expectation = { files: new Map(), uncertain: new Set(), deleted: new Set(), intended: new Set([sha(Buffer.alloc(0))]), ackedWrites: 0, failures: 0, badReads: [], ops: 0 };
  for (const line of journal.split('\n')) {
    const [kind, op, a, b] = line.split(' ');
    if (!kind) continue;
    e.ops += kind === 'ack' || kind === 'fail' ? 1 : 0;
    if (kind === 'intent' && op === 'write') {
      e.intended.add(b!);
      const f = e.files.get(a!);
      if (f) f.maybe.add(b!);
    } else if (kind === 'ack' && op === 'write') {
      e.files.set(a!, { acked: b!, maybe: new Set() });
      e.deleted.delete(a!);
      e.ackedWrites++;
    } else if (kind === 'fail' && op === 'write') {
      e.failures++;
      // A new file whose create may or may not have happened (ENOENT: the directory was not there, nothing happened).
      if (!e.files.has(a!) && b !== 'ENOENT') e.uncertain.add(a!);
    } else if (kind === 'ack' && op === 'rename') {
      const f = e.files.get(a!);
      if (f) e.files.set(b!, f);
      e.files.delete(a!);
      e.deleted.add(a!);
      e.deleted.delete(b!);
    } else if (kind === 'ack' && op === 'delete') {
      e.files.delete(a!);
      e.deleted.add(a!);
    } else if (kind === 'fail' && (op === 'rename' || op === 'delete')) {
      e.failures++;
      // ENOENT: nothing was there to change; any other error leaves the outcome unknown.
      if (line.split(' ').pop() !== 'ENOENT') {
        e.uncertain.add(a!);
        if (b && b !== 'x') e.uncertain.add(b);
      }
    } else if (kind === 'bad' && op === 'read') {
      e.badReads.push(`${a} ${b}`);
    } else if (kind === 'fail') {
      e.failures++;
    }
  }
  for (const n of e.uncertain) {
    e.files.delete(n);
    e.deleted.delete(n);
  }
  return e;
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

function run(dir: string, journalPath: string, stopFile: string, seed: number): void {
  const random = rng(seed);
  const journal = fs.openSync(journalPath, 'a');
  const log = (line: string) => {
    failures = line.startsWith('fail') ? failures + 1 : 0;
    fs.writeSync(journal, line + '\n');
  };
  const acked = new Map<string, string>();
  const pending = new Map<string, Set<string>>();
  let next = 0;
  const pick = () => [...acked.keys()][Math.floor(random() * acked.size)];
  let failures = 0;
  while (!fs.existsSync(stopFile)) {
    // After a failure, back off a little: a dead mount fails at once, and a storm of failures proves nothing.
    if (failures > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.min(200, 10 * failures));
    const r = random();
    try {
      if (r < 0.35 || acked.size < 5) {
        const name = r < 0.2 || acked.size < 5 ? `f${seed}-${next++}` : pick()!;
        const data = Buffer.alloc(1 + Math.floor(random() * 64 * 1024), Math.floor(random() * 256));
        data.write(`${name} ${Date.now()} ${random()}`);
        const sum = sha(data);
        log(`intent write ${name} ${sum}`);
        pending.set(name, (pending.get(name) ?? new Set()).add(sum));
        try {
          const fd = fs.openSync(path.join(dir, name), 'w');
          try {
            fs.writeSync(fd, data);
            fs.fsyncSync(fd);
          } finally {
            fs.closeSync(fd);
          }
          acked.set(name, sum);
          pending.delete(name);
          log(`ack write ${name} ${sum}`);
        } catch (err) {
          log(`fail write ${name} ${(err as NodeJS.ErrnoException).code}`);
        }
      } else if (r < 0.45) {
        const from = pick()!;
        const to = `f${seed}-${next++}`;
        try {
          fs.renameSync(path.join(dir, from), path.join(dir, to));
          acked.set(to, acked.get(from)!);
          acked.delete(from);
          // A failed write to `from` may still have landed: it moves with the name.
          const maybe = pending.get(from);
          pending.delete(from);
          if (maybe) pending.set(to, maybe);
          log(`ack rename ${from} ${to}`);
        } catch (err) {
          acked.delete(from);
          log(`fail rename ${from} ${to} ${(err as NodeJS.ErrnoException).code}`);
        }
      } else if (r < 0.55) {
        const name = pick()!;
        try {
          fs.unlinkSync(path.join(dir, name));
          acked.delete(name);
          pending.delete(name);
          log(`ack delete ${name}`);
        } catch (err) {
          acked.delete(name);
          log(`fail delete ${name} x ${(err as NodeJS.ErrnoException).code}`);
        }
      } else {
        const name = pick()!;
        try {
          const got = sha(fs.readFileSync(path.join(dir, name)));
          if (got !== acked.get(name) && !pending.get(name)?.has(got)) log(`bad read ${name} ${got}`);
          else log(`ack read ${name}`);
        } catch (err) {
          log(`fail read ${name} ${(err as NodeJS.ErrnoException).code}`);
        }
      }
    } catch (err) {
      log(`fail other x ${(err as Error).message.replace(/\s+/g, '_')}`);
    }
  }
  fs.closeSync(journal);
}

if (process.argv[2] === 'run') run(process.argv[3]!, process.argv[4]!, process.argv[5]!, Number(process.argv[6]));
