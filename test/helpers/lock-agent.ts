// A long-lived python3 process that holds files open and takes flock(2) and
// fcntl(2) locks on command (one line over stdin, one reply line), calling libc
// directly so errno values are exact and a blocked F_SETLKW can be interrupted.

import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { PY, PY_PRELUDE } from './posix.js';

export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

const AGENT = `
class Flock(ctypes.Structure):
    _fields_ = [('l_type', ctypes.c_short), ('l_whence', ctypes.c_short), ('l_start', ctypes.c_int64),
                ('l_len', ctypes.c_int64), ('l_pid', ctypes.c_int)]
F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7
F_OFD_SETLK, F_OFD_SETLKW = 37, 38
libc.fcntl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(Flock)]
libc.flock.argtypes = [ctypes.c_int, ctypes.c_int]
signal.signal(signal.SIGALRM, lambda s, f: None)
fds = {}
def reply(s):
    sys.stdout.write(str(s) + '\\n')
    sys.stdout.flush()
reply('ready %d' % os.getpid())
for line in sys.stdin:
    w = line.split()
    if not w:
        continue
    try:
        if w[0] == 'open':
            flags = os.O_RDWR if len(w) < 3 else int(w[2])
            fd = os.open(w[1], flags)
            reply(fd)
        elif w[0] == 'close':
            os.close(int(w[1]))
            reply('OK')
        elif w[0] in ('setlk', 'setlkw', 'getlk', 'ofdsetlk', 'ofdsetlkw'):
            fd, typ, start, length = int(w[1]), int(w[2]), int(w[3]), int(w[4])
            fl = Flock(typ, os.SEEK_SET, start, length, 0)
            cmd = {'setlk': F_SETLK, 'setlkw': F_SETLKW, 'getlk': F_GETLK, 'ofdsetlk': F_OFD_SETLK, 'ofdsetlkw': F_OFD_SETLKW}[w[0]]
            r = libc.fcntl(fd, cmd, ctypes.byref(fl))
            if r < 0:
                reply(ename(ctypes.get_errno()))
            elif w[0] == 'getlk':
                reply('%d %d %d %d' % (fl.l_type, fl.l_start, fl.l_len, fl.l_pid))
            else:
                reply('OK')
        elif w[0] == 'rename':
            os.rename(w[1], w[2])
            reply('OK')
        elif w[0] == 'read':
            reply(os.pread(int(w[1]), 65536, 0).decode())
        elif w[0] == 'flock':
            reply(cerr(libc.flock(int(w[1]), int(w[2]))))
        elif w[0] == 'exit':
            reply('bye')
            break
        else:
            reply('bad command')
    except OSError as e:
        reply(ename(e.errno))
`;

/** One python process holding files open and taking locks on command. */
export class Agent {
  readonly child: ChildProcessWithoutNullStreams;
  pid = 0;
  private buf = '';
  private readonly waiting: Array<(line: string) => void> = [];
  private readonly lines: string[] = [];
  private stderr = '';
  readonly exited: Promise<void>;

  constructor() {
    this.child = spawn(PY, ['-u', '-c', PY_PRELUDE + AGENT], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => {
      this.buf += d;
      for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        const w = this.waiting.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) =>
      this.child.on('exit', () => {
        // Whoever still waits for a reply gets '<exited>' rather than a timeout.
        for (const w of this.waiting.splice(0)) w('<exited>');
        resolve();
      }),
    );
  }

  static async start(): Promise<Agent> {
    const a = new Agent();
    const hello = await a.next(10_000);
    const m = /^ready (\d+)$/.exec(hello);
    assert.ok(m, `agent started: ${hello} ${a.stderr}`);
    a.pid = Number(m[1]);
    return a;
  }

  /** The next output line; rejects after `timeoutMs`. */
  next(timeoutMs = 10_000): Promise<string> {
    const early = this.lines.shift();
    if (early !== undefined) return Promise.resolve(early);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(done);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error(`agent ${this.pid}: no reply within ${timeoutMs} ms ${this.stderr}`));
      }, timeoutMs);
      const done = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiting.push(done);
    });
  }

  /** Sends one command; resolves with its reply line. */
  cmd(line: string, timeoutMs = 10_000): Promise<string> {
    this.child.stdin.write(line + '\n');
    return this.next(timeoutMs);
  }

  async open(file: string, flags?: number): Promise<number> {
    const r = await this.cmd(flags === undefined ? `open ${file}` : `open ${file} ${flags}`);
    assert.match(r, /^\d+$/, `open ${file}: ${r}`);
    return Number(r);
  }

  setlk(fd: number, type: number, start: number, len: number): Promise<string> {
    return this.cmd(`setlk ${fd} ${type} ${start} ${len}`);
  }

  /** F_OFD_SETLK: a lock owned by the open file description, not the process. */
  ofdSetlk(fd: number, type: number, start: number, len: number): Promise<string> {
    return this.cmd(`ofdsetlk ${fd} ${type} ${start} ${len}`);
  }

  /** F_SETLKW: the reply may take long; the promise is returned unawaited by callers that test blocking. */
  setlkw(fd: number, type: number, start: number, len: number, timeoutMs = 15_000): Promise<string> {
    return this.cmd(`setlkw ${fd} ${type} ${start} ${len}`, timeoutMs);
  }

  async getlk(fd: number, type: number, start: number, len: number): Promise<{ type: number; start: number; len: number; pid: number }> {
    const r = await this.cmd(`getlk ${fd} ${type} ${start} ${len}`);
    const m = /^(\d+) (-?\d+) (-?\d+) (-?\d+)$/.exec(r);
    assert.ok(m, `getlk: ${r}`);
    return { type: Number(m[1]), start: Number(m[2]), len: Number(m[3]), pid: Number(m[4]) };
  }

  flock(fd: number, op: number, timeoutMs = 10_000): Promise<string> {
    return this.cmd(`flock ${fd} ${op}`, timeoutMs);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.stdin.end();
      const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await this.exited;
      clearTimeout(t);
    }
  }
}

/** Resolves to 'pending' if `p` has not settled within `ms`. */
export async function settledWithin<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p, new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)))]);
  clearTimeout(timer);
  return r;
}
