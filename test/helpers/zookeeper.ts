// A real ZooKeeper server for tests: Debian's zookeeper package, standalone,
// on loopback, with its own data directory and port. The four-letter-word
// commands (mntr, srvr) are enabled so tests and benchmarks can count requests.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { maxBatchOps, PROBE_OPS } from '../../src/backends/zookeeper/batch-reads.js';
import { DEFAULT_MAX_REQUEST } from '../../src/backends/zookeeper/chunks.js';
import { OPEN_ACL_UNSAFE } from '../../src/backends/zookeeper/client/protocol.js';
import { DEFAULT_MAX_FILE_SIZE, ZooKeeperBackend } from '../../src/backends/zookeeper/index.js';
import type { RequestContext } from '../../src/fs/backend.js';
import { type CliMount, mountCli, waitFor } from './mount.js';

const ZK_JAR = '/usr/share/java/zookeeper.jar';
const ZK_CONF = '/etc/zookeeper/conf';

export interface ZooKeeperServer {
  readonly port: number;
  /** `127.0.0.1:port` */
  readonly connectString: string;
  readonly dataDir: string;
  /** What the server printed since its last start (for failure reports). */
  output(): string;
  /** Sends a four-letter-word command (ruok, srvr, mntr, ...) and returns the answer. */
  command(cmd: string): Promise<string>;
  /** The `mntr` counters as numbers where they are numbers. */
  mntr(): Promise<Record<string, number | string>>;
  /**
   * Requests the server has received (`mntr` zk_packets_received), less the
   * calls of this method (its `mntr` counts as one): the difference between
   * two calls is what others sent in between.
   */
  requestsReceived(): Promise<number>;
  /** Stops the server (SIGTERM, then SIGKILL); its data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Freezes or thaws the server process (SIGSTOP/SIGCONT), to make sessions expire. */
  pause(): void;
  resume(): void;
  /** Stops it and deletes its data. */
  destroy(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export function fourLetterWord(port: number, cmd: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`ZooKeeper ${cmd} timed out`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(cmd));
    sock.on('data', (d) => (out += d.toString()));
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** `heap`: the JVM's -Xmx (ZooKeeper keeps every znode, and its last 500 transactions, in memory). */
export async function startZooKeeper(opts: { tickTimeMs?: number; heap?: string } = {}): Promise<ZooKeeperServer> {
  if (!fs.existsSync(ZK_JAR)) throw new Error(`${ZK_JAR} missing: install Debian's zookeeper package (scripts/install-deps.sh does)`);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmvol-zk-'));
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir);
  const tick = opts.tickTimeMs ?? 500;
  fs.writeFileSync(
    path.join(dir, 'zoo.cfg'),
    [
      `tickTime=${tick}`,
      `dataDir=${dataDir}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      `minSessionTimeout=${2 * tick}`,
      `maxSessionTimeout=${120 * tick}`,
      '4lw.commands.whitelist=*',
      'admin.enableServer=false',
      'maxClientCnxns=0',
    ].join('\n') + '\n',
  );
  let child: ChildProcess | undefined;
  let log = '';
  let counts = 0;

  const server: ZooKeeperServer = {
    port,
    connectString: `127.0.0.1:${port}`,
    dataDir,
    output: () => log,
    command: (cmd) => fourLetterWord(port, cmd),
    async mntr() {
      const out: Record<string, number | string> = {};
      for (const line of (await fourLetterWord(port, 'mntr')).split('\n')) {
        const [k, v] = line.split('\t');
        if (!k || v === undefined) continue;
        out[k] = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
      }
      return out;
    },
    async requestsReceived() {
      return ((await server.mntr()).zk_packets_received as number) - ++counts;
    },
    async start() {
      if (child) return;
      log = '';
      child = spawn('java', [`-Xmx${opts.heap ?? '1g'}`, '-cp', `${ZK_CONF}:${ZK_JAR}`, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', path.join(dir, 'zoo.cfg')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      const proc = child;
      proc.on('exit', () => {
        if (child === proc) child = undefined;
      });
      await waitFor(
        async () => {
          if (!child) throw new Error(`ZooKeeper exited during start:\n${log}`);
          // ruok says imok before the server serves; srvr tells the truth.
          return /Mode: /.test(await fourLetterWord(port, 'srvr', 500).catch(() => ''));
        },
        30_000,
        `ZooKeeper on port ${port}`,
      );
    },
    async stop() {
      const proc = child;
      if (!proc) return;
      const exited = new Promise((r) => proc.on('exit', r));
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async destroy() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

/** Keeps a proxied pair of sockets in `conns` while both are up; either one closing or failing closes the other. */
export function pairSockets(client: net.Socket, upstream: net.Socket, conns: Set<net.Socket>): void {
  conns.add(client).add(upstream);
  const drop = () => {
    client.destroy();
    upstream.destroy();
    conns.delete(client);
    conns.delete(upstream);
  };
  client.on('error', drop).on('close', drop);
  upstream.on('error', drop).on('close', drop);
}

/**
 * Requests the server receives until it has been quiet for `quietMs` (a
 * mount's background work, or another mount's reaction to a change, done).
 */
export async function requestsWhenQuiet(zk: ZooKeeperServer, quietMs = 300): Promise<number> {
  let last = await zk.requestsReceived();
  for (;;) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = await zk.requestsReceived();
    if (now === last) return now;
    last = now;
  }
}

/**
 * A TCP proxy to ZooKeeper in this process, which we can cut to make a client
 * lose its server for a while, or `hold` to keep what the server sends (replies,
 * events) from the client until `release`, while its requests still go through:
 * the client acts on a view that is behind, as when events are in flight.
 * `holdFromReplyTo(...opcodes)` holds from the reply to the next request of
 * those kinds on: a test cuts the connection exactly after one request was
 * applied. `cutAtRequest(...opcodes)` cuts it when the next request of those
 * kinds comes, which the server then never sees. `delayRequestsFrom(...opcodes)`
 * keeps the next request of those kinds, and all after it, from the server
 * until `releaseRequests`: a request the client has sent reaches the server
 * after another node's change it has not heard of.
 * `coalesceMs`: what the server sends is held and passed on in one write every
 * so many milliseconds, so replies and events that follow each other reach the
 * client in one read.
 */
export async function startProxy(
  targetPort: number,
  opts: { coalesceMs?: number } = {},
): Promise<{
  port: number;
  cut(): void;
  restore(): void;
  hold(): void;
  holdFromReplyTo(...opcodes: number[]): void;
  cutAtRequest(...opcodes: number[]): Promise<void>;
  delayRequestsFrom(...opcodes: number[]): Promise<void>;
  releaseRequests(): void;
  heldChunks(): number;
  heldReplies(): number;
  releaseEvents(): void;
  releaseOne(): void;
  release(): void;
  close(): Promise<void>;
}> {
  const conns = new Set<net.Socket>();
  let open = true;
  let holding = false;
  /** Replies to requests of these kinds start a hold. */
  let holdAt: number[] = [];
  /** Requests of these kinds cut the connection instead of reaching the server. */
  let cutAt: number[] = [];
  /** A request of these kinds, and every one after it, waits in the proxy until releaseRequests. */
  let delayAt: number[] = [];
  let delaying = false;
  const delayed: Array<[net.Socket, Buffer]> = [];
  let onDelayed = () => {};
  let onCutAt = () => {};
  const cut = () => {
    open = false;
    for (const c of conns) c.destroy();
  };
  const withheld: Array<[net.Socket, Buffer]> = [];
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    pairSockets(client, upstream, conns);
    if (opts.coalesceMs === undefined) {
      /** This connection's requests: xid → opcode (the first frame is the handshake, without either). */
      const opcodes = new Map<number, number>();
      let handshake = true;
      client.on(
        'data',
        splitFrames((frame) => {
          const opcode = !handshake && frame.length >= 12 ? frame.readInt32BE(8) : undefined;
          handshake = false;
          if (opcode !== undefined && cutAt.includes(opcode)) {
            cutAt = [];
            cut();
            return onCutAt();
          }
          if (opcode !== undefined && delayAt.includes(opcode)) {
            delayAt = [];
            delaying = true;
          }
          if (delaying) {
            delayed.push([upstream, frame]);
            onDelayed();
          } else upstream.write(frame);
          if (opcode !== undefined) opcodes.set(frame.readInt32BE(4), opcode);
        }),
      );
      let greeted = false;
      upstream.on(
        'data',
        splitFrames((frame) => {
          const xid = greeted && frame.length >= 8 ? frame.readInt32BE(4) : undefined;
          greeted = true;
          if (!holding && xid !== undefined && xid >= 0 && holdAt.includes(opcodes.get(xid) ?? NaN)) {
            holdAt = [];
            holding = true;
          }
          if (xid !== undefined) opcodes.delete(xid);
          if (holding) withheld.push([client, frame]);
          else client.write(frame);
        }),
      );
    } else {
      client.pipe(upstream);
      let held: Buffer[] = [];
      upstream.on('data', (chunk: Buffer) => {
        if (held.push(chunk) > 1) return;
        setTimeout(() => {
          client.write(Buffer.concat(held));
          held = [];
        }, opts.coalesceMs);
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  /** What is held, per client, as whole frames (length-prefixed: an xid below 0 is a watch event or a ping) and what follows them. */
  const heldFrames = () => {
    const byClient = new Map<net.Socket, Buffer>();
    for (const [client, chunk] of withheld) byClient.set(client, Buffer.concat([byClient.get(client) ?? Buffer.alloc(0), chunk]));
    return [...byClient].map(([client, bytes]) => {
      const frames: Array<{ xid: number; bytes: Buffer }> = [];
      let at = 0;
      while (at + 8 <= bytes.length && at + 4 + bytes.readInt32BE(at) <= bytes.length) {
        const end = at + 4 + bytes.readInt32BE(at);
        frames.push({ xid: bytes.readInt32BE(at + 4), bytes: bytes.subarray(at, end) });
        at = end;
      }
      return { client, frames, partial: bytes.subarray(at) };
    });
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    cut,
    restore() {
      open = true;
    },
    hold() {
      holding = true;
    },
    holdFromReplyTo(...opcodes: number[]) {
      holdAt = opcodes;
    },
    /** Holds the next request of these kinds, and all after it, from the server; resolves once one is held. */
    delayRequestsFrom(...opcodes: number[]) {
      delayAt = opcodes;
      return new Promise<void>((resolve) => (onDelayed = resolve));
    },
    /** Sends the requests held by delayRequestsFrom on to the server, in order. */
    releaseRequests() {
      delaying = false;
      onDelayed = () => {};
      for (const [upstream, frame] of delayed.splice(0)) if (!upstream.destroyed) upstream.write(frame);
    },
    /** Resolves once it has cut. */
    cutAtRequest(...opcodes: number[]) {
      cutAt = opcodes;
      return new Promise<void>((resolve) => (onCutAt = resolve));
    },
    /** What the server sent since hold(), held back (chunks as read: a reply that came in tells its request was applied). */
    heldChunks: () => withheld.length,
    /** Replies held (not events), whole: each tells a request of the client was answered. */
    heldReplies: () => heldFrames().reduce((n, c) => n + c.frames.filter((f) => f.xid >= 0).length, 0),
    /** Lets the held watch events through and keeps holding the replies: the client hears of changes before the replies that show them. */
    releaseEvents() {
      const held = heldFrames();
      withheld.length = 0;
      for (const { client, frames, partial } of held) {
        if (!client.destroyed) client.write(Buffer.concat(frames.filter((f) => f.xid < 0).map((f) => f.bytes)));
        withheld.push([client, Buffer.concat([...frames.filter((f) => f.xid >= 0).map((f) => f.bytes), partial])]);
      }
    },
    /** Passes on the first reply held (with the events before it) and keeps holding what follows. */
    releaseOne() {
      const held = heldFrames();
      withheld.length = 0;
      for (const { client, frames, partial } of held) {
        const upTo = frames.findIndex((f) => f.xid >= 0) + 1;
        if (!client.destroyed) client.write(Buffer.concat(frames.slice(0, upTo).map((f) => f.bytes)));
        withheld.push([client, Buffer.concat([...frames.slice(upTo).map((f) => f.bytes), partial])]);
      }
    },
    release() {
      holding = false;
      // All at once, per client: replies and events it held reach the client in one read.
      const byClient = new Map<net.Socket, Buffer[]>();
      for (const [client, chunk] of withheld.splice(0)) byClient.set(client, [...(byClient.get(client) ?? []), chunk]);
      for (const [client, chunks] of byClient) if (!client.destroyed) client.write(Buffer.concat(chunks));
    },
    close: () =>
      new Promise((r) => {
        for (const c of conns) c.destroy();
        server.close(() => r());
      }),
  };
}

export type ZkProxy = Awaited<ReturnType<typeof startProxy>>;

/** Waits until the proxy holds a reply from the server: the request `what` was applied. */
export async function untilHeldReply(proxy: ZkProxy, what: string): Promise<void> {
  const t0 = performance.now();
  while (proxy.heldReplies() === 0) {
    assert.ok(performance.now() - t0 < 5000, `no reply to ${what} within 5 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Makes the proxy lose the next request of these kinds (`request`: the
 * server never sees it) or only its reply (`reply`: it was applied). Call
 * what it returns once the request is under way: it resolves with the
 * connection open again.
 */
export function loseNext(proxy: ZkProxy, lost: 'request' | 'reply', what: string, ...opcodes: number[]): () => Promise<void> {
  if (lost === 'reply') {
    proxy.holdFromReplyTo(...opcodes);
    return async () => {
      await untilHeldReply(proxy, what);
      proxy.cut();
      proxy.release();
      proxy.restore();
    };
  }
  const cut = proxy.cutAtRequest(...opcodes);
  return async () => {
    const sent = await Promise.race([cut.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5000))]);
    assert.ok(sent, `${what} was not sent within 5 s`);
    await new Promise((r) => setTimeout(r, 200));
    proxy.restore();
  };
}

/** Calls `onFrame` with each whole length-prefixed frame (the prefix included) of a stream read in chunks. */
function splitFrames(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let rest: Buffer = Buffer.alloc(0);
  return (chunk) => {
    let bytes: Buffer = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    while (bytes.length >= 4 && bytes.length >= 4 + bytes.readInt32BE(0)) {
      const end = 4 + bytes.readInt32BE(0);
      onFrame(bytes.subarray(0, end));
      bytes = bytes.subarray(end);
    }
    rest = bytes;
  };
}

/** Two mounts of one volume in two processes (two nodes), a plain client beside them, and their ZooKeeper. */
export interface TwoNodes {
  zk: ZooKeeperServer;
  plain: ZkClient;
  a: CliMount;
  b: CliMount;
  /** Unmounts both (each mount process must exit 0), closes the client, destroys ZooKeeper. */
  stop(): Promise<void>;
}

/**
 * Starts ZooKeeper and mounts `vol` twice; `argsA`: options for node A only (B
 * mounts with none), or a function of the server that gives them.
 */
export async function startTwoNodes(vol: string, argsA: string[] | ((zk: ZooKeeperServer) => Promise<string[]>) = []): Promise<TwoNodes> {
  const zk = await startZooKeeper();
  const plain = new ZkClient({ connectString: zk.connectString });
  const mounts: CliMount[] = [];
  const stop = async () => {
    try {
      for (const m of mounts) assert.equal(await m.stop(), 0, m.output());
    } finally {
      plain.close();
      await zk.destroy();
    }
  };
  try {
    await plain.connect();
    const args = ['--backend', 'zookeeper', '--hosts', zk.connectString, '--path', vol];
    mounts.push(await mountCli([...args, ...(typeof argsA === 'function' ? await argsA(zk) : argsA)]));
    mounts.push(await mountCli(args));
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return { zk, plain, a: mounts[0]!, b: mounts[1]!, stop };
}

/** Requests BatchReads.statMany makes for n small znodes: the probe, then batches doubling up to maxBatchOps. */
export function statRequests(n: number): number {
  if (n <= 1) return n;
  const maxOps = maxBatchOps(DEFAULT_MAX_REQUEST);
  let requests = 1;
  let done = Math.min(PROBE_OPS, n);
  let size = PROBE_OPS;
  while (done < n) {
    size = Math.min(size * 2, maxOps);
    done += size;
    requests++;
  }
  return requests;
}

/** A request context of root, for tests that drive a backend directly. */
export const rootContext: RequestContext = { unique: 1, uid: 0, gid: 0, pid: 0, onInterrupt: () => () => undefined };

/** The ZooKeeper backend on `root` through `client`, with the mount's defaults (hybrid mode, open ACLs), driven without a mount. */
export function openBackend(client: ZkClient, root: string): Promise<ZooKeeperBackend> {
  return ZooKeeperBackend.open(
    client,
    { root, uid: 0, gid: 0, umask: 0o022, cacheTimeout: 3600, acl: OPEN_ACL_UNSAFE, maxRequest: DEFAULT_MAX_REQUEST, maxFileSize: DEFAULT_MAX_FILE_SIZE, mode: 'hybrid' },
    true,
  );
}
