// Validation of command-line values: every error names the option and what it accepts.

import { sizeInBytes, wholeNumber } from '../util/numbers.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseSeconds(option: string, value: string | undefined, fallback: number, max = 86400 * 365): number {
  if (value === undefined) return fallback;
  // Decimal only (Number() would take 0x10 and 1e-9), and whole milliseconds at most.
  const n = /^\s*\d+(\.\d{1,3})?\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n) || n > max) {
    throw new UsageError(`--${option}: expected a number of seconds from 0 to ${max} (decimal, up to 3 decimals), got "${value}"`);
  }
  return n;
}

/** Sizes like 131072, 128k, 1M, 64MiB (binary units). */
export function parseSize(option: string, value: string | undefined, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = sizeInBytes(value);
  if (!(n >= min && n <= max)) {
    throw new UsageError(`--${option}: expected a size from ${min} to ${max} bytes (suffixes k, M, G, T), got "${value}"`);
  }
  return n;
}

export function parseCount(option: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = wholeNumber(value);
  if (!(n >= min && n <= max)) throw new UsageError(`--${option}: expected a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

export function parseChoice<T extends string>(option: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  const v = value.toLowerCase() as T;
  if (!choices.includes(v)) throw new UsageError(`--${option}: expected one of ${choices.join(', ')}, got "${value}"`);
  return v;
}
