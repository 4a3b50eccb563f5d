// The floor of the TypeScript transport: a FuseSession over a file system
// that answers every LOOKUP with the same regular file and every GETATTR with
// constant attributes, with no node layer and no backend. floor.sh measures a
// cold stat on it against memfs_ll (C) and swarmvol's memory mount: what is
// left between this server and C is the event loop, the stream callback's
// entry into JavaScript and write(2); what is left between swarmvol and this
// server is swarmvol's own work.
//
//   node dist/bench/fuse-overhead/constant-fs.js MOUNTPOINT   (as root; SIGTERM unmounts)

import { FsError } from '../../src/fs/errors.js';
import { ROOT_ID } from '../../src/fuse/kernel.js';
import { FuseSession } from '../../src/fuse/session.js';
import type { Attr, AttrOut, EntryOut, OpenOut, RawFileSystem } from '../../src/fuse/types.js';

const FILE_ID = 2;
const time = { sec: 1_700_000_000, nsec: 0 };
const attr = (ino: number, mode: number): Attr => ({ ino, size: 100, atime: time, mtime: time, ctime: time, mode, nlink: 1, uid: 0, gid: 0, rdev: 0 });
const rootAttr: AttrOut = { attr: attr(ROOT_ID, 0o40755), attrTimeout: 1 };
const fileAttr: AttrOut = { attr: attr(FILE_ID, 0o100644), attrTimeout: 1 };
const fileEntry: EntryOut = { nodeid: FILE_ID, entryTimeout: 1, attrTimeout: 1, attr: fileAttr.attr };

function nosys(): never {
  throw new FsError('ENOSYS');
}

/** Every name is the same file; only what `stat` needs is answered, the rest is ENOSYS. */
class ConstantFileSystem implements RawFileSystem {
  init(): void {}
  destroy(): void {}
  lookup(): EntryOut {
    return fileEntry;
  }
  forget(): void {}
  getattr(_ctx: unknown, nodeid: number): AttrOut {
    return nodeid === ROOT_ID ? rootAttr : fileAttr;
  }
  opendir(): OpenOut {
    return { fh: 1 };
  }
  readdir(): void {}
  releasedir(): void {}
  setattr = nosys;
  readlink = nosys;
  symlink = nosys;
  mknod = nosys;
  mkdir = nosys;
  unlink = nosys;
  rmdir = nosys;
  rename = nosys;
  link = nosys;
  open = nosys;
  create = nosys;
  read = nosys;
  write = nosys;
  flush = nosys;
  fsync = nosys;
  release = nosys;
  fsyncdir = nosys;
  statfs = nosys;
  access = nosys;
  setxattr = nosys;
  getxattr = nosys;
  listxattr = nosys;
  removexattr = nosys;
  getlk = nosys;
  setlk = nosys;
  fallocate = nosys;
  lseek = nosys;
  copyFileRange = nosys;
}

const mountpoint = process.argv[2];
if (!mountpoint) {
  console.error('usage: node dist/bench/fuse-overhead/constant-fs.js MOUNTPOINT');
  process.exit(2);
}
const session = new FuseSession(new ConstantFileSystem(), { maxWrite: 128 * 1024, fsname: 'constant-fs', subtype: 'constant-fs' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void session.unmount());
await session.mount(mountpoint);
await session.closed();
