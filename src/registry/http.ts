/**
 * One HTTP exchange with a deadline and a size cap: the timeout covers connect, headers and body (a server
 * that accepts and never answers, or stalls mid-body, is cut off), and bodies are read only up to the cap.
 * A host's hosts.toml settings ride along: its TLS material, its `dial_timeout` (bounding the TCP connect
 * alone, as Go's dialer does), and for an `http://` host with TLS settings the fallback to plain HTTP.
 *
 * node:http/https rather than fetch: fetch refuses some ports outright (6000, 6665…), cannot be given the
 * system CA bundle on Node 20, and would follow redirects without letting us drop the registry's
 * Authorization header when the redirect leaves the registry's origin.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { rootCertificates } from 'node:tls';
import type { Dispatcher } from 'undici';
import { SignetError } from '../errors.js';
import type { HostTls, RegistryHost } from './hosts.js';

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
  /** A host's own TLS settings (hosts.toml `ca`, `client`, `skip_verify`); else the system CAs. */
  tls?: HostTls;
  /** hosts.toml `dial_timeout`: connecting to the host may take this long (the request's own timeout still bounds it). */
  dialTimeoutMs?: number;
  /** An `http://` host with TLS settings, asked over https: plain HTTP when it answers plain HTTP (see hosts.ts). */
  httpFallback?: boolean;
}

/** What of a hosts.toml host an exchange with that host (and only that host) needs. */
export function hostConnection(host: RegistryHost): Pick<HttpRequest, 'tls' | 'dialTimeoutMs' | 'httpFallback'> {
  return {
    ...(host.tls !== undefined ? { tls: host.tls } : {}),
    ...(host.dialTimeoutMs !== undefined ? { dialTimeoutMs: host.dialTimeoutMs } : {}),
    ...(host.httpFallback === true ? { httpFallback: true } : {}),
  };
}

/** The error of a connection not made within a host's dial_timeout. */
const DIAL_TIMEOUT = 'SIGNET_DIAL_TIMEOUT';

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

function systemCas(): string[] {
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
  return ca;
}

interface TlsMaterial {
  key: string;
  options: { ca: string[]; cert?: string[]; key?: string[]; rejectUnauthorized: boolean };
}

let systemCa: string[] | undefined;
/**
 * The TLS options of one host: the system CAs plus its own, its client pairs, skip_verify. Files are read
 * each time (they are small; a renewed certificate takes effect at once) and the agents cached by content.
 */
function tlsMaterial(tls: HostTls | undefined, what: string): TlsMaterial {
  systemCa ??= systemCas();
  if (tls === undefined) return { key: 'system', options: { ca: systemCa, rejectUnauthorized: true } };
  const read = (file: string, kind: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new SignetError(
        'CONFIG_INVALID',
        `${what}: cannot read the ${kind} ${file} named in the registry's hosts.toml (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  };
  const ca = tls.ca.map((f) => read(f, 'CA certificate'));
  const certs: string[] = [];
  const keys: string[] = [];
  for (const [cert, key] of tls.clients) {
    const c = read(cert, 'client certificate');
    certs.push(c);
    keys.push(key === '' ? c : read(key, 'client key'));
  }
  const options = { ca: [...systemCa, ...ca], ...(certs.length > 0 ? { cert: certs, key: keys } : {}), rejectUnauthorized: tls.skipVerify !== true };
  const hash = createHash('sha256')
    .update(JSON.stringify([ca, certs, keys, options.rejectUnauthorized]))
    .digest('hex');
  return { key: hash, options };
}

const httpAgent = new http.Agent({ keepAlive: true, timeout: 30_000 });
const httpsAgents = new Map<string, https.Agent>();
const proxyAgents = new Map<string, Dispatcher>();

function agentFor(protocol: string, tls: TlsMaterial): http.Agent {
  if (protocol !== 'https:') return httpAgent;
  let agent = httpsAgents.get(tls.key);
  if (agent === undefined) {
    // Keep-alive: signature discovery makes several requests per image. Node unrefs free sockets, so
    // they do not keep a CLI process alive.
    agent = new https.Agent({ keepAlive: true, timeout: 30_000, ...tls.options });
    httpsAgents.set(tls.key, agent);
    if (httpsAgents.size > 64) httpsAgents.delete(httpsAgents.keys().next().value!);
  }
  return agent;
}

/** HTTP_PROXY / HTTPS_PROXY (either case) set: requests go through undici's EnvHttpProxyAgent, which also honours NO_PROXY. */
export function proxyConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy'].some((k) => (env[k] ?? '') !== '');
}

/**
 * undici is imported only when a proxy is configured: importing it installs its Agent as the process's
 * global dispatcher when none is set yet, which Node 20's own fetch (an older undici) then uses.
 */
let undiciModule: typeof import('undici') | undefined;
async function undici(): Promise<typeof import('undici')> {
  undiciModule ??= await import('undici');
  return undiciModule;
}

async function proxyDispatcher(tls: TlsMaterial, dialTimeoutMs: number | undefined): Promise<Dispatcher> {
  const { EnvHttpProxyAgent } = await undici();
  // EnvHttpProxyAgent reads the environment when made: one per TLS setting and proxy environment.
  const env = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy'].map((k) => process.env[k] ?? '').join('\n');
  const key = `${tls.key}\n${dialTimeoutMs ?? ''}\n${env}`;
  let d = proxyAgents.get(key);
  if (d === undefined) {
    // `connect` for direct connections (NO_PROXY), `requestTls` for the TLS inside a CONNECT tunnel.
    const connect = dialTimeoutMs !== undefined ? { ...tls.options, timeout: dialTimeoutMs } : tls.options;
    d = new EnvHttpProxyAgent({ connect, requestTls: tls.options, keepAliveTimeout: 30_000 });
    proxyAgents.set(key, d);
    if (proxyAgents.size > 64) proxyAgents.delete(proxyAgents.keys().next().value!);
  }
  return d;
}

export async function httpExchange(req: HttpRequest): Promise<HttpResponse> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), req.timeoutMs);
  const onCallerAbort = () => deadline.abort();
  req.signal?.addEventListener('abort', onCallerAbort, { once: true });
  if (req.signal?.aborted) deadline.abort();
  try {
    let url = parseUrl(req.url, req.what);
    const ownHost = url.host;
    let method = req.method;
    let body = req.body;
    const headers = { ...req.headers };
    for (let hop = 0; ; hop++) {
      const tls = tlsMaterial(req.tls, req.what);
      const fallback = req.httpFallback === true && url.protocol === 'https:' && url.host === ownHost;
      if (fallback && fellBackToHttp.has(url.host)) url = plainHttp(url);
      const once = async (): Promise<Omit<HttpResponse, 'url'>> =>
        proxyConfigured()
          ? await exchangeViaUndici(url, method, headers, body, req.maxBytes, deadline.signal, req.what, await proxyDispatcher(tls, req.dialTimeoutMs))
          : await exchangeOnce(url, method, headers, body, req.maxBytes, deadline.signal, req.what, tls, req.dialTimeoutMs);
      let res: Omit<HttpResponse, 'url'>;
      try {
        res = await once();
      } catch (err) {
        if (!(fallback && url.protocol === 'https:' && !deadline.signal.aborted && httpFallbackApplies(err, url))) throw err;
        // Remembered per host, as containerd's fallback transport does: later requests go straight to HTTP.
        if (fellBackToHttp.size >= 256) fellBackToHttp.clear();
        fellBackToHttp.add(url.host);
        url = plainHttp(url);
        res = await once();
      }
      if (url.protocol === 'http:' && res.status === 400 && /HTTP request to an HTTPS server/i.test(res.body.toString('utf8', 0, 200))) {
        throw new SignetError(
          'REGISTRY_PROTOCOL',
          `${req.what}: the registry speaks TLS, but it is asked over plain HTTP: remove it from insecureRegistries (--insecure-registry), or name it https://… in its hosts.toml`,
        );
      }
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
    throw networkError(err, req.what, req.url);
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onCallerAbort);
  }
}

/** Hosts with httpFallback that answered plain HTTP (or refused port 443) once. */
const fellBackToHttp = new Set<string>();

function plainHttp(url: URL): URL {
  const u = new URL(url);
  u.protocol = 'http:';
  return u;
}

/**
 * containerd's isTLSError / isPortError: the host answered the TLS handshake in plain HTTP; or, with no
 * port named, nothing took the connection on 443 (then port 80 is worth a try).
 */
function httpFallbackApplies(err: unknown, url: URL): boolean {
  const e = innermost(err);
  const code = e.code ?? '';
  if (code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long|http request/i.test(String(e.message ?? '')))
    return true;
  return url.port === '' && (code === 'ECONNREFUSED' || code === DIAL_TIMEOUT || code === 'ETIMEDOUT');
}

/** undici wraps the socket's error. */
function innermost(err: unknown): NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException & { cause?: unknown };
  if (!e.code?.match(/^E[A-Z]+$/) && (e.cause as NodeJS.ErrnoException | undefined)?.code !== undefined) return e.cause as NodeJS.ErrnoException;
  return e;
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

function exchangeOnce(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  maxBytes: number,
  signal: AbortSignal,
  what: string,
  tls: TlsMaterial,
  dialTimeoutMs: number | undefined,
): Promise<Omit<HttpResponse, 'url'>> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('aborted'));
    const out: Record<string, string> = { ...headers };
    if (body !== undefined || method === 'POST' || method === 'PUT') out['content-length'] = String(body?.length ?? 0);
    const request = (url.protocol === 'https:' ? https : http).request(url, { method, headers: out, agent: agentFor(url.protocol, tls) });
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
    // dial_timeout bounds the TCP connect only (Go's net.Dialer); a kept-alive socket is already connected.
    if (dialTimeoutMs !== undefined)
      request.once('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(
          () => request.destroy(Object.assign(new Error(`no connection within ${dialTimeoutMs} ms`), { code: DIAL_TIMEOUT, dialTimeoutMs })),
          dialTimeoutMs,
        );
        const done = () => clearTimeout(timer);
        socket.once('connect', done);
        socket.once('close', done);
      });
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

function networkError(err: unknown, what: string, url: string): NetworkError {
  const e = innermost(err);
  const code = e.code ?? '';
  const reason: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EPIPE: 'connection reset',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
  };
  const https = url.startsWith('https:');
  const message = String(e.message ?? '');
  let text: string;
  if (https && (code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long|http request/i.test(message))) {
    // The classic: a plain-HTTP registry asked over TLS.
    text = `the registry does not speak TLS (it answers plain HTTP; ${code || 'EPROTO'}): if it is meant to be reached over plain HTTP, list its host:port in insecureRegistries (signetd.yaml) or pass --insecure-registry, or name it http://… in its hosts.toml`;
  } else if (!https && code.startsWith('HPE_')) {
    text = `the registry's answer is not HTTP (${code}): is it a TLS registry listed in insecureRegistries (or named http://… in hosts.toml)? Remove it from there`;
  } else if (code === DIAL_TIMEOUT) {
    text = `no connection within ${(e as { dialTimeoutMs?: number }).dialTimeoutMs ?? '?'} ms (dial_timeout in its hosts.toml)`;
  } else if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    text = 'no connection within the dial_timeout of its hosts.toml';
  } else
    text =
      reason[code] ??
      (code.startsWith('ERR_TLS') || /CERT|SELF_SIGNED|SIGNATURE/.test(code)
        ? `TLS verification failed (${code}): give the registry's CA with ca = "…" in its hosts.toml (registry.config_path)`
        : code || message);
  const retryable = code === 'ECONNRESET' || code === 'EPIPE';
  return new NetworkError(`${what}: ${text}${reason[code] !== undefined ? ` (${code})` : ''}`, retryable, err);
}

/** The same exchange through undici (used when a proxy is configured in the environment). */
async function exchangeViaUndici(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  maxBytes: number,
  signal: AbortSignal,
  what: string,
  dispatcher: Dispatcher,
): Promise<Omit<HttpResponse, 'url'>> {
  const out: Record<string, string> = { ...headers };
  delete out['content-length'];
  const res = await (
    await undici()
  ).request(url, {
    method: method as Dispatcher.HttpMethod,
    headers: out,
    ...(body !== undefined ? { body } : method === 'POST' || method === 'PUT' ? { body: Buffer.alloc(0) } : {}),
    dispatcher,
    signal,
  });
  const responseHeaders = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    if (v !== undefined) for (const one of Array.isArray(v) ? v : [v]) responseHeaders.append(k, one);
  }
  const status = res.statusCode;
  const redirect = status >= 300 && status < 400;
  const declared = Number(res.headers['content-length'] ?? NaN);
  if (method !== 'HEAD' && !redirect && Number.isFinite(declared) && declared > maxBytes) {
    res.body.destroy();
    throw new SignetError('BLOB_TOO_LARGE', `${what}: ${declared} bytes is more than the limit of ${maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    if (redirect) continue;
    size += chunk.length;
    if (size > maxBytes) {
      res.body.destroy();
      throw new SignetError('BLOB_TOO_LARGE', `${what}: more than the limit of ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return { status, headers: responseHeaders, body: Buffer.concat(chunks) };
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
    if (signal?.aborted)
      return Promise.reject(new SignetError('REGISTRY_TIMEOUT', `${what}: cancelled (deadline reached) before a connection to ${host} was free`));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        h.waiting.delete(turn);
        reject(
          new SignetError('REGISTRY_TIMEOUT', `${what}: cancelled (deadline reached) while waiting for one of the ${this.perHost} connections to ${host}`),
        );
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
