import { constants } from 'node:os';

/** Positive errno values of this platform, by name. */
export const Errno = constants.errno;

export type ErrnoName = keyof typeof constants.errno;

/**
 * An error a filesystem operation answers with. The FUSE layer sends `-errno`
 * to the kernel; anything else thrown by a backend becomes EIO and is logged.
 */
export class FsError extends Error {
  readonly errno: number;
  readonly code: ErrnoName;

  constructor(code: ErrnoName, message?: string) {
    // An errno answer is an expected outcome, not a bug: skip the stack trace,
    // which costs more than the rest of a request (ENOENT is answered a lot).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message ? `${code}: ${message}` : code);
    Error.stackTraceLimit = limit;
    this.name = 'FsError';
    this.code = code;
    this.errno = Errno[code];
  }
}

/** The errno an arbitrary thrown value maps to. */
export function errnoOf(err: unknown): number {
  if (err instanceof FsError) return err.errno;
  return Errno.EIO;
}
