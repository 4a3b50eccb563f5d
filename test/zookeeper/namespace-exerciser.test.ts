// The namespace exerciser (test/helpers/namespace-exerciser.ts) on two
// mounts of one ZooKeeper volume, which take turns: every operation answers
// as on tmpfs, and both nodes end each turn with tmpfs's tree.

import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CHECK_EVERY, exercise, opsOr, SEED, tmpfsModel } from '../helpers/namespace-exerciser.js';
import { startTwoNodes, type TwoNodes } from '../helpers/zookeeper.js';

const OPS = opsOr(3000);

describe('namespace exerciser: random operations on a ZooKeeper mount answer as tmpfs does', () => {
  let nodes: TwoNodes | undefined;
  let model = '';

  before(async () => {
    nodes = await startTwoNodes('/ns');
    model = tmpfsModel();
  });
  after(async () => {
    if (model) fs.rmSync(model, { recursive: true, force: true });
    await nodes?.stop();
  });

  it(`${OPS} operations (seed ${SEED}), the whole tree compared every ${CHECK_EVERY} on both nodes, then the other node goes on`, () => {
    exercise({ model, mounts: [nodes!.a.mnt, nodes!.b.mnt], seed: SEED, ops: OPS });
  });
});
