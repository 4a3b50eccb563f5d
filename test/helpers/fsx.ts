// The fsx exerciser (test/tools/fsx.c), built once per run (scripts/test.sh also does).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, sh } from './mount.js';

export async function fsxBinary(): Promise<string> {
  const bin = path.join(REPO, 'build', 'fsx');
  const src = path.join(REPO, 'test', 'tools', 'fsx.c');
  if (!fs.existsSync(bin) || fs.statSync(bin).mtimeMs < fs.statSync(src).mtimeMs) {
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    const r = await sh(`gcc -O2 -Wall -Wextra -o ${bin} ${src}`);
    assert.equal(r.code, 0, r.stderr);
  }
  return bin;
}
