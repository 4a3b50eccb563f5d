// The alternative transport, kept only to measure the chosen one against it:
// K read(2) calls parked on libuv's threadpool, each re-armed after its
// request is handled. Needs UV_THREADPOOL_SIZE > K from the environment.

import fs from 'node:fs';
import { FuseChannel, type RequestHandler } from '../../src/fuse/channel.js';

export class ThreadpoolChannel extends FuseChannel {
  constructor(
    fd: number,
    private readonly readers: number,
  ) {
    super(fd);
  }

  override start(bufferSize: number, handler: RequestHandler): void {
    for (let i = 0; i < this.readers; i++) this.readLoop(Buffer.alloc(bufferSize), handler);
  }

  private readLoop(buf: Buffer, handler: RequestHandler): void {
    fs.read(this.fd, buf, 0, buf.length, null, (err, n) => {
      if (this.closedFlag) return;
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EINTR' || code === 'ENOENT' || code === 'EAGAIN') return this.readLoop(buf, handler);
        if (code !== 'ENODEV' && code !== 'ECONNABORTED') this.closeError = err;
        return this.finish();
      }
      handler(buf, n);
      this.readLoop(buf, handler);
    });
  }

  override close(): void {
    this.finish();
  }
}
