// A TCP proxy to ZooKeeper, in a process of its own, that cuts every
// connection through it at random moments and refuses new ones for a while:
// the connection losses a mount sees when a server restarts or the network
// blips, shorter than the session timeout. A process of its own so that it
// keeps forwarding while the stress tool blocks on the mounts (its tree
// comparisons are synchronous).
//
//   node dist/bench/stress/flaky-proxy.js TARGET_PORT SEED
// Prints its port on the first line of stdout, then one line per cut. A line
// "calm" on stdin stops the cuts (the connection comes back and stays);
// closing stdin ends the process.

import net from 'node:net';
import readline from 'node:readline';
import { pairSockets } from '../../test/helpers/zookeeper.js';

const target = Number(process.argv[2]);
let seed = Number(process.argv[3] ?? 1) >>> 0 || 1;
/** xorshift32: the same cuts for the same seed. */
const random = () => {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 2 ** 32;
};
/** Up (ms) between cuts, and how long each cut lasts. */
const UP_MS = [500, 3000];
const DOWN_MS = [50, 800];
const between = ([lo, hi]: number[]) => lo! + Math.floor(random() * (hi! - lo!));

const conns = new Set<net.Socket>();
let open = true;
let calm = false;
let cuts = 0;
let timer: NodeJS.Timeout | undefined;

const server = net.createServer((client) => {
  if (!open) return void client.destroy();
  const upstream = net.connect(target, '127.0.0.1');
  pairSockets(client, upstream, conns);
  client.pipe(upstream);
  upstream.pipe(client);
});

function schedule(): void {
  timer = setTimeout(() => {
    if (calm) return;
    open = false;
    for (const c of conns) c.destroy();
    const down = between(DOWN_MS);
    process.stdout.write(`cut ${++cuts} for ${down} ms\n`);
    timer = setTimeout(() => {
      open = true;
      schedule();
    }, down);
  }, between(UP_MS));
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
  schedule();
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'calm') return;
  calm = true;
  open = true;
  clearTimeout(timer);
}).on('close', () => {
  for (const c of conns) c.destroy();
  server.close();
  process.exit(0);
});
