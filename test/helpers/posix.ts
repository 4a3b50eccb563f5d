// Helpers for the POSIX behaviour tests on a real mount: errno capture,
// python3 snippets (for syscalls Node lacks: renameat2, fcntl locks, xattrs,
// fallocate, SEEK_DATA) and running commands as an unprivileged user.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { constants } from 'node:os';

/**
 * python3 for every user: the Debian one when present (a pyenv shim under
 * /root cannot be run by an unprivileged user), else whatever PATH finds.
 */
export const PY = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** The unprivileged user (nobody:nogroup on Debian). */
export const NOBODY = 65534;

const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);

export function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

/** An error's errno name, also where libuv has none: Node says "Unknown system error -116" for ESTALE. */
export function errnoCode(err: NodeJS.ErrnoException): string | undefined {
  return err.code?.startsWith('Unknown system error') && err.errno ? errnoName(-err.errno) : err.code;
}

/** Runs `fn`; returns the error's code (e.g. 'ENOENT'), or 'OK' if it did not throw. */
export function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
    throw err;
  }
  return 'OK';
}

/** Asserts that `fn` fails with exactly `code`. */
export function assertErrno(fn: () => unknown, code: string, what?: string): void {
  assert.equal(errnoOf(fn), code, what);
}

/** Synchronous sleep (the mount is served by another process, so blocking here is fine). */
export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Retries an assertion while another node's change propagates (the watch delivers it in milliseconds). */
export function eventually(check: () => void, timeoutMs = 3000): void {
  const t0 = performance.now();
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (performance.now() - t0 > timeoutMs) throw err;
      sleepMs(2);
    }
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Run as this uid/gid (through setpriv, with no supplementary groups). */
  uid?: number;
  gid?: number;
  input?: string;
  timeoutMs?: number;
}

function asUser(argv: string[], opts: RunOptions): string[] {
  if (opts.uid === undefined) return argv;
  const gid = opts.gid ?? opts.uid;
  return ['setpriv', `--reuid=${opts.uid}`, `--regid=${gid}`, '--clear-groups', '--', ...argv];
}

/** Runs argv (optionally as another user); never throws. */
export function run(argv: string[], opts: RunOptions = {}): RunResult {
  const full = asUser(argv, opts);
  const r = spawnSync(full[0]!, full.slice(1), {
    cwd: '/',
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    env: opts.uid === undefined ? process.env : { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/', LANG: 'C' },
  });
  if (r.error) return { code: null, stdout: r.stdout ?? '', stderr: String(r.error) };
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `sh -c command` (optionally as another user). */
export function shSync(command: string, opts: RunOptions = {}): RunResult {
  return run(['/bin/sh', '-c', command], opts);
}

/**
 * Python prelude for snippets: os, sys, errno, ctypes, libc (use_errno) and
 * helpers. `A` is sys.argv[1:].
 */
export const PY_PRELUDE = `
import os, sys, errno, ctypes, ctypes.util, struct, stat, time, json, signal
libc = ctypes.CDLL(None, use_errno=True)
A = sys.argv[1:]
_PREFERRED = {errno.EOPNOTSUPP: 'EOPNOTSUPP', errno.EAGAIN: 'EAGAIN', errno.EDEADLK: 'EDEADLK'}
def ename(n):
    # The name Node reports (EOPNOTSUPP, not its alias ENOTSUP).
    return _PREFERRED.get(n) or errno.errorcode.get(n, 'errno %d' % n)
def cerr(ret):
    """The outcome of a libc call: 'OK' or the errno name."""
    return 'OK' if ret >= 0 else ename(ctypes.get_errno())
`;

/** Runs a python3 program (the prelude is prepended); returns its result. */
export function py(code: string, args: Array<string | number> = [], opts: RunOptions = {}): RunResult {
  return run([PY, '-c', PY_PRELUDE + code, ...args.map(String)], opts);
}

/**
 * Runs a python3 snippet inside a function body; prints what it returns
 * ('OK' for None) or the errno name of an OSError it raises. Returns that
 * output line. Fails the test if python itself failed.
 */
export function pyTry(body: string, args: Array<string | number> = [], opts: RunOptions = {}): string {
  return tryOutcome(py(tryProgram(body), args, opts));
}

/** pyTry without blocking this process (a proxy it runs, say, must keep serving meanwhile). */
export async function pyTryAsync(body: string, args: Array<string | number> = [], opts: RunOptions = {}): Promise<string> {
  const full = asUser([PY, '-c', PY_PRELUDE + tryProgram(body), ...args.map(String)], opts);
  const r = await new Promise<RunResult>((resolve) => {
    const child = spawn(full[0]!, full.slice(1), { cwd: '/', timeout: opts.timeoutMs ?? 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => resolve({ code: null, stdout, stderr: String(err) }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return tryOutcome(r);
}

function tryProgram(body: string): string {
  const indented = body
    .trim()
    .split('\n')
    .map((l) => '    ' + l)
    .join('\n');
  return `
def _body():
${indented}
try:
    _r = _body()
    print('OK' if _r is None else _r)
except OSError as e:
    print(ename(e.errno))
`;
}

function tryOutcome(r: RunResult): string {
  assert.equal(r.code, 0, `python failed (${r.code}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return lines[lines.length - 1]!;
}

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

const RENAMEAT2 = `
AT_FDCWD = -100
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
return cerr(libc.renameat2(AT_FDCWD, os.fsencode(A[0]), AT_FDCWD, os.fsencode(A[1]), int(A[2])))
`;

/** renameat2(2) through libc; returns 'OK' or the errno name. */
export function renameat2(from: string, to: string, flags: number): string {
  return pyTry(RENAMEAT2, [from, to, flags]);
}

/** renameat2 without blocking this process. */
export function renameat2Async(from: string, to: string, flags: number): Promise<string> {
  return pyTryAsync(RENAMEAT2, [from, to, flags]);
}
