// The plugin's local state: volumes and the mount IDs Docker holds on each,
// written atomically (temporary file, fsync, rename, fsync of the directory)
// so a crash leaves the old state or the new one. Secrets live apart, one
// file per volume, readable by root only.

import fs from 'node:fs';
import path from 'node:path';
import type { VolumeSpec } from './options.js';

export interface VolumeRecord {
  name: string;
  spec: VolumeSpec;
  createdAt: string;
  /** With a cluster registry: the node that created the definition (with createdAt, which definition this record stands for). */
  createdOn?: string;
  /** Docker's mount IDs, once per Mount not yet unmounted (a running container's ID again for each `docker cp`). */
  mountIds: string[];
  /** The `swarmvol mount` process serving the volume here, while mounted. */
  pid?: number;
}

interface StateFile {
  version: 1;
  volumes: VolumeRecord[];
}

export class StateStore {
  private readonly file: string;
  private readonly secrets: string;

  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    this.file = path.join(dir, 'state.json');
    this.secrets = path.join(dir, 'secrets');
    fs.mkdirSync(this.secrets, { recursive: true, mode: 0o700 });
  }

  load(): Map<string, VolumeRecord> {
    const out = new Map<string, VolumeRecord>();
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw err;
    }
    const parsed = JSON.parse(text) as StateFile;
    for (const v of parsed.volumes ?? []) out.set(v.name, { ...v, mountIds: v.mountIds ?? [] });
    return out;
  }

  save(volumes: Map<string, VolumeRecord>): void {
    const data: StateFile = { version: 1, volumes: [...volumes.values()].sort((a, b) => a.name.localeCompare(b.name)) };
    writeAtomically(this.file, JSON.stringify(data, null, 2) + '\n');
  }

  secretFile(name: string): string {
    return path.join(this.secrets, name);
  }

  writeSecret(name: string, secret: string): void {
    writeAtomically(this.secretFile(name), secret + '\n');
  }

  hasSecret(name: string): boolean {
    return fs.existsSync(this.secretFile(name));
  }

  readSecret(name: string): string | undefined {
    try {
      return fs.readFileSync(this.secretFile(name), 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  removeSecret(name: string): void {
    fs.rmSync(this.secretFile(name), { force: true });
  }
}

function writeAtomically(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dirFd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}
