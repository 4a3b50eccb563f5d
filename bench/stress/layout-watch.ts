// What the stress tool checks in ZooKeeper itself, while the writers run: the
// hybrid layout's rule that a symlink's znode (its parent's map says 't: l'
// for its czxid) never has children and is never written (data version 0),
// and its converse: every other znode the mounts make is at data version 1
// or more (created empty, then set), so a leaf at version 0 that the map does
// not call a symlink is a symlink that lost its type (a file holding its
// target, on every node).
// The mounts' tree comparison cannot see a broken symlink of this kind: a
// znode with children shows as a directory on every node alike.
//
// The tree is read by a plain client while it changes, so a finding is kept
// only when confirmed: the map read before and again after the entry's znode
// is the same write (same mzxid: it said the same the whole time), and the
// znode read in between is the one the map names, or older than the map.

import { ErrorCode, ZkError } from '../../src/backends/zookeeper/client/protocol.js';
import type { ZkClient } from '../../src/backends/zookeeper/client/client.js';
import { decodeMeta, MARKER_NAME, RESERVED_NAMES } from '../../src/backends/zookeeper/layout.js';

function gone(err: unknown): null {
  if (err instanceof ZkError && err.code === ErrorCode.NONODE) return null;
  throw err;
}

/** Broken symlinks under `root` now, each described with the czxid and zxids to look for in the server's transaction log. */
export async function brokenSymlinks(zk: ZkClient, root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const listed = await zk.getChildren(dir).catch(gone);
    if (!listed || !listed.children.includes(MARKER_NAME)) return;
    const marker = await zk.getData(`${dir}/${MARKER_NAME}`).catch(gone);
    if (!marker) return;
    const map = decodeMeta(marker.data, marker.stat.version, marker.stat.mzxid);
    const names = listed.children.filter((c) => !RESERVED_NAMES.has(c));
    await Promise.all(
      names.map(async (name) => {
        const path = `${dir}/${name}`;
        const stat = await zk.exists(path).catch(gone);
        if (!stat) return;
        const entry = map.entries.get(name);
        const symlink = entry?.t === 'l' && entry.z === Number(stat.czxid);
        const brokenSymlink = symlink && (stat.numChildren > 0 || stat.version !== 0);
        // Judged only against a map at least as new as the znode (a symlink's create writes the map in
        // its transaction): a znode made after the map was read is not yet in it.
        const lostType = !symlink && stat.numChildren === 0 && stat.version === 0 && stat.czxid <= marker.stat.mzxid;
        if (brokenSymlink || lostType) {
          const again = await zk.exists(`${dir}/${MARKER_NAME}`).catch(gone);
          // The same map the whole time: same mzxid (a re-created marker starts at version 0 again).
          if (again?.mzxid === marker.stat.mzxid) {
            const children = stat.numChildren > 0 ? (await zk.getChildren(path).catch(gone))?.children : undefined;
            found.push(
              `${path}: its parent's map (version ${marker.stat.version}, mzxid ${marker.stat.mzxid}) says ${symlink ? 'symlink' : `${entry ? JSON.stringify(entry) : 'nothing'} (not a symlink)`}, but the znode (czxid ${stat.czxid}, mzxid ${stat.mzxid}, pzxid ${stat.pzxid}) ` +
                `has data version ${stat.version} and ${stat.numChildren} children${children ? ` [${children.join(', ')}]` : ''}`,
            );
          }
        }
        if (stat.numChildren > 0) await walk(path);
      }),
    );
  };
  await walk(root);
  return found;
}

/** Checks `root` over and over until stopped; returns the first findings, or none. */
export function watchLayout(zk: ZkClient, root: string, everyMs = 100): { stop(): Promise<string[]> } {
  let stopped = false;
  let findings: string[] = [];
  // Settled by stop() (an error reading the tree is reported there, not as an unhandled rejection).
  const loop = (async () => {
    while (!stopped && findings.length === 0) {
      findings = await brokenSymlinks(zk, root);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })().then(
    () => undefined,
    (err: unknown) => err,
  );
  return {
    async stop() {
      stopped = true;
      const failed = await loop;
      if (failed) throw failed;
      return findings.length > 0 ? findings : brokenSymlinks(zk, root);
    },
  };
}
