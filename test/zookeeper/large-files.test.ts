// Large files on the ZooKeeper backend, with two mounts as two nodes against a
// real ZooKeeper and a plain client looking at what is stored: files above one
// znode's limit kept as a manifest plus chunks, read and written at any offset,
// truncated both ways, replaced atomically for readers on the other node, and
// no chunk left behind once nobody reads a replaced version.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { decodeManifest, type Manifest } from '../../src/backends/zookeeper/chunks.js';
import { CLI, mountCli, sh, waitFor, type CliMount } from '../helpers/mount.js';
import { errnoOf, PY } from '../helpers/posix.js';
import { startTwoNodes, type TwoNodes, type ZooKeeperServer } from '../helpers/zookeeper.js';

const MiB = 1024 * 1024;
const CHUNK = 512 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Bytes that differ at every offset and between seeds (a misplaced chunk shows). */
function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    if (i % 4 === 0) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
    }
    b[i] = (x >>> ((i % 4) * 8)) & 0xff;
  }
  return b;
}

/**
 * Reads `p` until its checksum is `want`. Another node's change reaches this
 * one through the ZooKeeper watch, milliseconds after the writer's close
 * returns (README: p99 7-11 ms), so a reader that already holds the file may
 * read the old version for that long.
 */
async function seenAs(p: string, want: string, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = sha(fs.readFileSync(p));
    if (got === want) return;
    if (Date.now() > deadline) assert.equal(got, want, `${what}: not seen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs a python program (argv after it) to the end; resolves its stdout. */
function pyAsync(code: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PY, ['-c', code, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (c) => (c === 0 ? resolve(out) : reject(new Error(`python exited ${c}: ${err}`))));
  });
}

describe('ZooKeeper backend, large files', () => {
  let zk: ZooKeeperServer;
  let plain: ZkClient;
  let a: CliMount;
  let b: CliMount;
  const VOL = '/big';
  const STORE = `${VOL}/.swarmvol-chunks`;

  /** The manifest a file's znode holds (asserts it is one). */
  const manifestOf = async (rel: string): Promise<Manifest> => {
    const m = decodeManifest((await plain.getData(`${VOL}/${rel}`)).data);
    assert.ok(m, `${rel} is stored as a manifest`);
    return m;
  };
  const storedChunks = async () => new Set((await plain.getChildren(`${STORE}/c`)).children);
  /** Every chunk znode stored is used by a manifest in the volume (after readers closed and the collection ran). */
  const assertNoLeftovers = async (files: string[]) => {
    const used = new Set<string>();
    for (const f of files) for (const [i, g] of (await manifestOf(f)).c.entries()) if (g) used.add(`${g}-${i}`);
    // Chunks go first, then their garbage record.
    const settled = async () => (await storedChunks()).size === used.size && (await plain.getChildren(`${STORE}/gc`)).children.length === 0;
    await waitFor(settled, 5000, `chunks down to the ${used.size} in use`);
    assert.deepEqual([...(await storedChunks())].sort(), [...used].sort());
    assert.deepEqual((await plain.getChildren(`${STORE}/gc`)).children, [], 'no garbage record left');
    assert.deepEqual((await plain.getChildren(`${STORE}/pending`)).children, [], 'no pending commit left');
  };

  let nodes: TwoNodes | undefined;
  before(async () => {
    nodes = await startTwoNodes(VOL);
    ({ zk, plain, a, b } = nodes);
  });
  after(() => nodes?.stop());

  it('stores 5 MiB and 60 MiB files written on A in chunks below the znode limit; B reads them exactly', async () => {
    for (const [name, size, seed] of [['5m', 5 * MiB, 1], ['60m', 60 * MiB, 2]] as const) {
      const data = pattern(size, seed);
      const t0 = performance.now();
      fs.writeFileSync(path.join(a.mnt, name), data);
      const written = performance.now() - t0;
      assert.equal(fs.statSync(path.join(b.mnt, name)).size, size);
      const t1 = performance.now();
      assert.equal(sha(fs.readFileSync(path.join(b.mnt, name))), sha(data), `${name} on B`);
      const read = performance.now() - t1;
      console.log(`# ${name}: write on A ${((size / MiB / written) * 1000).toFixed(1)} MB/s, cold read on B ${((size / MiB / read) * 1000).toFixed(1)} MB/s`);
      const m = await manifestOf(name);
      assert.equal(m.size, size);
      assert.equal(m.cs, CHUNK);
      assert.equal(m.c.length, size / CHUNK);
      for (const i of [0, m.c.length - 1]) {
        const chunk = await plain.getData(`${STORE}/c/${m.c[i]}-${i}`);
        assert.equal(chunk.data.length, CHUNK, 'a chunk holds 512 KiB, well below the 1 MiB znode limit');
        assert.ok(chunk.data.equals(data.subarray(i * CHUNK, (i + 1) * CHUNK)), `chunk ${i} holds its bytes`);
      }
    }
    assert.ok(!fs.readdirSync(a.mnt).includes('.swarmvol-chunks'), 'the chunk store is hidden');
    assert.equal(errnoOf(() => fs.mkdirSync(path.join(a.mnt, '.swarmvol-chunks'))), 'EPERM', 'its name is reserved');
    await assertNoLeftovers(['5m', '60m']);
  });

  it('keeps small files plain: one znode holding exactly the bytes, nothing in the chunk store', async () => {
    const before = await storedChunks();
    const data = pattern(1_000_000, 3);
    fs.writeFileSync(path.join(a.mnt, 'small'), data);
    assert.ok((await plain.getData(`${VOL}/small`)).data.equals(data));
    assert.deepEqual(await storedChunks(), before);
    // A plain file whose bytes happen to look like a manifest stays plain bytes.
    const fake = Buffer.from('SWARMVOL-CHUNKED-FILE 1\n{"g":"x","size":9,"cs":4,"c":["x","x","x"]}');
    await plain.create(`${VOL}/lookalike`, fake, OPEN_ACL_UNSAFE);
    await waitFor(() => fs.existsSync(path.join(b.mnt, 'lookalike')), 3000, 'the plain client’s file on B');
    assert.ok(fs.readFileSync(path.join(b.mnt, 'lookalike')).equals(fake));
    assert.equal(fs.statSync(path.join(b.mnt, 'lookalike')).size, fake.length);
  });

  it('reads and writes 4 KiB at random offsets, checked against a model on both nodes', async () => {
    const f = 'random';
    const model = pattern(5 * MiB + 12345, 4);
    fs.writeFileSync(path.join(a.mnt, f), model);
    let seed = 99;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const fd = fs.openSync(path.join(a.mnt, f), 'r+');
    let fdB: number | undefined;
    try {
      for (let op = 0; op < 400; op++) {
        const off = rnd(model.length + 8192);
        if (op % 2 === 0) {
          const data = pattern(4096, op + 10);
          fs.writeSync(fd, data, 0, data.length, off);
          if (off + data.length > model.length) throw new Error('the model does not grow: keep writes inside');
          data.copy(model, off);
        } else {
          const got = Buffer.alloc(4096);
          const n = fs.readSync(fd, got, 0, 4096, off);
          assert.ok(got.subarray(0, n).equals(model.subarray(off, off + 4096)), `read at ${off} (op ${op})`);
        }
      }
      fs.fsyncSync(fd);
      // After the fsync, B opens and reads at random offsets without reading the whole file.
      fdB = fs.openSync(path.join(b.mnt, f), 'r');
      for (let i = 0; i < 100; i++) {
        const off = rnd(model.length);
        const got = Buffer.alloc(4096);
        const n = fs.readSync(fdB, got, 0, 4096, off);
        assert.ok(got.subarray(0, n).equals(model.subarray(off, off + 4096)), `B read at ${off}`);
      }
    } finally {
      fs.closeSync(fd);
      if (fdB !== undefined) fs.closeSync(fdB);
    }
    await seenAs(path.join(b.mnt, f), sha(model), 'B reads what A wrote');
    // Only the chunks written to were stored again.
    const m = await manifestOf(f);
    assert.ok(m.c.every((g) => g !== null));
    await assertNoLeftovers(['5m', '60m', f]);
  });

  it('truncates down and up: cut chunks, zeros after, back to a plain znode when small', async () => {
    const f = 'trunc';
    const data = pattern(5 * MiB, 5);
    fs.writeFileSync(path.join(a.mnt, f), data);
    // Down inside a chunk, by name from B.
    fs.truncateSync(path.join(b.mnt, f), 3 * MiB + 17);
    let model = Buffer.from(data.subarray(0, 3 * MiB + 17));
    await seenAs(path.join(a.mnt, f), sha(model), 'A reads the file B truncated');
    assert.equal((await manifestOf(f)).size, 3 * MiB + 17);
    // Up through an open descriptor on A: zeros, and no chunk stored for them.
    const fd = fs.openSync(path.join(a.mnt, f), 'r+');
    fs.ftruncateSync(fd, 9 * MiB);
    fs.closeSync(fd);
    model = Buffer.concat([model, Buffer.alloc(9 * MiB - model.length)]);
    await seenAs(path.join(b.mnt, f), sha(model), 'B reads the file A extended');
    assert.equal(fs.statSync(path.join(b.mnt, f)).size, 9 * MiB);
    const m = await manifestOf(f);
    assert.deepEqual(m.c.slice(7), [null, null, null, null, null, null, null, null, null, null, null], 'holes are not stored');
    // Down below the znode limit: a plain znode with exactly the bytes, and the chunks are collected.
    fs.truncateSync(path.join(a.mnt, f), 100_000);
    assert.ok((await plain.getData(`${VOL}/${f}`)).data.equals(data.subarray(0, 100_000)));
    await seenAs(path.join(b.mnt, f), sha(data.subarray(0, 100_000)), 'B reads the file A truncated');
    await assertNoLeftovers(['5m', '60m', 'random']);
    // And up again past the limit by appending.
    fs.appendFileSync(path.join(b.mnt, f), pattern(2 * MiB, 6));
    await seenAs(path.join(a.mnt, f), sha(Buffer.concat([data.subarray(0, 100_000), pattern(2 * MiB, 6)])), 'A reads what B appended');
    assert.equal((await manifestOf(f)).size, 100_000 + 2 * MiB);
  });

  it('a reader on B during rewrites on A sees only whole versions (old or new checksum)', async () => {
    const f = 'rewritten';
    const versions = 12;
    const size = 3 * MiB + 100;
    const writer = `
import sys, hashlib
path, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for v in range(n):
    block = hashlib.sha256(str(v).encode()).digest() * (size // 32 + 1)
    if v % 2:
        with open(path, 'wb') as f: f.write(block[:size])       # O_TRUNC and write
    else:
        with open(path, 'r+b') as f: f.write(block[:size])      # in place
    print(hashlib.sha256(block[:size]).hexdigest(), flush=True)
`;
    const reader = `
import sys, hashlib, os, time
path, stop = sys.argv[1], sys.argv[2]
seen = []
while not os.path.exists(stop):
    with open(path, 'rb') as f: seen.append(hashlib.sha256(f.read()).hexdigest())
print('\\n'.join(seen))
`;
    const v0 = Buffer.concat(Array.from({ length: Math.ceil(size / 32) + 1 }, () => createHash('sha256').update('initial').digest())).subarray(0, size);
    fs.writeFileSync(path.join(a.mnt, f), v0);
    const stop = path.join(path.dirname(a.mnt), `stop-${process.pid}`);
    fs.rmSync(stop, { force: true });
    const reading = pyAsync(reader, [path.join(b.mnt, f), stop]);
    const written = (await pyAsync(writer, [path.join(a.mnt, f), String(versions), String(size)])).trim().split('\n');
    fs.writeFileSync(stop, '');
    const seen = (await reading).trim().split('\n');
    fs.rmSync(stop);
    const valid = new Set([sha(v0), ...written]);
    const bad = seen.filter((s) => !valid.has(s));
    assert.deepEqual(bad, [], `${bad.length} of ${seen.length} reads saw a mix`);
    assert.ok(seen.length >= 3, `the reader read ${seen.length} times`);
    await seenAs(path.join(b.mnt, f), written[written.length - 1], 'B reads the last version');
  });

  it('writers on both nodes rewriting one large file at once: the result is one whole version, nothing leaked', async () => {
    const f = 'contended';
    fs.writeFileSync(path.join(a.mnt, f), pattern(2 * MiB, 20));
    const writer = `
import sys, hashlib
path, tag, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
for v in range(6):
    block = (hashlib.sha256((tag + str(v)).encode()).digest() * (size // 32 + 1))[:size]
    with open(path, 'r+b') as f: f.write(block)
    print(hashlib.sha256(block).hexdigest(), flush=True)
`;
    const size = 2 * MiB + 3000;
    const [onA, onB] = await Promise.all([pyAsync(writer, [path.join(a.mnt, f), 'a', String(size)]), pyAsync(writer, [path.join(b.mnt, f), 'b', String(size)])]);
    const versions = new Set([...onA.trim().split('\n'), ...onB.trim().split('\n')]);
    const final = sha(fs.readFileSync(path.join(a.mnt, f)));
    assert.ok(versions.has(final), 'A reads one of the versions written, whole');
    await waitFor(() => sha(fs.readFileSync(path.join(b.mnt, f))) === final, 3000, 'B reads the same version');
    assert.equal((await manifestOf(f)).size, size);
    await assertNoLeftovers(['5m', '60m', 'random', 'trunc', 'rewritten', f]);
    fs.unlinkSync(path.join(b.mnt, f));
  });

  it('an open descriptor keeps reading its version after a rewrite elsewhere; its chunks go after it closes', async () => {
    const f = 'pinned';
    const old = pattern(4 * MiB, 7);
    fs.writeFileSync(path.join(a.mnt, f), old);
    const fd = fs.openSync(path.join(b.mnt, f), 'r');
    const first = Buffer.alloc(MiB);
    fs.readSync(fd, first, 0, MiB, 0);
    const oldChunks = new Set((await manifestOf(f)).c.map((g, i) => `${g}-${i}`));
    const fresh = pattern(4 * MiB, 8);
    fs.writeFileSync(path.join(a.mnt, f), fresh);
    assert.equal(sha(fs.readFileSync(path.join(a.mnt, f))), sha(fresh));
    // B's descriptor reads on in the version it opened (its chunks are pinned)...
    const rest = Buffer.alloc(3 * MiB);
    fs.readSync(fd, rest, 0, 3 * MiB, MiB);
    assert.equal(sha(Buffer.concat([first, rest])), sha(old));
    const stored = await storedChunks();
    assert.ok([...oldChunks].every((c) => stored.has(c)), 'the old version stays while B reads it');
    // ... a new open on B sees the new one...
    await seenAs(path.join(b.mnt, f), sha(fresh), 'a new open on B reads the new version');
    // ... and once B closes, the old chunks are collected.
    fs.closeSync(fd);
    await waitFor(async () => [...(await storedChunks())].every((c) => !oldChunks.has(c)), 5000, 'the old chunks collected');
  });

  it('an open descriptor keeps reading its version after two partial rewrites elsewhere: a chunk the second version kept and the third dropped stays', async () => {
    const f = 'shared';
    const old = pattern(3 * CHUNK, 11);
    fs.writeFileSync(path.join(a.mnt, f), old);
    const fd = fs.openSync(path.join(b.mnt, f), 'r');
    try {
      // B reads only the last chunk: the first is still to be fetched.
      const tail = Buffer.alloc(CHUNK);
      fs.readSync(fd, tail, 0, CHUNK, 2 * CHUNK);
      assert.ok(tail.equals(old.subarray(2 * CHUNK)));
      const first = (await manifestOf(f)).c[0];
      // A rewrites the middle chunk (the new version keeps chunk 0), then chunk 0 (the next one drops it).
      const onA = fs.openSync(path.join(a.mnt, f), 'r+');
      try {
        fs.writeSync(onA, pattern(100, 12), 0, 100, CHUNK + 10);
        fs.fsyncSync(onA);
        assert.equal((await manifestOf(f)).c[0], first, 'the second version keeps chunk 0');
        fs.writeSync(onA, pattern(100, 13), 0, 100, 10);
        fs.fsyncSync(onA);
      } finally {
        fs.closeSync(onA);
      }
      assert.notEqual((await manifestOf(f)).c[0], first, 'the third version drops it');
      // The collection of the second version's garbage (that chunk) runs in the background.
      await new Promise((r) => setTimeout(r, 500));
      const head = Buffer.alloc(CHUNK);
      fs.readSync(fd, head, 0, CHUNK, 0);
      assert.ok(head.equals(old.subarray(0, CHUNK)), 'B reads its version\'s first chunk');
    } finally {
      fs.closeSync(fd);
    }
    await waitFor(async () => (await plain.getChildren(`${STORE}/gc`)).children.length === 0, 5000, 'the garbage collected once B closed');
    // The next test counts every chunk left: this file's go.
    fs.unlinkSync(path.join(a.mnt, f));
  });

  it('collects the chunks of large files removed by unlink and by rename over them; renames keep large files whole', async () => {
    const one = pattern(2 * MiB, 9);
    const two = pattern(3 * MiB, 10);
    fs.writeFileSync(path.join(a.mnt, 'one'), one);
    fs.writeFileSync(path.join(a.mnt, 'two'), two);
    fs.mkdirSync(path.join(a.mnt, 'dir'));
    fs.renameSync(path.join(a.mnt, 'one'), path.join(a.mnt, 'dir', 'one'));
    assert.equal(sha(fs.readFileSync(path.join(b.mnt, 'dir', 'one'))), sha(one), 'moved across directories');
    fs.renameSync(path.join(a.mnt, 'dir'), path.join(a.mnt, 'dir2'));
    assert.equal(sha(fs.readFileSync(path.join(b.mnt, 'dir2', 'one'))), sha(one), 'moved with its directory');
    assert.equal(fs.statSync(path.join(b.mnt, 'dir2', 'one')).size, 2 * MiB);
    // Rename over a large file: its chunks are garbage.
    fs.renameSync(path.join(b.mnt, 'two'), path.join(b.mnt, 'dir2', 'one'));
    await seenAs(path.join(a.mnt, 'dir2', 'one'), sha(two), 'A reads the file B renamed over its own');
    // Unlink of large files.
    fs.unlinkSync(path.join(a.mnt, '60m'));
    fs.unlinkSync(path.join(b.mnt, 'pinned'));
    await assertNoLeftovers(['5m', 'random', 'trunc', 'rewritten', 'dir2/one']);
  });

  it('refuses writes past --maxfilesize with EFBIG, and past the quota with EDQUOT leaving nothing stored', async () => {
    const limited = await mountCli(['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', '/capped', '--maxfilesize', '8M', '--quota', '6M']);
    try {
      const f = path.join(limited.mnt, 'f');
      fs.writeFileSync(f, pattern(5 * MiB, 11));
      const fd = fs.openSync(f, 'r+');
      try {
        assert.equal(errnoOf(() => fs.writeSync(fd, Buffer.alloc(10, 1), 0, 10, 8 * MiB)), 'EFBIG');
        // One request across the limit (no page boundary inside it) stores what fits.
        assert.equal(fs.writeSync(fd, Buffer.alloc(10, 1), 0, 10, 8 * MiB - 4), 4);
        fs.ftruncateSync(fd, 5 * MiB);
        assert.equal(errnoOf(() => fs.ftruncateSync(fd, 8 * MiB + 1)), 'EFBIG');
      } finally {
        fs.closeSync(fd);
      }
      assert.equal(sha(fs.readFileSync(f)), sha(pattern(5 * MiB, 11)));
      const before = new Set((await plain.getChildren('/capped/.swarmvol-chunks/c')).children);
      // A rewrite of 5 MiB needs 5 MiB of new chunks before the old ones go: past the 6M quota.
      const r = await sh(`${PY} -c "f = open('${f}', 'r+b'); f.write(b'y' * ${5 * MiB}); f.close()"`);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /quota exceeded/i);
      assert.equal(sha(fs.readFileSync(f)), sha(pattern(5 * MiB, 11)), 'the file is unchanged');
      await waitFor(async () => (await plain.getChildren('/capped/.swarmvol-chunks/c')).children.length === before.size, 5000, 'no chunk of the refused commit left');
      assert.deepEqual((await plain.getChildren('/capped/.swarmvol-chunks/pending')).children, []);
    } finally {
      assert.equal(await limited.stop(), 0, limited.output());
    }
  });

  it('rejects bad maxfilesize and jute-maxbuffer values with messages naming the option', async () => {
    for (const [opt, value, message] of [
      ['--maxfilesize', '12q', /--maxfilesize: expected a size/],
      ['--maxfilesize', '1T', /--maxfilesize/],
      ['--jute-maxbuffer', '10', /--jute-maxbuffer/],
    ] as const) {
      const r = await sh(`'${CLI}' mount --backend zookeeper --hosts ${zk.connectString} --path /x ${opt} ${value} /mnt`);
      assert.equal(r.code, 2, `${opt} ${value}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});
