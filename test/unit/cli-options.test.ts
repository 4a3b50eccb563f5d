import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChoice, parseSeconds, parseSize } from '../../src/cli/options.js';
import { readCString } from '../../src/fuse/wire.js';

describe('option parsing', () => {
  it('sizes take binary suffixes and name the option when wrong', () => {
    assert.equal(parseSize('quota', '1G', 0), 1024 ** 3);
    assert.equal(parseSize('quota', '128k', 0), 131072);
    assert.equal(parseSize('quota', '64MiB', 0), 64 * 1024 ** 2);
    assert.equal(parseSize('quota', undefined, 5), 5);
    assert.throws(() => parseSize('quota', '1.5G', 0), /--quota: expected a size/);
    assert.throws(() => parseSize('max-write', '2M', 0, 4096, 1 << 20), /--max-write: expected a size from 4096 to 1048576/);
  });

  it('seconds accept fractions, refuse junk', () => {
    assert.equal(parseSeconds('attr-timeout', '0.25', 1), 0.25);
    assert.throws(() => parseSeconds('attr-timeout', '-1', 1), /--attr-timeout/);
    assert.throws(() => parseSeconds('attr-timeout', '', 1), /--attr-timeout/);
    for (const junk of ['0x10', '1e3', '1e-9', '0.0001', '5s', 'Infinity', ' ']) assert.throws(() => parseSeconds('op-timeout', junk, 1), /--op-timeout: expected a number of seconds from 0 to .* \(decimal, up to 3 decimals\)/, junk);
    assert.equal(parseSeconds('op-timeout', '2.5', 1), 2.5);
  });

  it('choices are case-insensitive and list the accepted values', () => {
    assert.equal(parseChoice('mode', 'HYBRID', ['hybrid', 'dir', 'file'] as const, 'hybrid'), 'hybrid');
    assert.throws(() => parseChoice('mode', 'tree', ['hybrid', 'dir', 'file'] as const, 'hybrid'), /--mode: expected one of hybrid, dir, file, got "tree"/);
  });
});

describe('name decoding', () => {
  it('decodes ASCII and UTF-8 names and rejects invalid UTF-8', () => {
    assert.equal(readCString(Buffer.from('abc\0rest'), 0, 8).value, 'abc');
    assert.equal(readCString(Buffer.from('ünï\0', 'utf8'), 0, 6).value, 'ünï');
    assert.throws(() => readCString(Buffer.from([0x61, 0xff, 0]), 0, 3), /not valid UTF-8/);
  });
});
