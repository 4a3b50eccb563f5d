// Docker's volume plugin API: HTTP POSTs with JSON bodies (whatever the
// content type) on a unix socket only root may use. Errors are HTTP 500 with
// {"Err": "..."}: Docker shows the message to the user. Garbage never crashes
// the plugin: bad JSON, missing fields, huge bodies and unknown paths get an
// error answer.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { log } from '../util/log.js';
import { DriverError, type VolumeDriver } from './driver.js';
import { OptionError } from './options.js';

const MAX_BODY = 1 << 20;
const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.1+json';

class BadRequest extends Error {}

function field(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v === '') throw new BadRequest(`missing field "${key}" (a string)`);
  return v;
}

type Handler = (body: Record<string, unknown>) => Promise<unknown>;

export function routes(driver: VolumeDriver): Record<string, Handler> {
  return {
    '/Plugin.Activate': async () => ({ Implements: ['VolumeDriver'] }),
    '/VolumeDriver.Capabilities': async () => ({ Capabilities: { Scope: 'global' } }),
    '/VolumeDriver.Create': async (b) => {
      const opts = b.Opts;
      if (opts !== undefined && opts !== null && (typeof opts !== 'object' || Array.isArray(opts))) throw new BadRequest('"Opts" must be an object');
      await driver.create(field(b, 'Name'), opts as Record<string, unknown> | null | undefined);
      return {};
    },
    '/VolumeDriver.Remove': async (b) => {
      await driver.remove(field(b, 'Name'));
      return {};
    },
    '/VolumeDriver.Mount': async (b) => ({ Mountpoint: await driver.mount(field(b, 'Name'), field(b, 'ID')) }),
    '/VolumeDriver.Unmount': async (b) => {
      await driver.unmount(field(b, 'Name'), field(b, 'ID'));
      return {};
    },
    '/VolumeDriver.Path': async (b) => ({ Mountpoint: await driver.path(field(b, 'Name')) }),
    '/VolumeDriver.Get': async (b) => ({ Volume: await driver.get(field(b, 'Name')) }),
    '/VolumeDriver.List': async () => ({ Volumes: await driver.list() }),
  };
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new BadRequest(`request body larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Serves the API on `socketPath` (mode 0600: root only). */
export async function serveApi(socketPath: string, driver: VolumeDriver): Promise<http.Server> {
  const handlers = routes(driver);
  const server = http.createServer(async (req, res) => {
    const reply = (status: number, body: unknown) => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(status, { 'Content-Type': CONTENT_TYPE });
      res.end(JSON.stringify(body));
    };
    const route = (req.url ?? '').split('?')[0]!;
    try {
      const handler = handlers[route];
      if (req.method !== 'POST') throw new BadRequest(`${req.method} not supported: the plugin API is POST only`);
      if (!handler) throw new BadRequest(`unknown endpoint ${route}`);
      const raw = await readBody(req);
      let body: unknown = {};
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          throw new BadRequest('request body is not valid JSON');
        }
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('request body must be a JSON object');
      log.debug('request', { route, body: route === '/VolumeDriver.Create' ? { Name: (body as Record<string, unknown>).Name } : body });
      const result = await handler(body as Record<string, unknown>);
      log.info('api', { route, name: (body as Record<string, unknown>).Name, ok: true });
      reply(200, result);
    } catch (err) {
      const known = err instanceof DriverError || err instanceof OptionError || err instanceof BadRequest;
      const message = known ? (err as Error).message : `internal error: ${(err as Error).message}`;
      if (!known) log.error('request failed', { route, error: (err as Error).stack ?? String(err) });
      else log.info('api', { route, error: message });
      reply(500, { Err: message });
    }
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  fs.mkdirSync(path.dirname(socketPath), { recursive: true });
  fs.rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The socket is created with the process umask: make it root-only from the start.
    const old = process.umask(0o177);
    server.listen(socketPath, () => {
      process.umask(old);
      resolve();
    });
  });
  fs.chmodSync(socketPath, 0o600);
  return server;
}
