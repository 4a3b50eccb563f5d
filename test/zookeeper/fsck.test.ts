// swarmvol fsck against a real ZooKeeper, with two mounts as two nodes:
// chunks no record accounts for are found and (with --repair) deleted, files
// whose chunks are gone are reported, and a repair running while a node
// rewrites and renames large files never takes a chunk a file uses.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { chunkNames, decodeManifest, encodeManifest } from '../../src/backends/zookeeper/chunks.js';
import { type FsckOptions, fsckVolume } from '../../src/backends/zookeeper/fsck.js';
import { CHUNKS_NAME } from '../../src/backends/zookeeper/layout.js';
import { CLI, mountCli, sh, waitFor } from '../helpers/mount.js';
import { startTwoNodes, type TwoNodes } from '../helpers/zookeeper.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('swarmvol fsck', () => {
  const VOL = '/fsck';
  const STORE = `${VOL}/${CHUNKS_NAME}`;
  let nodes: TwoNodes;
  const fsck = (...args: string[]) => sh(`'${CLI}' fsck --hosts ${nodes.zk.connectString} --path ${VOL} ${args.join(' ')}`);
  const onA = (p: string) => path.join(nodes.a.mnt, p);
  const onB = (p: string) => path.join(nodes.b.mnt, p);
  /** What every file should hold: checked through B (the other node) at the end of each test. */
  const model = new Map<string, string>();
  const write = (p: string, content: Buffer) => {
    fs.writeFileSync(onA(p), content);
    model.set(p, sha(content));
  };
  const assertFilesIntact = async () => {
    for (const [p, want] of model) await waitFor(() => sha(fs.readFileSync(onB(p))) === want, 3000, `${p} reads as written, on B`);
  };
  /** Waits until the mounts' own collection has run (no garbage record, no pending commit). */
  const untilSettled = () =>
    waitFor(
      async () => (await nodes.plain.getChildren(`${STORE}/gc`)).children.length + (await nodes.plain.getChildren(`${STORE}/pending`)).children.length === 0,
      5000,
      'the mounts collect their garbage',
    );

  before(async () => {
    nodes = await startTwoNodes(VOL);
    fs.mkdirSync(onA('d'));
    write('small', Buffer.from('small file'));
    write('big', randomBytes(3 * MiB));
    write('d/big2', randomBytes(2 * MiB + 7));
    write('replaced', randomBytes(2 * MiB));
    write('replaced', randomBytes(2 * MiB)); // the first version's chunks are garbage, collected
    fs.writeFileSync(onA('moved'), randomBytes(2 * MiB));
    fs.renameSync(onA('moved'), onA('d/moved'));
    model.set('d/moved', sha(fs.readFileSync(onA('d/moved'))));
    await untilSettled();
  });
  after(() => nodes?.stop());

  it('finds nothing wrong in a volume the mounts kept (exit 0), and reads every znode', async () => {
    const r = await fsck();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\/fsck: \d+ znodes read, 4 large files/);
    assert.match(r.stdout, / 0 unreferenced \(0 bytes\)/);
    assert.doesNotMatch(r.stdout, /damaged/);
  });

  it('reports chunks no file uses and no record accounts for (exit 4); --repair deletes them (exit 1), not before --min-age', async () => {
    const orphans = ['0123456789abcdef-0', '0123456789abcdef-1'];
    for (const o of orphans) await nodes.plain.create(`${STORE}/c/${o}`, Buffer.alloc(1000, 1), OPEN_ACL_UNSAFE);
    const found = await fsck();
    assert.equal(found.code, 4, found.stdout + found.stderr);
    assert.match(found.stdout, / 2 unreferenced \(2000 bytes\)/);
    for (const o of orphans) assert.match(found.stdout, new RegExp(`unreferenced ${o}: 1000 bytes`));
    assert.match(found.stdout, /run again with --repair/);
    // Just made: younger than the default 600 s, kept.
    const young = await fsck('--repair');
    assert.equal(young.code, 4, young.stdout + young.stderr);
    assert.match(young.stdout, /deleted 0 unreferenced chunks; kept 2 younger than 600 s/);
    for (const o of orphans) assert.ok(await nodes.plain.exists(`${STORE}/c/${o}`), `${o} kept`);
    const repaired = await fsck('--repair', '--min-age', '0');
    assert.equal(repaired.code, 1, repaired.stdout + repaired.stderr);
    assert.match(repaired.stdout, /repair: deleted 2 unreferenced chunks\n/);
    for (const o of orphans) assert.equal(await nodes.plain.exists(`${STORE}/c/${o}`), null, `${o} deleted`);
    const again = await fsck();
    assert.equal(again.code, 0, again.stdout + again.stderr);
    await assertFilesIntact();
  });

  it('keeps the chunks of a commit under way (its pending record) and of a replaced version still read (its garbage record)', async () => {
    // A version a reader on B still has open: its chunks are garbage, held by B's pin.
    const reader = fs.openSync(onB('big'), 'r');
    try {
      fs.readSync(reader, Buffer.alloc(10), 0, 10, 0);
      write('big', randomBytes(3 * MiB));
      await waitFor(async () => (await nodes.plain.getChildren(`${STORE}/gc`)).children.length > 0, 3000, 'a garbage record');
      // A commit under way: its record is written before its chunks.
      await nodes.plain.create(`${STORE}/pending/fedcba9876543210`, Buffer.from(JSON.stringify(['fedcba9876543210-0'])), OPEN_ACL_UNSAFE);
      await nodes.plain.create(`${STORE}/c/fedcba9876543210-0`, Buffer.alloc(10), OPEN_ACL_UNSAFE);
      const r = await fsck('--repair', '--min-age', '0');
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, / 0 unreferenced/);
      assert.ok(await nodes.plain.exists(`${STORE}/c/fedcba9876543210-0`), 'the pending commit\'s chunk stays');
    } finally {
      fs.closeSync(reader);
    }
    await nodes.plain.delete(`${STORE}/c/fedcba9876543210-0`);
    await nodes.plain.delete(`${STORE}/pending/fedcba9876543210`);
    await untilSettled();
    await assertFilesIntact();
  });

  it('reports a large file whose chunk is gone as damaged (exit 4), and repairs nothing of it', async () => {
    write('hurt', randomBytes(2 * MiB));
    const manifest = decodeManifest((await nodes.plain.getData(`${VOL}/hurt`)).data);
    assert.ok(manifest);
    const lost = [...chunkNames(manifest)][0]!;
    await nodes.plain.delete(`${STORE}/c/${lost}`);
    const r = await fsck('--repair', '--min-age', '0');
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`damaged: /fsck/hurt names 1 chunks that are not stored \\(${lost}\\); restore it from a copy`));
    fs.unlinkSync(onA('hurt'));
    model.delete('hurt');
    await untilSettled();
    const clean = await fsck();
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  });

  /**
   * fsckVolume on a client of its own whose getChildren of `gatedPath` waits
   * until `whileHeld` has run (the first `times` calls): a change lands
   * exactly where the check is then. Asserts that the check got there.
   */
  const fsckGated = async (gatedPath: string, whileHeld: () => Promise<void>, opts: FsckOptions, times = 1) => {
    const zk = new ZkClient({ connectString: nodes.zk.connectString });
    await zk.connect();
    const getChildren = zk.getChildren.bind(zk);
    let held = 0;
    zk.getChildren = async (p: string, watch?: boolean) => {
      if (p === gatedPath && held < times) {
        held++;
        await whileHeld();
      }
      return getChildren(p, watch);
    };
    try {
      const report = await fsckVolume(zk, VOL, opts);
      assert.ok(held > 0, `the check read ${gatedPath}`);
      return report;
    } finally {
      zk.close();
    }
  };

  it('a large file renamed out of a directory the walk has not listed yet, into one it has: its chunks stay (the watch reports it)', async () => {
    fs.mkdirSync(onA('late'));
    write('late/f', randomBytes(2 * MiB));
    await untilSettled();
    const moved = async () => {
      // The top was listed without f2; late/ is listed after f leaves it.
      fs.renameSync(onA('late/f'), onA('f2'));
      model.delete('late/f');
      model.set('f2', sha(fs.readFileSync(onA('f2'))));
    };
    const report = await fsckGated(`${VOL}/late`, moved, { repair: true, minAgeMs: 0 });
    assert.deepEqual(report.unreferenced, [], 'the renamed file\'s chunks taken for unreferenced');
    await assertFilesIntact();
  });

  it('a commit that switches after the walk read its file, before the check reads the pending records: its chunks stay', async () => {
    const gen = 'aaaabbbbccccdddd';
    const content = Buffer.from('switched late');
    await nodes.plain.create(`${STORE}/pending/${gen}`, Buffer.from(JSON.stringify([`${gen}-0`])), OPEN_ACL_UNSAFE);
    await nodes.plain.create(`${STORE}/c/${gen}-0`, content, OPEN_ACL_UNSAFE);
    await nodes.plain.create(`${VOL}/switching`, Buffer.from('before'), OPEN_ACL_UNSAFE);
    const switched = async () => {
      // The commit's switch, as a mount makes it: the manifest, and its pending record gone, in one transaction.
      const manifest = encodeManifest({ g: gen, size: content.length, cs: 1024 * 1024, c: [gen] });
      await nodes.plain.multi([
        { op: 'setData', path: `${VOL}/switching`, data: manifest },
        { op: 'delete', path: `${STORE}/pending/${gen}`, version: 0 },
      ]);
    };
    // Without repair: its sweep, first, reads the records too.
    const report = await fsckGated(`${STORE}/pending`, switched, { repair: false, minAgeMs: 0 });
    assert.deepEqual(report.unreferenced, [], 'the switched commit\'s chunk taken for unreferenced');
    await nodes.plain.delete(`${VOL}/switching`);
    await nodes.plain.delete(`${STORE}/c/${gen}-0`);
  });

  it('a commit switched and then replaced, both while the check reads the pending records: the chunk replaced is taken for garbage (a reader may still pin it)', async () => {
    const [g2, g3] = ['2222222222222222', '3333333333333333'];
    const manifest = (g: string) => encodeManifest({ g, size: 10, cs: 1024 * 1024, c: [g] });
    await nodes.plain.create(`${STORE}/pending/${g2}`, Buffer.from(JSON.stringify([`${g2}-0`])), OPEN_ACL_UNSAFE);
    await nodes.plain.create(`${STORE}/c/${g2}-0`, Buffer.alloc(10, 2), OPEN_ACL_UNSAFE);
    await nodes.plain.create(`${STORE}/c/${g3}-0`, Buffer.alloc(10, 3), OPEN_ACL_UNSAFE);
    const file = `${VOL}/twice`;
    await nodes.plain.create(file, Buffer.from('before'), OPEN_ACL_UNSAFE);
    const switchedAndReplaced = async () => {
      // The switch to g2, then a commit that drops g2's chunk and records it as garbage, sent
      // together (in this order, on one session): the check reads the file after both.
      await Promise.all([
        nodes.plain.multi([
          { op: 'setData', path: file, data: manifest(g2), version: 0 },
          { op: 'delete', path: `${STORE}/pending/${g2}`, version: 0 },
        ]),
        nodes.plain.multi([
          { op: 'setData', path: file, data: manifest(g3), version: 1 },
          { op: 'create', path: `${STORE}/gc/${g2}`, data: Buffer.from(JSON.stringify([`${g2}-0`])), acl: OPEN_ACL_UNSAFE },
        ]),
      ]);
    };
    const report = await fsckGated(`${STORE}/pending`, switchedAndReplaced, { repair: false, minAgeMs: 0 });
    assert.deepEqual(report.unreferenced, [], 'the replaced version\'s chunk taken for unreferenced');
    for (const p of [file, `${STORE}/gc/${g2}`, `${STORE}/c/${g2}-0`, `${STORE}/c/${g3}-0`]) await nodes.plain.delete(p);
  });

  it('deletes nothing when files change at every reading of the garbage records (it cannot be sure), and says so', async () => {
    const orphan = '4444444444444444-0';
    await nodes.plain.create(`${STORE}/c/${orphan}`, Buffer.alloc(5), OPEN_ACL_UNSAFE);
    await nodes.plain.create(`${VOL}/busy`, Buffer.alloc(0), OPEN_ACL_UNSAFE);
    let writes = 0;
    const written = async () => void (await nodes.plain.setData(`${VOL}/busy`, Buffer.from(String(++writes))));
    const report = await fsckGated(`${STORE}/gc`, written, { repair: true, minAgeMs: 0 }, 1000);
    assert.equal(report.settled, false);
    assert.deepEqual(report.unreferenced.map((c) => c.name), [orphan]);
    assert.equal(report.deleted, 0);
    assert.ok(await nodes.plain.exists(`${STORE}/c/${orphan}`), 'kept');
    await nodes.plain.delete(`${VOL}/busy`);
    const r = await fsck('--repair', '--min-age', '0');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(await nodes.plain.exists(`${STORE}/c/${orphan}`), null, 'deleted once the volume is calm');
  });

  it('repairs while A rewrites, renames and removes large files: no file loses a chunk', async () => {
    let stop = false;
    let rounds = 0;
    const churn = (async () => {
      for (let i = 0; !stop; i++) {
        const content = randomBytes(MiB + (i % 5) * 300_000);
        const name = `churn${i % 3}`;
        fs.writeFileSync(onA(name), content);
        // Moved between directories while the walk may be reading either.
        fs.renameSync(onA(name), onA(`d/${name}`));
        fs.renameSync(onA(`d/${name}`), onA(name));
        model.set(name, sha(content));
        if (i % 4 === 3) {
          fs.unlinkSync(onA(name));
          model.delete(name);
        }
        rounds++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    try {
      for (let i = 0; i < 8; i++) {
        const r = await fsck('--repair', '--min-age', '0');
        assert.ok(r.code === 0 || r.code === 1, `fsck ${i}: exit ${r.code}\n${r.stdout}${r.stderr}`);
        assert.doesNotMatch(r.stdout, /damaged/, `fsck ${i}`);
      }
    } finally {
      stop = true;
      await churn;
    }
    assert.ok(rounds >= 8, `A made ${rounds} rounds of changes during the checks`);
    await untilSettled();
    await assertFilesIntact();
    const r = await fsck();
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it('checks a volume that never had a large file (no chunk store): nothing to report, with or without --repair', async () => {
    await nodes.plain.create('/small-only', Buffer.alloc(0), OPEN_ACL_UNSAFE);
    await nodes.plain.create('/small-only/f', Buffer.from('x'), OPEN_ACL_UNSAFE);
    for (const repair of ['', '--repair']) {
      const r = await sh(`'${CLI}' fsck --hosts ${nodes.zk.connectString} --path /small-only ${repair}`);
      assert.equal(r.code, 0, `${repair}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /\/small-only: 2 znodes read, 0 large files\nchunks: 0 stored/);
    }
  });

  it('checks a volume whose znodes only its digest identity may read, given --auth; without it, exit 8 with what to do', async () => {
    const secured = await mountCli(['--backend', 'zookeeper', '--hosts', nodes.zk.connectString, '--path', '/secured', '--auth', 'digest:ops:s3cret-pw']);
    try {
      fs.writeFileSync(path.join(secured.mnt, 'big'), randomBytes(2 * MiB));
    } finally {
      assert.equal(await secured.stop(), 0, secured.output());
    }
    const denied = await sh(`'${CLI}' fsck --hosts ${nodes.zk.connectString} --path /secured`);
    assert.equal(denied.code, 8, denied.stdout + denied.stderr);
    assert.match(denied.stderr, /not allowed to read .*: give the volume's --auth/);
    const r = await sh(`'${CLI}' fsck --hosts ${nodes.zk.connectString} --path /secured --auth digest:ops:s3cret-pw --repair`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 large files/);
  });

  it('rejects bad options with messages naming them (exit 2), and a missing volume (exit 8)', async () => {
    for (const [args, message] of [
      ['--path /fsck', /--hosts: required by fsck/],
      [`--hosts ${nodes.zk.connectString} --path fsck`, /--path: expected an absolute ZooKeeper path/],
      [`--hosts ${nodes.zk.connectString} --path /fsck --min-age soon`, /--min-age: expected a number of seconds/],
      [`--hosts ${nodes.zk.connectString} --path /fsck --auth nobody`, /--auth: expected digest:USER:PASSWORD/],
    ] as const) {
      const r = await sh(`'${CLI}' fsck ${args}`);
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const missing = await sh(`'${CLI}' fsck --hosts ${nodes.zk.connectString} --path /nowhere`);
    assert.equal(missing.code, 8, missing.stderr);
    assert.match(missing.stderr, /no volume at \/nowhere/);
  });
});
