// Real programs on a ZooKeeper mount: fsx against its model, tar x + diff -r
// of a real tree, git; then the other node (a second mount) sees the same bytes.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fsxBinary } from '../helpers/fsx.js';
import { mountCli, sh, tempDir, type CliMount } from '../helpers/mount.js';
import { startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

describe('workloads on a ZooKeeper mount', () => {
  let zk: ZooKeeperServer;
  let a: CliMount;
  let b: CliMount;
  before(async () => {
    zk = await startZooKeeper();
    const args = ['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', '/work'];
    a = await mountCli(args);
    b = await mountCli(args);
  });
  after(async () => {
    if (a) assert.equal(await a.stop(), 0, a.output());
    if (b) assert.equal(await b.stop(), 0, b.output());
    await zk?.destroy();
  });

  it('fsx: 5,000 random operations (writes, truncates, holes, mmap, fsync) on files up to 256 KiB match the model', async () => {
    const fsx = await fsxBinary();
    const r = await sh(`${fsx} -N 5000 -S 20261122 -l 256k ${a.mnt}/fsx.dat`, { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /fsx: 5000 operations, 0 mismatches/);
    // The last content, committed at close, is the same on the other node.
    const mine = fs.readFileSync(path.join(a.mnt, 'fsx.dat'));
    assert.ok(fs.readFileSync(path.join(b.mnt, 'fsx.dat')).equals(mine));
  });

  it('tar x of a real source tree, diff -r against the original on both nodes, rm -rf', async () => {
    const src = '/usr/include/linux';
    const tarball = path.join(tempDir(), 'tree.tar');
    let r = await sh(`tar -C ${src} -cf ${tarball} .`);
    assert.equal(r.code, 0, r.stderr);
    fs.mkdirSync(path.join(a.mnt, 'tree'));
    const t0 = Date.now();
    r = await sh(`tar -C ${a.mnt}/tree -xf ${tarball}`, { timeoutMs: 300_000 });
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(r.code, 0, r.stderr);
    for (const m of [a, b]) {
      r = await sh(`diff -r --no-dereference ${src} ${m.mnt}/tree`, { timeoutMs: 300_000 });
      assert.equal(r.code, 0, r.stdout.slice(0, 2000) + r.stderr);
    }
    // tar restored modification times: the other node shows them too.
    r = await sh(`cd ${src} && find . -type f -printf '%p %T@ %m\\n' | sort > /tmp/swarmvol-src-times && cd ${b.mnt}/tree && find . -type f -printf '%p %T@ %m\\n' | sort | diff - /tmp/swarmvol-src-times`);
    assert.equal(r.code, 0, r.stdout.slice(0, 2000) + r.stderr);
    const count = (await sh(`find ${b.mnt}/tree | wc -l`)).stdout.trim();
    console.log(`tar x of ${src} into ZooKeeper: ${count} entries in ${seconds.toFixed(1)} s`);
    fs.rmSync(path.dirname(tarball), { recursive: true, force: true });
    r = await sh(`rm -rf ${b.mnt}/tree`, { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.existsSync(path.join(b.mnt, 'tree')), false);
  });

  it('git init, commit, rename, gc and fsck --strict', async () => {
    const repo = path.join(a.mnt, 'repo');
    fs.mkdirSync(repo);
    for (let i = 1; i <= 3; i++) fs.writeFileSync(path.join(repo, `file${i}.txt`), `line ${i}\n`);
    const git = 'git -c user.name=swarmvol -c user.email=test@swarmvol -c init.defaultBranch=main';
    const r = await sh(
      `set -e; cd ${repo}; ${git} init -q; ${git} add -A; ${git} commit -qm first; echo change >> file1.txt; ${git} commit -qam second; ${git} mv file2.txt renamed.txt; ${git} commit -qm third; ${git} gc -q; ${git} fsck --strict; ${git} log --oneline | wc -l; ${git} status --porcelain | wc -l`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['3', '0']);
    const other = await sh(`cd ${b.mnt}/repo && git -c safe.directory='*' fsck --strict && git -c safe.directory='*' log --oneline | wc -l`);
    assert.equal(other.code, 0, other.stderr);
    assert.equal(other.stdout.trim().split('\n').pop(), '3');
  });
});
