// A daemon for test/fuse/lifecycle.test.ts: a memory mount whose LOOKUP of
// "hang" is never answered, so the kernel holds the root directory's lock
// while it waits. On SIGUSR1 it sends INVAL_ENTRY notifications for the root
// (their threadpool threads wait for that lock) and exits as after a fatal
// error, with the connection still up.

import { MemoryBackend, type MemHandle, type MemNode } from '../../src/backends/memory/index.js';
import type { Backend } from '../../src/fs/backend.js';
import { NodeFileSystem } from '../../src/fs/nodes.js';
import { FuseSession } from '../../src/fuse/session.js';

const backend: Backend<MemNode, MemHandle> = new MemoryBackend();
const lookup = backend.lookup.bind(backend);
backend.lookup = (ctx, dir, name) => (name === 'hang' ? new Promise<never>(() => {}) : lookup(ctx, dir, name));
const nodes = new NodeFileSystem(backend);
const session = new FuseSession(nodes);
nodes.setNotifier(session);
await session.mount(process.argv[2]!);
process.on('SIGUSR1', () => {
  for (let i = 0; i < 8; i++) void session.invalEntry(1, `name${i}`);
  setTimeout(() => process.exit(3), 300);
});
process.stdout.write('mounted\n');
