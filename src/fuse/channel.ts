// The transport between the kernel and the session: /dev/fuse read through
// libuv's epoll loop, written with plain write(2), with a short busy poll
// after each request.
//
// Why epoll: a read(2) parked on the libuv threadpool (or in a worker) blocks
// process exit and starves fs/dns/crypto of pool threads; with epoll no thread
// ever waits in the kernel. Node cannot wrap a character device in a stream
// (`uv_guess_handle` says FILE), but libuv's pipe handle opens any pollable fd,
// and a custom `onread` buffer lifts libuv's 64 KiB read size to max_write.
//
// Why the busy poll: a single-threaded daemon asleep in epoll_wait is woken
// for each request, and on a VM waking an idle vCPU is an interrupt through
// the hypervisor, tens of microseconds. libfuse's many reader threads often
// find one awake; one event loop cannot. Keeping the event loop turning after
// a reply, for a few times the client's own turnaround, catches its next
// request awake: a cold stat went from 67-84 to 21-31 µs here, a 128 KiB write
// from 150-170 to 70-120 (bench/README.md). The loop turns through
// setImmediate, so libuv polls the fd with a zero timeout and reads it itself:
// a turn costs about 1.5 µs, where a non-blocking read(2) that finds nothing
// throws EAGAIN from Node's binding and costs 4.6 µs; and timers and sockets
// (ZooKeeper's) are served in every turn.
//
// Why requests are also read straight after one is served: with several
// clients, requests queue up while one is handled, and each one libuv reads
// costs a turn of the loop (epoll_wait, a call into JavaScript, the poll's
// turn). Reading the queued ones at once, 16 at most per callback, made four
// clients creating files 15% faster here; tries that find nothing back off.

import fs from 'node:fs';
import net from 'node:net';
import { Errno } from '../fs/errors.js';

interface PipeWrapBinding {
  Pipe: new (type: number) => { open(fd: number): number };
  constants: { SOCKET: number };
}

function pipeWrap(): PipeWrapBinding {
  // process.binding is deprecated but the only way to poll an arbitrary fd
  // without a native addon. Guarded so a Node without it fails with a message.
  const binding = (process as unknown as { binding?: (name: string) => unknown }).binding;
  if (typeof binding !== 'function') {
    throw new Error('this Node.js has no process.binding: swarmvol needs Node.js 20 or 22');
  }
  return binding('pipe_wrap') as PipeWrapBinding;
}

/** Handles one request; returns true when no request is left waiting for the filesystem. */
export type RequestHandler = (buf: Buffer, length: number) => boolean;
/** One small step of work for the time a poll finds no request; false when none is left. */
export type IdleWork = () => boolean;

/** Most requests served per read callback: then the event loop (timers, the store's sockets, promise continuations) gets a turn. */
const MAX_REQUESTS_PER_CALLBACK = 16;
/** The longest wait, in requests served, between tries of a read of queued requests after tries that found none. */
const MAX_QUEUED_READ_SKIP = 64;
/** The default and the largest `--busy-poll`, microseconds. */
export const DEFAULT_BUSY_POLL_MICROS = 200;
export const MAX_BUSY_POLL_MICROS = 1000;
/** A poll window shorter than this is not worth a read(2): polling stops until requests come close together again. */
const MIN_POLL_MS = 0.005;
/**
 * The window is this many times the client's latest turnaround (reply to next
 * request): a client's turnarounds vary, and a request missed by a little
 * costs a sleep and a wake-up, more than the poll it saved.
 */
const TURNAROUND_FACTOR = 3;
/** Per request caught, the window shrinks at most to this fraction, so one quick turnaround does not make the next ordinary one miss. */
const WINDOW_DECAY = 0.9;

export class FuseChannel {
  readonly fd: number;
  private socket: net.Socket | undefined;
  protected closedFlag = false;
  private readonly closeWaiters: Array<(err?: Error) => void> = [];
  protected closeError: Error | undefined;
  /** Longest busy poll after a request, ms (0: never poll). */
  private pollLimit = 0;
  /**
   * The current poll window, ms: a few times the client's turnaround, at most
   * the limit. It follows the client: a stat loop (20-30 µs turnaround) gets
   * about 80 µs, a 128 KiB write (60-100 µs) the limit. It is halved each
   * time a poll catches nothing, and set from the turnaround again when a
   * request comes within the limit after the loop slept: a client whose
   * requests are all further apart than the limit soon gets no polling, and
   * one that pauses after each burst pays about the window per pause.
   * (Growing it back step by step instead, from 10 µs, cost a sequential
   * client up to 50% of its rate: each step needs a sleep and a wake-up.)
   */
  private pollWindow = 0;
  /** When the last request was answered, or left waiting (performance.now()). */
  private answeredAt = 0;
  /** A turn of the event loop is queued: the loop does not sleep. */
  private polling = false;
  /** A request was read since the last turn of the poll. */
  private servedThisTurn = false;
  /** When the current poll ends unless a request comes first (performance.now()); 0: ended by a request that waits. */
  private pollDeadline = 0;
  private idleWork: IdleWork | undefined;
  /**
   * By the opcode of the request just served (its low 6 bits): how many more
   * such requests to serve before readQueued tries again after one, and the
   * skip its last try that found nothing set (0 after one that found a request).
   */
  private readonly queuedReadSkip = new Uint8Array(64);
  private readonly queuedReadBackoff = new Uint8Array(64);

  constructor(fd: number) {
    this.fd = fd;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Starts reading requests. Must be called only after the mount succeeded:
   * before that, the kernel answers reads with EPERM. `handler` gets a view of
   * a buffer that is reused for the next request, so it must copy what it
   * keeps beyond its synchronous part. After a request that left nothing
   * waiting, the event loop keeps turning for up to `pollMicros` (adapted to
   * how closely requests follow each other) before it sleeps, and runs a step
   * of `idleWork` in each turn that finds no request.
   */
  start(bufferSize: number, handler: RequestHandler, pollMicros = 0, idleWork?: IdleWork): void {
    this.pollLimit = this.pollWindow = pollMicros / 1000;
    this.idleWork = idleWork;
    const { Pipe, constants } = pipeWrap();
    const handle = new Pipe(constants.SOCKET);
    const rc = handle.open(this.fd);
    if (rc !== 0) throw new Error(`cannot poll /dev/fuse (libuv error ${rc})`);
    const buffer = Buffer.alloc(bufferSize);
    const socket = new net.Socket({
      handle,
      readable: true,
      writable: false,
      onread: {
        buffer,
        callback: (nread: number, buf: Buffer) => {
          this.serve(handler, buf, nread);
          return true;
        },
      },
    } as net.SocketConstructorOpts);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // ENODEV: unmounted; ECONNABORTED: aborted through fusectl.
      if (err.code !== 'ENODEV' && err.code !== 'ECONNABORTED') this.closeError = err;
      this.finish();
    });
    socket.on('end', () => this.finish());
    socket.on('close', () => this.finish());
    this.socket = socket;
  }

  /** Handles the request libuv read, then the ones queued behind it; sets the poll going or ends it. */
  private serve(handler: RequestHandler, buf: Buffer, nread: number): void {
    const polled = this.pollLimit !== 0;
    if (polled) this.followTurnaround(this.polling);
    let idle = handler(buf, nread);
    if (polled) this.answeredAt = performance.now();
    for (let served = 1; served < MAX_REQUESTS_PER_CALLBACK && !this.closedFlag; served++) {
      const queued = this.readQueued(buf);
      if (queued <= 0) break;
      // Found awake, as a poll would have: the window follows this turnaround too.
      if (polled) this.followTurnaround(true);
      idle = handler(buf, queued);
      if (polled) this.answeredAt = performance.now();
    }
    if (!polled) return;
    this.servedThisTurn = true;
    // A request waiting for the filesystem ends the poll: its reply starts the next one.
    if (idle) this.pollOn();
    else this.pollDeadline = 0;
  }

  /** Sets the poll window from the time between the last answer and this request's arrival. */
  private followTurnaround(caughtAwake: boolean): void {
    const turnaround = performance.now() - this.answeredAt;
    if (caughtAwake) {
      this.pollWindow = Math.min(this.pollLimit, Math.max(TURNAROUND_FACTOR * turnaround, WINDOW_DECAY * this.pollWindow));
    } else if (turnaround <= this.pollLimit) {
      // A poll of the full limit would have caught this one: this wait (which includes the wake-up) sets the window.
      this.pollWindow = Math.min(this.pollLimit, TURNAROUND_FACTOR * turnaround);
    }
  }

  /**
   * The next request if one is queued already, read at once rather than
   * through another turn of the event loop (epoll_wait, a call into
   * JavaScript, the poll's turn: about 2 µs); 0 if none is tried or found,
   * -1 if the connection failed (libuv's own read then reports it). `buf`
   * holds the request just served. A read that finds nothing costs about as
   * much (Node throws EAGAIN), so after one the next tries after a request of
   * that opcode wait for twice as many of them, up to MAX_QUEUED_READ_SKIP.
   * By opcode, because what follows depends on it: with one client, a reply
   * it waits for (LOOKUP, WRITE) is never followed by a queued request, and a
   * RELEASE (which it does not wait for) often is; with several, any may be.
   */
  private readQueued(buf: Buffer): number {
    const op = buf.readUInt32LE(4) & 63;
    if (this.queuedReadSkip[op]! > 0) {
      this.queuedReadSkip[op]!--;
      return 0;
    }
    const n = this.readNow(buf);
    if (n > 0) {
      this.queuedReadBackoff[op] = 0;
    } else {
      this.queuedReadSkip[op] = this.queuedReadBackoff[op] = Math.min(MAX_QUEUED_READ_SKIP, Math.max(1, 2 * this.queuedReadBackoff[op]!));
    }
    return n;
  }

  /** One non-blocking read(2) of /dev/fuse: the request's length, 0 when none is there, -1 when the connection failed. */
  private readNow(buf: Buffer): number {
    // An empty /dev/fuse throws EAGAIN: without a stack trace that costs half as much.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return fs.readSync(this.fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOENT: the request was interrupted before it was read.
      return code === 'EAGAIN' || code === 'EINTR' || code === 'ENOENT' ? 0 : -1;
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
  }

  /**
   * Polls for the next request after a reply sent outside the read callback
   * (to a request that waited for the filesystem), when none is left waiting.
   */
  pollAfterReply(): void {
    if (this.pollLimit === 0 || this.closedFlag) return;
    this.answeredAt = performance.now();
    this.pollOn();
  }

  /** Keeps the event loop turning until the window after the last answer ends. */
  private pollOn(): void {
    if (this.pollWindow < MIN_POLL_MS) return;
    this.pollDeadline = this.answeredAt + this.pollWindow;
    if (this.polling) return;
    this.polling = true;
    setImmediate(this.pollTurn);
  }

  /** One turn of the poll: libuv has just polled the fd (and read any request) without sleeping. */
  private readonly pollTurn = (): void => {
    this.polling = false;
    if (this.closedFlag || this.pollDeadline === 0) return;
    if (performance.now() >= this.pollDeadline) {
      // Polled in vain: the client is slower than the window, or gone.
      this.pollWindow /= 2;
      return;
    }
    // Queued before the step, so that a reply the step may cause (pollAfterReply) starts no second chain of turns.
    this.polling = true;
    setImmediate(this.pollTurn);
    // Time the daemon would spend polling anyway, if libuv's poll before this turn found no request: a request that comes meanwhile waits for the step to end.
    if (this.servedThisTurn) this.servedThisTurn = false;
    else this.idleWork?.();
  };

  /**
   * Writes one reply, the first `length` bytes of `buf`. Returns 0 or the
   * errno the kernel answered with. The kernel copies the reply before
   * write(2) returns, so the caller may reuse `buf` at once.
   */
  write(buf: Buffer, length = buf.length): number {
    try {
      fs.writeSync(this.fd, buf, 0, length);
      return 0;
    } catch (err) {
      return errnoFromSystemError(err);
    }
  }

  writev(bufs: Buffer[]): number {
    try {
      fs.writevSync(this.fd, bufs);
      return 0;
    } catch (err) {
      return errnoFromSystemError(err);
    }
  }

  /**
   * Writes a notification from the threadpool: the kernel may take a directory
   * lock that a request we have not answered yet holds, so writing it from the
   * event loop thread could deadlock.
   */
  notify(buf: Buffer): Promise<number> {
    return new Promise((resolve) => {
      if (this.closedFlag) return resolve(Errno.ENODEV);
      fs.write(this.fd, buf, 0, buf.length, null, (err) => resolve(err ? errnoFromSystemError(err) : 0));
    });
  }

  /** Resolves when the kernel ends the connection (unmount or abort). */
  waitClosed(): Promise<void> {
    if (this.closedFlag) return this.closeError ? Promise.reject(this.closeError) : Promise.resolve();
    return new Promise((resolve, reject) => {
      this.closeWaiters.push((err) => (err ? reject(err) : resolve()));
    });
  }

  /** Stops reading and closes the fd (which also drops the connection's last reference). */
  close(): void {
    if (this.socket) this.socket.destroy();
    else {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
    }
    this.finish();
  }

  protected finish(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.socket?.destroy();
    for (const waiter of this.closeWaiters.splice(0)) waiter(this.closeError);
  }
}

function errnoFromSystemError(err: unknown): number {
  const code = (err as NodeJS.ErrnoException).code;
  if (code && code in Errno) return Errno[code as keyof typeof Errno];
  return Errno.EIO;
}
