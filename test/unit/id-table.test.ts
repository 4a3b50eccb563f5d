import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdTable } from '../../src/fs/id-table.js';

describe('IdTable', () => {
  it('hands out ids from firstId up, and never one below it', () => {
    const t = new IdTable<string>(2);
    assert.equal(t.allocate(), 2);
    assert.equal(t.allocate(), 3);
    assert.equal(t.get(0), undefined);
    assert.equal(t.get(1), undefined);
  });

  it('finds what was set, counts live entries, answers undefined past the end', () => {
    const t = new IdTable<string>(1);
    const a = t.allocate();
    const b = t.allocate();
    t.set(a, 'a');
    t.set(b, 'b');
    assert.equal(t.get(a), 'a');
    assert.equal(t.get(b), 'b');
    assert.equal(t.get(1000), undefined);
    assert.equal(t.size, 2);
    assert.deepEqual([...t.values()], ['a', 'b']);
  });

  it('reuses a deleted id under the next generation, and only once', () => {
    const t = new IdTable<string>(1);
    const a = t.allocate();
    t.set(a, 'a');
    assert.equal(t.generation(a), 0);
    t.delete(a);
    t.delete(a); // a second delete of a free id must not free it twice
    assert.equal(t.get(a), undefined);
    assert.equal(t.size, 0);
    assert.equal(t.allocate(), a);
    assert.equal(t.generation(a), 1);
    const fresh = t.allocate();
    assert.notEqual(fresh, a);
  });

  it('stays as large as the most ids live at once, however many come and go', () => {
    const t = new IdTable<number>(1);
    let highest = 0;
    for (let round = 0; round < 1000; round++) {
      const ids = [t.allocate(), t.allocate(), t.allocate()];
      for (const id of ids) t.set(id, round);
      highest = Math.max(highest, ...ids);
      for (const id of ids) t.delete(id);
    }
    assert.equal(highest, 3);
    assert.equal(t.size, 0);
  });

  it('clear drops every entry', () => {
    const t = new IdTable<string>(1);
    for (let i = 0; i < 5; i++) t.set(t.allocate(), String(i));
    t.clear();
    assert.equal(t.size, 0);
    assert.deepEqual([...t.values()], []);
  });
});
