// Sizes and counts as users write them in options (shared by the CLI and the plugin).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sizeInBytes, wholeNumber } from '../../src/util/numbers.js';

describe('option numbers', () => {
  it('sizeInBytes reads binary units with or without B/iB, any case, and nothing else', () => {
    assert.equal(sizeInBytes('512'), 512);
    assert.equal(sizeInBytes('64k'), 65536);
    assert.equal(sizeInBytes(' 1M '), 1024 ** 2);
    assert.equal(sizeInBytes('2GiB'), 2 * 1024 ** 3);
    assert.equal(sizeInBytes('1tb'), 1024 ** 4);
    for (const bad of ['', 'k', '1.5M', '-1', '1 X', '0x10', '99999999999999999999']) assert.ok(Number.isNaN(sizeInBytes(bad)), bad);
  });

  it('wholeNumber reads decimal digits only, within exact integers', () => {
    assert.equal(wholeNumber('0'), 0);
    assert.equal(wholeNumber(' 1024 '), 1024);
    for (const bad of ['', '1e3', '-1', '1.0', '12a', '99999999999999999999']) assert.ok(Number.isNaN(wholeNumber(bad)), bad);
  });
});
