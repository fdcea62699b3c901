/**
 * The metrics endpoint: GET /metrics in Prometheus' text format on `host:port` (TCP, e.g.
 * 127.0.0.1:9464) or on a unix socket path (created mode 0660). Nothing else is served; the endpoint
 * carries no secrets but names images' scopes and keys, so keep it on loopback or a socket.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { isAbsolute } from 'node:path';
import type { Metrics } from './metrics.js';

export interface MetricsListen {
  /** `host:port`, `[v6]:port`, or an absolute unix socket path. */
  listen: string;
}

/** `host:port` → its parts; an absolute path → a socket path; else undefined. */
export function parseListen(listen: string): { path: string } | { host: string; port: number } | undefined {
  if (isAbsolute(listen)) return { path: listen };
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(listen);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

export class MetricsServer {
  private server: Server | undefined;

  constructor(
    private readonly metrics: Metrics,
    private readonly listen: string,
  ) {}

  /** Start listening; resolves with the address (`host:port` with the real port, or the path). */
  async start(): Promise<string> {
    const where = parseListen(this.listen);
    if (!where) throw new Error(`metrics.listen: "${this.listen}" is not host:port or an absolute socket path`);
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('signetd serves /metrics only\n');
        return;
      }
      this.metrics.text().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(req.method === 'HEAD' ? undefined : body),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`),
      );
    });
    server.keepAliveTimeout = 65_000;
    this.server = server;
    if ('path' in where && existsSync(where.path)) unlinkSync(where.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if ('path' in where) server.listen(where.path, () => resolve());
      else server.listen(where.port, where.host, () => resolve());
    });
    if ('path' in where) {
      chmodSync(where.path, 0o660);
      return where.path;
    }
    const addr = server.address();
    return typeof addr === 'object' && addr ? `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : this.listen;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
