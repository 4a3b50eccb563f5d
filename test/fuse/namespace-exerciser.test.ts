// The namespace exerciser (test/helpers/namespace-exerciser.ts) on the
// memory backend: every operation answers as on tmpfs, and the tree matches
// tmpfs's at every checkpoint.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CHECK_EVERY, exercise, opsOr, SEED, tmpfsModel } from '../helpers/namespace-exerciser.js';
import { mountCli, type CliMount } from '../helpers/mount.js';

const OPS = opsOr(5000);

describe('namespace exerciser: random operations on a memory mount answer as tmpfs does', () => {
  let m: CliMount | undefined;
  let model = '';

  before(async () => {
    m = await mountCli();
    model = tmpfsModel();
  });
  after(async () => {
    if (model) fs.rmSync(model, { recursive: true, force: true });
    if (m) assert.equal(await m.stop(), 0, m.output());
  });

  it(`${OPS} operations (seed ${SEED}), the whole tree compared every ${CHECK_EVERY}`, () => {
    exercise({ model, mounts: [m!.mnt], seed: SEED, ops: OPS });
  });
});
