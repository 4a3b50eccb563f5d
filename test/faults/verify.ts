// Checks a workload journal against what every node shows: acknowledged
// content present (or a later write that may have landed), acknowledged
// deletes gone, every file holding content that was written whole.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { expectations, sha, type Expectation } from './workload.js';

async function readSha(file: string): Promise<string | undefined> {
  try {
    return sha(await fs.promises.readFile(file));
  } catch {
    return undefined;
  }
}

/** Verifies `journal` against each directory (one per node); returns what was expected. */
export async function verifyJournal(journal: string, dirs: Array<{ label: string; dir: string }>): Promise<Expectation> {
  const e = expectations(fs.readFileSync(journal, 'utf8'));
  assert.deepEqual(e.badReads, [], 'reads returned content that was never written there');
  for (const { label, dir } of dirs) {
    // Another node may still be applying the last changes (milliseconds).
    let last = '';
    for (let attempt = 0; attempt < 100; attempt++) {
      last = '';
      for (const [name, f] of e.files) {
        const got = await readSha(path.join(dir, name));
        if (got !== f.acked && !(got && f.maybe.has(got))) last = `${name}: ${got} instead of ${f.acked}`;
      }
      for (const name of e.deleted) if ((await readSha(path.join(dir, name))) !== undefined) last = `${name} should be deleted`;
      if (!last) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(last, '', label);
    for (const name of await fs.promises.readdir(dir)) {
      const got = await readSha(path.join(dir, name));
      assert.ok(got && e.intended.has(got), `${label}: ${name} holds content nobody wrote whole (${got})`);
    }
  }
  return e;
}
