// The channel's busy poll stops once a request ends the session: the closed
// fd's number is free at once, and a read on it could take another file's
// bytes for a request. It runs the idle work in turns that find no request,
// and ends when a request waits for the filesystem. Cases that need a whole
// 1 ms window without a stall of the process are tried up to three times.
// FIFOs stand in for /dev/fuse (pollable, non-blocking).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FuseChannel } from '../../src/fuse/channel.js';

/** Runs `fn` with FIFOs of these names in a new directory, removed afterwards. */
async function withFifos<T>(names: string[], fn: (paths: string[]) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmvol-channel-'));
  try {
    const paths = names.map((name) => path.join(dir, name));
    execFileSync('mkfifo', paths);
    return await fn(paths);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Opens a FIFO the way the channel's fd is: pollable, readable and writable, non-blocking. */
const openFifo = (fifo: string): number => fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);

/** Tries of a case that needs the process to run without a stall for a whole poll window. */
const TRIES = 3;

describe('FuseChannel busy poll', () => {
  it('reads nothing more once a request closed the channel, even when its fd number is reused', async () => {
    const opened: number[] = [];
    await withFifos(['requests', 'other'], async ([requests, other]) => {
      const fd = openFifo(requests!);
      const channel = new FuseChannel(fd);
      const seen: string[] = [];
      let reused = -1;
      channel.start(
        4096,
        (buf, length) => {
          seen.push(buf.toString('utf8', 0, length));
          if (seen.length === 1) {
            channel.close();
            // The lowest free fd number is the one just closed.
            reused = openFifo(other!);
            opened.push(reused);
            fs.writeSync(reused, 'not a request');
          }
          return true;
        },
        1000,
      );
      fs.writeSync(fd, 'first');
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(reused, fd, 'the test needs the closed fd number to be reused');
      assert.deepEqual(seen, ['first']);
    }).finally(() => {
      for (const fd of opened) fs.closeSync(fd);
    });
  });

  it('runs steps of idle work while its reads find no request, and none when polling is off', async () => {
    await withFifos(['requests'], async ([requests]) => {
      const stepsTaken = async (pollMicros: number) => {
        const fd = openFifo(requests!);
        const channel = new FuseChannel(fd);
        let steps = 0;
        let handled = 0;
        channel.start(
          4096,
          () => {
            handled++;
            return true;
          },
          pollMicros,
          () => steps++ < 5,
        );
        fs.writeSync(fd, 'request');
        await new Promise((resolve) => setTimeout(resolve, 100));
        channel.close();
        assert.equal(handled, 1);
        return Math.min(steps, 5);
      };
      // A stall of the process (a collection, the vCPU taken away) longer than
      // the 1 ms window ends a poll early, now and then: three tries.
      const polledSteps = [await stepsTaken(1000)];
      while (polledSteps.at(-1)! < 5 && polledSteps.length < TRIES) polledSteps.push(await stepsTaken(1000));
      assert.equal(polledSteps.at(-1), 5, `the poll after the request runs the five steps there are (steps per try: ${polledSteps.join(', ')})`);
      assert.equal(await stepsTaken(0), 0, 'without polling there is no idle time to use');
    });
  });

  /** Idle steps run when a request that waits came in mid-poll (-1: it never came); asserts that no step ran after it. */
  const stepsAfterWaitingRequest = (): Promise<number> =>
    withFifos(['requests'], async ([requests]) => {
      const fd = openFifo(requests!);
      const channel = new FuseChannel(fd);
      let steps = 0;
      let stepsWhenWaiting = -1;
      channel.start(
        4096,
        (buf, length) => {
          if (buf.toString('utf8', 0, length) === 'answered') return true;
          stepsWhenWaiting = steps;
          return false;
        },
        1000,
        () => {
          // Mid-poll, a request that will wait.
          if (++steps === 3) fs.writeSync(fd, 'waits');
          return true;
        },
      );
      fs.writeSync(fd, 'answered');
      await new Promise((resolve) => setTimeout(resolve, 100));
      channel.close();
      if (stepsWhenWaiting >= 0) assert.equal(steps, stepsWhenWaiting, 'no idle step after it: the poll ended');
      return stepsWhenWaiting;
    });

  it('ends the poll when a request comes that waits for the filesystem', async () => {
    // A stall longer than the 1 ms window may end the poll before the third
    // step sends the second request: then the case is tried again.
    const stepsWhenWaiting: number[] = [];
    while (stepsWhenWaiting.length < TRIES && !(stepsWhenWaiting.at(-1)! >= 3)) {
      stepsWhenWaiting.push(await stepsAfterWaitingRequest());
    }
    assert.ok(stepsWhenWaiting.at(-1)! >= 3, `the second request came during the poll (steps when it came, per try: ${stepsWhenWaiting.join(', ')})`);
  });
});

// Requests queued behind the one libuv read (several clients) are read at
// once, up to 16 per read callback. A FIFO read into an 8-byte buffer stands
// in for /dev/fuse: each 8-byte write is one request, a 4-byte name and an
// opcode where fuse_in_header has it (bytes 4-7). Requests served in one
// callback see the same count of event-loop turns (a promise continuation
// runs between callbacks, never within one).
describe('FuseChannel queued requests', () => {
  const request = (name: string, opcode = 1): Buffer => {
    const buf = Buffer.alloc(8);
    buf.write(name.padEnd(4), 0, 4, 'latin1');
    buf.writeUInt32LE(opcode, 4);
    return buf;
  };

  const served = (bursts: Buffer[][]): Promise<string[][]> =>
    withFifos(['requests'], async ([requests]) => {
      const fd = openFifo(requests!);
      const channel = new FuseChannel(fd);
      let turn = 0;
      let turnCounted = false;
      const byTurn = new Map<number, string[]>();
      channel.start(8, (buf, length) => {
        assert.equal(length, 8);
        if (!turnCounted) {
          turnCounted = true;
          queueMicrotask(() => {
            turn++;
            turnCounted = false;
          });
        }
        const list = byTurn.get(turn) ?? [];
        list.push(buf.toString('latin1', 0, 4).trim());
        byTurn.set(turn, list);
        return true;
      });
      for (const burst of bursts) {
        fs.writeSync(fd, Buffer.concat(burst));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      channel.close();
      return [...byTurn.values()];
    });

  it('serves requests already queued in the same callback, 16 at most, in order', async () => {
    const names = Array.from({ length: 40 }, (_, i) => `r${i}`);
    const groups = await served([names.map((n) => request(n))]);
    assert.deepEqual(groups.flat(), names);
    assert.deepEqual(
      groups.map((g) => g.length),
      [16, 16, 8],
    );
  });

  it('after a read that found nothing, waits for more requests before it tries again', async () => {
    // a: its try finds nothing, so the next request (b) tries no read; c is read by libuv;
    // c's try (the skip is over) finds nothing again and doubles the skip: d and e go one
    // by one; f's try reads g.
    const groups = await served([['a'], ['b', 'c'], ['d', 'e'], ['f', 'g']].map((burst) => burst.map((n) => request(n))));
    assert.deepEqual(groups, [['a'], ['b'], ['c'], ['d'], ['e'], ['f', 'g']]);
  });

  it('backs off by the opcode of the request just served', async () => {
    // After a (opcode 1) a try finds nothing: the next opcode-1 request (c) tries no read,
    // but b (opcode 2) reads c at once; d's try then reads e. With one back-off for all
    // opcodes each would go alone.
    const groups = await served([[request('a', 1)], [request('b', 2), request('c', 1)], [request('d', 1), request('e', 1)]]);
    assert.deepEqual(groups, [['a'], ['b', 'c'], ['d', 'e']]);
  });
});
