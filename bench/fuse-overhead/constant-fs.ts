// The floor of the TypeScript transport: a FuseSession over a file system
// that answers with constants, with no node layer and no backend. Every name
// in the root is the same small regular file (for a cold stat), except:
// - c0 .. c999: empty directories that take any number of new files, which
//   exist only as node ids handed out (for create + write + close; a pass per
//   directory, so that each pass creates names the kernel has never seen);
// - seq.dat: a file of SEQ_BYTES zero bytes (for sequential and random reads). floor.sh measures
// both workloads on it against memfs_ll (C) and swarmvol's memory mount: what
// is left between this server and C is the event loop, the stream callback's
// entry into JavaScript and write(2); what is left between swarmvol and this
// server is swarmvol's own work.
//
//   node dist/bench/fuse-overhead/constant-fs.js MOUNTPOINT [SEQ_BYTES]   (as root; SIGTERM unmounts)

import { FsError } from '../../src/fs/errors.js';
import { ROOT_ID } from '../../src/fuse/kernel.js';
import { FuseSession } from '../../src/fuse/session.js';
import type { Attr, AttrOut, EntryOut, OpenOut, RawFileSystem } from '../../src/fuse/types.js';

const FILE_ID = 2;
const SEQ_ID = 3;
/** Directory cN has node id FIRST_DIR_ID + N. */
const FIRST_DIR_ID = 4;
const DIRS = 1000;
/** Node ids of created files start here; the kernel forgets them, nothing here keeps them. */
const FIRST_CREATED_ID = FIRST_DIR_ID + DIRS;
let nextCreated = FIRST_CREATED_ID;
const time = { sec: 1_700_000_000, nsec: 0 };
const attr = (ino: number, mode: number): Attr => ({ ino, size: 100, atime: time, mtime: time, ctime: time, mode, nlink: 1, uid: 0, gid: 0, rdev: 0 });
const rootAttr: AttrOut = { attr: attr(ROOT_ID, 0o40755), attrTimeout: 1 };
const fileAttr: AttrOut = { attr: attr(FILE_ID, 0o100644), attrTimeout: 1 };
const fileEntry: EntryOut = { nodeid: FILE_ID, entryTimeout: 1, attrTimeout: 1, attr: fileAttr.attr };
const dirAttrs: AttrOut[] = Array.from({ length: DIRS }, (_, n) => ({ attr: { ...attr(FIRST_DIR_ID + n, 0o40777), nlink: 2 }, attrTimeout: 1 }));
const dirEntries: EntryOut[] = dirAttrs.map(({ attr }, n) => ({ nodeid: FIRST_DIR_ID + n, entryTimeout: 1, attrTimeout: 1, attr }));
const isDir = (nodeid: number) => nodeid >= FIRST_DIR_ID && nodeid < FIRST_CREATED_ID;
const C = 'c'.charCodeAt(0);
const seqBytes = Number(process.argv[3] ?? 256 * 1048576);
const seqAttr: AttrOut = { attr: { ...attr(SEQ_ID, 0o100644), size: seqBytes }, attrTimeout: 1 };
const seqEntry: EntryOut = { nodeid: SEQ_ID, entryTimeout: 1, attrTimeout: 1, attr: seqAttr.attr };
/** What every READ of seq.dat answers, cut to size (the session's max_write bounds a READ). */
const zeros = Buffer.alloc(1 << 20);
/** A name not there, cached by the kernel for 1 s (memfs_ll and the memory mount answer the same way). */
const absent: EntryOut = { nodeid: 0, entryTimeout: 1, attrTimeout: 0 };

function nosys(): never {
  throw new FsError('ENOSYS');
}

/** Only what stat, create + write + close and reads need is answered, the rest is ENOSYS. */
class ConstantFileSystem implements RawFileSystem {
  init(): void {}
  destroy(): void {}
  lookup(_ctx: unknown, parent: number, name: string): EntryOut {
    if (isDir(parent)) return absent;
    if (name === 'seq.dat') return seqEntry;
    const dir = name.charCodeAt(0) === C ? /^c(\d{1,3})$/.exec(name) : null;
    return dir ? dirEntries[Number(dir[1])]! : fileEntry;
  }
  forget(): void {}
  getattr(_ctx: unknown, nodeid: number): AttrOut {
    if (nodeid === ROOT_ID) return rootAttr;
    if (isDir(nodeid)) return dirAttrs[nodeid - FIRST_DIR_ID]!;
    if (nodeid === SEQ_ID) return seqAttr;
    return nodeid >= FIRST_CREATED_ID ? { attr: { ...fileAttr.attr, ino: nodeid }, attrTimeout: 1 } : fileAttr;
  }
  create(_ctx: unknown, parent: number): { entry: EntryOut; open: OpenOut } {
    if (!isDir(parent)) throw new FsError('EACCES');
    const nodeid = nextCreated++;
    return { entry: { nodeid, entryTimeout: 1, attrTimeout: 1, attr: { ...fileAttr.attr, ino: nodeid, size: 0 } }, open: { fh: nodeid } };
  }
  write(_ctx: unknown, _nodeid: number, _fh: number, _offset: number, data: Buffer): number {
    return data.length;
  }
  open(): OpenOut {
    return { fh: 1 };
  }
  read(_ctx: unknown, nodeid: number, _fh: number, offset: number, size: number): Buffer {
    const end = nodeid === SEQ_ID ? Math.min(seqBytes, offset + size) : 0;
    return zeros.subarray(0, Math.max(0, end - offset));
  }
  flush(): void {}
  release(): void {}
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
  fsync = nosys;
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
