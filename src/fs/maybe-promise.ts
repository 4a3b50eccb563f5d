// Working with MaybePromise values (an answer now, or a promise of it)
// without turning an answer now into a promise.

import type { MaybePromise } from '../fuse/types.js';

/** `f` applied to a value now, or to a promise's value later. */
export function andThen<T, U>(value: MaybePromise<T>, f: (value: T) => U): MaybePromise<U> {
  return value instanceof Promise ? value.then(f) : f(value);
}
