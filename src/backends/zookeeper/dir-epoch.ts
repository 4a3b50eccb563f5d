// The volume's directory epoch: a znode of the volume root whose data version
// every transaction that removes or re-creates a directory raises (rmdir, and
// renames that move or replace a directory). A directory re-created at the
// same path (by an exchange on another node, say) gets an attribute map at a
// version the old one had too, so a version check on the map cannot tell the
// two apart: a node that has not heard of the change yet would write the old
// directory's map over the new one (a symlink there losing its type). Every
// write that trusts a map is therefore also checked against the epoch its
// attempt started from. The epoch is learnt lazily: from our own bumps, and by
// reading it again after a transaction failed on it (another node removed a
// directory meanwhile). See docs/zookeeper-layout.md ("Directory epoch").

import { createIfMissing, type ZkClient } from './client/client.js';
import { ErrorCode, ZkError, ZkMultiError, type Acl, type MultiOp } from './client/protocol.js';

export class DirEpoch {
  /** The epoch's version as of a moment this node's caches have caught up with; undefined: read it. */
  private known: number | undefined;

  private constructor(
    private readonly zk: ZkClient,
    readonly path: string,
  ) {}

  /** The epoch of the volume at `root`, made if missing (volumes made before it existed, or by other tools). */
  static async setup(zk: ZkClient, path: string, acl: Acl[]): Promise<DirEpoch> {
    await createIfMissing(zk, path, Buffer.alloc(0), acl);
    return new DirEpoch(zk, path);
  }

  /** The epoch an attempt builds its transaction against. */
  async current(): Promise<number> {
    if (this.known === undefined) {
      const stat = await this.zk.exists(this.path);
      if (!stat) throw new ZkError(ErrorCode.NONODE, this.path, `the directory epoch ${this.path} is gone; remount to make it again`);
      this.known = stat.version;
    }
    return this.known;
  }

  /** The op that makes a transaction depend on `epoch`; `bump` also raises it (the transaction removes or re-creates a directory). */
  fence(epoch: number, bump: boolean): MultiOp {
    return bump ? { op: 'setData', path: this.path, data: Buffer.alloc(0), version: epoch } : { op: 'check', path: this.path, version: epoch };
  }

  /** A transaction fenced at `epoch` was applied. */
  committed(epoch: number, bump: boolean): void {
    if (bump && this.known === epoch) this.known = epoch + 1;
  }

  /**
   * A transaction fenced at `epoch` failed. True if it failed on the epoch and
   * another node raised it: what this node cached about directories may be
   * of directories that are gone, and the epoch is read again.
   */
  moved(err: unknown, epoch: number): boolean {
    if (!(err instanceof ZkMultiError) || err.path !== this.path) return false;
    // Our own bump since this attempt began: it is known already, nothing else moved.
    if (this.known !== epoch) return false;
    this.known = undefined;
    return true;
  }

  /** Events may have been missed (a new session): read the epoch again. */
  forget(): void {
    this.known = undefined;
  }
}
