// The next directory reply built ahead (FuseSession's DirReplyAhead): a
// listing in batches is complete and current, the reply built ahead is used
// only when nothing came in between, and the lookups of one thrown away are
// undone (the node layer holds exactly the nodes the "kernel" was told of).
// Requests are fed straight to a session over the memory backend; a channel
// keeps the replies.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBackend } from '../../src/backends/memory/index.js';
import type { Backend, KernelNode } from '../../src/fs/backend.js';
import { NodeFileSystem } from '../../src/fs/nodes.js';
import { FuseChannel, type RequestHandler } from '../../src/fuse/channel.js';
import { IN_HEADER_SIZE, KERNEL_MINOR, KERNEL_VERSION, Op } from '../../src/fuse/kernel.js';
import { FuseSession } from '../../src/fuse/session.js';

class ReplyChannel extends FuseChannel {
  handler: RequestHandler | undefined;
  readonly replies: Buffer[] = [];
  constructor() {
    super(-1);
  }
  override start(_bufferSize: number, handler: RequestHandler): void {
    this.handler = handler;
  }
  override write(buf: Buffer, length = buf.length): number {
    this.replies.push(Buffer.from(buf.subarray(0, length)));
    return 0;
  }
  override writev(bufs: Buffer[]): number {
    return this.write(Buffer.concat(bufs));
  }
  override notify(buf: Buffer): Promise<number> {
    this.replies.push(Buffer.from(buf));
    return Promise.resolve(0);
  }
  override close(): void {
    this.finish();
  }
}

interface Listed {
  name: string;
  nodeid: number;
  mode: number;
  size: number;
}

const FILES = 1000;
const ROOT = 1;
/** What `ls -l` asks for: glibc's getdents buffer. About 200 short names per reply. */
const SIZE = 32 * 1024;

async function setUp() {
  const channel = new ReplyChannel();
  const backend = new MemoryBackend();
  const fs = new NodeFileSystem<KernelNode, unknown>(backend as unknown as Backend<KernelNode, unknown>, { xattrs: false });
  const session = new FuseSession(fs);
  fs.setNotifier(session);
  let unique = 2;
  /** Sends one request and returns its reply (the last thing the session wrote). */
  const request = (opcode: number, nodeid: number, body: Buffer): Buffer => {
    const buf = Buffer.alloc(IN_HEADER_SIZE + body.length);
    buf.writeUInt32LE(buf.length, 0);
    buf.writeUInt32LE(opcode, 4);
    buf.writeBigUInt64LE(BigInt(unique), 8);
    unique += 2;
    buf.writeBigUInt64LE(BigInt(nodeid), 16);
    body.copy(buf, IN_HEADER_SIZE);
    const before = channel.replies.length;
    channel.handler!(buf, buf.length);
    return channel.replies.length > before ? channel.replies[channel.replies.length - 1]! : Buffer.alloc(0);
  };
  const ready = session.serve(channel);
  const init = Buffer.alloc(64);
  init.writeUInt32LE(KERNEL_VERSION, 0);
  init.writeUInt32LE(KERNEL_MINOR, 4);
  init.writeUInt32LE(128 * 1024, 8);
  init.writeUInt32LE(0xffffffff, 12);
  request(Op.INIT, 0, init);
  await ready;
  for (let i = 0; i < FILES; i++) await backend.external.writeFile(`/f${i}`, Buffer.from('x'));
  channel.replies.length = 0;

  /** Lookups the "kernel" holds, by node id: what it must forget for the node layer to hold only the root. */
  const held = new Map<number, number>();
  const hold = (nodeid: number) => held.set(nodeid, (held.get(nodeid) ?? 0) + 1);

  const opendir = (): number => request(Op.OPENDIR, ROOT, Buffer.alloc(8)).readUInt32LE(16);
  const readdirplus = (fh: number, offset: number): { entries: Listed[]; next: number } => {
    const body = Buffer.alloc(40);
    body.writeUInt32LE(fh, 0);
    body.writeUInt32LE(offset, 8);
    body.writeUInt32LE(SIZE, 16);
    const reply = request(Op.READDIRPLUS, ROOT, body);
    assert.equal(reply.readInt32LE(4), 0, `READDIRPLUS at ${offset} failed`);
    const entries: Listed[] = [];
    let next = offset;
    for (let off = 16; off < reply.length; ) {
      const dirent = off + 128;
      const nameLen = reply.readUInt32LE(dirent + 16);
      const name = reply.toString('utf8', dirent + 24, dirent + 24 + nameLen);
      const nodeid = Number(reply.readBigUInt64LE(off));
      if (nodeid !== 0) hold(nodeid);
      entries.push({ name, nodeid, size: Number(reply.readBigUInt64LE(off + 48)), mode: reply.readUInt32LE(off + 100) });
      next = Number(reply.readBigUInt64LE(dirent + 8));
      off = dirent + ((24 + nameLen + 7) & ~7);
    }
    return { entries, next };
  };
  const lookup = (name: string): number => {
    const nodeid = Number(request(Op.LOOKUP, ROOT, Buffer.from(`${name}\0`)).readBigUInt64LE(16));
    hold(nodeid);
    return nodeid;
  };
  const chmod = (nodeid: number, mode: number): void => {
    const body = Buffer.alloc(88);
    body.writeUInt32LE(1, 0); // FATTR_MODE
    body.writeUInt32LE(mode, 68);
    assert.equal(request(Op.SETATTR, nodeid, body).readInt32LE(4), 0);
  };
  const releasedir = (fh: number): void => {
    const body = Buffer.alloc(24);
    body.writeUInt32LE(fh, 0);
    request(Op.RELEASEDIR, ROOT, body);
  };
  /** Forgets every lookup the kernel was told of, as the kernel does when it drops its caches. */
  const forgetAll = (): void => {
    const body = Buffer.alloc(8 + 16 * held.size);
    body.writeUInt32LE(held.size, 0);
    let at = 8;
    for (const [nodeid, count] of held) {
      body.writeBigUInt64LE(BigInt(nodeid), at);
      body.writeBigUInt64LE(BigInt(count), at + 8);
      at += 16;
    }
    request(Op.BATCH_FORGET, 0, body);
    held.clear();
  };
  return { fs, backend, opendir, readdirplus, lookup, chmod, releasedir, forgetAll };
}

const fileNames = (entries: Listed[]) => entries.map((e) => e.name).filter((n) => n !== '.' && n !== '..');

/**
 * Lists the first batch, runs `change` on a name of the next batch before the
 * kernel asks for that batch, then lists the second batch and returns that
 * name's entry in it; the kernel then forgets everything it was told.
 */
async function entryChangedBetweenBatches(change: (t: Awaited<ReturnType<typeof setUp>>, name: string) => void | Promise<void>) {
  const t = await setUp();
  const fh = t.opendir();
  const first = t.readdirplus(fh, 0);
  const name = `f${first.entries.length + 10}`;
  await change(t, name);
  const second = t.readdirplus(fh, first.next);
  t.releasedir(fh);
  t.forgetAll();
  return { name, entry: second.entries.find((e) => e.name === name), liveNodes: t.fs.liveNodes };
}

describe('directory replies built ahead', () => {
  it('lists a large directory completely, each next reply built before it is asked for', async () => {
    const t = await setUp();
    const fh = t.opendir();
    const first = t.readdirplus(fh, 0);
    assert.ok(first.entries.length > 50 && first.entries.length < FILES, `a 32 KiB reply holds part of the listing (${first.entries.length} entries)`);
    // The next reply's lookups are counted already: it was built right after the first was sent.
    assert.ok(t.fs.liveNodes > first.entries.length + 50, `the next reply was not built ahead: the node layer holds ${t.fs.liveNodes} nodes`);
    const all = [...first.entries];
    for (let offset = first.next; ; ) {
      const batch = t.readdirplus(fh, offset);
      if (batch.entries.length === 0) break;
      all.push(...batch.entries);
      offset = batch.next;
    }
    t.releasedir(fh);
    assert.deepEqual(fileNames(all), Array.from({ length: FILES }, (_, i) => `f${i}`));
    assert.ok(all.every((e) => e.name.startsWith('.') || (e.size === 1 && e.mode === 0o100644)));
    t.forgetAll();
    assert.equal(t.fs.liveNodes, 1, 'every lookup the kernel forgot is gone: none was counted twice');
  });

  it('drops it when another request comes first, and the next reply shows that request\'s change', async () => {
    const { name, entry, liveNodes } = await entryChangedBetweenBatches((t, changed) => t.chmod(t.lookup(changed), 0o100600));
    assert.ok(entry, `${name} is in the second reply`);
    assert.equal(entry.mode, 0o100600, 'the second reply was built after the chmod');
    assert.equal(liveNodes, 1, 'the lookups of the dropped reply were undone');
  });

  it('drops it when the backend reports a change made elsewhere', async () => {
    const { entry, liveNodes } = await entryChangedBetweenBatches((t, changed) => t.backend.external.writeFile(`/${changed}`, Buffer.from('longer now')));
    assert.equal(entry?.size, 10, 'the second reply shows the new size');
    assert.equal(liveNodes, 1);
  });
});
