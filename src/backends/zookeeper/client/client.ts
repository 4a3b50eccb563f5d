// A ZooKeeper client for swarmvol: pipelined requests, multi and multiRead,
// persistent recursive watches (ZooKeeper 3.6+), digest auth, and a session
// that survives: reconnects keep the session and re-arm watches; an expired
// session is replaced by a new one; both are reported so caches can be
// revalidated.

import { EventEmitter } from 'node:events';
import net from 'node:net';
import { JuteReader, JuteWriter } from './jute.js';
import {
  answeredError,
  type Acl,
  AddWatchMode,
  CreateMode,
  ErrorCode,
  EventType,
  type MultiOp,
  type MultiResult,
  OpCode,
  readAcls,
  readMultiReadResult,
  readMultiResult,
  type ReadOp,
  type ReadResult,
  readStat,
  type Stat,
  writeCreate,
  writeMulti,
  writeMultiRead,
  Xid,
  ZkError,
} from './protocol.js';

export interface HostPort {
  host: string;
  port: number;
}

export class ConnectStringError extends Error {}

/** Parses `host:port[,host:port...][/chroot]`; the port is mandatory. */
/**
 * What is wrong with `path` as the place of a volume (or a chroot), or
 * undefined: absolute, no empty, `.` or `..` part, no trailing `/`, and not
 * ZooKeeper's own `/zookeeper` tree.
 */
export function zkPathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'it must start with /';
  if (path === '/') return undefined;
  if (path.endsWith('/')) return 'it must not end with /';
  if (path.includes('\0')) return 'it must not contain NUL';
  if (path.split('/').slice(1).some((part) => part === '' || part === '.' || part === '..')) return 'it must not have empty, . or .. parts';
  if (path === '/zookeeper' || path.startsWith('/zookeeper/')) return '/zookeeper is ZooKeeper\'s own tree';
  return undefined;
}

export function parseConnectString(s: string): { hosts: HostPort[]; chroot: string } {
  const slash = s.indexOf('/');
  const hostPart = slash >= 0 ? s.slice(0, slash) : s;
  let chroot = slash >= 0 ? s.slice(slash) : '';
  if (chroot === '/') chroot = '';
  const problem = chroot ? zkPathProblem(chroot) : undefined;
  if (problem) throw new ConnectStringError(`chroot "${chroot}": ${problem}`);
  const hosts: HostPort[] = [];
  for (const item of hostPart.split(',')) {
    const m = /^\s*(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})\s*$/.exec(item);
    if (!m) {
      throw new ConnectStringError(`"${item.trim()}" is not host:port (the port is mandatory, e.g. 127.0.0.1:2181 or zk1:2181,zk2:2181,zk3:2181)`);
    }
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw new ConnectStringError(`port ${port} of "${item.trim()}" is out of range 1-65535`);
    hosts.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
  }
  if (hosts.length === 0) throw new ConnectStringError('no ZooKeeper host given');
  return { hosts, chroot };
}

export interface ZkClientOptions {
  connectString: string;
  /** Session timeout asked of the server (it may grant another). */
  sessionTimeoutMs: number;
  /** How long `connect()` may take before it fails. */
  connectTimeoutMs: number;
  /** How long a request waits for a connection before it fails with CONNECTIONLOSS. */
  operationTimeoutMs: number;
  /** e.g. [{ scheme: 'digest', credential: 'user:password' }]; resent on every new connection. */
  auth: Array<{ scheme: string; credential: string }>;
  /** Largest reply taken: a longer one is skipped and its request fails (REPLY_TOO_LARGE), the connection stays. */
  maxReplyBytes: number;
}

/** Default largest reply taken (a multiRead of 32 of the largest znodes the server allows by default fits twice). */
export const MAX_REPLY_BYTES = 64 * 1024 * 1024;
/** A frame length beyond this is not a reply but a broken stream: the connection is dropped. */
const BROKEN_FRAME_BYTES = 1024 * 1024 * 1024;

export const defaultZkClientOptions: Omit<ZkClientOptions, 'connectString'> = {
  sessionTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  operationTimeoutMs: 10_000,
  auth: [],
  maxReplyBytes: MAX_REPLY_BYTES,
};

/** A reply longer than `maxReplyBytes` (a multiRead of many large znodes): skipped, only its request fails. */
export class ReplyTooLargeError extends ZkError {
  constructor(
    readonly bytes: number,
    path: string | undefined,
    limit: number,
  ) {
    super(ErrorCode.MARSHALLINGERROR, path, `the reply of ${bytes} bytes is larger than the ${limit} bytes this client takes`);
  }
}

export type ZkState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface WatchEvent {
  type: number;
  /** Relative to the chroot. */
  path: string;
}

interface Request {
  xid: number;
  frame: Buffer[];
  decode: (r: JuteReader) => unknown;
  resolve: (v: unknown) => void;
  reject: (err: Error) => void;
  path: string | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Safe to send again after a lost connection (reads, unconditional setData): it is, instead of failing. */
  resend: boolean;
}

/**
 * Events: 'watch' (WatchEvent), 'state' (ZkState), 'session' ({ expired: boolean }):
 * a connection was established (after connect(): a reconnect, whose watch
 * events for changes made meanwhile never come, so everything cached must be
 * revalidated); `expired` means the previous session was lost too, with its
 * ephemeral nodes; 'applied'
 * (WatchEvent[]): a write of this client succeeded, and these are the events
 * it caused, which a watch on the paths reports (to tell them from others').
 */
export class ZkClient extends EventEmitter {
  readonly opts: ZkClientOptions;
  private readonly hosts: HostPort[];
  private readonly chroot: string;
  private hostIndex = 0;
  private socket: net.Socket | undefined;
  /** The socket whose writes are held until the end of this tick (send). */
  private corked: net.Socket | undefined;
  /** Received bytes not yet parsed, kept as the socket's pieces: a large reply is joined once, not once per piece. */
  private inbuf: Buffer[] = [];
  private inbufBytes = 0;
  /** Bytes of a reply too large to take that are still to be skipped. */
  private skipping = 0;
  private handshakeDone = false;
  /** A session was set up on some connection before: a later one with the same session is a reconnect. */
  private connectedOnce = false;
  private nextXid = 1;
  private readonly sent = new Map<number, Request>();
  private readonly waiting: Request[] = [];
  private sessionId = 0n;
  private passwd: Buffer = Buffer.alloc(16);
  private lastZxid = 0n;
  private negotiatedTimeout = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  private lastReceived = 0;
  private readonly persistentWatches = new Map<string, number>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private lastError = '';
  /** The server refused our previous session: the next one is reported as expired. */
  private sessionExpired = false;
  private pendingAuth = 0;
  private authError: ZkError | undefined;
  state: ZkState = 'connecting';

  constructor(options: Partial<ZkClientOptions> & { connectString: string }) {
    super();
    this.opts = { ...defaultZkClientOptions, ...options };
    const parsed = parseConnectString(this.opts.connectString);
    this.hosts = parsed.hosts;
    this.chroot = parsed.chroot;
    this.hostIndex = Math.floor(Math.random() * this.hosts.length);
  }

  /** Connects; rejects if no server answered within connectTimeoutMs. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close();
        const where = this.hosts.map((h) => `${h.host}:${h.port}`).join(',');
        reject(new ZkError(ErrorCode.CONNECTIONLOSS, undefined, `cannot reach ZooKeeper at ${where} within ${this.opts.connectTimeoutMs} ms${this.lastError ? ` (last error: ${this.lastError})` : ''}`));
      }, this.opts.connectTimeoutMs);
      const onSession = () => {
        clearTimeout(timer);
        this.off('authfailed', onAuthFailed);
        resolve();
      };
      const onAuthFailed = (err: ZkError) => {
        clearTimeout(timer);
        this.off('session', onSession);
        reject(err);
      };
      this.once('session', onSession);
      this.once('authfailed', onAuthFailed);
      this.openSocket();
    });
  }

  /** The newest transaction id this client has seen: anything created later has a larger czxid. */
  get lastSeenZxid(): bigint {
    return this.lastZxid;
  }

  /** The connect string's chroot ('' if none): paths outside it cannot be reached. */
  get chrootPath(): string {
    return this.chroot;
  }

  get session(): { id: bigint; timeoutMs: number } {
    return { id: this.sessionId, timeoutMs: this.negotiatedTimeout };
  }

  // ---- operations (paths are relative to the chroot) ----------------------------------

  async create(path: string, data: Buffer, acl: Acl[], mode: number = CreateMode.PERSISTENT): Promise<{ path: string; stat: Stat }> {
    const made = await this.request(OpCode.create2, path, (w) => writeCreate(w, this.abs(path), data, acl, mode), (r) => ({ path: this.rel(r.string() ?? ''), stat: readStat(r) }));
    this.applied([{ type: EventType.NodeCreated, path: made.path }]);
    return made;
  }

  async delete(path: string, version = -1): Promise<void> {
    await this.request(OpCode.delete, path, (w) => w.string(this.abs(path)).int(version), () => undefined);
    this.applied([{ type: EventType.NodeDeleted, path }]);
  }

  /** The node's stat, or null if it does not exist. */
  async exists(path: string, watch = false): Promise<Stat | null> {
    try {
      return await this.request(OpCode.exists, path, (w) => w.string(this.abs(path)).bool(watch), readStat, true);
    } catch (err) {
      if (err instanceof ZkError && err.code === ErrorCode.NONODE) return null;
      throw err;
    }
  }

  async getData(path: string, watch = false): Promise<{ data: Buffer; stat: Stat }> {
    return this.request(OpCode.getData, path, (w) => w.string(this.abs(path)).bool(watch), (r) => ({ data: r.buffer() ?? Buffer.alloc(0), stat: readStat(r) }), true);
  }

  /** With version -1 (unconditional) it is sent again after a lost connection: applying it twice leaves the same data. */
  async setData(path: string, data: Buffer, version = -1): Promise<Stat> {
    const stat = await this.request(OpCode.setData, path, (w) => w.string(this.abs(path)).buffer(data).int(version), readStat, version === -1);
    this.applied([{ type: EventType.NodeDataChanged, path }]);
    return stat;
  }

  async getChildren(path: string, watch = false): Promise<{ children: string[]; stat: Stat }> {
    return this.request(OpCode.getChildren2, path, (w) => w.string(this.abs(path)).bool(watch), (r) => ({ children: r.strings(), stat: readStat(r) }), true);
  }

  async getACL(path: string): Promise<{ acl: Acl[]; stat: Stat }> {
    return this.request(OpCode.getACL, path, (w) => w.string(this.abs(path)), (r) => ({ acl: readAcls(r), stat: readStat(r) }), true);
  }

  /** Applies every op or none (throws ZkMultiError naming the op that failed). */
  async multi(ops: MultiOp[]): Promise<MultiResult[]> {
    const absOps = ops.map((o) => ({ ...o, path: this.abs(o.path) }));
    const results = await this.request(OpCode.multi, ops[0]?.path, (w) => writeMulti(w, absOps), (r) => readMultiResult(r, ops));
    const rel = results.map((res) => (res.op === 'create' ? { ...res, path: this.rel(res.path) } : res));
    const caused: WatchEvent[] = [];
    rel.forEach((res, i) => {
      if (res.op === 'create') caused.push({ type: EventType.NodeCreated, path: res.path });
      else if (res.op === 'delete') caused.push({ type: EventType.NodeDeleted, path: ops[i]!.path });
      else if (res.op === 'setData') caused.push({ type: EventType.NodeDataChanged, path: ops[i]!.path });
    });
    this.applied(caused);
    return rel;
  }

  /** Several reads in one round trip; each answers on its own (a ZkError in its slot if it failed). */
  async multiRead(ops: ReadOp[]): Promise<ReadResult[]> {
    return this.request(OpCode.multiRead, ops[0]?.path, (w) => writeMultiRead(w, ops, this.abs), (r) => readMultiReadResult(r, ops), true);
  }

  private applied(caused: WatchEvent[]): void {
    if (caused.length > 0) this.emit('applied', caused);
  }

  /** Brings the server this session is connected to up to date with the leader, for the reads sent after it. */
  async sync(path: string): Promise<void> {
    await this.request(OpCode.sync, path, (w) => w.string(this.abs(path)), () => undefined);
  }

  /** A watch that stays armed; recursive covers the whole subtree. Re-armed after reconnects. */
  async addWatch(path: string, mode: number = AddWatchMode.PERSISTENT_RECURSIVE): Promise<void> {
    await this.request(OpCode.addWatch, path, (w) => w.string(this.abs(path)).int(mode), () => undefined);
    this.persistentWatches.set(this.abs(path), mode);
  }

  /** Closes the session (its ephemeral nodes go at once) and the connection. */
  close(): void {
    if (this.state === 'closed') return;
    const socket = this.socket;
    if (socket && this.handshakeDone) {
      const w = new JuteWriter().int(this.nextXid++).int(OpCode.closeSession);
      sendFrame(socket, w.frame());
      socket.end();
    } else socket?.destroy();
    this.setState('closed');
    this.teardown(new ZkError(ErrorCode.CONNECTIONLOSS, undefined, 'client closed'), false);
    for (const req of this.waiting.splice(0)) this.fail(req, this.authError ?? new ZkError(ErrorCode.CONNECTIONLOSS, req.path, 'client closed'));
    clearTimeout(this.reconnectTimer);
  }

  // ---- paths ---------------------------------------------------------------------------

  private readonly abs = (path: string): string => {
    if (!path.startsWith('/')) throw new ZkError(ErrorCode.BADARGUMENTS, path, 'path must start with /');
    if (!this.chroot) return path;
    return path === '/' ? this.chroot : this.chroot + path;
  };

  private rel(path: string): string {
    if (!this.chroot) return path;
    if (path === this.chroot) return '/';
    return path.startsWith(this.chroot + '/') ? path.slice(this.chroot.length) : path;
  }

  // ---- requests ----------------------------------------------------------------------------

  private request<T>(opcode: number, path: string | undefined, write: (w: JuteWriter) => void, decode: (r: JuteReader) => T, resend = false): Promise<T> {
    if (this.state === 'closed') return Promise.reject(new ZkError(ErrorCode.CONNECTIONLOSS, path, 'client closed'));
    return new Promise<T>((resolve, reject) => {
      const xid = this.nextXid++;
      if (this.nextXid > 0x7ffffff0) this.nextXid = 1;
      const w = new JuteWriter().int(xid).int(opcode);
      write(w);
      const req: Request = { xid, frame: w.frame(), decode, resolve: resolve as (v: unknown) => void, reject, path, timer: undefined, resend };
      if (this.state === 'connected') this.send(req);
      else this.wait(req);
    });
  }

  /** Queues a request until a connection is up, for at most the operation timeout. */
  private wait(req: Request): void {
    req.timer = setTimeout(() => {
      const i = this.waiting.indexOf(req);
      if (i >= 0) this.waiting.splice(i, 1);
      req.reject(new ZkError(ErrorCode.CONNECTIONLOSS, req.path, `no connection to ZooKeeper for ${this.opts.operationTimeoutMs} ms`));
    }, this.opts.operationTimeoutMs);
    this.waiting.push(req);
  }

  private send(req: Request): void {
    clearTimeout(req.timer);
    this.sent.set(req.xid, req);
    const socket = this.socket!;
    // Requests made in one tick leave in one write: each write wakes the server (and on loopback runs its receive path).
    if (this.corked !== socket) {
      this.flushWrites();
      this.corked = socket;
      socket.cork();
      process.nextTick(this.flushWrites);
    }
    for (const piece of req.frame) socket.write(piece);
  }

  /** Sends the requests held for the end of this tick now (before any go to a new socket). */
  readonly flushWrites = (): void => {
    const socket = this.corked;
    if (!socket) return;
    this.corked = undefined;
    socket.uncork();
  };

  private fail(req: Request, err: Error): void {
    clearTimeout(req.timer);
    req.reject(err);
  }

  // ---- connection ------------------------------------------------------------------------------

  private setState(state: ZkState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  private openSocket(): void {
    if (this.state === 'closed') return;
    const { host, port } = this.hosts[this.hostIndex % this.hosts.length]!;
    this.hostIndex++;
    this.handshakeDone = false;
    this.inbuf = [];
    this.inbufBytes = 0;
    this.skipping = 0;
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    this.socket = socket;
    // A connect attempt that hangs (dead host, dropped packets) must not stall recovery.
    socket.setTimeout(Math.max(1000, Math.floor(this.opts.sessionTimeoutMs / 3)), () => {
      this.lastError = `${host}:${port} did not answer`;
      socket.destroy();
    });
    socket.on('connect', () => {
      const w = new JuteWriter()
        .int(0)
        .long(this.lastZxid)
        .int(this.opts.sessionTimeoutMs)
        .long(this.sessionId)
        .buffer(this.passwd)
        .bool(false);
      sendFrame(socket, w.frame());
    });
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (err) => {
      this.lastError = `${host}:${port}: ${err.message}`;
    });
    socket.on('close', () => this.onClose(socket));
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.socket) return;
    this.lastReceived = Date.now();
    this.inbuf.push(chunk);
    this.inbufBytes += chunk.length;
    for (;;) {
      if (this.skipping > 0) this.skip();
      if (this.inbufBytes < 4) break;
      if (this.inbuf[0]!.length < 8 && this.inbuf.length > 1) this.inbuf = [Buffer.concat(this.inbuf, this.inbufBytes)];
      const len = this.inbuf[0]!.readInt32BE(0);
      if (len < 0 || len > BROKEN_FRAME_BYTES) {
        this.lastError = `bad frame length ${len}`;
        socket.destroy();
        return;
      }
      if (len > this.opts.maxReplyBytes && this.handshakeDone) {
        // Too large to hold: its request fails, the bytes are skipped as they come, the session goes on.
        if (this.inbufBytes < 8) break;
        this.rejectTooLarge(this.inbuf[0]!.readInt32BE(4), len);
        this.skipping = 4 + len;
        continue;
      }
      if (this.inbufBytes < 4 + len) break;
      const buf = this.inbuf.length === 1 ? this.inbuf[0]! : Buffer.concat(this.inbuf, this.inbufBytes);
      const frame = buf.subarray(4, 4 + len);
      const rest = buf.subarray(4 + len);
      this.inbuf = rest.length > 0 ? [rest] : [];
      this.inbufBytes = rest.length;
      try {
        if (this.handshakeDone) this.onReply(new JuteReader(frame));
        else this.onHandshake(socket, new JuteReader(frame));
      } catch (err) {
        this.lastError = `bad packet: ${(err as Error).message}`;
        socket.destroy();
        return;
      }
    }
  }

  /** Drops what has come of a reply being skipped. */
  private skip(): void {
    while (this.skipping > 0 && this.inbufBytes > 0) {
      const first = this.inbuf[0]!;
      const n = Math.min(this.skipping, first.length);
      this.skipping -= n;
      this.inbufBytes -= n;
      if (n === first.length) this.inbuf.shift();
      else this.inbuf[0] = first.subarray(n);
    }
  }

  private rejectTooLarge(xid: number, bytes: number): void {
    const req = this.sent.get(xid);
    if (!req) return;
    this.sent.delete(xid);
    this.fail(req, new ReplyTooLargeError(bytes, req.path, this.opts.maxReplyBytes));
  }

  private onHandshake(socket: net.Socket, r: JuteReader): void {
    r.int(); // protocol version
    const timeout = r.int();
    const sessionId = r.long();
    const passwd = r.buffer() ?? Buffer.alloc(16);
    const expired = this.sessionId !== 0n && (timeout <= 0 || sessionId !== this.sessionId);
    if (timeout <= 0) {
      // The server says our session is gone: start a fresh one on a new connection.
      this.sessionId = 0n;
      this.passwd = Buffer.alloc(16);
      this.lastZxid = 0n;
      this.sessionExpired = true;
      socket.destroy();
      return;
    }
    this.sessionId = sessionId;
    this.passwd = passwd;
    this.negotiatedTimeout = timeout;
    this.handshakeDone = true;
    socket.setTimeout(0);
    this.lastReceived = Date.now();
    this.sessionExpired ||= expired;
    this.startPings(socket);
    // Requests wait until the server has accepted our credentials.
    this.pendingAuth = this.opts.auth.length;
    for (const a of this.opts.auth) {
      sendFrame(socket, new JuteWriter().int(Xid.auth).int(OpCode.auth).int(0).string(a.scheme).buffer(Buffer.from(a.credential, 'utf8')).frame());
    }
    if (this.pendingAuth === 0) this.sessionReady(socket);
  }

  private sessionReady(socket: net.Socket): void {
    const lostSession = this.sessionExpired;
    const reconnected = this.connectedOnce && !lostSession;
    this.sessionExpired = false;
    this.connectedOnce = true;
    if (this.persistentWatches.size > 0) this.rearmWatches(socket, lostSession);
    this.setState('connected');
    // The same session on a new connection, maybe to another server of the ensemble, behind the one
    // that took a write whose reply the old connection lost. A sync first (a session's requests are
    // answered in order) makes every read after it see that write if it is ever applied: the leader
    // refuses what the old connection still sends once the session has moved. So a read after a
    // lost reply tells whether the write was applied.
    if (reconnected) void this.sync('/').catch(() => undefined);
    for (const req of this.waiting.splice(0)) this.send(req);
    this.emit('session', { expired: lostSession });
  }

  /**
   * Same session on a new connection: SetWatches2 re-registers the persistent
   * watches (the server reports to them nothing of what changed meanwhile:
   * lastZxid only serves one-shot watches). A new session: the watches are
   * added again. Either way the caller revalidates on 'session'.
   */
  private rearmWatches(socket: net.Socket, newSession: boolean): void {
    const persistent: string[] = [];
    const recursive: string[] = [];
    for (const [path, mode] of this.persistentWatches) (mode === AddWatchMode.PERSISTENT_RECURSIVE ? recursive : persistent).push(path);
    const w = new JuteWriter().int(Xid.setWatches).int(OpCode.setWatches2).long(newSession ? 0n : this.lastZxid);
    w.strings([]).strings([]).strings([]).strings(persistent).strings(recursive);
    sendFrame(socket, w.frame());
  }

  private startPings(socket: net.Socket): void {
    clearInterval(this.pingTimer);
    const interval = Math.max(100, Math.floor(this.negotiatedTimeout / 3));
    this.pingTimer = setInterval(() => {
      if (socket !== this.socket || socket.destroyed) return;
      // No answer for 2/3 of the session timeout: this server is gone or stuck; try another.
      if (Date.now() - this.lastReceived > (this.negotiatedTimeout * 2) / 3) {
        this.lastError = 'no answer from ZooKeeper (ping timeout)';
        socket.destroy();
        return;
      }
      sendFrame(socket, new JuteWriter().int(Xid.ping).int(OpCode.ping).frame());
    }, interval);
  }

  private onReply(r: JuteReader): void {
    const xid = r.int();
    const zxid = r.long();
    const err = r.int();
    if (zxid > 0n) this.lastZxid = zxid;
    if (xid === Xid.notification) {
      const type = r.int();
      r.int(); // keeper state
      const path = this.rel(r.string() ?? '');
      this.emit('watch', { type, path } satisfies WatchEvent);
      return;
    }
    if (xid === Xid.ping || xid === Xid.setWatches) return;
    if (xid === Xid.auth) {
      if (err !== 0) {
        // Wrong credentials: retrying cannot help. Close, and fail everything with the reason.
        this.authError = new ZkError(ErrorCode.AUTHFAILED, undefined, 'ZooKeeper refused the credentials (check the auth option)');
        this.emit('authfailed', this.authError);
        this.close();
      } else if (--this.pendingAuth === 0 && this.socket) this.sessionReady(this.socket);
      return;
    }
    const req = this.sent.get(xid);
    if (!req) return;
    this.sent.delete(xid);
    if (err !== 0) return this.fail(req, answeredError(err, req.path));
    try {
      req.resolve(req.decode(r));
    } catch (e) {
      this.fail(req, e as Error);
    }
  }

  /** The connection is gone: requests in flight fail, except those safe to send again, which wait for the next one. */
  private teardown(err: ZkError, resend: boolean): void {
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    const again: Request[] = [];
    for (const req of this.sent.values()) {
      if (resend && req.resend) again.push(req);
      else this.fail(req, new ZkError(err.code, req.path, err.message));
    }
    this.sent.clear();
    // In their original order, before anything queued since.
    const queued = this.waiting.splice(0);
    for (const req of again) this.wait(req);
    this.waiting.push(...queued);
  }

  private onClose(socket: net.Socket): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    // Requests in flight may or may not have been applied: the ones not safe to repeat fail (CONNECTIONLOSS).
    this.teardown(new ZkError(ErrorCode.CONNECTIONLOSS, undefined, this.lastError || 'connection lost'), true);
    if (this.state === 'closed') return;
    this.setState(this.handshakeDone || this.state === 'connected' ? 'disconnected' : this.state);
    this.handshakeDone = false;
    // Try the next server at once; after a full round, pause briefly.
    const delay = this.hostIndex % this.hosts.length === 0 ? 200 : 0;
    this.reconnectTimer = setTimeout(() => this.openSocket(), delay);
  }
}

/** Writes a frame's pieces as one writev (a big payload goes from the caller's buffer). */
function sendFrame(socket: net.Socket, pieces: Buffer[]): void {
  if (pieces.length === 1) {
    socket.write(pieces[0]!);
    return;
  }
  socket.cork();
  for (const p of pieces) socket.write(p);
  socket.uncork();
}

/** Creates `path` with `data`; false if it existed. */
export async function createIfMissing(zk: ZkClient, path: string, data: Buffer, acl: Acl[]): Promise<boolean> {
  try {
    await zk.create(path, data, acl);
    return true;
  } catch (err) {
    if (err instanceof ZkError && err.code === ErrorCode.NODEEXISTS) return false;
    throw err;
  }
}
