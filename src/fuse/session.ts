// A FUSE session: INIT negotiation, request decoding, dispatch to a
// RawFileSystem, reply encoding, interrupts and kernel cache notifications.
// Every request gets exactly one valid reply (except FORGET and friends): an
// unanswered request hangs its caller forever.

import { Errno, errnoOf, FsError } from '../fs/errors.js';
import { log } from '../util/log.js';
import { FuseChannel } from './channel.js';
import {
  ATTR_OUT_SIZE,
  ENTRY_OUT_SIZE,
  FILE_LOCK_SIZE,
  FopenFlag,
  IN_HEADER_SIZE,
  INIT_OUT_SIZE,
  InitFlag,
  InitFlag2,
  KERNEL_MINOR,
  KERNEL_VERSION,
  MIN_KERNEL_MINOR,
  MIN_READ_BUFFER,
  Notify,
  NOTIFY_EXPIRE_ONLY,
  NOTIFY_STORE_OUT_SIZE,
  EXPIRE_ONLY_MINOR,
  OPEN_OUT_SIZE,
  Op,
  OUT_HEADER_SIZE,
  PAGE_SIZE,
  STATFS_OUT_SIZE,
  GETATTR_FH,
  FSYNC_FDATASYNC,
  LK_FLOCK,
} from './kernel.js';
import { abortConnection, mountFuse, unmountFuse, type MountedFuse, type MountOptions } from './mount.js';
import type { AttrOut, ConnectionInfo, EntryOut, FileLock, LockIn, MaybePromise, OpenOut, RawFileSystem, RequestContext, SetattrIn, StatfsOut } from './types.js';
import {
  direntPlusSize,
  direntSize,
  InvalidNameError,
  readCString,
  readU64,
  writeAttrOut,
  writeDirent,
  writeEntryOut,
  writeStatfs,
  writeOutHeader,
  writeU32,
  writeU64,
} from './wire.js';

export interface SessionOptions extends MountOptions {
  /** Largest WRITE/READ payload, bytes; 4 KiB multiple, at most 1 MiB. */
  maxWrite: number;
  writebackCache: boolean;
  /** Forward flock/fcntl locks to the filesystem (else the kernel keeps them locally). */
  locks: boolean;
  /** Use AUTO_INVAL_DATA (kernel drops page cache when mtime changes) rather than explicit invalidation only. */
  autoInvalData: boolean;
  /** Maximum number of background requests the kernel keeps in flight. */
  maxBackground: number;
  /** Highest protocol minor to agree to (lower it to behave as with an older kernel). */
  maxMinor: number;
  /** Longest busy poll of /dev/fuse after a request, microseconds (0: sleep in epoll_wait at once; see channel.ts). */
  pollMicros: number;
  /** Makes the transport for the /dev/fuse fd (bench/ swaps in alternatives to measure them). */
  channel: (fd: number) => FuseChannel;
}

export const defaultSessionOptions: SessionOptions = {
  fsname: 'swarmvol',
  subtype: 'swarmvol',
  allowOther: true,
  defaultPermissions: true,
  readOnly: false,
  maxRead: 1 << 20,
  maxWrite: 1 << 20,
  writebackCache: false,
  locks: true,
  autoInvalData: true,
  maxBackground: 64,
  maxMinor: KERNEL_MINOR,
  pollMicros: 0,
  channel: (fd) => new FuseChannel(fd),
};

class Context implements RequestContext {
  /** Keeps the shape of contexts alive between requests (see Listed.keepsShapeAlive in the memory backend). */
  static readonly keepsShapeAlive = new Context(0, 0, 0, 0);
  interrupted = false;
  private interruptCallbacks: Array<() => void> | undefined;
  /** Neighbours in the session's list of requests waiting for the filesystem. */
  prev: Context | undefined = undefined;
  next: Context | undefined = undefined;

  constructor(
    readonly unique: number,
    readonly uid: number,
    readonly gid: number,
    readonly pid: number,
  ) {}

  onInterrupt(cb: () => void): () => void {
    if (this.interrupted) {
      queueMicrotask(cb);
      return () => undefined;
    }
    (this.interruptCallbacks ??= []).push(cb);
    return () => {
      const list = this.interruptCallbacks;
      if (!list) return;
      const i = list.indexOf(cb);
      if (i >= 0) list.splice(i, 1);
    };
  }

  interrupt(): void {
    if (this.interrupted) return;
    this.interrupted = true;
    for (const cb of this.interruptCallbacks?.splice(0) ?? []) cb();
  }
}

/** Writes the reply to one request from the filesystem's answer. */
type Replier<T> = (this: FuseSession, ctx: Context, value: T) => void;

/** Decodes one request type and hands it to the filesystem; `end` is where the request's payload ends. */
type RequestHandler = (this: FuseSession, ctx: Context, buf: Buffer, end: number, nodeid: number) => void;

/** By opcode; filled in FuseSession's static block (the handlers use its private methods). */
const REQUEST_HANDLERS: Array<RequestHandler | undefined> = [];

/** Room for the largest fixed-size reply (CREATE: header, entry_out, open_out). */
const REPLY_BUFFER_SIZE = 256;

/** Builds READDIR(PLUS) replies in one buffer (a writev of >1024 parts fails). */
class DirBuffer {
  /** Keeps the shape of directory replies alive between listings (see Listed.keepsShapeAlive in the memory backend). */
  static readonly keepsShapeAlive = new DirBuffer(true, 0);
  readonly buf: Buffer;
  /** Where the reply must end: the header and `capacity` (a reused buffer may be longer). */
  private readonly limit: number;
  used = 0;
  /** Node ids the READDIRPLUS entries carry a lookup of: undone if the kernel never gets them. */
  readonly lookups: number[] = [];
  /** An entry did not fit: the listing goes on after this reply. */
  full = false;
  /** The offset after the last entry added. */
  nextOffset = 0;
  /** `spare`: a buffer of a reply already sent, used again if it is large enough. */
  constructor(
    readonly plus: boolean,
    capacity: number,
    spare?: Buffer,
  ) {
    this.limit = OUT_HEADER_SIZE + capacity;
    this.buf = spare !== undefined && spare.length >= this.limit ? spare : Buffer.allocUnsafe(this.limit);
    this.used = OUT_HEADER_SIZE;
  }
  add(name: string, ino: number, mode: number, nextOffset: number, entry?: EntryOut): boolean {
    const nameLen = Buffer.byteLength(name, 'utf8');
    const size = this.plus ? direntPlusSize(nameLen) : direntSize(nameLen);
    if (this.used + size > this.limit) {
      this.full = true;
      return false;
    }
    this.nextOffset = nextOffset;
    let off = this.used;
    if (this.plus) {
      if (entry) {
        writeEntryOut(this.buf, off, entry);
        if (entry.nodeid !== 0) this.lookups.push(entry.nodeid);
      } else this.buf.fill(0, off, off + ENTRY_OUT_SIZE);
      off += ENTRY_OUT_SIZE;
    }
    this.used = writeDirent(this.buf, off, name, nameLen, ino, mode, nextOffset);
    return true;
  }
}

/**
 * A directory reply built before the kernel asked for it: after a full
 * READDIR(PLUS) reply, the next one of the same listing, built while the
 * client takes in the last (`ls -l` of a large directory: the encoding of
 * about 200 entries off each round trip). Only the next request may use it,
 * if it asks for exactly that (same directory handle, offset, size, caller);
 * any other request, or a notification (a change made elsewhere), drops it
 * and undoes the lookups it carries.
 */
interface DirReplyAhead {
  nodeid: number;
  fh: number;
  offset: number;
  size: number;
  uid: number;
  gid: number;
  sink: DirBuffer;
}

export interface Notifier {
  /** Drops cached attributes and the data range [offset, offset+length) (length 0: to EOF; offset < 0: attributes only). */
  invalInode(nodeid: number, offset?: number, length?: number): Promise<void>;
  /** Drops the kernel's dentry for `name` in `parent`. */
  invalEntry(parent: number, name: string): Promise<void>;
  /** Like invalEntry, and tells inotify watchers that `child` was deleted. */
  delete(parent: number, child: number, name: string): Promise<void>;
}

/**
 * One per session whose kernel connection may be up, called at process exit.
 * A process that exits (process.exit, an uncaught exception) without ending
 * its connection would otherwise hang there for good: Node joins the libuv
 * threadpool's threads before the process ends, a thread writing an
 * INVAL_ENTRY waits for a directory lock, and the request holding that lock
 * waits for an answer nobody will send. Aborting ends those requests.
 */
const abortAtExit = new Set<() => void>();
process.on('exit', () => {
  for (const abort of abortAtExit) abort();
});

export class FuseSession implements Notifier {
  private readonly opts: SessionOptions;
  private channel: FuseChannel | undefined;
  private mounted: MountedFuse | undefined;
  /**
   * Requests waiting for the filesystem, newest first: INTERRUPT looks its
   * target up here and shutdown interrupts them all. A linked list rather
   * than a Map keyed by unique: linking and unlinking allocate nothing.
   */
  private waiting: Context | undefined;
  /** Called for every request from the kernel (the daemon's idle-time work watches it). */
  onRequest: (() => void) | undefined;
  /** Every fixed-size reply is built here: write(2) copies it before returning. */
  private readonly replyBuffer = Buffer.allocUnsafe(REPLY_BUFFER_SIZE);
  /** The header of a reply whose payload is a buffer of its own (READ, READLINK, GETXATTR). */
  private readonly dataHeader = Buffer.allocUnsafe(OUT_HEADER_SIZE);
  /** Header and fuse_notify_store_out of a page cache preload (OpenOut.preload). */
  private readonly storeHeader = Buffer.alloc(OUT_HEADER_SIZE + NOTIFY_STORE_OUT_SIZE);
  private initialized = false;
  private conn: ConnectionInfo | undefined;
  private dirAhead: DirReplyAhead | undefined;
  /**
   * The buffer of the last directory reply sent, for the next one: a 32 KiB
   * buffer is allocated outside Node's pool, which cost about a tenth of
   * building a READDIRPLUS reply.
   */
  private spareDirBuffer: Buffer | undefined;
  private unmounting: Promise<void> | undefined;

  constructor(
    private readonly fs: RawFileSystem,
    options: Partial<SessionOptions> = {},
  ) {
    this.opts = { ...defaultSessionOptions, ...options };
    const mw = this.opts.maxWrite;
    if (!Number.isInteger(mw) || mw < PAGE_SIZE || mw > 1 << 20 || mw % PAGE_SIZE !== 0) {
      throw new RangeError(`maxWrite must be a multiple of 4096 between 4096 and 1048576, got ${mw}`);
    }
  }

  get mountpoint(): string | undefined {
    return this.mounted?.mountpoint;
  }

  get connection(): number | undefined {
    return this.mounted?.connection;
  }

  get info(): ConnectionInfo | undefined {
    return this.conn;
  }

  /** Mounts and starts serving. Resolves once the kernel's INIT was answered. */
  async mount(mountpoint: string): Promise<void> {
    if (this.mounted) throw new Error('session already mounted');
    const mounted = await mountFuse(mountpoint, { ...this.opts, maxRead: this.opts.maxWrite });
    this.mounted = mounted;
    abortAtExit.add(this.abortIfConnected);
    await this.serve(this.opts.channel(mounted.fd));
  }

  /**
   * Serves the requests `channel` delivers. mount() gives it the /dev/fuse of
   * the new mount; bench/fuse-overhead/request-path gives it requests of its
   * own. Resolves once INIT was answered.
   */
  async serve(channel: FuseChannel): Promise<void> {
    if (this.channel) throw new Error('session already serving');
    this.channel = channel;
    const initDone = new Promise<void>((resolve, reject) => {
      this.onInit = resolve;
      channel.waitClosed().then(() => reject(new Error('connection closed before INIT')), reject);
    });
    channel.start(Math.max(MIN_READ_BUFFER, this.opts.maxWrite + PAGE_SIZE), (buf, len) => this.handle(buf, len), this.opts.pollMicros, this.fs.idleWork);
    await initDone;
  }

  private onInit: (() => void) | undefined;

  /** Resolves when the kernel ends the session (unmount, abort). */
  async closed(): Promise<void> {
    if (!this.channel) return;
    try {
      await this.channel.waitClosed();
    } finally {
      this.shutdown();
    }
  }

  /**
   * Unmounts (lazily if busy) and waits for the kernel to end the connection.
   * After `timeoutMs` the connection is aborted so the process can exit.
   */
  unmount(timeoutMs = 5000): Promise<void> {
    this.unmounting ??= this.doUnmount(timeoutMs);
    return this.unmounting;
  }

  private async doUnmount(timeoutMs: number): Promise<void> {
    const channel = this.channel;
    const mounted = this.mounted;
    if (!channel || !mounted) return;
    if (!channel.closed) {
      await unmountFuse(mounted.mountpoint);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      });
      const done = channel.waitClosed().then(
        () => false,
        () => false,
      );
      if (await Promise.race([done, timedOut])) {
        // Lazily detached but still in use: nobody can reach it by path any more.
        abortConnection(mounted.connection);
        channel.close();
      }
      clearTimeout(timer);
    }
    this.shutdown();
  }

  private readonly abortIfConnected = (): void => {
    if (this.mounted && !this.channel?.closed) abortConnection(this.mounted.connection);
  };

  private shutdown(): void {
    abortAtExit.delete(this.abortIfConnected);
    if (!this.channel) return;
    this.mounted?.watchdog.disarm();
    this.channel.close();
    for (let ctx = this.waiting; ctx; ctx = ctx.next) ctx.interrupt();
    this.waiting = undefined;
    if (this.initialized) {
      this.initialized = false;
      try {
        this.fs.destroy();
      } catch (err) {
        log.error('destroy failed', { err: String(err) });
      }
    }
  }

  // ---- notifications -------------------------------------------------------

  async invalInode(nodeid: number, offset = 0, length = 0): Promise<void> {
    this.dropDirAhead();
    const buf = Buffer.allocUnsafe(OUT_HEADER_SIZE + 24);
    this.notifyHeader(buf, Notify.INVAL_INODE);
    writeU64(buf, 16, nodeid);
    buf.writeBigInt64LE(BigInt(offset), 24);
    buf.writeBigInt64LE(BigInt(length), 32);
    // Attributes only: the kernel takes no lock we could be holding up (no
    // directory lock, no page lock; only the inode's spinlock), so this one is
    // written at once from the event loop, without a threadpool round trip.
    if (offset < 0) this.notifyNow(buf);
    else await this.sendNotify(buf);
  }

  async invalEntry(parent: number, name: string): Promise<void> {
    this.dropDirAhead();
    const nameBuf = Buffer.from(name, 'utf8');
    const buf = Buffer.alloc(OUT_HEADER_SIZE + 16 + nameBuf.length + 1);
    this.notifyHeader(buf, Notify.INVAL_ENTRY);
    writeU64(buf, 16, parent);
    buf.writeUInt32LE(nameBuf.length, 24);
    // Without EXPIRE_ONLY the kernel takes the directory's lock, which a
    // request in that directory may hold while it waits for our reply: the
    // threadpool thread writing this would wait that long. Expired, the entry
    // is looked up again at its next use, which is all a remote change needs.
    if ((this.conn?.minor ?? 0) >= EXPIRE_ONLY_MINOR) buf.writeUInt32LE(NOTIFY_EXPIRE_ONLY, 28);
    nameBuf.copy(buf, 32);
    await this.sendNotify(buf);
  }

  async delete(parent: number, child: number, name: string): Promise<void> {
    this.dropDirAhead();
    const nameBuf = Buffer.from(name, 'utf8');
    const buf = Buffer.alloc(OUT_HEADER_SIZE + 24 + nameBuf.length + 1);
    this.notifyHeader(buf, Notify.DELETE);
    writeU64(buf, 16, parent);
    writeU64(buf, 24, child);
    buf.writeUInt32LE(nameBuf.length, 32);
    nameBuf.copy(buf, 40);
    await this.sendNotify(buf);
  }

  private notifyHeader(buf: Buffer, code: Notify, length = buf.length): void {
    buf.writeUInt32LE(length, 0);
    buf.writeInt32LE(code, 4);
    buf.writeBigUInt64LE(0n, 8);
  }

  private async sendNotify(buf: Buffer): Promise<void> {
    if (!this.channel || !this.initialized) return;
    this.checkNotified(buf, await this.channel.notify(buf));
  }

  private notifyNow(buf: Buffer): void {
    if (!this.channel || !this.initialized || this.channel.closed) return;
    this.checkNotified(buf, this.channel.write(buf));
  }

  private checkNotified(buf: Buffer, errno: number): void {
    // ENOENT: nothing cached for it, which is what we wanted.
    if (errno !== 0 && errno !== Errno.ENOENT && errno !== Errno.ENODEV) {
      log.warn('kernel refused a notification', { code: buf.readInt32LE(4), errno });
    }
  }

  // ---- requests ---------------------------------------------------------------

  /** Handles one request; returns true when none is left waiting for the filesystem (the channel may then poll for the next). */
  private handle(buf: Buffer, length: number): boolean {
    this.handleRequest(buf, length);
    return this.waiting === undefined;
  }

  private handleRequest(buf: Buffer, length: number): void {
    this.onRequest?.();
    if (length < IN_HEADER_SIZE) {
      log.error('short request from the kernel', { length });
      return;
    }
    const opcode = buf.readUInt32LE(4);
    const unique = readU64(buf, 8);
    // FORGETs change nothing a listing shows (the reply built ahead holds its own lookups).
    if (this.dirAhead !== undefined && opcode !== Op.READDIRPLUS && opcode !== Op.READDIR && opcode !== Op.FORGET && opcode !== Op.BATCH_FORGET) {
      this.dropDirAhead();
    }
    try {
      this.dispatch(buf, length, opcode, unique);
    } catch (err) {
      // Thrown before any reply: a decoding error, or a filesystem method
      // that failed at once rather than through a rejected promise.
      if (opcode === Op.FORGET || opcode === Op.BATCH_FORGET || opcode === Op.INTERRUPT) {
        log.error('request failed', { opcode, err: describe(err) });
        return;
      }
      if (err instanceof InvalidNameError) return this.sendError(unique, Errno.EILSEQ);
      if (!(err instanceof FsError)) log.error('request failed', { opcode, err: describe(err) });
      else logEio(err);
      this.sendError(unique, errnoOf(err));
    }
  }

  private dispatch(buf: Buffer, length: number, opcode: number, unique: number): void {
    const nodeid = readU64(buf, 16);
    const extLen = buf.readUInt16LE(36) * 8;
    const end = Math.min(buf.readUInt32LE(0), length) - extLen;
    const B = IN_HEADER_SIZE;

    if (!this.initialized) {
      if (opcode === Op.INIT) return this.init(buf, unique);
      return this.sendError(unique, Errno.EIO);
    }
    switch (opcode) {
      case Op.FORGET:
        return this.fs.forget(nodeid, readU64(buf, B));
      case Op.BATCH_FORGET:
        return this.batchForget(buf, end);
      case Op.INTERRUPT:
        return this.interrupt(readU64(buf, B));
      case Op.DESTROY:
        this.sendOk(unique);
        this.shutdown();
        return;
    }
    const handler = REQUEST_HANDLERS[opcode];
    // STATX, POLL, BMAP, SETUPMAPPING...: ENOSYS makes the kernel fall back.
    if (!handler) return this.sendError(unique, Errno.ENOSYS);
    handler.call(this, new Context(unique, buf.readUInt32LE(24), buf.readUInt32LE(28), buf.readUInt32LE(32)), buf, end, nodeid);
  }

  /**
   * One small function per request type rather than one switch: V8 compiles
   * (and, when a request type shows up for the first time, deoptimizes) each
   * on its own. A single dispatch function with every case inlined took 45 ms
   * to compile, and every new request type threw that code away mid-workload.
   */
  static {
    const h = REQUEST_HANDLERS;
    const B = IN_HEADER_SIZE;
    h[Op.LOOKUP] = function (ctx, buf, end, nodeid) {
      this.answer(ctx, this.fs.lookup(ctx, nodeid, readCString(buf, B, end).value), this.replyEntry);
    };
    h[Op.GETATTR] = function (ctx, buf, _end, nodeid) {
      const fh = buf.readUInt32LE(B) & GETATTR_FH ? readU64(buf, B + 8) : undefined;
      this.answer(ctx, this.fs.getattr(ctx, nodeid, fh), this.replyAttr);
    };
    h[Op.SETATTR] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.setattr(ctx, nodeid, decodeSetattr(buf, B)), this.replyAttr);
    };
    h[Op.READLINK] = function (ctx, _buf, _end, nodeid) {
      this.answer(ctx, this.fs.readlink(ctx, nodeid), this.replyData);
    };
    h[Op.SYMLINK] = function (ctx, buf, end, nodeid) {
      const name = readCString(buf, B, end);
      const target = readCString(buf, name.next, end);
      this.answer(ctx, this.fs.symlink(ctx, nodeid, name.value, target.value), this.replyEntry);
    };
    h[Op.MKNOD] = function (ctx, buf, end, nodeid) {
      const name = readCString(buf, B + 16, end).value;
      this.answer(ctx, this.fs.mknod(ctx, nodeid, name, buf.readUInt32LE(B), buf.readUInt32LE(B + 4), buf.readUInt32LE(B + 8)), this.replyEntry);
    };
    h[Op.MKDIR] = function (ctx, buf, end, nodeid) {
      const name = readCString(buf, B + 8, end).value;
      this.answer(ctx, this.fs.mkdir(ctx, nodeid, name, buf.readUInt32LE(B), buf.readUInt32LE(B + 4)), this.replyEntry);
    };
    h[Op.UNLINK] = function (ctx, buf, end, nodeid) {
      this.answer(ctx, this.fs.unlink(ctx, nodeid, readCString(buf, B, end).value), this.replyEmpty);
    };
    h[Op.RMDIR] = function (ctx, buf, end, nodeid) {
      this.answer(ctx, this.fs.rmdir(ctx, nodeid, readCString(buf, B, end).value), this.replyEmpty);
    };
    h[Op.RENAME] = function (ctx, buf, end, nodeid) {
      const from = readCString(buf, B + 8, end);
      const to = readCString(buf, from.next, end);
      this.answer(ctx, this.fs.rename(ctx, nodeid, from.value, readU64(buf, B), to.value, 0), this.replyEmpty);
    };
    h[Op.RENAME2] = function (ctx, buf, end, nodeid) {
      const from = readCString(buf, B + 16, end);
      const to = readCString(buf, from.next, end);
      this.answer(ctx, this.fs.rename(ctx, nodeid, from.value, readU64(buf, B), to.value, buf.readUInt32LE(B + 8)), this.replyEmpty);
    };
    h[Op.LINK] = function (ctx, buf, end, nodeid) {
      this.answer(ctx, this.fs.link(ctx, readU64(buf, B), nodeid, readCString(buf, B + 8, end).value), this.replyEntry);
    };
    h[Op.OPEN] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.open(ctx, nodeid, buf.readUInt32LE(B), buf.readUInt32LE(B + 4)), this.replyOpen);
    };
    h[Op.OPENDIR] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.opendir(ctx, nodeid, buf.readUInt32LE(B)), this.replyOpen);
    };
    h[Op.CREATE] = function (ctx, buf, end, nodeid) {
      const name = readCString(buf, B + 16, end).value;
      this.answer(ctx, this.fs.create(ctx, nodeid, name, buf.readUInt32LE(B + 4), buf.readUInt32LE(B + 8), buf.readUInt32LE(B)), this.replyCreate);
    };
    h[Op.READ] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.read(ctx, nodeid, readU64(buf, B), readU64(buf, B + 8), buf.readUInt32LE(B + 16)), this.replyData);
    };
    h[Op.WRITE] = function (ctx, buf, _end, nodeid) {
      const size = buf.readUInt32LE(B + 16);
      // A view, not a copy: valid only during the synchronous part of the
      // call (the read buffer is reused for the next request).
      const data = buf.subarray(B + 40, B + 40 + size);
      this.answer(ctx, this.fs.write(ctx, nodeid, readU64(buf, B), readU64(buf, B + 8), data, buf.readUInt32LE(B + 20)), this.replyWrite);
    };
    h[Op.STATFS] = function (ctx, _buf, _end, nodeid) {
      this.answer(ctx, this.fs.statfs(ctx, nodeid), this.replyStatfs);
    };
    h[Op.RELEASE] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.release(ctx, nodeid, readU64(buf, B), buf.readUInt32LE(B + 8), buf.readUInt32LE(B + 12), buf.readBigUInt64LE(B + 16)), this.replyEmpty);
    };
    h[Op.RELEASEDIR] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.releasedir(ctx, nodeid, readU64(buf, B)), this.replyEmpty);
    };
    h[Op.FSYNC] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.fsync(ctx, nodeid, readU64(buf, B), (buf.readUInt32LE(B + 8) & FSYNC_FDATASYNC) !== 0), this.replyEmpty);
    };
    h[Op.FSYNCDIR] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.fsyncdir(ctx, nodeid, readU64(buf, B), (buf.readUInt32LE(B + 8) & FSYNC_FDATASYNC) !== 0), this.replyEmpty);
    };
    h[Op.FLUSH] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.flush(ctx, nodeid, readU64(buf, B), buf.readBigUInt64LE(B + 16)), this.replyEmpty);
    };
    h[Op.READDIR] = function (ctx, buf, _end, nodeid) {
      this.readdir(ctx, buf, nodeid, false);
    };
    h[Op.READDIRPLUS] = function (ctx, buf, _end, nodeid) {
      this.readdir(ctx, buf, nodeid, true);
    };
    h[Op.ACCESS] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.access(ctx, nodeid, buf.readUInt32LE(B)), this.replyEmpty);
    };
    h[Op.SETXATTR] = function (ctx, buf, end, nodeid) {
      const size = buf.readUInt32LE(B);
      const flags = buf.readUInt32LE(B + 4);
      const name = readCString(buf, B + 8, end);
      const value = Buffer.from(buf.subarray(name.next, name.next + size));
      this.answer(ctx, this.fs.setxattr(ctx, nodeid, name.value, value, flags), this.replyEmpty);
    };
    h[Op.GETXATTR] = function (ctx, buf, end, nodeid) {
      const size = buf.readUInt32LE(B);
      this.answer(ctx, this.fs.getxattr(ctx, nodeid, readCString(buf, B + 8, end).value), (c, value) => this.replyXattr(c, size, value));
    };
    h[Op.LISTXATTR] = function (ctx, buf, _end, nodeid) {
      const size = buf.readUInt32LE(B);
      this.answer(ctx, this.fs.listxattr(ctx, nodeid), (c, names) => this.replyXattr(c, size, Buffer.from(names.map((n) => n + '\0').join(''), 'utf8')));
    };
    h[Op.REMOVEXATTR] = function (ctx, buf, end, nodeid) {
      this.answer(ctx, this.fs.removexattr(ctx, nodeid, readCString(buf, B, end).value), this.replyEmpty);
    };
    h[Op.GETLK] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.getlk(ctx, nodeid, decodeLock(buf, B)), this.replyLock);
    };
    h[Op.SETLK] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.setlk(ctx, nodeid, decodeLock(buf, B), false), this.replyEmpty);
    };
    h[Op.SETLKW] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.setlk(ctx, nodeid, decodeLock(buf, B), true), this.replyEmpty);
    };
    h[Op.FALLOCATE] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.fallocate(ctx, nodeid, readU64(buf, B), readU64(buf, B + 8), readU64(buf, B + 16), buf.readUInt32LE(B + 24)), this.replyEmpty);
    };
    h[Op.LSEEK] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.fs.lseek(ctx, nodeid, readU64(buf, B), readU64(buf, B + 8), buf.readUInt32LE(B + 16)), this.replyOffset);
    };
    // COPY_FILE_RANGE answers a fuse_write_out (u32 size), the 64-bit variant a u64.
    h[Op.COPY_FILE_RANGE] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.copyFileRange(ctx, buf, nodeid), this.replyWrite);
    };
    h[Op.COPY_FILE_RANGE_64] = function (ctx, buf, _end, nodeid) {
      this.answer(ctx, this.copyFileRange(ctx, buf, nodeid), this.replyOffset);
    };
    h[Op.SYNCFS] = function (ctx) {
      this.sendOk(ctx.unique);
    };
    h[Op.IOCTL] = function (ctx) {
      this.sendError(ctx.unique, Errno.ENOTTY);
    };
    h[Op.TMPFILE] = function (ctx) {
      this.sendError(ctx.unique, Errno.EOPNOTSUPP);
    };
  }

  private batchForget(buf: Buffer, end: number): void {
    const count = buf.readUInt32LE(IN_HEADER_SIZE);
    for (let i = 0, off = IN_HEADER_SIZE + 8; i < count && off + 16 <= end; i++, off += 16) {
      this.fs.forget(readU64(buf, off), readU64(buf, off + 8));
    }
  }

  /** INTERRUPT of request `target`: it may be waiting for the filesystem (or already answered: nothing to do). */
  private interrupt(target: number): void {
    for (let ctx = this.waiting; ctx; ctx = ctx.next) {
      if (ctx.unique === target) {
        ctx.interrupt();
        return;
      }
    }
  }

  private readdir(ctx: Context, buf: Buffer, nodeid: number, plus: boolean): void {
    const B = IN_HEADER_SIZE;
    const fh = readU64(buf, B);
    const offset = readU64(buf, B + 8);
    const size = buf.readUInt32LE(B + 16);
    const ahead = this.dirAhead;
    if (ahead && ahead.nodeid === nodeid && ahead.fh === fh && ahead.offset === offset && ahead.size === size && ahead.sink.plus === plus && ahead.uid === ctx.uid && ahead.gid === ctx.gid) {
      this.dirAhead = undefined;
      this.sendDir(ctx.unique, ahead.sink);
      this.readAhead(ctx, nodeid, fh, size, ahead.sink);
      return;
    }
    this.dropDirAhead();
    const sink = this.newDirBuffer(plus, size);
    const listed = this.fs.readdir(ctx, nodeid, fh, offset, sink);
    // Built ahead only after a listing answered at once: one that waited for the store is not built while the client reads.
    const atOnce = !(listed instanceof Promise);
    this.answer(ctx, listed, () => {
      this.sendDir(ctx.unique, sink);
      if (atOnce) this.readAhead(ctx, nodeid, fh, size, sink);
    });
  }

  /** After a full directory reply was sent, builds the next one (see DirReplyAhead). */
  private readAhead(ctx: Context, nodeid: number, fh: number, size: number, sent: DirBuffer): void {
    if (!sent.full || !this.channel || this.channel.closed) return;
    const sink = this.newDirBuffer(sent.plus, size);
    let listed: MaybePromise<void>;
    try {
      listed = this.fs.readdir(ctx, nodeid, fh, sent.nextOffset, sink);
    } catch {
      // The request itself will meet the error and answer it.
      this.undoLookups(sink.lookups);
      return;
    }
    if (listed instanceof Promise) {
      const undo = () => this.undoLookups(sink.lookups);
      listed.then(undo, undo);
      return;
    }
    this.dirAhead = { nodeid, fh, offset: sent.nextOffset, size, uid: ctx.uid, gid: ctx.gid, sink };
  }

  private dropDirAhead(): void {
    const ahead = this.dirAhead;
    if (ahead === undefined) return;
    this.dirAhead = undefined;
    this.undoLookups(ahead.sink.lookups);
    this.spareDirBuffer = ahead.sink.buf;
  }

  private newDirBuffer(plus: boolean, size: number): DirBuffer {
    const spare = this.spareDirBuffer;
    this.spareDirBuffer = undefined;
    return new DirBuffer(plus, size, spare);
  }

  /** The kernel never got these lookups (a reply not sent, or refused). */
  private undoLookups(nodeids: readonly number[]): void {
    for (const nodeid of nodeids) if (nodeid !== 0) this.fs.forget(nodeid, 1);
  }

  private copyFileRange(ctx: Context, buf: Buffer, nodeid: number): MaybePromise<number> {
    const B = IN_HEADER_SIZE;
    return this.fs.copyFileRange(ctx, nodeid, readU64(buf, B), readU64(buf, B + 8), readU64(buf, B + 16), readU64(buf, B + 24), readU64(buf, B + 32), readU64(buf, B + 40), readU64(buf, B + 48));
  }

  private init(buf: Buffer, unique: number): void {
    const B = IN_HEADER_SIZE;
    const major = buf.readUInt32LE(B);
    const minor = buf.readUInt32LE(B + 4);
    const maxReadahead = buf.readUInt32LE(B + 8);
    const flagsLo = buf.readUInt32LE(B + 12);
    const out = this.replyBuffer;
    if (major !== KERNEL_VERSION) {
      // A newer major: answer ours and wait for the kernel to retry in 7.x.
      if (major < KERNEL_VERSION) return this.sendError(unique, Errno.EPROTO);
      writeOutHeader(out, OUT_HEADER_SIZE + 8, 0, unique);
      out.writeUInt32LE(KERNEL_VERSION, 16);
      out.writeUInt32LE(KERNEL_MINOR, 20);
      this.channel!.write(out, OUT_HEADER_SIZE + 8);
      return;
    }
    if (minor < MIN_KERNEL_MINOR) {
      log.error('kernel FUSE protocol too old', { minor, required: MIN_KERNEL_MINOR });
      return this.sendError(unique, Errno.EPROTO);
    }
    const o = this.opts;
    let wanted =
      InitFlag.ASYNC_READ |
      InitFlag.BIG_WRITES |
      InitFlag.MAX_PAGES |
      InitFlag.ATOMIC_O_TRUNC |
      InitFlag.DO_READDIRPLUS |
      InitFlag.READDIRPLUS_AUTO |
      InitFlag.PARALLEL_DIROPS |
      InitFlag.CACHE_SYMLINKS |
      InitFlag.HANDLE_KILLPRIV_V2 |
      InitFlag.ASYNC_DIO;
    if (o.locks) wanted |= InitFlag.POSIX_LOCKS | InitFlag.FLOCK_LOCKS;
    wanted |= o.autoInvalData ? InitFlag.AUTO_INVAL_DATA : InitFlag.EXPLICIT_INVAL_DATA;
    if (o.writebackCache) wanted |= InitFlag.WRITEBACK_CACHE;
    // A file may be opened with DIRECT_IO (a backend's choice): mmap of it must still work.
    const flagsHi = flagsLo & InitFlag.INIT_EXT ? buf.readUInt32LE(B + 16) : 0;
    const flags2 = (flagsHi & InitFlag2.DIRECT_IO_ALLOW_MMAP) >>> 0;
    if (flags2 !== 0) wanted |= InitFlag.INIT_EXT;
    const flags = (flagsLo & wanted) >>> 0;
    const agreedMinor = Math.min(minor, o.maxMinor);
    const maxPages = Math.ceil(o.maxWrite / PAGE_SIZE);
    const length = OUT_HEADER_SIZE + INIT_OUT_SIZE;
    writeOutHeader(out, length, 0, unique);
    out.fill(0, OUT_HEADER_SIZE, length);
    out.writeUInt32LE(KERNEL_VERSION, 16);
    out.writeUInt32LE(agreedMinor, 20);
    out.writeUInt32LE(maxReadahead, 24);
    out.writeUInt32LE(flags, 28);
    out.writeUInt16LE(o.maxBackground, 32);
    out.writeUInt16LE(Math.floor((o.maxBackground * 3) / 4), 34);
    out.writeUInt32LE(o.maxWrite, 36);
    out.writeUInt32LE(1, 40); // time_gran: nanoseconds
    out.writeUInt16LE(maxPages, 44);
    out.writeUInt32LE(flags2, 48);
    this.conn = {
      minor: agreedMinor,
      maxWrite: o.maxWrite,
      maxReadahead,
      flags: BigInt(flags) | (BigInt(flags2) << 32n),
    };
    this.initialized = true;
    const errno = this.channel!.write(out, length);
    if (errno !== 0) {
      log.error('kernel refused the INIT reply', { errno });
      return;
    }
    this.fs.init(this.conn);
    log.debug('fuse session initialized', { minor: agreedMinor, flags: '0x' + flags.toString(16), maxWrite: o.maxWrite });
    this.onInit?.();
    this.onInit = undefined;
  }

  // ---- replies -------------------------------------------------------------------

  /**
   * Replies with the filesystem's answer: at once for a plain value (no
   * promise, no closure), or when the promise settles. A request waiting for
   * a promise is in the `waiting` list, where INTERRUPT can find it.
   */
  private answer<T>(ctx: Context, result: MaybePromise<T>, reply: Replier<T>): void {
    if (!(result instanceof Promise)) return reply.call(this, ctx, result);
    this.startWaiting(ctx);
    result.then(
      (value) => {
        this.stopWaiting(ctx);
        try {
          reply.call(this, ctx, value);
        } catch (err) {
          if (!(err instanceof FsError)) log.error('encoding a reply failed', { err: describe(err) });
          this.sendError(ctx.unique, errnoOf(err));
        }
        this.pollIfIdle();
      },
      (err: unknown) => {
        this.stopWaiting(ctx);
        if (!(err instanceof FsError)) log.error('operation failed', { err: describe(err) });
        else logEio(err);
        this.sendError(ctx.unique, ctx.interrupted && !(err instanceof FsError) ? Errno.EINTR : errnoOf(err));
        this.pollIfIdle();
      },
    );
  }

  /** After the reply to the last request that waited for the filesystem, the caller's next request is likely on its way. */
  private pollIfIdle(): void {
    if (this.waiting === undefined) this.channel?.pollAfterReply();
  }

  private startWaiting(ctx: Context): void {
    const head = this.waiting;
    ctx.next = head;
    if (head) head.prev = ctx;
    this.waiting = ctx;
  }

  private stopWaiting(ctx: Context): void {
    if (ctx.prev) ctx.prev.next = ctx.next;
    else if (this.waiting === ctx) this.waiting = ctx.next;
    if (ctx.next) ctx.next.prev = ctx.prev;
    ctx.prev = ctx.next = undefined;
  }

  /** The reply buffer, with the header of a success reply whose body (after the header) is `bodySize` bytes. */
  private replyBody(ctx: Context, bodySize: number): Buffer {
    writeOutHeader(this.replyBuffer, OUT_HEADER_SIZE + bodySize, 0, ctx.unique);
    return this.replyBuffer;
  }

  /** Sends the reply built with replyBody; `nodeid`: the lookup it carries, undone if the kernel refuses it. */
  private sendBody(ctx: Context, bodySize: number, nodeid?: number): void {
    this.send(ctx.unique, this.replyBuffer, OUT_HEADER_SIZE + bodySize, nodeid);
  }

  private sendDir(unique: number, sink: DirBuffer): void {
    writeOutHeader(sink.buf, sink.used, 0, unique);
    this.send(unique, sink.buf, sink.used, sink.lookups);
    // write(2) copied the reply.
    this.spareDirBuffer = sink.buf;
  }

  private replyEntry(ctx: Context, e: EntryOut): void {
    writeEntryOut(this.replyBody(ctx, ENTRY_OUT_SIZE), OUT_HEADER_SIZE, e);
    this.sendBody(ctx, ENTRY_OUT_SIZE, e.nodeid);
  }

  private replyCreate(ctx: Context, r: { entry: EntryOut; open: OpenOut }): void {
    const out = this.replyBody(ctx, ENTRY_OUT_SIZE + OPEN_OUT_SIZE);
    writeEntryOut(out, OUT_HEADER_SIZE, r.entry);
    writeOpenOut(out, OUT_HEADER_SIZE + ENTRY_OUT_SIZE, r.open);
    this.sendBody(ctx, ENTRY_OUT_SIZE + OPEN_OUT_SIZE, r.entry.nodeid);
  }

  private replyAttr(ctx: Context, a: AttrOut): void {
    writeAttrOut(this.replyBody(ctx, ATTR_OUT_SIZE), OUT_HEADER_SIZE, a.attr, a.attrTimeout);
    this.sendBody(ctx, ATTR_OUT_SIZE);
  }

  private replyOpen(ctx: Context, o: OpenOut): void {
    const keep = o.preload !== undefined && this.preload(o.preload.nodeid, o.preload.data);
    writeOpenOut(this.replyBody(ctx, OPEN_OUT_SIZE), OUT_HEADER_SIZE, o, keep ? FopenFlag.KEEP_CACHE : 0);
    this.sendBody(ctx, OPEN_OUT_SIZE);
  }

  /**
   * Stores a file's content in the kernel's page cache (NOTIFY_STORE) before
   * the open that offers it returns. Written from this thread, in order, so it
   * lands before the reply: the store locks each page it fills, and only a
   * READ or WRITE of the node, impossible before its first open returns, could
   * hold one. Not with the writeback cache, whose dirty pages the store could
   * overwrite. Returns whether the pages now hold the content.
   */
  private preload(nodeid: number, data: Buffer): boolean {
    if (this.opts.writebackCache || !this.channel) return false;
    const h = this.storeHeader;
    this.notifyHeader(h, Notify.STORE, h.length + data.length);
    writeU64(h, OUT_HEADER_SIZE, nodeid);
    writeU64(h, OUT_HEADER_SIZE + 8, 0);
    h.writeUInt32LE(data.length, OUT_HEADER_SIZE + 16);
    const errno = this.channel.writev([h, data]);
    if (errno !== 0 && errno !== Errno.ENOENT) log.debug('kernel refused a page cache preload', { nodeid, errno });
    return errno === 0;
  }

  private replyEmpty(ctx: Context): void {
    this.sendOk(ctx.unique);
  }

  /** fuse_write_out: a count below 4 GiB (WRITE, COPY_FILE_RANGE). */
  private replyWrite(ctx: Context, count: number): void {
    const out = this.replyBody(ctx, 8);
    writeU32(out, OUT_HEADER_SIZE, Math.min(count, 0xffffffff));
    writeU32(out, OUT_HEADER_SIZE + 4, 0);
    this.sendBody(ctx, 8);
  }

  /** One u64 (LSEEK's offset, COPY_FILE_RANGE_64's count). */
  private replyOffset(ctx: Context, value: number): void {
    writeU64(this.replyBody(ctx, 8), OUT_HEADER_SIZE, value);
    this.sendBody(ctx, 8);
  }

  private replyStatfs(ctx: Context, s: StatfsOut): void {
    writeStatfs(this.replyBody(ctx, STATFS_OUT_SIZE), OUT_HEADER_SIZE, s);
    this.sendBody(ctx, STATFS_OUT_SIZE);
  }

  private replyLock(ctx: Context, lk: FileLock): void {
    writeFileLock(this.replyBody(ctx, FILE_LOCK_SIZE), OUT_HEADER_SIZE, lk);
    this.sendBody(ctx, FILE_LOCK_SIZE);
  }

  private replyData(ctx: Context, data: Buffer): void {
    if (data.length === 0) return this.sendOk(ctx.unique);
    writeOutHeader(this.dataHeader, OUT_HEADER_SIZE + data.length, 0, ctx.unique);
    this.sendWithData(ctx.unique, data);
  }

  /** size 0 asks for the value's length; a value longer than `size` is ERANGE. */
  private replyXattr(ctx: Context, size: number, value: Buffer): void {
    if (size === 0) return this.replyWrite(ctx, value.length);
    if (value.length > size) throw new FsError('ERANGE');
    this.replyData(ctx, value);
  }

  /** `lookups`: the node id (or ids, READDIRPLUS) whose lookup the reply carries, undone if the kernel refuses it. */
  private send(unique: number, out: Buffer, length: number, lookups?: number | readonly number[]): void {
    const channel = this.channel;
    if (!channel || channel.closed) return;
    this.checkSent(unique, channel.write(out, length), length, lookups);
  }

  private sendWithData(unique: number, data: Buffer): void {
    const channel = this.channel;
    if (!channel || channel.closed) return;
    this.checkSent(unique, channel.writev([this.dataHeader, data]), OUT_HEADER_SIZE + data.length);
  }

  private checkSent(unique: number, errno: number, length: number, lookups?: number | readonly number[]): void {
    if (errno === 0) return;
    if (errno === Errno.ENOENT) {
      // The request was interrupted and is gone; the lookups we counted never reached the kernel.
      this.undoLookups(typeof lookups === 'number' ? [lookups] : (lookups ?? []));
      return;
    }
    if (errno === Errno.ENODEV) return;
    log.error('kernel refused a reply', { errno, length });
    this.sendError(unique, Errno.EIO);
  }

  private sendError(unique: number, errno: number): void {
    const channel = this.channel;
    if (!channel) return;
    const e = errno > 0 && errno < 512 ? errno : Errno.EIO;
    writeOutHeader(this.replyBuffer, OUT_HEADER_SIZE, e, unique);
    channel.write(this.replyBuffer, OUT_HEADER_SIZE);
  }

  private sendOk(unique: number): void {
    const channel = this.channel;
    if (!channel) return;
    writeOutHeader(this.replyBuffer, OUT_HEADER_SIZE, 0, unique);
    channel.write(this.replyBuffer, OUT_HEADER_SIZE);
  }
}

/** EIO tells the application nothing: the reason the file system gave goes to the log. */
function logEio(err: FsError): void {
  if (err.code === 'EIO') log.warn('answered EIO', { reason: err.message });
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

function writeOpenOut(buf: Buffer, off: number, o: OpenOut, extraFlags = 0): void {
  writeU64(buf, off, o.fh);
  writeU32(buf, off + 8, (o.openFlags ?? 0) | extraFlags);
  writeU32(buf, off + 12, 0);
}

function decodeSetattr(buf: Buffer, B: number): SetattrIn {
  return {
    valid: buf.readUInt32LE(B),
    fh: readU64(buf, B + 8),
    size: readU64(buf, B + 16),
    lockOwner: buf.readBigUInt64LE(B + 24),
    atime: { sec: Number(buf.readBigInt64LE(B + 32)), nsec: buf.readUInt32LE(B + 56) },
    mtime: { sec: Number(buf.readBigInt64LE(B + 40)), nsec: buf.readUInt32LE(B + 60) },
    ctime: { sec: Number(buf.readBigInt64LE(B + 48)), nsec: buf.readUInt32LE(B + 64) },
    mode: buf.readUInt32LE(B + 68),
    uid: buf.readUInt32LE(B + 76),
    gid: buf.readUInt32LE(B + 80),
  };
}

function decodeLock(buf: Buffer, B: number): LockIn {
  return {
    fh: readU64(buf, B),
    owner: buf.readBigUInt64LE(B + 8),
    lock: {
      start: buf.readBigUInt64LE(B + 16),
      end: buf.readBigUInt64LE(B + 24),
      type: buf.readUInt32LE(B + 32),
      pid: buf.readUInt32LE(B + 36),
    },
    flock: (buf.readUInt32LE(B + 40) & LK_FLOCK) !== 0,
  };
}

function writeFileLock(buf: Buffer, off: number, lk: FileLock): void {
  buf.writeBigUInt64LE(lk.start, off);
  buf.writeBigUInt64LE(lk.end, off + 8);
  buf.writeUInt32LE(lk.type, off + 16);
  buf.writeUInt32LE(lk.pid, off + 20);
}

