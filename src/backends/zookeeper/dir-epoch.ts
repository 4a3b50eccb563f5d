// The volume's directory epoch: a znode of the volume root whose data version
// every transaction that removes or re-creates a directory raises (rmdir, and
// renames that move or replace a directory). A directory re-created at the
// same path (by an exchange on another node, say) gets an attribute map at a
// version the old one had too, so a version check on the map cannot tell the
// two apart: a node that has not heard of the change yet would write the old
// directory's map over the new one (a symlink there losing its type). Every
// write that trusts a map is therefore also checked against the epoch its
// attempt started from. The node reads the epoch again when the volume's watch
// reports it changed, and learns its own bumps from their replies. ZooKeeper
// delivers a transaction's events in op order with the epoch's last, so by the
// time the epoch's change is heard, the maps that transaction changed have
// already been dropped from the caches: nothing else needs dropping. See
// docs/zookeeper-layout.md ("Directory epoch").

import { createIfMissing, type ZkClient } from './client/client.js';
import { ErrorCode, ZkError, ZkMultiError, type Acl, type MultiOp } from './client/protocol.js';

export class DirEpoch {
  /** The epoch's version as of a moment this node's caches have caught up with; undefined: read it. */
  private known: number | undefined;
  /** Changes of the epoch the volume's watch reported (our own bumps included). */
  private reports = 0;

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
    if (this.known !== undefined) return this.known;
    const reports = this.reports;
    const stat = await this.zk.exists(this.path);
    if (!stat) throw new ZkError(ErrorCode.NONODE, this.path, `the directory epoch ${this.path} is gone; remount to make it again`);
    // A change reported after the read was answered may be newer than what it read: the attempt
    // may use the version (its fence catches a stale one) but the next one reads again.
    if (this.reports === reports) this.known = stat.version;
    return stat.version;
  }

  /** How many changes were reported so far: taken when a transaction is sent, given back to `committed`. */
  get reportCount(): number {
    return this.reports;
  }

  /** The op that makes a transaction depend on `epoch`; `bump` also raises it (the transaction removes or re-creates a directory). */
  fence(epoch: number, bump: boolean): MultiOp {
    return bump ? { op: 'setData', path: this.path, data: Buffer.alloc(0), version: epoch } : { op: 'check', path: this.path, version: epoch };
  }

  /**
   * A transaction fenced at `epoch` was applied; `reportsAtSend`: reportCount
   * when it was sent. A bump's own event comes before its reply: if no other
   * change was reported meanwhile, the epoch is now `epoch + 1`.
   */
  committed(epoch: number, bump: boolean, reportsAtSend: number): void {
    if (!bump) return;
    this.known = this.reports - reportsAtSend <= 1 ? epoch + 1 : undefined;
  }

  /**
   * A transaction fenced at `epoch` failed. True if it failed on the epoch
   * alone: a directory was removed or re-created since, by another node or
   * by a concurrent transaction of ours, and the attempt is made again.
   */
  failed(err: unknown, epoch: number): boolean {
    if (!(err instanceof ZkMultiError) || err.path !== this.path) return false;
    if (this.known === epoch) this.known = undefined;
    return true;
  }

  /** The volume's watch reported a change of the epoch. */
  changed(): void {
    this.reports++;
    this.known = undefined;
  }

  /** Events may have been missed (a new connection or session): read the epoch again. */
  forget(): void {
    this.known = undefined;
  }
}
