// The channel's busy poll stops once a request ends the session: the closed
// fd's number is free at once, and a read on it could take another file's
// bytes for a request. It runs the idle work in turns that find no request,
// and ends when a request waits for the filesystem.
// FIFOs stand in for /dev/fuse (pollable, non-blocking).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FuseChannel } from '../../src/fuse/channel.js';

describe('FuseChannel busy poll', () => {
  it('reads nothing more once a request closed the channel, even when its fd number is reused', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmvol-poll-'));
    const opened: number[] = [];
    try {
      execFileSync('mkfifo', [path.join(dir, 'requests'), path.join(dir, 'other')]);
      const flags = fs.constants.O_RDWR | fs.constants.O_NONBLOCK;
      const fd = fs.openSync(path.join(dir, 'requests'), flags);
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
            reused = fs.openSync(path.join(dir, 'other'), flags);
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
    } finally {
      for (const fd of opened) fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs steps of idle work while its reads find no request, and none when polling is off', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmvol-poll-'));
    try {
      execFileSync('mkfifo', [path.join(dir, 'requests')]);
      const stepsTaken = async (pollMicros: number) => {
        const fd = fs.openSync(path.join(dir, 'requests'), fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
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
      assert.equal(await stepsTaken(1000), 5, 'the poll after the request runs the five steps there are');
      assert.equal(await stepsTaken(0), 0, 'without polling there is no idle time to use');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ends the poll when a request comes that waits for the filesystem', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmvol-poll-'));
    try {
      execFileSync('mkfifo', [path.join(dir, 'requests')]);
      const fd = fs.openSync(path.join(dir, 'requests'), fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
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
      assert.ok(stepsWhenWaiting >= 3, `the second request came during the poll (after ${stepsWhenWaiting} steps)`);
      assert.equal(steps, stepsWhenWaiting, 'no idle step after it: the poll ended');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

