// Resource soundness: many mount/unmount cycles in one process, and many file
// operations on one mount, with memory and file descriptors measured before
// and after. `npm test` runs a subset; FAULTS_FULL=1 (npm run test:faults)
// runs the counts: 10,000 cycles and 1,000,000 operations.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { mountCli, mountInProcess, sh } from '../helpers/mount.js';

const FULL = process.env.FAULTS_FULL === '1';
const CYCLES = FULL ? 10_000 : 300;
const OPS = FULL ? 1_000_000 : 100_000;

function fdCount(pid: number | 'self'): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function rssKb(pid: number | 'self'): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

describe('resource soundness', () => {
  it(`${CYCLES} mount/unmount cycles in one process leave file descriptors and memory flat`, async () => {
    const sample = async () => {
      global.gc?.();
      await new Promise((r) => setTimeout(r, 50));
      return { fds: fdCount('self'), heap: process.memoryUsage().heapUsed, rss: rssKb('self') };
    };
    // Warm up (first mounts load code and start helpers), then measure.
    for (let i = 0; i < 20; i++) await (await mountInProcess()).stop();
    const before = await sample();
    const t0 = Date.now();
    for (let i = 0; i < CYCLES; i++) {
      const m = await mountInProcess();
      await fs.promises.writeFile(path.join(m.mnt, 'f'), 'x');
      await m.stop();
    }
    const after = await sample();
    const seconds = (Date.now() - t0) / 1000;
    console.log(
      `${CYCLES} mount/write/unmount cycles in ${seconds.toFixed(0)} s: fds ${before.fds} -> ${after.fds}, heap ${(before.heap / 1e6).toFixed(1)} -> ${(after.heap / 1e6).toFixed(1)} MB, rss ${(before.rss / 1024).toFixed(0)} -> ${(after.rss / 1024).toFixed(0)} MB`,
    );
    assert.ok(after.fds <= before.fds + 2, `file descriptors grew from ${before.fds} to ${after.fds}`);
    assert.ok(after.heap < before.heap + 20e6, `heap grew from ${before.heap} to ${after.heap}`);
    const leftovers = (await sh("grep -c 'fuse.swarmvol' /proc/self/mountinfo || true")).stdout.trim();
    assert.ok(Number(leftovers) < 5, `${leftovers} swarmvol mounts left behind`);
  });

  it(`${OPS} file operations on one mount leave its memory and file descriptors flat`, async () => {
    const m = await mountCli(['--no-xattrs']);
    try {
      const pid = m.child.pid!;
      const dir = path.join(m.mnt, 'ops');
      fs.mkdirSync(dir);
      // Each round: create, write, stat, read, rename, unlink (6 operations) on a set of 100 names.
      const round = (n: number) => {
        for (let i = 0; i < 100; i++) {
          const f = path.join(dir, `f${i}`);
          fs.writeFileSync(f, `round ${n} file ${i}`);
          fs.statSync(f);
          fs.readFileSync(f);
          fs.renameSync(f, `${f}.r`);
          fs.unlinkSync(`${f}.r`);
        }
      };
      const rounds = Math.ceil(OPS / 600);
      for (let n = 0; n < Math.min(20, rounds); n++) round(n);
      const before = { fds: fdCount(pid), rss: rssKb(pid) };
      const t0 = Date.now();
      for (let n = 0; n < rounds; n++) round(n);
      const after = { fds: fdCount(pid), rss: rssKb(pid) };
      const seconds = (Date.now() - t0) / 1000;
      console.log(`${rounds * 600} file operations in ${seconds.toFixed(0)} s: mount process fds ${before.fds} -> ${after.fds}, rss ${(before.rss / 1024).toFixed(0)} -> ${(after.rss / 1024).toFixed(0)} MB`);
      assert.ok(after.fds <= before.fds + 2, `file descriptors grew from ${before.fds} to ${after.fds}`);
      assert.ok(after.rss < before.rss + 64 * 1024, `rss grew from ${before.rss} kB to ${after.rss} kB`);
    } finally {
      assert.equal(await m.stop(), 0, m.output());
    }
  });
});
