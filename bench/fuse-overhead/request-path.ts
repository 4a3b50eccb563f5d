// The CPU cost of swarmvol's request path without the kernel: requests fed
// straight to a FuseSession over the memory backend, replies taken by a
// channel that keeps them. What it measures is the TypeScript (decode, node
// layer, backend, encode), not round trips, so it is steady on a noisy
// machine. The reference, in the same run: requests the session answers at
// once with ENOSYS (decode the header, reply), the least any request costs.
//
//   npm run build && node dist/bench/fuse-overhead/request-path.js
//   N=1000 ROUNDS=200 (defaults: files, and passes over them per measurement)

import { MemoryBackend } from '../../src/backends/memory/index.js';
import type { Backend, KernelNode } from '../../src/fs/backend.js';
import { NodeFileSystem } from '../../src/fs/nodes.js';
import { FuseChannel, type RequestHandler } from '../../src/fuse/channel.js';
import { IN_HEADER_SIZE, KERNEL_MINOR, KERNEL_VERSION, Op } from '../../src/fuse/kernel.js';
import { FuseSession } from '../../src/fuse/session.js';

const N = Number(process.env.N ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 200);
const BATCH = 64;
/** An opcode the session answers with ENOSYS. */
const UNKNOWN_OP = 4095;
const ENOSYS = 38;

/** Delivers our requests to the session and keeps its last reply. */
class LoopbackChannel extends FuseChannel {
  handler: RequestHandler | undefined;
  replies = 0;
  /** Replies with an error other than ENOSYS (the reference's): none may come. */
  errors = 0;
  /** A copy of the last reply: the session builds every reply in one buffer it reuses (room for a 32 KiB READDIRPLUS). */
  readonly last = Buffer.alloc(64 * 1024);
  lastLength = 0;
  /** File handles from OPEN replies, in order. */
  opened: number[] = [];

  constructor() {
    super(-1);
  }

  override start(_bufferSize: number, handler: RequestHandler): void {
    this.handler = handler;
  }

  override write(buf: Buffer, length = buf.length): number {
    this.replies++;
    buf.copy(this.last, 0, 0, length);
    this.lastLength = length;
    if (buf.readInt32LE(4) !== 0 && buf.readInt32LE(4) !== -ENOSYS) this.errors++;
    // OPEN's reply (fuse_open_out) is the only one of 32 bytes among those sent here.
    if (length === 32) this.opened.push(Number(buf.readBigUInt64LE(16)));
    return 0;
  }

  override writev(bufs: Buffer[]): number {
    return this.write(bufs[0]!);
  }

  override notify(): Promise<number> {
    return Promise.resolve(0);
  }

  override close(): void {
    this.finish();
  }
}

const channel = new LoopbackChannel();
const backend = new MemoryBackend();
const session = new FuseSession(new NodeFileSystem<KernelNode, unknown>(backend as unknown as Backend<KernelNode, unknown>, { xattrs: false }));
const buf = Buffer.alloc(4096);
let unique = 2n;

/** Sends one request: header, then `body` written at IN_HEADER_SIZE. */
function send(opcode: number, nodeid: number, body: (b: Buffer, at: number) => number): void {
  const len = IN_HEADER_SIZE + body(buf, IN_HEADER_SIZE);
  buf.writeUInt32LE(len, 0);
  buf.writeUInt32LE(opcode, 4);
  buf.writeBigUInt64LE(unique, 8);
  unique += 2n;
  buf.writeBigUInt64LE(BigInt(nodeid), 16);
  buf.writeUInt32LE(0, 24); // uid
  buf.writeUInt32LE(0, 28); // gid
  buf.writeUInt32LE(1, 32); // pid
  buf.writeUInt32LE(0, 36);
  channel.handler!(buf, len);
}

const drain = () => new Promise<void>((r) => setImmediate(r));
const names = Array.from({ length: N }, (_, i) => Buffer.from(`f${i}\0`));
const nodeids: number[] = [];
/** READ, FLUSH and RELEASE name their file by handle; the node id they carry is a file's (the first one made). */
const FILE_NODE = 2;

const lookup = (i: number) => send(Op.LOOKUP, 1, (b, at) => names[i]!.copy(b, at));
const getattr = (i: number) => send(Op.GETATTR, nodeids[i]!, (b, at) => b.fill(0, at, at + 16) && 16);
const open = (i: number) => send(Op.OPEN, nodeids[i]!, (b, at) => (b.writeUInt32LE(0, at), b.writeUInt32LE(0, at + 4), 8));
const read = (fh: number) =>
  send(Op.READ, FILE_NODE, (b, at) => {
    b.fill(0, at, at + 40);
    b.writeUInt32LE(fh, at);
    b.writeUInt32LE(4096, at + 16);
    return 40;
  });
const flush = (fh: number) => send(Op.FLUSH, FILE_NODE, (b, at) => (b.fill(0, at, at + 24), b.writeUInt32LE(fh, at), 24));
const release = (fh: number) => send(Op.RELEASE, FILE_NODE, (b, at) => (b.fill(0, at, at + 24), b.writeUInt32LE(fh, at), 24));
const unknown = () => send(UNKNOWN_OP, 1, () => 0);
/** What `ls -l` asks for: READDIRPLUS of the size of glibc's getdents buffer. */
const READDIR_SIZE = 32 * 1024;
const readdirplus = (fh: number, offset: number) =>
  send(Op.READDIRPLUS, 1, (b, at) => {
    b.fill(0, at, at + 40);
    b.writeUInt32LE(fh, at);
    b.writeUInt32LE(offset, at + 8);
    b.writeUInt32LE(READDIR_SIZE, at + 16);
    return 40;
  });

/** The entries of the last READDIRPLUS reply (fuse_entry_out, then fuse_dirent), and the offset after the last. */
function direntsOfLastReply(): { count: number; next: number } {
  const r = channel.last;
  let count = 0;
  let next = -1;
  for (let off = 16; off < channel.lastLength; ) {
    const dirent = off + 128;
    next = Number(r.readBigUInt64LE(dirent + 8));
    off = dirent + ((24 + r.readUInt32LE(dirent + 16) + 7) & ~7);
    count++;
  }
  return { count, next };
}

/** ROUNDS listings of the root (N files) as `ls -l` makes them: OPENDIR, READDIRPLUS until empty, RELEASEDIR. Returns ns per entry. */
async function listings(): Promise<number> {
  let entries = 0;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < ROUNDS; r++) {
    channel.opened.length = 0;
    send(Op.OPENDIR, 1, (b, at) => (b.fill(0, at, at + 8), 8));
    const fh = channel.opened[0]!;
    for (let offset = 0; ; ) {
      readdirplus(fh, offset);
      const { count, next } = direntsOfLastReply();
      if (count === 0) break;
      entries += count;
      offset = next;
    }
    send(Op.RELEASEDIR, 1, (b, at) => (b.fill(0, at, at + 24), b.writeUInt32LE(fh, at), 24));
    await drain();
  }
  const ns = Number(process.hrtime.bigint() - t0) / entries;
  if (channel.errors > 0) throw new Error(`${channel.errors} requests failed (last errno ${-channel.last.readInt32LE(4)}): the bench is broken`);
  if (entries !== ROUNDS * (N + 2)) throw new Error(`listed ${entries} entries in ${ROUNDS} listings of ${N} files: the bench is broken`);
  return ns;
}

/** `step` for every file, BATCH requests between drains of the event loop (the backend's promises settle there). */
async function each(step: (i: number) => void): Promise<void> {
  for (let i = 0; i < N; i++) {
    step(i);
    if (i % BATCH === BATCH - 1) await drain();
  }
  await drain();
}

/** ROUNDS times: each phase in turn for every file. Returns ns per reply. */
async function pass(...phases: Array<(i: number) => void>): Promise<number> {
  const before = channel.replies;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < ROUNDS; r++) for (const phase of phases) await each(phase);
  const ns = Number(process.hrtime.bigint() - t0) / (channel.replies - before);
  if (channel.errors > 0) throw new Error(`${channel.errors} requests failed (last errno ${-channel.last.readInt32LE(4)}): the bench is broken`);
  return ns;
}

async function main(): Promise<void> {
  const ready = session.serve(channel);
  send(Op.INIT, 0, (b, at) => {
    b.fill(0, at, at + 64);
    b.writeUInt32LE(KERNEL_VERSION, at);
    b.writeUInt32LE(KERNEL_MINOR, at + 4);
    b.writeUInt32LE(128 * 1024, at + 8);
    b.writeUInt32LE(0xffffffff, at + 12);
    return 64;
  });
  await ready;
  // The files, made through the session: CREATE, WRITE 100 bytes, RELEASE.
  for (let i = 0; i < N; i++) {
    send(Op.CREATE, 1, (b, at) => {
      b.writeUInt32LE(0o1 | 0o100, at); // O_WRONLY | O_CREAT
      b.writeUInt32LE(0o100644, at + 4);
      b.writeUInt32LE(0o022, at + 8);
      b.writeUInt32LE(0, at + 12);
      return 16 + names[i]!.copy(b, at + 16);
    });
    await drain();
    const fh = Number(channel.last.readBigUInt64LE(16 + 128));
    const node = Number(channel.last.readBigUInt64LE(16));
    send(Op.WRITE, node, (b, at) => {
      b.fill(0, at, at + 40);
      b.writeUInt32LE(fh, at);
      b.writeUInt32LE(100, at + 16);
      b.fill(120, at + 40, at + 140);
      return 140;
    });
    await drain();
    release(fh);
    await drain();
  }
  for (let i = 0; i < N; i++) {
    lookup(i);
    await drain();
    nodeids.push(Number(channel.last.readBigUInt64LE(16)));
  }
  const rows: Array<[string, () => Promise<number>]> = [
    ['ENOSYS reply (reference)', () => pass(unknown)],
    ['LOOKUP', () => pass(lookup)],
    ['GETATTR', () => pass(getattr)],
    [
      'OPEN, FLUSH, RELEASE',
      () =>
        pass(
          (i) => {
            if (i === 0) channel.opened.length = 0;
            open(i);
          },
          (i) => flush(channel.opened[i]!),
          (i) => release(channel.opened[i]!),
        ),
    ],
    [
      'READ 100 B',
      async () => {
        channel.opened.length = 0;
        await each(open);
        const fhs = channel.opened.splice(0);
        const ns = await pass((i) => read(fhs[i]!));
        await each((i) => release(fhs[i]!));
        return ns;
      },
    ],
    ['READDIRPLUS, per entry', listings],
  ];
  // One unmeasured pass over everything first: the optimizing compiler's turn.
  for (const [, run] of rows) await run();
  const results = [] as Array<[string, number]>;
  for (const [name, run] of rows) results.push([name, await run()]);
  const reference = results[0]![1];
  console.log(`${'request'.padEnd(26)} ${'ns/request'.padStart(10)} ${'ratio to reference'.padStart(19)}`);
  for (const [name, ns] of results) console.log(`${name.padEnd(26)} ${ns.toFixed(0).padStart(10)} ${(ns / reference).toFixed(2).padStart(19)}`);
  console.log(`(${N} files, ${ROUNDS} passes per row, memory backend, no kernel: the TypeScript request path only)`);
  channel.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
