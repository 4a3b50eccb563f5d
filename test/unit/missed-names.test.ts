import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MissedNames } from '../../src/fs/missed-names.js';

describe('MissedNames (negative entries to drop after a reconnect)', () => {
  it('records each name once per parent and hands them all back once', () => {
    const m = new MissedNames(() => assert.fail('nothing is evicted below the limit'));
    m.add(1, 'a');
    m.add(1, 'a');
    m.add(1, 'b');
    m.add(7, 'a');
    assert.equal(m.size, 3);
    assert.deepEqual(m.drain(), [
      [1, 'a'],
      [1, 'b'],
      [7, 'a'],
    ]);
    assert.equal(m.size, 0);
    assert.deepEqual(m.drain(), []);
  });

  it('past its limit drops the oldest names from the kernel at once, so none the kernel may keep goes unrecorded', () => {
    const evicted: Array<[number, string]> = [];
    const m = new MissedNames((parent, name) => evicted.push([parent, name]), 3);
    m.add(1, 'a');
    m.add(2, 'b');
    m.add(1, 'c');
    m.add(3, 'd');
    assert.deepEqual(evicted, [[1, 'a']]);
    m.add(3, 'e');
    assert.deepEqual(evicted, [
      [1, 'a'],
      [1, 'c'],
    ]);
    assert.equal(m.size, 3);
    assert.deepEqual(m.drain(), [
      [2, 'b'],
      [3, 'd'],
      [3, 'e'],
    ]);
  });

  it("forgets a parent's names when the kernel forgets the parent", () => {
    const m = new MissedNames(() => undefined);
    m.add(1, 'a');
    m.add(2, 'b');
    m.add(2, 'c');
    m.forgetParent(2);
    m.forgetParent(9);
    assert.equal(m.size, 1);
    assert.deepEqual(m.drain(), [[1, 'a']]);
  });
});
