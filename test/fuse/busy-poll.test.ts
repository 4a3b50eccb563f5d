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

/** The daemon's CPU time, ms, while a python loop (its body given `file`, the mount's file) runs against a mount polling up to `poll` µs. */
function daemonCpuMs(poll: string, loop: (file: string) => string): Promise<number> {
  return withMount(['--busy-poll', poll], async (m, file) => {
    const before = cpuTicks(m.child.pid!);
    const r = await sh(`python3 -c 'import os, time\n${loop(file)}'`, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    return (cpuTicks(m.child.pid!) - before) * 10;
  });
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
    const cpuMs = (poll: string) => daemonCpuMs(poll, (file) => `fd = os.open("${file}", os.O_RDONLY)\nfor i in range(300): os.fstat(fd); time.sleep(0.003)`);
    const unpolled = await cpuMs('0');
    const polled = await cpuMs('1000');
    t.diagnostic(`daemon CPU for 300 fstats 3 ms apart: ${unpolled} ms without polling, ${polled} ms with a 1 ms limit`);
    assert.ok(polled <= unpolled + 60, `polling cost ${polled - unpolled} ms of CPU for 300 slow requests: it kept polling`);
  });

  it('polls after a burst for about the client\'s turnaround, not the whole limit', async (t) => {
    // 300 bursts of 20 stats, 3 ms apart: each pause after a burst costs the
    // daemon one vain poll. A window of the full 1 ms limit would burn 0.3 s;
    // one that follows the client's turnaround (20-30 µs) about a tenth of it.
    const cpuMs = (poll: string) => daemonCpuMs(poll, (file) => `for i in range(300):\n  for j in range(20): os.stat("${file}")\n  time.sleep(0.003)`);
    const unpolled = await cpuMs('0');
    const polled = await cpuMs('1000');
    t.diagnostic(`daemon CPU for 300 bursts of 20 stats 3 ms apart: ${unpolled} ms without polling, ${polled} ms with a 1 ms limit`);
    assert.ok(polled <= unpolled + 120, `polling cost ${polled - unpolled} ms of CPU more for 300 pauses: it polled for the whole limit after each burst`);
  });

  it('catches 128 KiB writes at the default limit', async (t) => {
    assert.ok(availableParallelism() >= 2, 'this test needs two CPUs: polling is off on one');
    // A 128 KiB write(2) takes the client longer to send than a stat (the kernel copies the data): 60-100 µs here.
    const writes = 2048;
    const sleepsPerWrite = (args: string[]) =>
      withMount(args, async (m) => {
        const target = path.join(m.mnt, 'big');
        const r0 = await sh(`dd if=/dev/zero of=${target} bs=128k count=${writes} 2>&1`, { timeoutMs: 60_000 });
        assert.equal(r0.code, 0, r0.stdout);
        const before = sleeps(m.child.pid!);
        const r = await sh(`dd if=/dev/zero of=${target} bs=128k count=${writes} conv=notrunc 2>&1`, { timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stdout);
        return (sleeps(m.child.pid!) - before) / writes;
      });
    const unpolled = await sleepsPerWrite(['--busy-poll', '0', '--max-write', '128k']);
    const polled = await sleepsPerWrite(['--max-write', '128k']);
    t.diagnostic(`daemon sleeps per 128 KiB write: ${unpolled.toFixed(3)} without polling, ${polled.toFixed(3)} at the default`);
    assert.ok(unpolled > 0.9, `without polling the daemon should sleep about once per write, slept ${unpolled.toFixed(2)} times`);
    assert.ok(polled < unpolled / 4, `the default poll should catch most writes awake: ${polled.toFixed(2)} sleeps per write against ${unpolled.toFixed(2)} without`);
  });
});
