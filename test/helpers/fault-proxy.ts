/**
 * An HTTP proxy on 127.0.0.1 in front of the real registry. It forwards everything, except requests that
 * match a rule: those get a status code, hang, stall mid-body, a reset connection, altered bytes or a
 * redirect. The registry behind it is the real one, so only the injected fault is fake.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type FaultAction =
  /** Answer this status with an OCI error body (and Retry-After when given). */
  | { kind: 'status'; status: number; retryAfter?: string }
  /** Accept the request and never answer. */
  | { kind: 'hang' }
  /** Send the registry's real headers and half of its body, then nothing more. */
  | { kind: 'stall' }
  /** Close the connection without an answer (the client sees a reset or "other side closed"). */
  | { kind: 'reset' }
  /** Forward, but flip a bit in the last byte of the body (headers unchanged). */
  | { kind: 'corrupt' }
  /** Forward, but serve these bytes instead of the registry's body (Content-Length adjusted, some headers dropped). */
  | { kind: 'replace'; body: Buffer; dropHeaders?: string[] }
  /** Answer 307 to the same path on the registry itself, as registries redirect blobs to storage. */
  | { kind: 'redirect' }
  /**
   * Serve the registry's real tag list in pages (`n`, `last`, `Link: <…>; rel="next"`), as the distribution
   * spec describes: distribution 2.8 ignores `n` and always answers the whole list. `pageSize` is the
   * page size when the client asks for none.
   */
  | { kind: 'paginateTags'; pageSize: number }
  /** Forward, but rewrite the Location header: made relative to the host, or replaced by `value`. */
  | { kind: 'location'; relative?: true; value?: string };

export interface FaultRule {
  method?: string;
  path: RegExp;
  action: FaultAction;
  /** Apply this many times, then let requests through (unlimited when absent). */
  times?: number;
  /** How many requests this rule has answered. */
  hits?: number;
}

export interface FaultProxy {
  host: string;
  url: string;
  rules: FaultRule[];
  /** Every request seen, as `METHOD path`, in order. */
  seen: string[];
  /** Requests seen whose path matches. */
  count(path: RegExp, method?: string): number;
  /** Drop all rules and forget the requests seen. */
  reset(): void;
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const [targetHost, targetPort] = target.split(':');
  const rules: FaultRule[] = [];
  const seen: string[] = [];
  const sockets = new Set<Socket>();

  const upstream = (req: IncomingMessage, onResponse: (up: IncomingMessage) => void, res: ServerResponse) => {
    const up = request({ host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, onResponse);
    up.on('error', () => res.destroy());
    req.pipe(up);
  };
  const buffered = (req: IncomingMessage, res: ServerResponse, done: (up: IncomingMessage, body: Buffer) => void) =>
    upstream(
      req,
      (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => done(up, Buffer.concat(chunks)));
      },
      res,
    );

  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const rule = rules.find(
      (r) => r.path.test(req.url ?? '') && (r.method === undefined || r.method === req.method) && (r.times === undefined || (r.hits ?? 0) < r.times),
    );
    if (rule === undefined) {
      upstream(
        req,
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
        res,
      );
      return;
    }
    rule.hits = (rule.hits ?? 0) + 1;
    const a = rule.action;
    switch (a.kind) {
      case 'status':
        res.writeHead(a.status, { 'content-type': 'application/json', ...(a.retryAfter !== undefined ? { 'retry-after': a.retryAfter } : {}) });
        res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `injected ${a.status}` }] }));
        return;
      case 'hang':
        req.resume();
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'stall':
        buffered(req, res, (up, body) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          res.write(body.subarray(0, Math.max(1, Math.floor(body.length / 2))));
        });
        return;
      case 'corrupt':
        buffered(req, res, (up, body) => {
          if (body.length > 0) body[body.length - 1] = body[body.length - 1]! ^ 0x01;
          res.writeHead(up.statusCode ?? 502, up.headers);
          res.end(body);
        });
        return;
      case 'replace':
        buffered(req, res, (up) => {
          const headers = { ...up.headers, 'content-length': String(a.body.length) };
          for (const h of a.dropHeaders ?? []) delete (headers as Record<string, unknown>)[h.toLowerCase()];
          res.writeHead(up.statusCode ?? 502, headers);
          res.end(a.body);
        });
        return;
      case 'paginateTags': {
        const asked = new URL(req.url ?? '/', 'http://proxy');
        const n = Number(asked.searchParams.get('n') ?? a.pageSize);
        const last = asked.searchParams.get('last');
        req.url = asked.pathname;
        buffered(req, res, (up, body) => {
          if (up.statusCode !== 200) {
            res.writeHead(up.statusCode ?? 502, up.headers);
            return res.end(body);
          }
          const doc = JSON.parse(body.toString('utf8')) as { name: string; tags: string[] };
          const all = [...doc.tags].sort().filter((t) => last === null || t > last);
          const page = all.slice(0, n);
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (all.length > n) headers['link'] = `<${asked.pathname}?n=${n}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`;
          res.writeHead(200, headers);
          res.end(JSON.stringify({ name: doc.name, tags: page }));
        });
        return;
      }
      case 'location':
        upstream(
          req,
          (up) => {
            const headers = { ...up.headers };
            if (a.value !== undefined) headers.location = a.value;
            else if (headers.location !== undefined) {
              const u = new URL(headers.location, 'http://proxy');
              headers.location = `${u.pathname}${u.search}`;
            }
            res.writeHead(up.statusCode ?? 502, headers);
            up.pipe(res);
          },
          res,
        );
        return;
      case 'redirect':
        req.resume();
        res.writeHead(307, { location: `http://${target}${req.url}` });
        res.end();
        return;
    }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    rules,
    seen,
    count: (path, method) =>
      seen.filter((s) => {
        const [m, p] = s.split(' ');
        return path.test(p ?? '') && (method === undefined || m === method);
      }).length,
    reset() {
      rules.splice(0);
      seen.splice(0);
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
