// Real programs on a real mount of the memory backend: an fsx-style random
// exerciser, concurrent writers, git, tar + diff, stress-ng and fio.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fsxBinary } from '../helpers/fsx.js';
import { mountCli, sh, tempDir, type CliMount } from '../helpers/mount.js';

describe('workloads on a real mount (memory backend)', () => {
  let m: CliMount;
  before(async () => {
    m = await mountCli();
  });
  after(async () => {
    assert.equal(await m.stop(), 0, m.output());
  });

  it('fsx: 100,000 random operations (writes, truncates, holes, mmap) match the model', async () => {
    const fsx = await fsxBinary();
    const r = await sh(`${fsx} -N 100000 -S 20261122 ${m.mnt}/fsx.a`, { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stdout.slice(-4000) + r.stderr);
    assert.match(r.stdout, /fsx: 100000 operations, 0 mismatches/);
  });

  it('fsx with large files and 256 KiB operations', async () => {
    const fsx = await fsxBinary();
    const r = await sh(`${fsx} -N 20000 -S 7 -l 4m -o 256k ${m.mnt}/fsx.b`, { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stdout.slice(-4000) + r.stderr);
  });

  it('two processes appending concurrently lose and tear no record', async () => {
    const f = path.join(m.mnt, 'appended.log');
    // Each record is one write(2) of 64 bytes through O_APPEND.
    const writer = (tag: string) =>
      sh(`python3 -c '
import os
fd = os.open("${f}", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for i in range(2000):
    rec = ("${tag}-%06d-" % i).ljust(63, "x") + "\\n"
    assert os.write(fd, rec.encode()) == 64
os.close(fd)'`);
    const [a, b] = await Promise.all([writer('A'), writer('B')]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const lines = fs.readFileSync(f, 'utf8').split('\n').filter(Boolean);
    assert.equal(lines.length, 4000);
    for (const tag of ['A', 'B']) {
      const mine = lines.filter((l) => l.startsWith(tag + '-'));
      assert.equal(mine.length, 2000, `records of ${tag}`);
      mine.forEach((l, i) => assert.equal(l, (`${tag}-${String(i).padStart(6, '0')}-`).padEnd(63, 'x')));
    }
  });

  it('two processes writing disjoint regions of one file concurrently', async () => {
    const f = path.join(m.mnt, 'regions.bin');
    const writer = (k: number) =>
      sh(`python3 -c '
import os
fd = os.open("${f}", os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(256):
    os.pwrite(fd, bytes([${k}]) * 4096, (i * 2 + ${k}) * 4096)
os.close(fd)'`);
    const rs = await Promise.all([writer(0), writer(1)]);
    for (const r of rs) assert.equal(r.code, 0, r.stderr);
    const data = fs.readFileSync(f);
    assert.equal(data.length, 512 * 4096);
    for (let block = 0; block < 512; block++) {
      const expected = block % 2;
      const slice = data.subarray(block * 4096, (block + 1) * 4096);
      assert.ok(slice.every((b) => b === expected), `block ${block}`);
    }
  });

  it('git init, add, commit, log and fsck work in the mount', async () => {
    const repo = path.join(m.mnt, 'repo');
    fs.mkdirSync(repo);
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(repo, `file${i}.txt`), `content ${i}\n`.repeat(i + 1));
    fs.mkdirSync(path.join(repo, 'sub/dir'), { recursive: true });
    fs.writeFileSync(path.join(repo, 'sub/dir/deep.txt'), 'deep\n');
    const git = 'git -c user.name=swarmvol -c user.email=test@swarmvol -c init.defaultBranch=main';
    const r = await sh(
      `set -e; cd ${repo}; ${git} init -q; ${git} add -A; ${git} commit -qm first; echo change >> file1.txt; ${git} commit -qam second; ${git} mv file2.txt renamed.txt; ${git} commit -qm third; ${git} gc -q; ${git} fsck --strict; ${git} log --oneline | wc -l; ${git} status --porcelain | wc -l`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['3', '0']);
  });

  it('tar x of a real source tree, then diff -r finds no difference', async () => {
    const src = '/usr/include';
    const tarball = path.join(tempDir(), 'tree.tar');
    let r = await sh(`tar -C ${src} -cf ${tarball} .`);
    assert.equal(r.code, 0, r.stderr);
    const dest = path.join(m.mnt, 'tree');
    fs.mkdirSync(dest);
    const start = Date.now();
    r = await sh(`tar -C ${dest} -xf ${tarball}`, { timeoutMs: 300_000 });
    const seconds = (Date.now() - start) / 1000;
    assert.equal(r.code, 0, r.stderr);
    r = await sh(`diff -r --no-dereference ${src} ${dest}`, { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stdout.slice(0, 2000) + r.stderr);
    const count = (await sh(`find ${dest} | wc -l`)).stdout.trim();
    console.log(`untar of ${src}: ${count} entries in ${seconds.toFixed(2)} s`);
    fs.rmSync(path.dirname(tarball), { recursive: true, force: true });
    r = await sh(`rm -rf ${dest}`, { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.existsSync(dest), false);
  });

  it('stress-ng filesystem stressors run clean with --verify', async () => {
    const dir = path.join(m.mnt, 'stress');
    fs.mkdirSync(dir);
    const stressors = [
      'dir', 'dentry', 'fallocate', 'hdd', 'link', 'symlink', 'rename', 'lockf', 'flock', 'fcntl', 'seek',
      'utime', 'chmod', 'chown', 'xattr', 'mmap', 'iomix', 'io', 'sync-file', 'fstat', 'getdent', 'open',
      'dup', 'locka', 'lease', 'copy-file', 'readahead',
    ];
    const args = stressors.map((s) => `--${s} 1`).join(' ');
    const r = await sh(`cd ${dir} && stress-ng --temp-path ${dir} ${args} --filename 1 --filename-opts posix --verify --timeout 8s`, { timeoutMs: 180_000 });
    assert.equal(r.code, 0, (r.stdout + r.stderr).split('\n').filter((l) => !/metrc/.test(l)).join('\n'));
    assert.match(r.stderr + r.stdout, /successful run completed/);
  });

  it('fio random read/write with crc32c verification, two jobs', async () => {
    const dir = path.join(m.mnt, 'fio');
    fs.mkdirSync(dir);
    const r = await sh(
      `fio --name=randrw --directory=${dir} --size=64m --rw=randrw --bs=4k --ioengine=psync --numjobs=2 --verify=crc32c --do_verify=1 --verify_state_save=0 --output-format=terse --minimal && ` +
        `fio --name=mmap --directory=${dir} --size=32m --rw=randwrite --bs=16k --ioengine=mmap --verify=md5 --verify_state_save=0 --output-format=terse --minimal && ` +
        `fio --name=seq --directory=${dir} --size=256m --rw=write --bs=128k --ioengine=psync --verify=sha256 --verify_state_save=0 --output-format=terse --minimal`,
      { timeoutMs: 300_000 },
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // terse format: field 5 is the job's error code
    for (const line of r.stdout.trim().split('\n')) assert.equal(line.split(';')[4], '0', line.slice(0, 200));
  });
});
