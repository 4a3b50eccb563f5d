import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkVolumeName, MAX_VOLUME_NAME, OptionError, parseVolumeOptions } from '../../src/plugin/options.js';

const defaults = { hosts: '127.0.0.1:2181', root: '/swarmvol/volumes', auth: undefined };
const spec = (opts: Record<string, string>) => parseVolumeOptions('v', opts, defaults).spec;
const refused = (opts: Record<string, string>, message: RegExp) => assert.throws(() => spec(opts), (e: unknown) => e instanceof OptionError && message.test(e.message));

describe('volume options: quota, maxfilesize, jutemaxbuffer, readahead, busypoll', () => {
  it('takes sizes with suffixes and leaves unset ones to the defaults', () => {
    assert.deepEqual(
      { quota: spec({ quota: '1G' }).quota, maxfilesize: spec({ maxfilesize: '8M' }).maxfilesize, jutemaxbuffer: spec({ jutemaxbuffer: '4M' }).jutemaxbuffer },
      { quota: 1024 ** 3, maxfilesize: 8 * 1024 ** 2, jutemaxbuffer: 4 * 1024 ** 2 },
    );
    const plain = spec({});
    assert.equal(plain.maxfilesize, undefined);
    assert.equal(plain.jutemaxbuffer, undefined);
  });

  it('refuses bad values with the option name and what it accepts', () => {
    refused({ maxfilesize: 'big' }, /^maxfilesize: expected a size in bytes with an optional suffix/);
    refused({ maxfilesize: '0' }, /^maxfilesize: expected a size/);
    refused({ jutemaxbuffer: '1k' }, /^jutemaxbuffer: expected the ZooKeeper servers' jute.maxbuffer, from 64k/);
    refused({ quota: '1.5G' }, /^quota: expected a size/);
  });

  it('bounds maxfilesize by what one manifest describes under the server limit', () => {
    refused({ maxfilesize: '1T' }, /^maxfilesize: expected at most \d+ bytes with jutemaxbuffer 1048575/);
    assert.equal(spec({ maxfilesize: '1T', jutemaxbuffer: '32M' }).maxfilesize, 1024 ** 4, 'a larger server limit allows larger files');
    refused({ jutemaxbuffer: '64M' }, /^jutemaxbuffer: expected .* from 64k to 32M/);
    refused({ maxfilesize: '1G', jutemaxbuffer: '64k' }, /^maxfilesize: expected at most \d+ bytes with jutemaxbuffer 65536/);
  });

  it('takes busypoll in microseconds, 0 to turn it off, and refuses anything else', () => {
    assert.equal(spec({ busypoll: '200' }).busypoll, 200);
    assert.equal(spec({ busypoll: '0' }).busypoll, 0);
    assert.equal(spec({}).busypoll, undefined);
    refused({ busypoll: '1001' }, /^busypoll: expected microseconds from 0 \(off\) to 1000, got "1001"/);
    refused({ busypoll: '50us' }, /^busypoll: expected microseconds/);
  });

  it('takes readahead as a number of files, 0 to turn it off, and refuses anything else', () => {
    assert.equal(spec({ readahead: '64' }).readahead, 64);
    assert.equal(spec({ readahead: '0' }).readahead, 0);
    assert.equal(spec({}).readahead, undefined);
    refused({ readahead: '-1' }, /^readahead: expected a number of files from 0 \(off\) to 100000, got "-1"/);
    refused({ readahead: 'lots' }, /^readahead: expected a number of files/);
    refused({ readahead: '100001' }, /^readahead: expected a number of files/);
  });
});

describe('volume names', () => {
  it('takes letters, digits, _ . - up to MAX_VOLUME_NAME characters, so that every file named after a volume fits in a file name', () => {
    for (const ok of ['a', 'my_vol.1-x', 'v'.repeat(MAX_VOLUME_NAME)]) assert.equal(checkVolumeName(ok), ok);
    // The longest name the plugin builds from a volume's: its secret while written (`NAME.tmp-PID`).
    assert.ok(`${'v'.repeat(MAX_VOLUME_NAME)}.tmp-4194304`.length <= 255);
    for (const bad of ['', '-a', '.hidden', 'a/b', '../etc', 'a b', 'é', 'v'.repeat(MAX_VOLUME_NAME + 1), 7, null]) {
      assert.throws(() => checkVolumeName(bad), (err: Error) => err instanceof OptionError && /expected 1 to 200 letters, digits, _ \. -/.test(err.message), String(bad));
    }
    assert.throws(() => checkVolumeName('v'.repeat(252)), /"v{40}"\.\.\. \(252 characters\): expected 1 to 200/);
  });
});
