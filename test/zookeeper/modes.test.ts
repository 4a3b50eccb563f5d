// zookeeper-fuse's layouts (--mode dir, --mode file) for existing trees and users.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { mountCli, sh, type CliMount } from '../helpers/mount.js';
import { assertErrno } from '../helpers/posix.js';
import { startZooKeeper, type ZooKeeperServer } from '../helpers/zookeeper.js';

describe('ZooKeeper backend, zookeeper-fuse modes', () => {
  let zk: ZooKeeperServer;
  let plain: ZkClient;
  const mounts: CliMount[] = [];
  const mount = async (root: string, mode: string) => {
    const m = await mountCli(['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', root, '--mode', mode]);
    mounts.push(m);
    return m.mnt;
  };

  before(async () => {
    zk = await startZooKeeper();
    plain = new ZkClient({ connectString: zk.connectString });
    await plain.connect();
    for (const root of ['/d', '/f']) {
      await plain.create(root, Buffer.alloc(0), OPEN_ACL_UNSAFE);
      await plain.create(`${root}/app`, Buffer.from('app data'), OPEN_ACL_UNSAFE);
      await plain.create(`${root}/app/port`, Buffer.from('8080'), OPEN_ACL_UNSAFE);
    }
  });
  after(async () => {
    for (const m of mounts) assert.equal(await m.stop(), 0, m.output());
    plain?.close();
    await zk?.destroy();
  });

  it('dir mode (any case): every znode is a directory, its data in _zoo_data_, read and written', async () => {
    const mnt = await mount('/d', 'DIR');
    assert.deepEqual(fs.readdirSync(mnt).sort(), ['_zoo_data_', 'app']);
    assert.ok(fs.statSync(path.join(mnt, 'app/port')).isDirectory(), 'a znode without children is a directory too');
    assert.equal(fs.readFileSync(path.join(mnt, 'app/_zoo_data_'), 'utf8'), 'app data');
    assert.equal(fs.readFileSync(path.join(mnt, 'app/port/_zoo_data_'), 'utf8'), '8080');
    fs.mkdirSync(path.join(mnt, 'new'));
    fs.writeFileSync(path.join(mnt, 'new/_zoo_data_'), 'fresh');
    assert.equal((await plain.getData('/d/new')).data.toString(), 'fresh');
    assert.deepEqual((await plain.getChildren('/d/new')).children, [], 'no markers in dir mode');
    assertErrno(() => fs.writeFileSync(path.join(mnt, 'new/file'), 'x'), 'EPERM');
    assertErrno(() => fs.chmodSync(path.join(mnt, 'new'), 0o700), 'EPERM');
    fs.renameSync(path.join(mnt, 'new'), path.join(mnt, 'renamed'));
    assert.equal((await plain.getData('/d/renamed')).data.toString(), 'fresh');
    assertErrno(() => fs.rmdirSync(path.join(mnt, 'renamed')), 'ENOTEMPTY'); // its _zoo_data_ holds 'fresh'
    fs.unlinkSync(path.join(mnt, 'renamed/_zoo_data_'));
    fs.rmdirSync(path.join(mnt, 'renamed'));
    assert.equal(await plain.exists('/d/renamed'), null);
    assertErrno(() => fs.rmdirSync(path.join(mnt, 'app')), 'ENOTEMPTY');
  });

  it('file mode: znodes without children are files, with children directories; no attributes or symlinks', async () => {
    const mnt = await mount('/f', 'file');
    assert.deepEqual(fs.readdirSync(mnt), ['app']);
    assert.ok(fs.statSync(path.join(mnt, 'app')).isDirectory());
    assert.equal(fs.readFileSync(path.join(mnt, 'app/port'), 'utf8'), '8080');
    fs.writeFileSync(path.join(mnt, 'app/host'), 'db1');
    assert.equal((await plain.getData('/f/app/host')).data.toString(), 'db1');
    fs.mkdirSync(path.join(mnt, 'conf'));
    fs.writeFileSync(path.join(mnt, 'conf/a'), 'a');
    assert.equal((await plain.getData('/f/conf/a')).data.toString(), 'a');
    assert.deepEqual((await plain.getChildren('/f/conf')).children, ['a'], 'no markers in file mode');
    assertErrno(() => fs.symlinkSync('a', path.join(mnt, 'conf/link')), 'EPERM');
    assertErrno(() => fs.chmodSync(path.join(mnt, 'conf/a'), 0o600), 'EPERM');
    fs.rmSync(path.join(mnt, 'conf'), { recursive: true });
    assert.equal(await plain.exists('/f/conf'), null);
  });

  it("a directory whose own data shows in it is not empty: rmdir and a rename over it answer ENOTEMPTY, rm -r removes it (dir and hybrid modes)", async () => {
    for (const [mode, root, dataName] of [['dir', '/dd', '_zoo_data_'], ['hybrid', '/dh', '.zdata']] as const) {
      await plain.create(root, Buffer.alloc(0), OPEN_ACL_UNSAFE);
      await plain.create(`${root}/tree`, Buffer.from('tree data'), OPEN_ACL_UNSAFE);
      await plain.create(`${root}/tree/leaf`, Buffer.from('leaf data'), OPEN_ACL_UNSAFE);
      const mnt = await mount(root, mode);
      fs.mkdirSync(path.join(mnt, 'full'));
      fs.writeFileSync(path.join(mnt, 'full', dataName), 'full data');
      fs.mkdirSync(path.join(mnt, 'other', 'sub'), { recursive: true });
      assert.equal(fs.readFileSync(path.join(mnt, 'full', dataName), 'utf8'), 'full data', mode);
      assertErrno(() => fs.rmdirSync(path.join(mnt, 'full')), 'ENOTEMPTY');
      assertErrno(() => fs.renameSync(path.join(mnt, 'other', 'sub'), path.join(mnt, 'full')), 'ENOTEMPTY');
      assert.equal((await plain.getData(`${root}/full`)).data.toString(), 'full data', `${mode}: the data stays`);
      fs.unlinkSync(path.join(mnt, 'full', dataName));
      fs.rmdirSync(path.join(mnt, 'full'));
      assert.equal(await plain.exists(`${root}/full`), null, mode);
      fs.rmSync(path.join(mnt, 'tree'), { recursive: true });
      assert.equal(await plain.exists(`${root}/tree`), null, mode);
    }
  });

  it('file mode: rm -r removes a directory made by another tool, its own data with it, as zookeeper-fuse does', async () => {
    await plain.create('/f/made', Buffer.from('made data'), OPEN_ACL_UNSAFE);
    await plain.create('/f/made/a', Buffer.from('a'), OPEN_ACL_UNSAFE);
    await plain.create('/f/made/b', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    await plain.create('/f/made/b/c', Buffer.from('c'), OPEN_ACL_UNSAFE);
    const mnt = await mount('/f', 'file');
    fs.rmSync(path.join(mnt, 'made'), { recursive: true });
    assert.equal(await plain.exists('/f/made'), null);
  });

  it("never shows or lets go of swarmvol's own znodes of a volume, in any mode", async () => {
    for (const [mode, root] of [['dir', '/dr'], ['file', '/fr'], ['hybrid', '/hr']] as const) {
      await plain.create(root, Buffer.alloc(0), OPEN_ACL_UNSAFE);
      await plain.create(`${root}/kept`, Buffer.from('k'), OPEN_ACL_UNSAFE);
      for (const own of ['.swarmvol-epoch', '.swarmvol-locks', '.swarmvol-chunks']) await plain.create(`${root}/${own}`, Buffer.from('7'), OPEN_ACL_UNSAFE);
      const mnt = await mount(root, mode);
      assert.ok(!fs.readdirSync(mnt).some((n) => n.startsWith('.swarmvol')), `${mode}: ${fs.readdirSync(mnt).join(' ')}`);
      for (const own of ['.swarmvol-epoch', '.swarmvol-locks', '.swarmvol-chunks']) {
        assertErrno(() => fs.statSync(path.join(mnt, own)), 'ENOENT');
        assertErrno(() => fs.rmSync(path.join(mnt, own)), 'ENOENT');
        assert.notEqual(await plain.exists(`${root}/${own}`), null, `${mode}: ${own} stays`);
      }
    }
  });

  it('touch of an existing entry in dir and file modes makes its mtime now (the data written back as it is); explicit times are EPERM', async () => {
    for (const [mode, root, file] of [['dir', '/dt', 'conf/_zoo_data_'], ['file', '/ft', 'conf/port']] as const) {
      await plain.create(root, Buffer.alloc(0), OPEN_ACL_UNSAFE);
      await plain.create(`${root}/conf`, Buffer.from('conf data'), OPEN_ACL_UNSAFE);
      await plain.create(`${root}/conf/port`, Buffer.from('8080'), OPEN_ACL_UNSAFE);
      const mnt = await mount(root, mode);
      const before = fs.statSync(path.join(mnt, file)).mtimeMs;
      await new Promise((r) => setTimeout(r, 1100));
      const touched = await sh(`touch ${path.join(mnt, file)} ${path.join(mnt, 'conf')}`);
      assert.equal(touched.code, 0, `${mode}: ${touched.stderr}`);
      assert.ok(fs.statSync(path.join(mnt, file)).mtimeMs >= before + 1000, `${mode}: mtime now`);
      const zkPath = mode === 'dir' ? `${root}/conf` : `${root}/conf/port`;
      assert.equal((await plain.getData(zkPath)).data.toString(), mode === 'dir' ? 'conf data' : '8080', `${mode}: data unchanged`);
      const explicit = await sh(`touch -d 2020-01-01 ${path.join(mnt, file)}`);
      assert.notEqual(explicit.code, 0, mode);
      assert.match(explicit.stderr, /Operation not permitted/);
    }
  });

  it('refuses an unknown mode naming the accepted ones', async () => {
    const r = await sh(`bin/swarmvol mount --backend zookeeper --hosts ${zk.connectString} --path /d --mode tree /tmp`);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--mode: expected one of hybrid, dir, file, got "tree"/);
  });
});
