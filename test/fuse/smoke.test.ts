import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isMounted, mountCli, sh, type CliMount } from '../helpers/mount.js';

describe('swarmvol mount (CLI, memory backend)', () => {
  let m: CliMount;
  before(async () => {
    m = await mountCli();
  });
  after(async () => {
    await m?.stop();
  });

  it('shows up as fuse.swarmvol in /proc/mounts', async () => {
    assert.ok(await isMounted(m.mnt));
    const line = fs.readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.includes(` ${m.mnt} `));
    assert.match(line ?? '', /^swarmvol \S+ fuse\.swarmvol .*default_permissions.*allow_other/);
  });

  it('writes and reads back a file', () => {
    const f = path.join(m.mnt, 'hello.txt');
    fs.writeFileSync(f, 'hello world\n');
    assert.equal(fs.readFileSync(f, 'utf8'), 'hello world\n');
    assert.equal(fs.statSync(f).size, 12);
  });

  it('exits 0 and leaves no mount after umount', async () => {
    const code = await m.stop();
    assert.equal(code, 0, m.output());
    assert.equal(await isMounted(m.mnt), false);
  });
});

describe('swarmvol mount --no-xattrs', () => {
  it('answers extended attribute calls with EOPNOTSUPP (the kernel got ENOSYS once)', async () => {
    const m = await mountCli(['--no-xattrs']);
    try {
      const f = path.join(m.mnt, 'f');
      fs.writeFileSync(f, 'x');
      const r = await sh(`python3 -c "import os,sys
for i in range(2):
    try:
        os.setxattr(sys.argv[1], 'user.a', b'1'); print('set')
    except OSError as e: print(e.errno)
try:
    os.getxattr(sys.argv[1], 'user.a'); print('got')
except OSError as e: print(e.errno)" ${f}`);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), ['95', '95', '95']);
    } finally {
      assert.equal(await m.stop(), 0);
    }
  });
});
