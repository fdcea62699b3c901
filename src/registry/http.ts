/**
 * One HTTP exchange with a deadline and a size cap: the timeout covers connect, headers and body (a server
 * that accepts and never answers, or stalls mid-body, is cut off), and bodies are read only up to the cap.
 *
 * node:http/https rather than fetch: fetch refuses some ports outright (6000, 6665…), cannot be given the
 * system CA bundle on Node 20, and would follow redirects without letting us drop the registry's
 * Authorization header when the redirect leaves the registry's origin.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { rootCertificates } from 'node:tls';
import { SignetError } from '../errors.js';

export interface HttpResponse {
  status: number;
  headers: Headers;
  /** The URL that answered, after redirects. */
  url: string;
  body: Buffer;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH';
  url: string;
  headers: Record<string, string>;
  body?: Buffer;
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
  /** What is being done, for error messages: "fetching manifest host/repo:tag". */
  what: string;
}

/** A network failure; `retryable` when the connection was reset (the server may have restarted). */
export class NetworkError extends SignetError {
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean, cause: unknown) {
    super('REGISTRY_UNAVAILABLE', message, { cause });
    this.retryable = retryable;
  }
}

const MAX_REDIRECTS = 5;
/** Debian's and Red Hat's system bundles: a registry signed by a locally installed CA must work. */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];

let agents: { http: http.Agent; https: https.Agent } | undefined;
function agentFor(protocol: string): http.Agent {
  if (agents === undefined) {
    const ca = [...rootCertificates];
    for (const path of SYSTEM_BUNDLES) {
      try {
        ca.push(readFileSync(path, 'utf8'));
        break;
      } catch {
        /* not this distribution's path */
      }
    }
    // An explicit `ca` replaces the store NODE_EXTRA_CA_CERTS would have extended: keep honouring it.
    const extra = process.env['NODE_EXTRA_CA_CERTS'];
    if (extra) {
      try {
        ca.push(readFileSync(extra, 'utf8'));
      } catch {
        /* Node itself warns about an unreadable NODE_EXTRA_CA_CERTS at startup */
      }
    }
    // Keep-alive: signature discovery makes several requests per image. Node unrefs free sockets, so
    // they do not keep a CLI process alive.
    agents = { http: new http.Agent({ keepAlive: true, timeout: 30_000 }), https: new https.Agent({ keepAlive: true, timeout: 30_000, ca }) };
  }
  return protocol === 'https:' ? agents.https : agents.http;
}

export async function httpExchange(req: HttpRequest): Promise<HttpResponse> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), req.timeoutMs);
  const onCallerAbort = () => deadline.abort();
  req.signal?.addEventListener('abort', onCallerAbort, { once: true });
  if (req.signal?.aborted) deadline.abort();
  try {
    let url = parseUrl(req.url, req.what);
    let method = req.method;
    let body = req.body;
    const headers = { ...req.headers };
    for (let hop = 0; ; hop++) {
      const res = await exchangeOnce(url, method, headers, body, req.maxBytes, deadline.signal, req.what);
      const location = res.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(res.status) || location === null || req.method === 'PUT' || req.method === 'PATCH' || req.method === 'POST') {
        return { ...res, url: url.toString() };
      }
      if (hop >= MAX_REDIRECTS) throw new SignetError('REGISTRY_PROTOCOL', `${req.what}: more than ${MAX_REDIRECTS} redirects`);
      const next = parseUrl(location, req.what, url);
      // The registry's token is for the registry: storage behind a redirect gets signed URLs instead.
      if (next.origin !== url.origin) delete headers['authorization'];
      if (res.status === 303) {
        method = method === 'HEAD' ? 'HEAD' : 'GET';
        body = undefined;
      }
      url = next;
    }
  } catch (err) {
    if (req.signal?.aborted) throw new SignetError('REGISTRY_TIMEOUT', `${req.what}: cancelled (deadline reached)`);
    if (deadline.signal.aborted) throw new SignetError('REGISTRY_TIMEOUT', `${req.what}: no complete answer within ${req.timeoutMs} ms`);
    if (err instanceof SignetError) throw err;
    throw networkError(err, req.what);
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onCallerAbort);
  }
}

function parseUrl(text: string, what: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(text, base);
  } catch {
    throw new SignetError('REGISTRY_PROTOCOL', `${what}: not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SignetError('REGISTRY_PROTOCOL', `${what}: ${url.protocol} URL`);
  return url;
}

function exchangeOnce(url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, maxBytes: number, signal: AbortSignal, what: string): Promise<Omit<HttpResponse, 'url'>> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('aborted'));
    const out: Record<string, string> = { ...headers };
    if (body !== undefined || method === 'POST' || method === 'PUT') out['content-length'] = String(body?.length ?? 0);
    const request = (url.protocol === 'https:' ? https : http).request(url, { method, headers: out, agent: agentFor(url.protocol) });
    const onAbort = () => request.destroy(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    const finish = (err: unknown, value?: Omit<HttpResponse, 'url'>) => {
      signal.removeEventListener('abort', onAbort);
      if (err !== undefined) {
        request.destroy();
        reject(err);
      } else resolve(value!);
    };
    request.on('error', (err) => finish(err));
    request.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const responseHeaders = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (v !== undefined) for (const one of Array.isArray(v) ? v : [v]) responseHeaders.append(k, one);
      }
      const redirect = status >= 300 && status < 400;
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (method !== 'HEAD' && !redirect && Number.isFinite(declared) && declared > maxBytes) {
        return finish(new SignetError('BLOB_TOO_LARGE', `${what}: ${declared} bytes is more than the limit of ${maxBytes}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let ended = false;
      res.on('data', (chunk: Buffer) => {
        if (redirect) return; // drained, never kept: only the Location matters
        size += chunk.length;
        if (size > maxBytes) return finish(new SignetError('BLOB_TOO_LARGE', `${what}: more than the limit of ${maxBytes} bytes`));
        chunks.push(chunk);
      });
      res.on('end', () => {
        ended = true;
        finish(undefined, { status, headers: responseHeaders, body: Buffer.concat(chunks) });
      });
      res.on('error', (err) => finish(err));
      // A server that closes the connection mid-body: no 'end', sometimes no 'error' either.
      res.on('close', () => {
        if (!ended) finish(Object.assign(new Error('connection closed before the end of the body'), { code: 'ECONNRESET' }));
      });
    });
    request.end(body);
  });
}

function networkError(err: unknown, what: string): NetworkError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const reason: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EPIPE: 'connection reset',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
  };
  const text = reason[code] ?? (code.startsWith('ERR_TLS') || /CERT|SELF_SIGNED|SIGNATURE/.test(code) ? `TLS verification failed (${code})` : code || (err as Error).message);
  const retryable = code === 'ECONNRESET' || code === 'EPIPE';
  return new NetworkError(`${what}: ${text}${reason[code] !== undefined ? ` (${code})` : ''}`, retryable, err);
}

/**
 * At most `perHost` exchanges in flight to one host at a time; the others wait their turn (first come,
 * first served). A request's own timeout starts when it gets its turn, so a burst of decisions queues
 * here instead of timing out in a registry's accept queue; the caller's signal (the decision's deadline)
 * still bounds the wait.
 */
export class HostConcurrency {
  private readonly hosts = new Map<string, { active: number; waiting: Set<() => void> }>();

  constructor(readonly perHost: number) {
    if (!(perHost >= 1)) throw new RangeError('perHost must be at least 1');
  }

  async run<T>(host: string, what: string, signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    let h = this.hosts.get(host);
    if (h === undefined) {
      h = { active: 0, waiting: new Set() };
      this.hosts.set(host, h);
    }
    if (h.active < this.perHost) h.active++;
    else await this.wait(h, host, what, signal); // the slot is handed over with `active` unchanged
    try {
      return await work();
    } finally {
      const next = h.waiting.values().next();
      if (!next.done) {
        h.waiting.delete(next.value);
        next.value();
      } else if (--h.active === 0) this.hosts.delete(host);
    }
  }

  /** Exchanges in flight and waiting for one host (for tests and status). */
  load(host: string): { active: number; waiting: number } {
    const h = this.hosts.get(host);
    return { active: h?.active ?? 0, waiting: h?.waiting.size ?? 0 };
  }

  private wait(h: { waiting: Set<() => void> }, host: string, what: string, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(new SignetError('REGISTRY_TIMEOUT', `${what}: cancelled (deadline reached) before a connection to ${host} was free`));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        h.waiting.delete(turn);
        reject(new SignetError('REGISTRY_TIMEOUT', `${what}: cancelled (deadline reached) while waiting for one of the ${this.perHost} connections to ${host}`));
      };
      const turn = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      h.waiting.add(turn);
    });
  }
}
