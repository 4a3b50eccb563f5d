import assert from 'node:assert/strict';
import { constants as C } from 'node:fs';
import { describe, it } from 'node:test';
import { MemoryBackend, type MemNode } from '../../src/backends/memory/index.js';
import type { RequestContext } from '../../src/fuse/types.js';

const ctx: RequestContext = { unique: 1, uid: 0, gid: 0, pid: 1, onInterrupt: () => () => undefined };
const names = (b: MemoryBackend, dir: MemNode) => b.readdir(ctx, dir).map((e) => e.name);
const dotdot = (b: MemoryBackend, dir: MemNode) => b.readdir(ctx, dir).find((e) => e.name === '..')!.ino;

describe('memory backend listings', () => {
  it('are rebuilt after every change of entries, and earlier snapshots stay as they were', () => {
    const b = new MemoryBackend();
    const a = b.mkdir(ctx, b.root, 'a', C.S_IFDIR | 0o755).node;
    const before = b.readdir(ctx, a);
    assert.equal(b.readdir(ctx, a), before, 'an unchanged directory answers the same listing');
    b.create(ctx, a, 'f', C.S_IFREG | 0o644, { flags: 0, read: false, write: true, truncate: false, append: false, killSuidgid: false });
    assert.deepEqual(names(b, a), ['.', '..', 'f']);
    assert.deepEqual(before.map((e) => e.name), ['.', '..'], 'a snapshot handed out earlier is not changed');
    b.symlink(ctx, a, 'l', 'f');
    b.link(ctx, b.lookup(ctx, a, 'f')!.node, a, 'h');
    assert.deepEqual(names(b, a), ['.', '..', 'f', 'l', 'h']);
    b.unlink(ctx, a, 'l');
    b.rename(ctx, a, 'h', a, 'h2', 0);
    assert.deepEqual(names(b, a), ['.', '..', 'f', 'h2']);
  });

  it('follow a directory moved elsewhere, "..", included', () => {
    const b = new MemoryBackend();
    const a = b.mkdir(ctx, b.root, 'a', C.S_IFDIR | 0o755).node;
    const d = b.mkdir(ctx, b.root, 'd', C.S_IFDIR | 0o755).node;
    const sub = b.mkdir(ctx, a, 'sub', C.S_IFDIR | 0o755).node;
    assert.equal(dotdot(b, sub), a.ino);
    assert.deepEqual(names(b, d), ['.', '..']);
    b.rename(ctx, a, 'sub', d, 'sub', 0);
    assert.equal(dotdot(b, sub), d.ino);
    assert.deepEqual(names(b, a), ['.', '..']);
    assert.deepEqual(names(b, d), ['.', '..', 'sub']);
    // RENAME_EXCHANGE of a directory with a file in another directory.
    b.create(ctx, a, 'x', C.S_IFREG | 0o644, { flags: 0, read: false, write: true, truncate: false, append: false, killSuidgid: false });
    b.rename(ctx, d, 'sub', a, 'x', 2);
    assert.equal(dotdot(b, sub), a.ino);
    assert.deepEqual(names(b, a), ['.', '..', 'x']);
    assert.equal(b.lookup(ctx, a, 'x')!.node, sub);
    assert.equal(b.lookup(ctx, d, 'sub')!.node.isFile, true);
    b.rmdir(ctx, a, 'x');
    assert.deepEqual(names(b, a), ['.', '..']);
  });
});
