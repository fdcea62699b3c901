/**
 * A registry that lies, stalls and floods, for tests. It is a small, complete OCI distribution server
 * in memory (pushes, pulls, tags with pagination, the referrers API), so real images and real
 * signatures can be pushed to it with the project's RegistryClient; then rules make chosen requests
 * misbehave: oversize, endless or trickling bodies, hangs, redirect loops, redirects and token realms
 * on another host, `Link` loops, huge or replaced bodies (digest mismatches, huge referrer indexes and
 * signature manifests), error messages full of control characters, huge or garbage tokens (a second
 * instance on 127.0.0.2 serves as another host: redirect target or token realm), huge
 * headers, reset connections.
 *
 * Every request is recorded (method, path, Authorization) and the number in flight is tracked, so tests
 * can also assert what the client sent and how many requests it had open at once.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type HostileAction =
  /** Answer this status with an OCI error body whose message is `message` (control characters welcome). */
  | { kind: 'status'; status: number; code?: string; message?: string; headers?: Record<string, string> }
  /** Serve these bytes instead of the real body (digest mismatch, garbage, huge documents); functions get the request path. */
  | {
      kind: 'body';
      body: Buffer | ((path: string) => Buffer);
      status?: number;
      contentType?: string;
      headers?: Record<string, string> | ((path: string) => Record<string, string>);
    }
  /** Declare `declared` bytes in Content-Length, then send bytes as fast as the client takes them until it hangs up. */
  | { kind: 'oversize'; declared: number }
  /** A chunked body that never ends: `chunk` repeated as fast as the client reads. */
  | { kind: 'endless'; chunk?: string }
  /** Headers, then one byte every `intervalMs`, forever. */
  | { kind: 'trickle'; intervalMs: number }
  /** Accept the request and never answer. */
  | { kind: 'hang' }
  /** Wait `ms`, then serve normally; `serial`: one such request at a time (a registry at capacity). */
  | { kind: 'delay'; ms: number; serial?: boolean }
  /** Redirect (302) to `to` (a URL, or a function of the request path); to the same path: a loop. */
  | { kind: 'redirect'; to: string | ((path: string) => string); status?: number }
  /** Serve normally, plus these headers (e.g. a `Link` that points back to the same page). */
  | { kind: 'headers'; headers: Record<string, string> | ((path: string) => Record<string, string>) }
  /**
   * Demand a Bearer token from `realm` (401 with a challenge) unless the request carries
   * `Authorization: Bearer <token>` (any Bearer token when `token` is not given).
   */
  | { kind: 'challenge'; realm: string; service?: string; token?: string }
  /** Close the connection without an answer. */
  | { kind: 'reset' };

export interface HostileRule {
  method?: string;
  path: RegExp;
  action: HostileAction;
  /** Apply this many times, then stop matching (unlimited when absent). */
  times?: number;
  hits?: number;
}

export interface SeenRequest {
  method: string;
  path: string;
  authorization?: string;
}

export interface HostileRegistry {
  /** `host:port`, for image names and insecureRegistries. */
  host: string;
  url: string;
  rules: HostileRule[];
  seen: SeenRequest[];
  /** Most requests in flight at once since the last reset. */
  peakInFlight: number;
  /** Arm a rule (returns it, to read `hits`). */
  on(path: RegExp, action: HostileAction, options?: { method?: string; times?: number }): HostileRule;
  /** Drop every rule, forget requests seen and the peak. */
  reset(): void;
  /** The stored bytes of a manifest (by tag or digest) or blob, to build variants of. */
  manifest(repo: string, reference: string): Buffer | undefined;
  blob(digest: string): Buffer | undefined;
  /** Store a manifest directly (no client needed); returns its digest. */
  putManifest(repo: string, reference: string | undefined, bytes: Buffer, mediaType: string): string;
  stop(): Promise<void>;
}

export interface HostileRegistryOptions {
  /** Listen on this loopback address (127.0.0.2 makes a different host from 127.0.0.1). */
  address?: string;
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
/** Greedy repository name: `/v2/a/referrers/blobs/sha256:…` is a blob of repository `a/referrers`. */
const ROUTE = /^\/v2\/(.+)\/(manifests|blobs\/uploads|blobs|tags\/list|referrers)(?:\/([^/?]*))?$/;

export async function startHostileRegistry(options: HostileRegistryOptions = {}): Promise<HostileRegistry> {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { bytes: Buffer; mediaType: string }>(); // key: repo@digest
  const tags = new Map<string, Map<string, string>>(); // repo → tag → digest
  const uploads = new Map<string, Buffer[]>();
  const rules: HostileRule[] = [];
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let serialQueue: Promise<void> = Promise.resolve();
  const state = { peakInFlight: 0 };

  const tagsOf = (repo: string): Map<string, string> => {
    let t = tags.get(repo);
    if (t === undefined) tags.set(repo, (t = new Map()));
    return t;
  };
  const resolveRef = (repo: string, ref: string): string | undefined => (ref.includes(':') ? ref : tags.get(repo)?.get(ref));
  const putManifest = (repo: string, reference: string | undefined, bytes: Buffer, mediaType: string): string => {
    const digest = sha256(bytes);
    manifests.set(`${repo}@${digest}`, { bytes, mediaType });
    if (reference !== undefined && !reference.includes(':')) tagsOf(repo).set(reference, digest);
    return digest;
  };
  const ociError = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void => {
    const body = Buffer.from(JSON.stringify({ errors: [{ code, message }] }));
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(body.length), ...headers });
    res.end(body);
  };
  const readBody = (req: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });

  /** The real registry: what a well-behaved server answers. */
  const serve = async (req: IncomingMessage, res: ServerResponse, extraHeaders: Record<string, string> = {}): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://registry');
    const method = req.method ?? 'GET';
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0', ...extraHeaders });
      return void res.end('{}');
    }
    const m = ROUTE.exec(url.pathname);
    if (m === null) return ociError(res, 404, 'NOT_FOUND', 'no such route');
    const [, repo, kind, rest = ''] = m as unknown as [string, string, string, string?];
    const send = (status: number, body: Buffer, headers: Record<string, string>): void => {
      res.writeHead(status, { 'content-length': String(body.length), ...headers, ...extraHeaders });
      res.end(method === 'HEAD' ? undefined : body);
    };
    if (kind === 'manifests') {
      if (method === 'PUT') {
        const bytes = await readBody(req);
        const digest = putManifest(repo, rest, bytes, String(req.headers['content-type'] ?? ''));
        res.writeHead(201, { location: `/v2/${repo}/manifests/${digest}`, 'docker-content-digest': digest, ...extraHeaders });
        return void res.end();
      }
      const digest = resolveRef(repo, rest);
      const found = digest === undefined ? undefined : manifests.get(`${repo}@${digest}`);
      if (found === undefined) return ociError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      return send(200, found.bytes, { 'content-type': found.mediaType, 'docker-content-digest': digest! });
    }
    if (kind === 'blobs') {
      const found = blobs.get(rest);
      if (found === undefined) return ociError(res, 404, 'BLOB_UNKNOWN', 'blob unknown');
      return send(200, found, { 'content-type': 'application/octet-stream', 'docker-content-digest': rest });
    }
    if (kind === 'blobs/uploads') {
      if (method === 'POST' && rest === '') {
        const id = randomUUID();
        uploads.set(id, []);
        await readBody(req);
        res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}`, 'docker-upload-uuid': id, 'content-length': '0', ...extraHeaders });
        return void res.end();
      }
      const parts = uploads.get(rest);
      if (parts === undefined) return ociError(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'upload unknown');
      parts.push(await readBody(req));
      if (method === 'PATCH') {
        res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${rest}`, 'content-length': '0' });
        return void res.end();
      }
      const bytes = Buffer.concat(parts);
      const digest = url.searchParams.get('digest') ?? '';
      uploads.delete(rest);
      if (sha256(bytes) !== digest) return ociError(res, 400, 'DIGEST_INVALID', 'digest does not match');
      blobs.set(digest, bytes);
      res.writeHead(201, { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest, 'content-length': '0' });
      return void res.end();
    }
    if (kind === 'tags/list') {
      const all = [...(tags.get(repo)?.keys() ?? [])].sort();
      const n = Number(url.searchParams.get('n') ?? 0);
      const last = url.searchParams.get('last');
      const after = last === null ? all : all.filter((t) => t > last);
      const page = n > 0 ? after.slice(0, n) : after;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (n > 0 && after.length > n) headers['link'] = `</v2/${repo}/tags/list?n=${n}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`;
      return send(200, Buffer.from(JSON.stringify({ name: repo, tags: page })), headers);
    }
    // referrers: every manifest of the repository whose subject is the digest
    const artifactType = url.searchParams.get('artifactType');
    const list: unknown[] = [];
    for (const [key, { bytes, mediaType }] of manifests) {
      if (!key.startsWith(`${repo}@`)) continue;
      let doc: { subject?: { digest?: string }; artifactType?: string; config?: { mediaType?: string }; annotations?: Record<string, string> };
      try {
        doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
      } catch {
        continue;
      }
      if (doc.subject?.digest !== rest) continue;
      const type = doc.artifactType ?? doc.config?.mediaType;
      if (artifactType !== null && type !== artifactType) continue;
      list.push({
        mediaType,
        digest: key.slice(repo.length + 1),
        size: bytes.length,
        artifactType: type,
        ...(doc.annotations ? { annotations: doc.annotations } : {}),
      });
    }
    return send(200, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: list })), {
      'content-type': 'application/vnd.oci.image.index.v1+json',
      ...(artifactType !== null ? { 'oci-filters-applied': 'artifactType' } : {}),
    });
  };

  const misbehave = async (rule: HostileRule, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const a = rule.action;
    const path = req.url ?? '/';
    switch (a.kind) {
      case 'status':
        req.resume();
        return ociError(res, a.status, a.code ?? 'UNKNOWN', a.message ?? `injected ${a.status}`, a.headers);
      case 'body': {
        req.resume();
        const body = typeof a.body === 'function' ? a.body(path) : a.body;
        const headers = typeof a.headers === 'function' ? a.headers(path) : a.headers;
        res.writeHead(a.status ?? 200, { 'content-type': a.contentType ?? 'application/json', 'content-length': String(body.length), ...headers });
        return void res.end(req.method === 'HEAD' ? undefined : body);
      }
      case 'oversize':
      case 'endless': {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json', ...(a.kind === 'oversize' ? { 'content-length': String(a.declared) } : {}) });
        const chunk = Buffer.from((a.kind === 'endless' ? a.chunk : undefined) ?? ' '.repeat(64 * 1024));
        let sent = 0;
        const pump = (): void => {
          while (!res.destroyed) {
            if (a.kind === 'oversize' && sent + chunk.length > a.declared) return void res.end(chunk.subarray(0, a.declared - sent));
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
        };
        return pump();
      }
      case 'trickle': {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json' });
        const t = setInterval(() => (res.destroyed ? (clearInterval(t), timers.delete(t)) : res.write(' ')), a.intervalMs);
        timers.add(t);
        return;
      }
      case 'hang':
        req.resume();
        return;
      case 'delay': {
        const pause = (): Promise<void> =>
          new Promise<void>((r) => {
            const t = setTimeout(() => (timers.delete(t), r()), a.ms);
            timers.add(t);
          });
        if (a.serial) {
          const turn = serialQueue.then(pause);
          serialQueue = turn.catch(() => undefined);
          await turn;
        } else await pause();
        return serve(req, res);
      }
      case 'redirect':
        req.resume();
        res.writeHead(a.status ?? 302, { location: typeof a.to === 'function' ? a.to(path) : a.to, 'content-length': '0' });
        return void res.end();
      case 'headers':
        return serve(req, res, typeof a.headers === 'function' ? a.headers(path) : a.headers);
      case 'challenge':
        if (a.token === undefined ? /^Bearer \S/.test(req.headers.authorization ?? '') : req.headers.authorization === `Bearer ${a.token}`)
          return serve(req, res);
        req.resume();
        return ociError(res, 401, 'UNAUTHORIZED', 'authentication required', {
          'www-authenticate': `Bearer realm="${a.realm}",service="${a.service ?? 'hostile'}"`,
        });
      case 'reset':
        req.socket.destroy();
        return;
    }
  };

  const server: Server = createServer((req, res) => {
    inFlight++;
    state.peakInFlight = Math.max(state.peakInFlight, inFlight);
    let counted = true;
    const finished = (): void => {
      if (counted) inFlight--;
      counted = false;
    };
    res.once('finish', finished);
    res.once('close', finished);
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    seen.push({ method, path, ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}) });
    const rule = rules.find((r) => r.path.test(path) && (r.method === undefined || r.method === method) && (r.times === undefined || (r.hits ?? 0) < r.times));
    const work = rule === undefined ? serve(req, res) : ((rule.hits = (rule.hits ?? 0) + 1), misbehave(rule, req, res));
    work.catch(() => res.destroy());
  });
  // Large enough for the huge headers some cases send back; what the client sends is the client's business.
  server.maxHeadersCount = 0;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const address = options.address ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(0, address, r));
  const port = (server.address() as { port: number }).port;
  const handle: HostileRegistry = {
    host: `${address}:${port}`,
    url: `http://${address}:${port}`,
    rules,
    seen,
    get peakInFlight() {
      return state.peakInFlight;
    },
    set peakInFlight(v: number) {
      state.peakInFlight = v;
    },
    on(path, action, opts = {}) {
      const rule: HostileRule = {
        path,
        action,
        ...(opts.method !== undefined ? { method: opts.method } : {}),
        ...(opts.times !== undefined ? { times: opts.times } : {}),
      };
      rules.push(rule);
      return rule;
    },
    reset() {
      rules.splice(0);
      seen.splice(0);
      state.peakInFlight = inFlight;
    },
    manifest(repo, reference) {
      const digest = resolveRef(repo, reference);
      return digest === undefined ? undefined : manifests.get(`${repo}@${digest}`)?.bytes;
    },
    blob: (digest) => blobs.get(digest),
    putManifest,
    async stop() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return handle;
}

/**
 * A token realm that answers every request with `body` (a huge token, garbage, a token with control
 * characters…), optionally on another loopback address (another host). Records what it was sent.
 */
export async function startHostileRealm(
  answer: { status?: number; body: Buffer | string },
  options: HostileRegistryOptions = {},
): Promise<{ url: string; seen: SeenRequest[]; stop(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    seen.push({
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
    });
    req.resume();
    const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
    res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', 'content-length': String(body.length) });
    res.end(body);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const address = options.address ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(0, address, r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${address}:${port}/token`,
    seen,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
