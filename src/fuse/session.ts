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
  IN_HEADER_SIZE,
  INIT_OUT_SIZE,
  InitFlag,
  KERNEL_MINOR,
  KERNEL_VERSION,
  MIN_KERNEL_MINOR,
  MIN_READ_BUFFER,
  Notify,
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
import type { AttrOut, ConnectionInfo, EntryOut, FileLock, LockIn, OpenOut, RawFileSystem, RequestContext, SetattrIn } from './types.js';
import {
  allocReply,
  direntPlusSize,
  direntSize,
  errorReply,
  InvalidNameError,
  readCString,
  readU64,
  writeAttrOut,
  writeDirent,
  writeEntryOut,
  writeStatfs,
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
  channel: (fd) => new FuseChannel(fd),
};

class Context implements RequestContext {
  interrupted = false;
  private interruptCallbacks: Array<() => void> | undefined;

  constructor(
    readonly unique: bigint,
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

/** Builds READDIR(PLUS) replies in one buffer (a writev of >1024 parts fails). */
class DirBuffer {
  readonly buf: Buffer;
  used = 0;
  constructor(
    readonly plus: boolean,
    capacity: number,
  ) {
    this.buf = Buffer.allocUnsafe(OUT_HEADER_SIZE + capacity);
    this.used = OUT_HEADER_SIZE;
  }
  add(name: string, ino: number, mode: number, nextOffset: number, entry?: EntryOut): boolean {
    const nameBuf = Buffer.from(name, 'utf8');
    const size = this.plus ? direntPlusSize(nameBuf.length) : direntSize(nameBuf.length);
    if (this.used + size > this.buf.length) return false;
    let off = this.used;
    if (this.plus) {
      if (entry) writeEntryOut(this.buf, off, entry);
      else this.buf.fill(0, off, off + ENTRY_OUT_SIZE);
      off += ENTRY_OUT_SIZE;
    }
    this.used = writeDirent(this.buf, off, nameBuf, ino, mode, nextOffset);
    return true;
  }
}

export interface Notifier {
  /** Drops cached attributes and the data range [offset, offset+length) (length 0: to EOF; offset < 0: attributes only). */
  invalInode(nodeid: number, offset?: number, length?: number): Promise<void>;
  /** Drops the kernel's dentry for `name` in `parent`. */
  invalEntry(parent: number, name: string): Promise<void>;
  /** Like invalEntry, and tells inotify watchers that `child` was deleted. */
  delete(parent: number, child: number, name: string): Promise<void>;
}

export class FuseSession implements Notifier {
  private readonly opts: SessionOptions;
  private channel: FuseChannel | undefined;
  private mounted: MountedFuse | undefined;
  private readonly inflight = new Map<bigint, Context>();
  private initialized = false;
  private conn: ConnectionInfo | undefined;
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
    channel.start(Math.max(MIN_READ_BUFFER, this.opts.maxWrite + PAGE_SIZE), (buf, len) => this.handle(buf, len));
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
        await abortConnection(mounted.connection);
        channel.close();
      }
      clearTimeout(timer);
    }
    this.shutdown();
  }

  private shutdown(): void {
    if (!this.channel) return;
    this.mounted?.watchdog.disarm();
    this.channel.close();
    for (const ctx of this.inflight.values()) ctx.interrupt();
    this.inflight.clear();
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
    const buf = Buffer.allocUnsafe(OUT_HEADER_SIZE + 24);
    this.notifyHeader(buf, Notify.INVAL_INODE);
    writeU64(buf, 16, nodeid);
    buf.writeBigInt64LE(BigInt(offset), 24);
    buf.writeBigInt64LE(BigInt(length), 32);
    await this.sendNotify(buf);
  }

  async invalEntry(parent: number, name: string): Promise<void> {
    const nameBuf = Buffer.from(name, 'utf8');
    const buf = Buffer.alloc(OUT_HEADER_SIZE + 16 + nameBuf.length + 1);
    this.notifyHeader(buf, Notify.INVAL_ENTRY);
    writeU64(buf, 16, parent);
    buf.writeUInt32LE(nameBuf.length, 24);
    nameBuf.copy(buf, 32);
    await this.sendNotify(buf);
  }

  async delete(parent: number, child: number, name: string): Promise<void> {
    const nameBuf = Buffer.from(name, 'utf8');
    const buf = Buffer.alloc(OUT_HEADER_SIZE + 24 + nameBuf.length + 1);
    this.notifyHeader(buf, Notify.DELETE);
    writeU64(buf, 16, parent);
    writeU64(buf, 24, child);
    buf.writeUInt32LE(nameBuf.length, 32);
    nameBuf.copy(buf, 40);
    await this.sendNotify(buf);
  }

  private notifyHeader(buf: Buffer, code: Notify): void {
    buf.writeUInt32LE(buf.length, 0);
    buf.writeInt32LE(code, 4);
    buf.writeBigUInt64LE(0n, 8);
  }

  private async sendNotify(buf: Buffer): Promise<void> {
    if (!this.channel || !this.initialized) return;
    const errno = await this.channel.notify(buf);
    // ENOENT: nothing cached for it, which is what we wanted.
    if (errno !== 0 && errno !== Errno.ENOENT && errno !== Errno.ENODEV) {
      log.warn('kernel refused a notification', { code: buf.readInt32LE(4), errno });
    }
  }

  // ---- requests ---------------------------------------------------------------

  private handle(buf: Buffer, length: number): void {
    if (length < IN_HEADER_SIZE) {
      log.error('short request from the kernel', { length });
      return;
    }
    const opcode = buf.readUInt32LE(4);
    const unique = buf.readBigUInt64LE(8);
    try {
      this.dispatch(buf, length, opcode, unique);
    } catch (err) {
      if (err instanceof InvalidNameError) return this.sendError(unique, Errno.EILSEQ);
      // Decoding bugs must not leave the caller hanging.
      log.error('request failed before dispatch', { opcode, err: String(err) });
      if (opcode !== Op.FORGET && opcode !== Op.BATCH_FORGET) this.sendError(unique, Errno.EIO);
    }
  }

  private dispatch(buf: Buffer, length: number, opcode: number, unique: bigint): void {
    const nodeid = readU64(buf, 16);
    const extLen = buf.readUInt16LE(36) * 8;
    const end = Math.min(buf.readUInt32LE(0), length) - extLen;
    const B = IN_HEADER_SIZE;

    if (!this.initialized) {
      if (opcode === Op.INIT) return this.init(buf, unique);
      return this.sendError(unique, Errno.EIO);
    }
    const fs = this.fs;
    switch (opcode) {
      case Op.FORGET:
        fs.forget(nodeid, readU64(buf, B));
        return;
      case Op.BATCH_FORGET: {
        const count = buf.readUInt32LE(B);
        for (let i = 0, off = B + 8; i < count && off + 16 <= end; i++, off += 16) {
          fs.forget(readU64(buf, off), readU64(buf, off + 8));
        }
        return;
      }
      case Op.INTERRUPT: {
        const target = buf.readBigUInt64LE(B);
        this.inflight.get(target)?.interrupt();
        return;
      }
      case Op.DESTROY:
        this.sendOk(unique);
        this.shutdown();
        return;
    }

    const ctx = new Context(unique, buf.readUInt32LE(24), buf.readUInt32LE(28), buf.readUInt32LE(32));
    switch (opcode) {
      case Op.LOOKUP:
        return this.entry(ctx, fs.lookup(ctx, nodeid, readCString(buf, B, end).value));
      case Op.GETATTR: {
        const flags = buf.readUInt32LE(B);
        const fh = flags & GETATTR_FH ? readU64(buf, B + 8) : undefined;
        return this.attr(ctx, fs.getattr(ctx, nodeid, fh));
      }
      case Op.SETATTR:
        return this.attr(ctx, fs.setattr(ctx, nodeid, decodeSetattr(buf, B)));
      case Op.READLINK:
        return this.data(ctx, fs.readlink(ctx, nodeid));
      case Op.SYMLINK: {
        const name = readCString(buf, B, end);
        const target = readCString(buf, name.next, end);
        return this.entry(ctx, fs.symlink(ctx, nodeid, name.value, target.value));
      }
      case Op.MKNOD: {
        const name = readCString(buf, B + 16, end).value;
        return this.entry(ctx, fs.mknod(ctx, nodeid, name, buf.readUInt32LE(B), buf.readUInt32LE(B + 4), buf.readUInt32LE(B + 8)));
      }
      case Op.MKDIR: {
        const name = readCString(buf, B + 8, end).value;
        return this.entry(ctx, fs.mkdir(ctx, nodeid, name, buf.readUInt32LE(B), buf.readUInt32LE(B + 4)));
      }
      case Op.UNLINK:
        return this.empty(ctx, fs.unlink(ctx, nodeid, readCString(buf, B, end).value));
      case Op.RMDIR:
        return this.empty(ctx, fs.rmdir(ctx, nodeid, readCString(buf, B, end).value));
      case Op.RENAME:
      case Op.RENAME2: {
        const newParent = readU64(buf, B);
        const flags = opcode === Op.RENAME2 ? buf.readUInt32LE(B + 8) : 0;
        const from = readCString(buf, B + (opcode === Op.RENAME2 ? 16 : 8), end);
        const to = readCString(buf, from.next, end);
        return this.empty(ctx, fs.rename(ctx, nodeid, from.value, newParent, to.value, flags));
      }
      case Op.LINK:
        return this.entry(ctx, fs.link(ctx, readU64(buf, B), nodeid, readCString(buf, B + 8, end).value));
      case Op.OPEN:
        return this.open(ctx, fs.open(ctx, nodeid, buf.readUInt32LE(B), buf.readUInt32LE(B + 4)));
      case Op.OPENDIR:
        return this.open(ctx, fs.opendir(ctx, nodeid, buf.readUInt32LE(B)));
      case Op.CREATE: {
        const name = readCString(buf, B + 16, end).value;
        const p = fs.create(ctx, nodeid, name, buf.readUInt32LE(B + 4), buf.readUInt32LE(B + 8), buf.readUInt32LE(B));
        return this.run(ctx, p, (r) => {
          const out = allocReply(unique, ENTRY_OUT_SIZE + OPEN_OUT_SIZE);
          writeEntryOut(out, OUT_HEADER_SIZE, r.entry);
          writeOpenOut(out, OUT_HEADER_SIZE + ENTRY_OUT_SIZE, r.open);
          return { out, nodeid: r.entry.nodeid };
        });
      }
      case Op.READ:
        return this.data(ctx, fs.read(ctx, nodeid, readU64(buf, B), readU64(buf, B + 8), buf.readUInt32LE(B + 16)));
      case Op.WRITE: {
        const size = buf.readUInt32LE(B + 16);
        // A view, not a copy: valid only during the synchronous part of the
        // call (the read buffer is reused for the next request).
        const data = buf.subarray(B + 40, B + 40 + size);
        const p = fs.write(ctx, nodeid, readU64(buf, B), readU64(buf, B + 8), data, buf.readUInt32LE(B + 20));
        return this.run(ctx, p, (written) => {
          const out = allocReply(unique, 8);
          out.writeUInt32LE(written, 16);
          out.writeUInt32LE(0, 20);
          return { out };
        });
      }
      case Op.STATFS:
        return this.run(ctx, fs.statfs(ctx, nodeid), (s) => {
          const out = allocReply(unique, STATFS_OUT_SIZE);
          writeStatfs(out, OUT_HEADER_SIZE, s);
          return { out };
        });
      case Op.RELEASE:
        return this.empty(ctx, fs.release(ctx, nodeid, readU64(buf, B), buf.readUInt32LE(B + 8), buf.readUInt32LE(B + 12), buf.readBigUInt64LE(B + 16)));
      case Op.RELEASEDIR:
        return this.empty(ctx, fs.releasedir(ctx, nodeid, readU64(buf, B)));
      case Op.FSYNC:
        return this.empty(ctx, fs.fsync(ctx, nodeid, readU64(buf, B), (buf.readUInt32LE(B + 8) & FSYNC_FDATASYNC) !== 0));
      case Op.FSYNCDIR:
        return this.empty(ctx, fs.fsyncdir(ctx, nodeid, readU64(buf, B), (buf.readUInt32LE(B + 8) & FSYNC_FDATASYNC) !== 0));
      case Op.FLUSH:
        return this.empty(ctx, fs.flush(ctx, nodeid, readU64(buf, B), buf.readBigUInt64LE(B + 16)));
      case Op.READDIR:
      case Op.READDIRPLUS: {
        const fh = readU64(buf, B);
        const offset = readU64(buf, B + 8);
        const sink = new DirBuffer(opcode === Op.READDIRPLUS, buf.readUInt32LE(B + 16));
        return this.run(ctx, fs.readdir(ctx, nodeid, fh, offset, sink), () => {
          sink.buf.writeUInt32LE(sink.used, 0);
          sink.buf.writeInt32LE(0, 4);
          sink.buf.writeBigUInt64LE(unique, 8);
          return { out: sink.buf.subarray(0, sink.used) };
        });
      }
      case Op.ACCESS:
        return this.empty(ctx, fs.access(ctx, nodeid, buf.readUInt32LE(B)));
      case Op.SETXATTR: {
        const size = buf.readUInt32LE(B);
        const flags = buf.readUInt32LE(B + 4);
        const name = readCString(buf, B + 8, end);
        const value = Buffer.from(buf.subarray(name.next, name.next + size));
        return this.empty(ctx, fs.setxattr(ctx, nodeid, name.value, value, flags));
      }
      case Op.GETXATTR: {
        const size = buf.readUInt32LE(B);
        return this.xattrReply(ctx, size, fs.getxattr(ctx, nodeid, readCString(buf, B + 8, end).value));
      }
      case Op.LISTXATTR: {
        const size = buf.readUInt32LE(B);
        const list = fs.listxattr(ctx, nodeid).then((names) => Buffer.from(names.map((n) => n + '\0').join(''), 'utf8'));
        return this.xattrReply(ctx, size, list);
      }
      case Op.REMOVEXATTR:
        return this.empty(ctx, fs.removexattr(ctx, nodeid, readCString(buf, B, end).value));
      case Op.GETLK:
        return this.run(ctx, fs.getlk(ctx, nodeid, decodeLock(buf, B)), (lk) => {
          const out = allocReply(unique, 24);
          writeFileLock(out, OUT_HEADER_SIZE, lk);
          return { out };
        });
      case Op.SETLK:
      case Op.SETLKW:
        return this.empty(ctx, fs.setlk(ctx, nodeid, decodeLock(buf, B), opcode === Op.SETLKW));
      case Op.FALLOCATE:
        return this.empty(ctx, fs.fallocate(ctx, nodeid, readU64(buf, B), readU64(buf, B + 8), readU64(buf, B + 16), buf.readUInt32LE(B + 24)));
      case Op.LSEEK:
        return this.run(ctx, fs.lseek(ctx, nodeid, readU64(buf, B), readU64(buf, B + 8), buf.readUInt32LE(B + 16)), (off) => {
          const out = allocReply(unique, 8);
          writeU64(out, OUT_HEADER_SIZE, off);
          return { out };
        });
      case Op.COPY_FILE_RANGE:
      case Op.COPY_FILE_RANGE_64: {
        const p = fs.copyFileRange(
          ctx,
          nodeid,
          readU64(buf, B),
          readU64(buf, B + 8),
          readU64(buf, B + 16),
          readU64(buf, B + 24),
          readU64(buf, B + 32),
          readU64(buf, B + 40),
          readU64(buf, B + 48),
        );
        return this.run(ctx, p, (n) => {
          const out = allocReply(unique, 8);
          if (opcode === Op.COPY_FILE_RANGE) {
            out.writeUInt32LE(Math.min(n, 0xffffffff), 16);
            out.writeUInt32LE(0, 20);
          } else writeU64(out, 16, n);
          return { out };
        });
      }
      case Op.SYNCFS:
        return this.sendOk(unique);
      case Op.IOCTL:
        return this.sendError(unique, Errno.ENOTTY);
      case Op.TMPFILE:
        return this.sendError(unique, Errno.EOPNOTSUPP);
      default:
        // STATX, POLL, BMAP, SETUPMAPPING...: ENOSYS makes the kernel fall back.
        return this.sendError(unique, Errno.ENOSYS);
    }
  }

  private init(buf: Buffer, unique: bigint): void {
    const B = IN_HEADER_SIZE;
    const major = buf.readUInt32LE(B);
    const minor = buf.readUInt32LE(B + 4);
    const maxReadahead = buf.readUInt32LE(B + 8);
    const flagsLo = buf.readUInt32LE(B + 12);
    if (major !== KERNEL_VERSION) {
      // A newer major: answer ours and wait for the kernel to retry in 7.x.
      const out = allocReply(unique, 8);
      out.writeUInt32LE(KERNEL_VERSION, 16);
      out.writeUInt32LE(KERNEL_MINOR, 20);
      if (major < KERNEL_VERSION) return this.sendError(unique, Errno.EPROTO);
      this.channel!.write(out);
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
    const flags = (flagsLo & wanted) >>> 0;
    const agreedMinor = Math.min(minor, KERNEL_MINOR);
    const maxPages = Math.ceil(o.maxWrite / PAGE_SIZE);
    const out = allocReply(unique, INIT_OUT_SIZE);
    out.fill(0, OUT_HEADER_SIZE);
    out.writeUInt32LE(KERNEL_VERSION, 16);
    out.writeUInt32LE(agreedMinor, 20);
    out.writeUInt32LE(maxReadahead, 24);
    out.writeUInt32LE(flags, 28);
    out.writeUInt16LE(o.maxBackground, 32);
    out.writeUInt16LE(Math.floor((o.maxBackground * 3) / 4), 34);
    out.writeUInt32LE(o.maxWrite, 36);
    out.writeUInt32LE(1, 40); // time_gran: nanoseconds
    out.writeUInt16LE(maxPages, 44);
    this.conn = {
      minor: agreedMinor,
      maxWrite: o.maxWrite,
      maxReadahead,
      flags: BigInt(flags),
    };
    this.initialized = true;
    const errno = this.channel!.write(out);
    if (errno !== 0) {
      log.error('kernel refused the INIT reply', { errno });
      return;
    }
    this.fs.init(this.conn);
    log.debug('fuse session initialized', { minor: agreedMinor, flags: '0x' + flags.toString(16), maxWrite: o.maxWrite });
    this.onInit?.();
    this.onInit = undefined;
  }

  // ---- reply helpers ------------------------------------------------------------

  private run<T>(ctx: Context, p: Promise<T>, encode: (value: T) => { out: Buffer; data?: Buffer; nodeid?: number }): void {
    this.inflight.set(ctx.unique, ctx);
    p.then(
      (value) => {
        this.inflight.delete(ctx.unique);
        let encoded: { out: Buffer; data?: Buffer; nodeid?: number };
        try {
          encoded = encode(value);
        } catch (err) {
          if (!(err instanceof FsError)) log.error('encoding a reply failed', { err: String(err) });
          return this.sendError(ctx.unique, errnoOf(err));
        }
        this.send(ctx.unique, encoded.out, encoded.data, encoded.nodeid);
      },
      (err: unknown) => {
        this.inflight.delete(ctx.unique);
        if (!(err instanceof FsError)) log.error('operation failed', { err: err instanceof Error ? (err.stack ?? err.message) : String(err) });
        this.sendError(ctx.unique, ctx.interrupted && !(err instanceof FsError) ? Errno.EINTR : errnoOf(err));
      },
    );
  }

  private entry(ctx: Context, p: Promise<EntryOut>): void {
    this.run(ctx, p, (e) => {
      const out = allocReply(ctx.unique, ENTRY_OUT_SIZE);
      writeEntryOut(out, OUT_HEADER_SIZE, e);
      return { out, nodeid: e.nodeid };
    });
  }

  private attr(ctx: Context, p: Promise<AttrOut>): void {
    this.run(ctx, p, (a) => {
      const out = allocReply(ctx.unique, ATTR_OUT_SIZE);
      writeAttrOut(out, OUT_HEADER_SIZE, a.attr, a.attrTimeout);
      return { out };
    });
  }

  private open(ctx: Context, p: Promise<OpenOut>): void {
    this.run(ctx, p, (o) => {
      const out = allocReply(ctx.unique, OPEN_OUT_SIZE);
      writeOpenOut(out, OUT_HEADER_SIZE, o);
      return { out };
    });
  }

  private empty(ctx: Context, p: Promise<void>): void {
    this.run(ctx, p, () => ({ out: allocReply(ctx.unique, 0) }));
  }

  private data(ctx: Context, p: Promise<Buffer>): void {
    this.run(ctx, p, (data) => {
      const out = allocReply(ctx.unique, 0);
      out.writeUInt32LE(OUT_HEADER_SIZE + data.length, 0);
      return { out, data };
    });
  }

  private xattrReply(ctx: Context, size: number, p: Promise<Buffer>): void {
    this.run(ctx, p, (value) => {
      if (size === 0) {
        const out = allocReply(ctx.unique, 8);
        out.writeUInt32LE(value.length, 16);
        out.writeUInt32LE(0, 20);
        return { out };
      }
      if (value.length > size) throw new FsError('ERANGE');
      const out = allocReply(ctx.unique, 0);
      out.writeUInt32LE(OUT_HEADER_SIZE + value.length, 0);
      return { out, data: value };
    });
  }

  private send(unique: bigint, out: Buffer, data?: Buffer, nodeid?: number): void {
    const channel = this.channel;
    if (!channel || channel.closed) return;
    const errno = data && data.length > 0 ? channel.writev([out, data]) : channel.write(out);
    if (errno === 0) return;
    if (errno === Errno.ENOENT) {
      // The request was interrupted and is gone; a lookup we counted never reached the kernel.
      if (nodeid) this.fs.forget(nodeid, 1);
      return;
    }
    if (errno === Errno.ENODEV) return;
    log.error('kernel refused a reply', { errno, length: out.length + (data?.length ?? 0) });
    channel.write(errorReply(unique, Errno.EIO));
  }

  private sendError(unique: bigint, errno: number): void {
    const e = errno > 0 && errno < 512 ? errno : Errno.EIO;
    this.channel?.write(errorReply(unique, e));
  }

  private sendOk(unique: bigint): void {
    this.channel?.write(allocReply(unique, 0));
  }
}

function writeOpenOut(buf: Buffer, off: number, o: OpenOut): void {
  writeU64(buf, off, o.fh);
  buf.writeUInt32LE(o.openFlags ?? 0, off + 8);
  buf.writeUInt32LE(0, off + 12);
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

