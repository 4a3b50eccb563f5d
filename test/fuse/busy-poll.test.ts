// The busy poll of /dev/fuse (src/fuse/channel.ts): a sequential client's
// requests are caught without the daemon going to sleep between them, and a
// client whose requests all come further apart than the window soon gets no
// polling (the daemon's CPU time stays what its requests cost).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { mountCli, sh, type CliMount } from '../helpers/mount.js';

/** Every stat is a round trip: nothing is cached by the kernel. */
const NO_CACHE = ['--entry-timeout', '0', '--attr-timeout', '0', '--negative-timeout', '0'];

/** The main thread's voluntary context switches: one each time the event loop sleeps in epoll_wait and is woken. */
function sleeps(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)![1]);
}

/** User and system CPU time of the whole process, in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

async function statLoop(file: string, count: number, pauseSeconds = 0): Promise<void> {
  const pause = pauseSeconds > 0 ? `; time.sleep(${pauseSeconds})` : '';
  const r = await sh(`python3 -c 'import os, time\nfor i in range(${count}): os.stat("${file}")${pause}'`, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
}

async function withMount<T>(args: string[], fn: (m: CliMount, file: string) => Promise<T>): Promise<T> {
  const m = await mountCli([...NO_CACHE, ...args]);
  try {
    const file = path.join(m.mnt, 'f');
    fs.writeFileSync(file, 'x');
    await statLoop(file, 3000); // the daemon's JIT warms up
    return await fn(m, file);
  } finally {
    await m.stop();
  }
}

describe('busy poll of /dev/fuse', () => {
  it('answers a sequential client without sleeping between its requests', async (t) => {
    assert.ok(availableParallelism() >= 2, 'this test needs two CPUs: polling is off on one (the client could not run meanwhile)');
    const stats = 20_000;
    const sleepsPerStat = async (poll: string) =>
      withMount(['--busy-poll', poll], async (m, file) => {
        const before = sleeps(m.child.pid!);
        await statLoop(file, stats);
        return (sleeps(m.child.pid!) - before) / stats;
      });
    const unpolled = await sleepsPerStat('0');
    const polled = await sleepsPerStat('1000');
    t.diagnostic(`daemon sleeps per stat: ${unpolled.toFixed(3)} without polling, ${polled.toFixed(3)} with`);
    // Each stat is a LOOKUP and a GETATTR: without polling the loop sleeps before (nearly) each.
    assert.ok(unpolled > 0.9, `without polling the daemon should sleep about once per request, slept ${unpolled.toFixed(2)} times per stat`);
    assert.ok(polled < unpolled / 4, `polling should catch most requests awake: ${polled.toFixed(2)} sleeps per stat against ${unpolled.toFixed(2)} without`);
  });

  it('stops polling for a client slower than the window', async (t) => {
    // 300 fstats 3 ms apart, one GETATTR each: a poll of the full 1 ms window after each would burn 0.3 s of CPU.
    const cpuMs = (poll: string) =>
      withMount(['--busy-poll', poll], async (m, file) => {
        const before = cpuTicks(m.child.pid!);
        const r = await sh(`python3 -c 'import os, time\nfd = os.open("${file}", os.O_RDONLY)\nfor i in range(300): os.fstat(fd); time.sleep(0.003)'`, { timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr);
        return (cpuTicks(m.child.pid!) - before) * 10;
      });
    const unpolled = await cpuMs('0');
    const polled = await cpuMs('1000');
    t.diagnostic(`daemon CPU for 300 fstats 3 ms apart: ${unpolled} ms without polling, ${polled} ms with a 1 ms limit`);
    assert.ok(polled <= unpolled + 60, `polling cost ${polled - unpolled} ms of CPU for 300 slow requests: it kept polling`);
  });
});
