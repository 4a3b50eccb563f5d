// A ZooKeeper ensemble on loopback for the fault tests: N members with their
// own ports and data directories (Debian's zookeeper package), started,
// killed, stopped and restarted one by one.

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fourLetterWord } from './zookeeper.js';
import { waitFor } from './mount.js';

const ZK_JAR = '/usr/share/java/zookeeper.jar';
const ZK_CONF = '/etc/zookeeper/conf';

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface Member {
  id: number;
  clientPort: number;
  running(): boolean;
  /** kill -9. */
  kill(): Promise<void>;
  start(): Promise<void>;
  pause(): void;
  resume(): void;
  mode(): Promise<string>;
}

export interface Ensemble {
  members: Member[];
  connectString: string;
  leader(): Promise<Member>;
  followers(): Promise<Member[]>;
  /** Waits until a majority serves (some member says leader, the others follower). */
  waitQuorum(timeoutMs?: number): Promise<void>;
  destroy(): Promise<void>;
}

export async function startEnsemble(size = 3): Promise<Ensemble> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmvol-ensemble-'));
  const ports = await freePorts(size * 3);
  const servers = Array.from({ length: size }, (_, i) => `server.${i + 1}=127.0.0.1:${ports[size + 2 * i]}:${ports[size + 2 * i + 1]}`);
  const members: Member[] = [];
  for (let i = 0; i < size; i++) {
    const id = i + 1;
    const data = path.join(dir, `zk${id}`);
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'myid'), `${id}\n`);
    const cfg = path.join(data, 'zoo.cfg');
    fs.writeFileSync(
      cfg,
      [
        'tickTime=500',
        'initLimit=20',
        'syncLimit=10',
        `dataDir=${data}`,
        `clientPort=${ports[i]}`,
        'clientPortAddress=127.0.0.1',
        'minSessionTimeout=1000',
        'maxSessionTimeout=60000',
        '4lw.commands.whitelist=*',
        'admin.enableServer=false',
        'maxClientCnxns=0',
        ...servers,
      ].join('\n') + '\n',
    );
    let child: ChildProcess | undefined;
    const member: Member = {
      id,
      clientPort: ports[i]!,
      running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
      async kill() {
        const c = child;
        if (!c || !member.running()) return;
        const exited = new Promise((r) => c.on('exit', r));
        c.kill('SIGKILL');
        await exited;
      },
      async start() {
        if (member.running()) return;
        child = spawn('java', ['-Xmx512m', '-cp', `${ZK_CONF}:${ZK_JAR}`, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', cfg], { stdio: 'ignore' });
      },
      pause: () => child?.kill('SIGSTOP'),
      resume: () => child?.kill('SIGCONT'),
      async mode() {
        const out = await fourLetterWord(ports[i]!, 'srvr', 1000).catch(() => '');
        return /Mode: (\w+)/.exec(out)?.[1] ?? 'down';
      },
    };
    members.push(member);
  }
  const ensemble: Ensemble = {
    members,
    connectString: members.map((m) => `127.0.0.1:${m.clientPort}`).join(','),
    async leader() {
      for (const m of members) if ((await m.mode()) === 'leader') return m;
      throw new Error('no leader');
    },
    async followers() {
      const out: Member[] = [];
      for (const m of members) if ((await m.mode()) === 'follower') out.push(m);
      return out;
    },
    async waitQuorum(timeoutMs = 60_000) {
      await waitFor(
        async () => {
          const modes = await Promise.all(members.map((m) => m.mode()));
          return modes.includes('leader') && modes.filter((x) => x === 'leader' || x === 'follower').length > size / 2;
        },
        timeoutMs,
        'ZooKeeper quorum',
      );
    },
    async destroy() {
      for (const m of members) {
        m.resume();
        await m.kill();
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  for (const m of members) await m.start();
  await ensemble.waitQuorum();
  return ensemble;
}
