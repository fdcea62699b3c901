/**
 * A client for the OCI distribution API: manifests, blobs, tags, pushes. Anonymous, Basic and Bearer
 * authentication; digests verified on everything fetched by digest; sizes capped; retries with backoff
 * on 429/5xx. Errors name the operation and target, never credentials.
 */
import { createHash } from 'node:crypto';
import { SignetError, type ErrorCode } from '../errors.js';
import { basicAuthorization, credentialsMayGoTo, parseChallenges, parseTokenResponse, TokenCache, type Challenge } from './auth.js';
import { CredentialStore } from './credentials.js';
import { hostLabel, RegistryHosts, type HostCapability, type RegistryHost } from './hosts.js';
import { HostConcurrency, hostConnection, httpExchange, NetworkError, type HttpRequest, type HttpResponse } from './http.js';
import { isDigest, isRegistryTag, isValidRepository } from './reference.js';
import { MANIFEST_MEDIA_TYPES, MEDIA_TYPES, type Descriptor, type FetchedManifest } from './types.js';
import { VERSION } from '../version.js';
import { DEFAULTS } from '../defaults.js';

export interface RepositoryRef {
  registry: string;
  repository: string;
}

export interface RegistryClientOptions {
  /** `host:port` registries reached over plain HTTP; everything else is HTTPS with the system CAs. */
  insecureRegistries?: string[];
  dockerConfigPath?: string;
  /**
   * containerd's hosts.toml folder (`registry.config_path`, e.g. /etc/containerd/certs.d): mirrors, CAs,
   * client certificates, skip_verify, plain-HTTP hosts, as containerd uses them (see hosts.ts).
   */
  registryConfigPath?: string;
  /** Longest wait for a Docker credential helper (default 10 s). */
  credentialHelperTimeoutMs?: number;
  requestTimeoutMs?: number;
  retries?: number;
  maxManifestBytes?: number;
  maxBlobBytes?: number;
  userAgent?: string;
  /** Requests in flight to one host at once (default 16); more wait, and their timeout starts when they are sent. */
  concurrencyPerHost?: number;
  /** Told of every HTTP exchange once it ends (metrics): the host, the method, the status or the error's code. */
  onExchange?: (info: ExchangeInfo) => void;
  /** After a 404 from the referrers API, how long that host's tag schema is read directly (0: ask the API every time). */
  referrersApiRecheckMs?: number;
}

/** One exchange with a registry (or its token service, or storage behind a redirect), as it ended. */
export interface ExchangeInfo {
  host: string;
  method: string;
  /** The HTTP status, or 0 when there was no answer. */
  status: number;
  /** The error's code when there was no answer (REGISTRY_TIMEOUT, REGISTRY_UNAVAILABLE…). */
  error?: string;
  seconds: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

const MAX_TAG_PAGES = 1000;
/** Referrer listing pages read at most, and bytes over all of them. */
const MAX_REFERRER_PAGES = 100;
const MAX_REFERRER_LIST_BYTES = 16 * 1024 * 1024;
/** Hosts remembered as serving no referrers API; more and the memory starts again (hosts come from pulls). */
const MAX_REMEMBERED_HOSTS = 1000;
/** A token service's answer, and the token in it (JWTs of real registries are a few kB). */
const MAX_TOKEN_ANSWER_BYTES = 64 * 1024;
export const MAX_TOKEN_LENGTH = 16 * 1024;
/** Tags kept by one listing, and bytes read for it over all pages, unless the caller says otherwise. */
export const DEFAULT_MAX_TAGS = 100_000;
export const DEFAULT_MAX_TAG_LIST_BYTES = 16 * 1024 * 1024;

export class RegistryClient {
  /** The hosts to try for each registry (hosts.toml), in containerd's order. */
  readonly hosts: RegistryHosts;
  private readonly credentials: CredentialStore;
  private readonly tokens = new TokenCache();
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly maxManifestBytes: number;
  private readonly maxBlobBytes: number;
  private readonly userAgent: string;
  private readonly slots: HostConcurrency;
  private readonly onExchange: ((info: ExchangeInfo) => void) | undefined;
  /** Hosts that answered 404 to the referrers API, until when their tag schema is read directly. */
  private readonly referrersApiAbsent = new Map<string, number>();
  private readonly referrersApiRecheckMs: number;

  constructor(options: RegistryClientOptions = {}) {
    this.hosts = new RegistryHosts({
      insecure: options.insecureRegistries ?? [],
      ...(options.registryConfigPath !== undefined ? { configPath: options.registryConfigPath } : {}),
    });
    this.credentials = new CredentialStore(options.dockerConfigPath, options.credentialHelperTimeoutMs);
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULTS.registryTimeoutMs;
    this.retries = options.retries ?? DEFAULTS.registryRetries;
    this.maxManifestBytes = options.maxManifestBytes ?? 4 * 1024 * 1024;
    this.maxBlobBytes = options.maxBlobBytes ?? 16 * 1024 * 1024;
    this.userAgent = options.userAgent ?? `signet/${VERSION}`;
    this.slots = new HostConcurrency(options.concurrencyPerHost ?? DEFAULTS.registryConcurrency);
    this.onExchange = options.onExchange;
    this.referrersApiRecheckMs = options.referrersApiRecheckMs ?? DEFAULTS.referrersApiRecheckMs;
  }

  /** One exchange when its host has a free slot; the request's timeout starts then, not while it waits. */
  private exchange(req: HttpRequest): Promise<HttpResponse> {
    let host: string;
    try {
      host = new URL(req.url).host;
    } catch {
      return httpExchange(req); // reports the bad URL
    }
    const observe = this.onExchange;
    if (observe === undefined) return this.slots.run(host, req.what, req.signal, () => httpExchange(req));
    return this.slots.run(host, req.what, req.signal, async () => {
      const started = performance.now();
      const seconds = (): number => (performance.now() - started) / 1000;
      try {
        const res = await httpExchange(req);
        observe({ host, method: req.method, status: res.status, seconds: seconds() });
        return res;
      } catch (err) {
        observe({ host, method: req.method, status: 0, error: err instanceof SignetError ? err.code : 'ERROR', seconds: seconds() });
        throw err;
      }
    });
  }

  /** A manifest by tag or digest; bytes verified against the digest when fetched by digest. */
  async getManifest(repo: RepositoryRef, reference: string, options: CallOptions & { accept?: string[] } = {}): Promise<FetchedManifest> {
    const what = `fetching manifest ${name(repo)}${isDigest(reference) ? '@' : ':'}${reference}`;
    checkReference(reference, what);
    return this.acrossHosts(repo, isDigest(reference) ? ['pull'] : ['pull', 'resolve'], what, options.signal, (host) =>
      this.getManifestAt(host, repo, reference, options),
    );
  }

  private async getManifestAt(
    host: RegistryHost,
    repo: RepositoryRef,
    reference: string,
    options: CallOptions & { accept?: string[] } = {},
  ): Promise<FetchedManifest> {
    const what = `fetching manifest ${name(repo)}${isDigest(reference) ? '@' : ':'}${reference}${from(host)}`;
    const res = await this.send(repo, 'pull', {
      host,
      method: 'GET',
      path: `manifests/${reference}`,
      headers: { accept: (options.accept ?? MANIFEST_MEDIA_TYPES).join(', ') },
      maxBytes: this.maxManifestBytes,
      what,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    expectStatus(res, [200], what);
    const digest = sha256(res.body);
    if (isDigest(reference)) {
      if (!reference.startsWith('sha256:')) {
        if (createHash('sha512').update(res.body).digest('hex') !== reference.slice(7))
          throw new SignetError('DIGEST_MISMATCH', `${what}: the registry served bytes that do not match the digest`);
      } else if (digest !== reference) throw new SignetError('DIGEST_MISMATCH', `${what}: the registry served bytes with digest ${digest}`);
    } else {
      const header = res.headers.get('docker-content-digest');
      if (header !== null && header.startsWith('sha256:') && header !== digest) {
        throw new SignetError('DIGEST_MISMATCH', `${what}: Docker-Content-Digest ${header} does not match the bytes served (${digest})`);
      }
    }
    const mediaType = mediaTypeOf(res.body, res.headers.get('content-type'), what);
    return { bytes: res.body, digest: isDigest(reference) ? reference : digest, mediaType };
  }

  /** Like getManifest, but undefined when the registry says the manifest or repository does not exist. */
  async tryGetManifest(repo: RepositoryRef, reference: string, options: CallOptions & { accept?: string[] } = {}): Promise<FetchedManifest | undefined> {
    return absentAsUndefined(this.getManifest(repo, reference, options));
  }

  /** Resolve a tag or digest to a descriptor (HEAD, falling back to GET when HEAD says too little). */
  async resolve(repo: RepositoryRef, reference: string, options: CallOptions = {}): Promise<Descriptor> {
    const what0 = `resolving ${name(repo)}${isDigest(reference) ? '@' : ':'}${reference}`;
    checkReference(reference, what0);
    return this.acrossHosts(repo, isDigest(reference) ? ['pull'] : ['pull', 'resolve'], what0, options.signal, (host) =>
      this.resolveAt(host, repo, reference, options),
    );
  }

  private async resolveAt(host: RegistryHost, repo: RepositoryRef, reference: string, options: CallOptions): Promise<Descriptor> {
    const what = `resolving ${name(repo)}${isDigest(reference) ? '@' : ':'}${reference}${from(host)}`;
    const res = await this.send(repo, 'pull', {
      host,
      method: 'HEAD',
      path: `manifests/${reference}`,
      headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') },
      maxBytes: 0,
      what,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    expectStatus(res, [200], what);
    const digest = res.headers.get('docker-content-digest');
    const size = Number(res.headers.get('content-length'));
    const mediaType = res.headers.get('content-type')?.split(';')[0]?.trim();
    if (digest !== null && isDigest(digest) && Number.isSafeInteger(size) && size > 0 && mediaType && MANIFEST_MEDIA_TYPES.includes(mediaType)) {
      if (isDigest(reference) && digest !== reference) throw new SignetError('DIGEST_MISMATCH', `${what}: registry answered for ${digest}`);
      return { mediaType, digest, size };
    }
    const m = await this.getManifestAt(host, repo, reference, options);
    return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
  }

  /** A blob, digest-verified, at most `maxBytes`. */
  async getBlob(repo: RepositoryRef, digest: string, options: CallOptions & { maxBytes?: number } = {}): Promise<Buffer> {
    if (!isDigest(digest)) throw new SignetError('INVALID_ARGUMENT', `not a digest: ${digest}`);
    return this.acrossHosts(repo, ['pull'], `fetching blob ${name(repo)}@${digest}`, options.signal, (host) => this.getBlobAt(host, repo, digest, options));
  }

  private async getBlobAt(host: RegistryHost, repo: RepositoryRef, digest: string, options: CallOptions & { maxBytes?: number }): Promise<Buffer> {
    const what = `fetching blob ${name(repo)}@${digest}${from(host)}`;
    const res = await this.send(repo, 'pull', {
      host,
      method: 'GET',
      path: `blobs/${digest}`,
      headers: {},
      maxBytes: options.maxBytes ?? this.maxBlobBytes,
      what,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    expectStatus(res, [200], what);
    const actual = digest.startsWith('sha256:') ? sha256(res.body) : `sha512:${createHash('sha512').update(res.body).digest('hex')}`;
    if (actual !== digest) throw new SignetError('DIGEST_MISMATCH', `${what}: the registry served bytes with digest ${actual}`);
    return res.body;
  }

  /**
   * Manifests that refer to `digest` (OCI 1.1 referrers API, `Link` pagination, the artifactType filter
   * applied here when the registry did not). When the API is not served (404), the distribution spec's
   * fallback: the image index at tag `sha256-<hex>`.
   */
  async referrers(repo: RepositoryRef, digest: string, options: CallOptions & { artifactType?: string; limit: number }): Promise<Descriptor[]> {
    if (!isDigest(digest)) throw new SignetError('INVALID_ARGUMENT', `not a digest: ${digest}`);
    // A host that lists none falls through to the next: a mirror without the signatures is not the last word.
    return this.acrossHosts(
      repo,
      ['pull'],
      `listing referrers of ${name(repo)}@${digest}`,
      options.signal,
      (host) => this.referrersAt(host, repo, digest, options),
      (list) => list.length === 0,
    );
  }

  private async referrersAt(
    host: RegistryHost,
    repo: RepositoryRef,
    digest: string,
    options: CallOptions & { artifactType?: string; limit: number },
  ): Promise<Descriptor[]> {
    const what = `listing referrers of ${name(repo)}@${digest}${from(host)}`;
    const hostKey = `${host.scheme}://${host.host}${host.path}`;
    const absentUntil = this.referrersApiAbsent.get(hostKey);
    if (absentUntil !== undefined && absentUntil > Date.now()) return this.referrersTagSchemaAt(host, repo, digest, options, what);
    const found = new Map<string, Descriptor>(); // by digest: a page served twice does not count twice
    const asked = new Set<string>();
    let read = 0;
    let path: string | undefined = `referrers/${digest}${options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : ''}`;
    for (let page = 0; path !== undefined && page < MAX_REFERRER_PAGES && found.size < options.limit; page++) {
      if (asked.has(path)) throw new SignetError('REGISTRY_PROTOCOL', `${what}: the pagination loops back to a page already read`);
      asked.add(path);
      const budget = Math.min(this.maxManifestBytes, MAX_REFERRER_LIST_BYTES - read);
      let res: HttpResponse;
      try {
        res = await this.send(repo, 'pull', {
          host,
          method: 'GET',
          path,
          headers: { accept: MEDIA_TYPES.ociIndex },
          maxBytes: budget,
          what,
          ...(options.signal ? { signal: options.signal } : {}),
        });
      } catch (err) {
        if (err instanceof SignetError && err.code === 'BLOB_TOO_LARGE' && budget < this.maxManifestBytes)
          throw new SignetError('BLOB_TOO_LARGE', `${what}: the listing is larger than ${MAX_REFERRER_LIST_BYTES} bytes over all its pages`);
        throw err;
      }
      read += res.body.length;
      if (res.status === 404 && page === 0) {
        // The registry does not serve the referrers API (registries that do never answer 404): read the
        // referrers tag schema instead, and directly for a while (bounded map: hosts come from pulls).
        if (this.referrersApiRecheckMs > 0) {
          if (this.referrersApiAbsent.size >= MAX_REMEMBERED_HOSTS) this.referrersApiAbsent.clear();
          this.referrersApiAbsent.set(hostKey, Date.now() + this.referrersApiRecheckMs);
        }
        return this.referrersTagSchemaAt(host, repo, digest, options, what);
      }
      expectStatus(res, [200], what);
      const filtered = (res.headers.get('oci-filters-applied') ?? '')
        .split(',')
        .map((f) => f.trim())
        .includes('artifactType');
      for (const d of filterReferrers(parseIndexManifests(res.body, what), options.artifactType, filtered)) if (!found.has(d.digest)) found.set(d.digest, d);
      path = nextLink(res.headers.get('link'), repo, what);
    }
    // Out of pages before the limit with more to come: a listing that never ends is an error, not a silent cut.
    if (path !== undefined && found.size < options.limit) throw new SignetError('REGISTRY_PROTOCOL', `${what}: more than ${MAX_REFERRER_PAGES} pages`);
    return [...found.values()].slice(0, options.limit);
  }

  /** The distribution spec's fallback for a registry without the referrers API: the index at tag `<alg>-<hex>`. */
  private async referrersTagSchemaAt(
    host: RegistryHost,
    repo: RepositoryRef,
    digest: string,
    options: CallOptions & { artifactType?: string; limit: number },
    what: string,
  ): Promise<Descriptor[]> {
    const fallback = await absentAsUndefined(
      this.getManifestAt(host, repo, digest.replace(':', '-'), { accept: [MEDIA_TYPES.ociIndex], ...(options.signal ? { signal: options.signal } : {}) }),
    );
    return fallback === undefined
      ? []
      : dedupe(filterReferrers(parseIndexManifests(fallback.bytes, what), options.artifactType, false)).slice(0, options.limit);
  }

  /**
   * Every tag, following `Link` pagination, within bounds: at most `maxTags` tags kept (after `keep`, which
   * drops tags the caller does not want as they arrive) and `maxBytes` read over all pages. A page asked
   * for twice (a `Link` loop) is an error. Beyond a bound the listing fails rather than return part of it:
   * a partial list would silently hide tags.
   */
  async listTags(
    repo: RepositoryRef,
    options: CallOptions & { pageSize?: number; maxTags?: number; maxBytes?: number; keep?: (tag: string) => boolean } = {},
  ): Promise<string[]> {
    return this.acrossHosts(repo, ['pull', 'resolve'], `listing tags of ${name(repo)}`, options.signal, (host) => this.listTagsAt(host, repo, options));
  }

  private async listTagsAt(
    host: RegistryHost,
    repo: RepositoryRef,
    options: CallOptions & { pageSize?: number; maxTags?: number; maxBytes?: number; keep?: (tag: string) => boolean },
  ): Promise<string[]> {
    const what = `listing tags of ${name(repo)}${from(host)}`;
    const maxTags = options.maxTags ?? DEFAULT_MAX_TAGS;
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_TAG_LIST_BYTES;
    const tags = new Set<string>();
    const asked = new Set<string>();
    let read = 0;
    let path: string | undefined = `tags/list${options.pageSize ? `?n=${options.pageSize}` : ''}`;
    for (let page = 0; path !== undefined && page < MAX_TAG_PAGES; page++) {
      if (asked.has(path)) throw new SignetError('REGISTRY_PROTOCOL', `${what}: the pagination loops back to a page already read`);
      asked.add(path);
      const budget = Math.min(this.maxManifestBytes, maxBytes - read);
      let res: HttpResponse;
      try {
        res = await this.send(repo, 'pull', {
          host,
          method: 'GET',
          path,
          headers: { accept: 'application/json' },
          maxBytes: budget,
          what,
          ...(options.signal ? { signal: options.signal } : {}),
        });
      } catch (err) {
        if (err instanceof SignetError && err.code === 'BLOB_TOO_LARGE' && budget < this.maxManifestBytes)
          throw new SignetError('BLOB_TOO_LARGE', `${what}: the tag list is larger than ${maxBytes} bytes in all`);
        throw err;
      }
      read += res.body.length;
      expectStatus(res, [200], what);
      let doc: unknown;
      try {
        doc = JSON.parse(res.body.toString('utf8'));
      } catch {
        throw new SignetError('REGISTRY_PROTOCOL', `${what}: the answer is not JSON`);
      }
      const list = (doc as { tags?: unknown } | null)?.tags;
      if (list !== null && list !== undefined && !Array.isArray(list)) throw new SignetError('REGISTRY_PROTOCOL', `${what}: "tags" is not a list`);
      for (const tag of (list as unknown[] | null | undefined) ?? []) {
        if (typeof tag !== 'string' || !isRegistryTag(tag))
          throw new SignetError(
            'REGISTRY_PROTOCOL',
            `${what}: "tags" holds ${typeof tag === 'string' ? 'a string that is not a tag' : `a ${tag === null ? 'null' : typeof tag}`}`,
          );
        if (options.keep !== undefined && !options.keep(tag)) continue;
        tags.add(tag);
        if (tags.size > maxTags) throw new SignetError('BLOB_TOO_LARGE', `${what}: more than ${maxTags} tags`);
      }
      path = nextLink(res.headers.get('link'), repo, what);
    }
    if (path !== undefined) throw new SignetError('REGISTRY_PROTOCOL', `${what}: more than ${MAX_TAG_PAGES} pages`);
    return [...tags];
  }

  /** Upload a blob unless the registry has it; monolithic POST then PUT. */
  async pushBlob(repo: RepositoryRef, bytes: Buffer, options: CallOptions = {}): Promise<{ digest: string; size: number }> {
    const digest = sha256(bytes);
    const what = `pushing blob ${name(repo)}@${digest}`;
    const host = this.pushHost(repo, what);
    const signal = { host, ...(options.signal ? { signal: options.signal } : {}) };
    const head = await this.send(repo, 'push', { method: 'HEAD', path: `blobs/${digest}`, headers: {}, maxBytes: 0, what, ...signal });
    if (head.status === 200) return { digest, size: bytes.length };
    const start = await this.send(repo, 'push', {
      method: 'POST',
      path: 'blobs/uploads/',
      headers: { 'content-length': '0' },
      maxBytes: 64 * 1024,
      what,
      ...signal,
    });
    expectStatus(start, [202], what);
    const location = start.headers.get('location');
    if (!location) throw new SignetError('REGISTRY_PROTOCOL', `${what}: upload started without a Location`);
    let url: URL;
    try {
      url = new URL(location, start.url);
    } catch {
      throw new SignetError('REGISTRY_PROTOCOL', `${what}: bad upload Location`);
    }
    url.searchParams.set('digest', digest);
    const put = await this.send(repo, 'push', {
      method: 'PUT',
      url: url.toString(),
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
      maxBytes: 64 * 1024,
      what,
      ...signal,
    });
    expectStatus(put, [201, 204], what);
    return { digest, size: bytes.length };
  }

  /** Upload a manifest under a tag or its digest; returns its digest. */
  async pushManifest(repo: RepositoryRef, reference: string, bytes: Buffer, mediaType: string, options: CallOptions = {}): Promise<string> {
    const digest = sha256(bytes);
    const what = `pushing manifest ${name(repo)}${isDigest(reference) ? '@' : ':'}${reference}`;
    checkReference(reference, what);
    if (isDigest(reference) && reference !== digest) throw new SignetError('INVALID_ARGUMENT', `${what}: the manifest's bytes have digest ${digest}`);
    const res = await this.send(repo, 'push', {
      host: this.pushHost(repo, what),
      method: 'PUT',
      path: `manifests/${reference}`,
      headers: { 'content-type': mediaType },
      body: bytes,
      maxBytes: 64 * 1024,
      what,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    expectStatus(res, [201, 200, 204], what);
    return digest;
  }

  /** The base URL of a registry's API: its server (the last of its hosts). */
  baseUrl(registry: string): string {
    return hostBase(this.hosts.hostsFor(registry).at(-1)!);
  }

  /** The host pushes go to: the first that may push (containerd's pusher does the same). */
  private pushHost(repo: RepositoryRef, what: string): RegistryHost {
    const all = this.hosts.hostsFor(repo.registry);
    const host = all.find((h) => h.capabilities.has('push'));
    if (host === undefined)
      throw new SignetError('REGISTRY_DENIED', `${what}: no host of ${repo.registry} has the push capability in ${all[0]?.source ?? 'its hosts.toml'}`);
    return host;
  }

  /**
   * One read tried on each host that has the capabilities, in order, as containerd does: a host that
   * says "not found" (404), or fails, or (with `empty`) has nothing, gives way to the next. Nothing found
   * anywhere: the first failure, else the "not found", else the last empty answer. A deadline ends it.
   */
  private async acrossHosts<T>(
    repo: RepositoryRef,
    need: HostCapability[],
    what: string,
    signal: AbortSignal | undefined,
    op: (host: RegistryHost) => Promise<T>,
    empty?: (value: T) => boolean,
  ): Promise<T> {
    const all = this.hosts.hostsFor(repo.registry);
    const hosts = all.filter((h) => need.every((c) => h.capabilities.has(c)));
    if (hosts.length === 0)
      throw new SignetError(
        'REGISTRY_NOT_FOUND',
        `${what}: no host of ${repo.registry} has the ${need.join(' and ')} capabilities in ${all[0]?.source ?? 'its hosts.toml'}`,
      );
    if (hosts.length === 1) return op(hosts[0]!);
    let failure: unknown;
    let notFound: unknown;
    let nothing: { value: T } | undefined;
    for (const host of hosts) {
      try {
        const value = await op(host);
        if (empty !== undefined && empty(value)) {
          nothing ??= { value };
          continue;
        }
        return value;
      } catch (err) {
        if (signal?.aborted) throw err;
        if (err instanceof RegistryError && err.code === 'REGISTRY_NOT_FOUND') notFound ??= err;
        else if (err instanceof SignetError && (err.code === 'INVALID_ARGUMENT' || err.code === 'DIGEST_MISMATCH')) throw err;
        else failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
    if (notFound !== undefined) throw notFound;
    return nothing!.value;
  }

  /** One request with authentication and retries. */
  private async send(
    repo: RepositoryRef,
    action: 'pull' | 'push',
    req: {
      host: RegistryHost;
      method: 'GET' | 'HEAD' | 'POST' | 'PUT';
      path?: string;
      url?: string;
      headers: Record<string, string>;
      body?: Buffer;
      maxBytes: number;
      what: string;
      signal?: AbortSignal;
    },
  ): Promise<HttpResponse> {
    if (!isValidRepository(repo.repository)) throw new SignetError('INVALID_ARGUMENT', `${req.what}: "${repo.repository}" is not a repository name`);
    const host = req.host;
    const base = hostBase(host);
    let url = req.url;
    if (url === undefined) {
      const u = new URL(`${base}${repo.repository}/${req.path}`);
      // A mirror is told which registry the repository belongs to (containerd's `ns` parameter).
      if (host.ns !== undefined) u.searchParams.append('ns', host.ns);
      url = u.toString();
    }
    // The registry's credentials go to the registry only, never to an upload URL on another host.
    const sameOrigin = new URL(url).origin === new URL(base).origin;
    const scope = `repository:${repo.repository}:${action === 'push' ? 'pull,push' : 'pull'}`;
    // Credentials are looked up by the host asked (a mirror's own), as containerd does; the registry's own
    // host by the registry's name (docker.io, not registry-1.docker.io).
    const credentialsFor = host.ns !== undefined ? host.host : repo.registry;
    // Basic credentials hold for the whole host; Bearer tokens for one scope.
    const basicKey = `${host.scheme}://${host.host}${host.path}|basic`;
    const tokenKey = `${host.scheme}://${host.host}${host.path}|${scope}`;
    let authorization = sameOrigin ? (this.tokens.get(tokenKey) ?? this.tokens.get(basicKey)) : undefined;
    let triedAuth = false;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...hostHeaders(host), ...req.headers };
      if (authorization !== undefined) headers['authorization'] = authorization;
      const retry = attempt < this.retries && !req.signal?.aborted;
      let res: HttpResponse;
      try {
        res = await this.exchange({
          method: req.method,
          url,
          headers,
          ...(req.body ? { body: req.body } : {}),
          timeoutMs: this.timeoutMs,
          maxBytes: req.maxBytes,
          what: req.what,
          ...(req.signal ? { signal: req.signal } : {}),
          ...(sameOrigin ? hostConnection(host) : {}),
        });
      } catch (err) {
        // Only a reset connection is worth another try; refused, unresolvable or timed out are not.
        if (!(err instanceof NetworkError && err.retryable && retry)) throw err;
        await sleep(retryDelayMs(attempt, null), req.signal);
        continue;
      }
      if (res.status === 401 && !triedAuth && sameOrigin) {
        triedAuth = true;
        const challenge = pickChallenge(res.headers.get('www-authenticate'), req.what);
        if (challenge !== undefined) {
          const answer = await this.authorize(credentialsFor, host, challenge, scope, req.what, req.signal);
          if (answer !== undefined) {
            authorization = answer.authorization;
            this.tokens.set(challenge.scheme === 'bearer' ? tokenKey : basicKey, answer.authorization, answer.expiresIn);
            continue;
          }
        }
      }
      if ((res.status === 429 || res.status >= 500) && retry) {
        await sleep(retryDelayMs(attempt, res.headers.get('retry-after')), req.signal);
        continue;
      }
      if (res.status === 401) {
        const creds = await this.credentials.lookup(credentialsFor).catch(() => undefined);
        throw registryError(
          'REGISTRY_UNAUTHORIZED',
          res,
          `${req.what}: unauthorized (${creds ? 'the configured credentials were refused' : 'no credentials configured for this registry'})`,
        );
      }
      if ((res.status === 429 || res.status >= 500) && attempt > 0) {
        throw registryError('REGISTRY_UNAVAILABLE', res, `${req.what}: registry answered ${res.status}, ${attempt + 1} attempts`);
      }
      return res;
    }
  }

  /** Answer a challenge: Basic with the configured credentials, or fetch a Bearer token. */
  private async authorize(
    registry: string,
    host: RegistryHost,
    challenge: Challenge,
    scope: string,
    what: string,
    signal?: AbortSignal,
  ): Promise<{ authorization: string; expiresIn: number } | undefined> {
    const creds = await this.credentials.lookup(registry);
    if (challenge.scheme === 'basic') return creds?.username !== undefined ? { authorization: basicAuthorization(creds), expiresIn: 3600 } : undefined;
    const realm = challenge.params['realm'];
    if (!realm) throw new SignetError('REGISTRY_PROTOCOL', `${what}: Bearer challenge without realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new SignetError('REGISTRY_PROTOCOL', `${what}: Bearer realm is not a URL`);
    }
    // Credentials travel in clear text only to the host the operator accepted plain HTTP for.
    if (creds !== undefined && !credentialsMayGoTo(url, new URL(hostBase(host)))) {
      throw new SignetError(
        'REGISTRY_PROTOCOL',
        `${what}: the token endpoint ${url.protocol}//${url.host} is neither HTTPS nor the registry's own host; credentials are not sent there`,
      );
    }
    if (challenge.params['service']) url.searchParams.set('service', challenge.params['service']);
    // Ask for the scope this operation needs (the token is cached under it), and for the challenge's own
    // scope when it differs: a registry that answers a push's HEAD with a pull challenge would otherwise
    // hand out a pull token that the upload then needs to replace.
    const scopes = [scope, ...(challenge.params['scope'] !== undefined && challenge.params['scope'] !== scope ? [challenge.params['scope']] : [])];
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: 'application/json' };
    // A token service on the host itself is reached with the host's TLS settings (its CA, its client certificate).
    const tokenTls = url.origin === new URL(hostBase(host)).origin ? hostConnection(host) : {};
    let res: HttpResponse;
    if (creds?.identityToken !== undefined) {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identityToken,
        service: challenge.params['service'] ?? '',
        scope: scopes.join(' '),
        client_id: 'signet',
      });
      res = await this.exchange({
        method: 'POST',
        url: realm,
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
        body: Buffer.from(form.toString()),
        timeoutMs: this.timeoutMs,
        maxBytes: MAX_TOKEN_ANSWER_BYTES,
        what: `${what} (token)`,
        ...(signal ? { signal } : {}),
        ...tokenTls,
      });
    } else {
      if (creds?.username !== undefined) headers['authorization'] = basicAuthorization(creds);
      res = await this.exchange({
        method: 'GET',
        url: url.toString(),
        headers,
        timeoutMs: this.timeoutMs,
        maxBytes: MAX_TOKEN_ANSWER_BYTES,
        what: `${what} (token)`,
        ...(signal ? { signal } : {}),
        ...tokenTls,
      });
    }
    if (res.status === 401 || res.status === 403) {
      throw new SignetError(
        'REGISTRY_UNAUTHORIZED',
        `${what}: the token service refused ${creds ? 'the configured credentials' : 'anonymous access'} (${res.status})`,
      );
    }
    expectStatus(res, [200], `${what} (token)`);
    const { token, expiresIn } = parseTokenResponse(res.body.toString('utf8'), url.origin);
    // A token is sent on every request and cached per scope: a huge one would be refused by the registry
    // (431) on every request until it expires, and a thousand of them would fill the cache.
    if (token.length > MAX_TOKEN_LENGTH)
      throw new SignetError('REGISTRY_PROTOCOL', `${what}: the token service answered a token of ${token.length} characters, more than ${MAX_TOKEN_LENGTH}`);
    if (!/^[\x21-\x7e]+$/.test(token))
      throw new SignetError('REGISTRY_PROTOCOL', `${what}: the token service answered a token with characters an HTTP header cannot carry`);
    return { authorization: `Bearer ${token}`, expiresIn };
  }
}

/** A tag or digest, checked before it becomes part of a URL path (cosign's sha512 tags included: see isRegistryTag). */
function checkReference(reference: string, what: string): void {
  if (!isDigest(reference) && !isRegistryTag(reference))
    throw new SignetError('INVALID_ARGUMENT', `${what}: "${reference.slice(0, 200)}" is neither a tag nor a digest`);
}

/** `https://mirror.example/v2/` */
function hostBase(h: RegistryHost): string {
  return `${h.scheme}://${h.host}${h.path}/`;
}

/** For messages: which host answered, when it is not simply the registry's own. */
function from(h: RegistryHost): string {
  return h.source === undefined ? '' : ` from ${hostLabel(h)}`;
}

/** A hosts.toml `[header]` table as request headers (several values joined, as HTTP allows). */
function hostHeaders(h: RegistryHost): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h.header)) if (k !== 'authorization' && k !== 'host' && k !== 'content-length') out[k] = v.join(', ');
  return out;
}

/** A manifest, or undefined when the registry says it does not exist. */
async function absentAsUndefined(p: Promise<FetchedManifest>): Promise<FetchedManifest | undefined> {
  try {
    return await p;
  } catch (err) {
    // Only the registry saying so: a 404 that carries another error code (or none we know) is not "absent".
    if (err instanceof RegistryError && err.code === 'REGISTRY_NOT_FOUND' && (err.registryCode === undefined || ABSENT_CODES.has(err.registryCode)))
      return undefined;
    throw err;
  }
}

function name(repo: RepositoryRef): string {
  return `${repo.registry}/${repo.repository}`;
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function pickChallenge(header: string | null, what: string): Challenge | undefined {
  if (header === null) return undefined;
  let all: Challenge[];
  try {
    all = parseChallenges(header);
  } catch (err) {
    throw new SignetError('REGISTRY_PROTOCOL', `${what}: ${(err as Error).message}`);
  }
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
}

function mediaTypeOf(body: Buffer, contentType: string | null, what: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new SignetError('REGISTRY_PROTOCOL', `${what}: the registry served a manifest that is not JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new SignetError('REGISTRY_PROTOCOL', `${what}: the registry served a manifest that is not a JSON object`);
  const m = (doc as { mediaType?: unknown }).mediaType;
  if (typeof m === 'string' && m) return m;
  return contentType?.split(';')[0]?.trim() || 'application/vnd.oci.image.manifest.v1+json';
}

/** Registry error codes that mean "no such manifest or repository". */
const ABSENT_CODES = new Set(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'NOT_FOUND']);

/** An error answer from the registry: its HTTP status and its own error code, when it sent one. */
export class RegistryError extends SignetError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly status: number,
    readonly registryCode: string | undefined,
  ) {
    super(code, message);
  }
}

/** The registry's own error (`{"errors":[{"code","message"}]}`), truncated, for messages. */
function registryDetail(res: HttpResponse): { code?: string; text: string } {
  try {
    const doc = JSON.parse(res.body.toString('utf8')) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const e = Array.isArray(doc?.errors) ? doc.errors[0] : undefined;
    if (e && typeof e === 'object') {
      const code = typeof e.code === 'string' ? e.code.slice(0, 64) : undefined;
      const message = typeof e.message === 'string' ? e.message.replace(/\s+/g, ' ').slice(0, 200) : '';
      return { ...(code !== undefined ? { code } : {}), text: ` (${code ?? 'error'}${message ? `: ${message}` : ''})` };
    }
  } catch {
    /* not JSON: no detail */
  }
  return { text: '' };
}

function registryError(code: ErrorCode, res: HttpResponse, message: string): RegistryError {
  const detail = registryDetail(res);
  return new RegistryError(code, `${message}${detail.text}`, res.status, detail.code);
}

function expectStatus(res: HttpResponse, ok: number[], what: string): void {
  if (ok.includes(res.status)) return;
  const code: ErrorCode =
    res.status === 404
      ? 'REGISTRY_NOT_FOUND'
      : res.status === 403
        ? 'REGISTRY_DENIED'
        : res.status === 401
          ? 'REGISTRY_UNAUTHORIZED'
          : res.status === 429 || res.status >= 500
            ? 'REGISTRY_UNAVAILABLE'
            : 'REGISTRY_PROTOCOL';
  throw registryError(code, res, `${what}: registry answered ${res.status}`);
}

/** The `manifests` of an image index, each a well-formed descriptor; anything else is a protocol error. */
export function parseIndexManifests(bytes: Buffer, what: string): Descriptor[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new SignetError('REGISTRY_PROTOCOL', `${what}: the index is not JSON`);
  }
  const manifests = (doc as { manifests?: unknown } | null)?.manifests;
  if (manifests === undefined || manifests === null) return [];
  if (!Array.isArray(manifests)) throw new SignetError('REGISTRY_PROTOCOL', `${what}: "manifests" is not a list`);
  return manifests.filter(
    (m): m is Descriptor =>
      typeof m === 'object' &&
      m !== null &&
      typeof (m as Descriptor).digest === 'string' &&
      isDigest((m as Descriptor).digest) &&
      typeof (m as Descriptor).mediaType === 'string' &&
      typeof (m as Descriptor).size === 'number',
  );
}

/** One descriptor per digest, first one wins. */
function dedupe(list: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return list.filter((d) => !seen.has(d.digest) && (seen.add(d.digest), true));
}

function filterReferrers(list: Descriptor[], artifactType: string | undefined, alreadyFiltered: boolean): Descriptor[] {
  return artifactType === undefined || alreadyFiltered ? list : list.filter((d) => d.artifactType === artifactType);
}

/** The path of the `rel="next"` page from a `Link` header, kept inside the same repository. */
function nextLink(header: string | null, repo: RepositoryRef, what: string): string | undefined {
  if (!header) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header);
  if (!m) return undefined;
  let url: URL;
  try {
    url = new URL(m[1]!, 'http://placeholder');
  } catch {
    throw new SignetError('REGISTRY_PROTOCOL', `${what}: the Link header is not a URL`);
  }
  const prefix = `/v2/${repo.repository}/`;
  if (!url.pathname.startsWith(prefix)) throw new SignetError('REGISTRY_PROTOCOL', `${what}: pagination points outside ${name(repo)}`);
  return `${url.pathname.slice(prefix.length)}${url.search}`;
}

/**
 * How long to wait before retry number `attempt + 1`: the server's Retry-After (seconds or an HTTP date),
 * capped so a registry cannot park the caller, else exponential backoff from 200 ms with some jitter.
 */
export function retryDelayMs(attempt: number, retryAfter: string | null, now = Date.now()): number {
  const cap = 5000;
  if (retryAfter !== null && retryAfter.trim() !== '') {
    const text = retryAfter.trim();
    const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
    if (Number.isFinite(ms)) return Math.min(Math.max(ms, 0), cap);
  }
  return Math.min(200 * 2 ** attempt * (0.8 + 0.4 * Math.random()), cap);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
