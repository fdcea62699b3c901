/**
 * An HTTP proxy on 127.0.0.1 in front of the real registry that forwards everything, except requests
 * matching a rule: those get a status code, hang forever, stall mid-body, or get altered bytes.
 * Failure injection for the registry client; the registry behind it is the real one.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type FaultAction =
  | { kind: 'status'; status: number; retryAfter?: string; times?: number }
  | { kind: 'hang' }
  | { kind: 'stall' }
  | { kind: 'corrupt' };

export interface FaultRule {
  method?: string;
  path: RegExp;
  action: FaultAction;
}

export interface FaultyProxy {
  host: string;
  rules: FaultRule[];
  /** Requests seen, as `METHOD path`. */
  seen: string[];
  stop(): Promise<void>;
}

export async function startFaultyProxy(target: string): Promise<FaultyProxy> {
  const [targetHost, targetPort] = target.split(':');
  const rules: FaultRule[] = [];
  const seen: string[] = [];
  const hanging = new Set<ServerResponse>();
  const forward = (req: IncomingMessage, res: ServerResponse, corrupt: boolean) => {
    const up = request({ host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      if (!corrupt) {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      upRes.on('data', (c: Buffer) => chunks.push(c));
      upRes.on('end', () => {
        const body = Buffer.concat(chunks);
        if (body.length > 0) body[body.length - 1] = body[body.length - 1]! ^ 0x20;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        res.end(body);
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  };
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const exhausted = (r: FaultRule) => r.action.kind === 'status' && r.action.times !== undefined && r.action.times <= 0;
    const rule = rules.find((r) => r.path.test(req.url ?? '') && (r.method === undefined || r.method === req.method) && !exhausted(r));
    if (rule === undefined) return forward(req, res, false);
    const a = rule.action;
    if (a.kind === 'status') {
      if (a.times !== undefined) a.times--;
      res.writeHead(a.status, { 'content-type': 'application/json', ...(a.retryAfter ? { 'retry-after': a.retryAfter } : {}) });
      res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `injected ${a.status}` }] }));
    } else if (a.kind === 'hang') {
      hanging.add(res);
    } else if (a.kind === 'stall') {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': '1000' });
      res.write('{"schemaVersion":2,');
      hanging.add(res);
    } else {
      forward(req, res, true);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    rules,
    seen,
    async stop() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
