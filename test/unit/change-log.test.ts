// The log of watch events seen while reads are in flight.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChangeLog } from '../../src/backends/zookeeper/change-log.js';

describe('change log', () => {
  it('says whether an event for a path came in since a read began', () => {
    const log = new ChangeLog();
    log.record('/v/idle');
    assert.equal(log.size, 0, 'no read in flight: an event is not kept');
    const first = log.begin();
    log.record('/v/before');
    const since = log.begin();
    assert.equal(log.changedSince('/v/before', since), false, 'an event before the read is in its reply');
    log.record('/v/a');
    assert.equal(log.changedSince('/v/a', since), true);
    assert.equal(log.changedSince('/v/b', since), false);
    const later = log.begin();
    assert.equal(log.changedSince('/v/a', later), false, 'a read begun after the event');
    log.end(later);
    log.end(since);
    log.end(first);
  });

  it('says whether an event for a path below a directory came in, leaving out one name', () => {
    const log = new ChangeLog();
    log.record('/v/d/early');
    const since = log.begin();
    assert.equal(log.changedBelow('/v/d', since, '.swarmvol'), false, 'nothing yet (the event before the read is not kept)');
    log.record('/v/d/.swarmvol');
    log.record('/v/d');
    log.record('/v/dx/f');
    assert.equal(log.changedBelow('/v/d', since, '.swarmvol'), false, 'the directory itself, the name left out and a sibling with a longer name do not count');
    log.record('/v/d/e/f');
    assert.equal(log.changedBelow('/v/d', since, '.swarmvol'), true, 'any depth below counts');
    log.lostTrack();
    assert.equal(log.changedBelow('/v/other', since, '.swarmvol'), true, 'events missed: anything may have changed');
    log.end(since);
  });

  it('forgets events once no read is in flight, and past 4,096 those older than every read in flight', () => {
    const log = new ChangeLog();
    let first = log.begin();
    for (let i = 0; i < 10; i++) log.record(`/v/f${i}`);
    let second = log.begin();
    log.end(first);
    assert.equal(log.size, 10, 'a read is still in flight: kept while few');
    log.end(second);
    assert.equal(log.size, 0, 'no read in flight: nothing kept');

    first = log.begin();
    for (let i = 0; i < 5000; i++) log.record(`/v/f${i}`);
    second = log.begin();
    log.record('/v/late');
    log.end(first);
    assert.equal(log.size, 1, 'only the event newer than the oldest read in flight is kept');
    assert.equal(log.changedSince('/v/late', second), true);
    assert.equal(log.changedSince('/v/f1', second), false);
    log.end(second);
    assert.equal(log.size, 0);
  });

  it('read() reports, per path, an event that came in while its fetch was in flight, and ends the read', async () => {
    const log = new ChangeLog();
    const r = await log.read(['/v/a', '/v/b'], async () => {
      await new Promise((res) => setImmediate(res));
      log.record('/v/b');
      return 42;
    });
    assert.deepEqual(r, { value: 42, changed: [false, true] });
    assert.equal(log.size, 0, 'no read in flight any more');
    const failed = log.read(['/v/a'], () => Promise.reject(new Error('lost')));
    log.record('/v/c');
    await assert.rejects(failed, /lost/);
    assert.equal(log.size, 0, 'a failed read ended too: what came in during it is forgotten');
  });
});
