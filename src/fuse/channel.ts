// The transport between the kernel and the session: /dev/fuse read through
// libuv's epoll loop, written with plain write(2).
//
// Why epoll: a read(2) parked on the libuv threadpool (or in a worker) blocks
// process exit and starves fs/dns/crypto of pool threads; with epoll no thread
// ever waits in the kernel. Node cannot wrap a character device in a stream
// (`uv_guess_handle` says FILE), but libuv's pipe handle opens any pollable fd,
// and a custom `onread` buffer lifts libuv's 64 KiB read size to max_write.

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

export type RequestHandler = (buf: Buffer, length: number) => void;

export class FuseChannel {
  readonly fd: number;
  private socket: net.Socket | undefined;
  protected closedFlag = false;
  private readonly closeWaiters: Array<(err?: Error) => void> = [];
  protected closeError: Error | undefined;

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
   * keeps beyond its synchronous part.
   */
  start(bufferSize: number, handler: RequestHandler): void {
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
          handler(buf, nread);
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
