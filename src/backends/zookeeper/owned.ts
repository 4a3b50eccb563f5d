// Znodes whose names only this mount makes (a random suffix, or a sequence
// number it found for itself): nobody else creates or deletes them, so a
// create or delete whose reply a lost connection took is repeated as is. The
// client itself only repeats reads, where this cannot be known.

import type { ZkClient } from './client/client.js';
import { type Acl, ErrorCode, ZkError } from './client/protocol.js';

/** True if `err` is a lost connection: the request may or may not have been applied. */
export function isConnectionLoss(err: unknown): boolean {
  return err instanceof ZkError && err.code === ErrorCode.CONNECTIONLOSS;
}

/**
 * Runs `op` again while it fails with CONNECTIONLOSS, within the client's
 * operation timeout (a request waits that long for a connection, so this
 * never spins). `op` must tell for itself what an earlier attempt, which may
 * have been applied, left behind.
 */
export async function againAfterLoss<T>(zk: ZkClient, op: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + zk.opts.operationTimeoutMs;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (!isConnectionLoss(err) || Date.now() >= deadline) throw err;
    }
  }
}

/** Creates an owned znode; one already there is an earlier attempt's, whose reply was lost. */
export function createOwned(zk: ZkClient, path: string, data: Buffer, acl: Acl[], mode: number): Promise<void> {
  return againAfterLoss(zk, async () => {
    try {
      await zk.create(path, data, acl, mode);
    } catch (err) {
      if (!(err instanceof ZkError && err.code === ErrorCode.NODEEXISTS)) throw err;
    }
  });
}

/** Deletes an owned znode; one already gone counts as deleted. */
export function deleteOwned(zk: ZkClient, path: string): Promise<void> {
  return againAfterLoss(zk, async () => {
    try {
      await zk.delete(path);
    } catch (err) {
      if (!(err instanceof ZkError && err.code === ErrorCode.NONODE)) throw err;
    }
  });
}
