/**
 * Registry hosts as containerd sees them: the hosts.toml folder (`registry.config_path`, conventionally
 * /etc/containerd/certs.d) read the way containerd 2.1 reads it (core/remotes/docker/config/hosts.go,
 * docs/hosts.md), so signatures are looked up on the hosts the image was pulled from, in the same order.
 *
 * - The folder for a registry `name` is the first that exists of `<root>/<host>_<port>_` (when `name`
 *   has a port), `<root>/<name>`, `<root>/_default`. None: the registry's own host only.
 * - In that folder, `hosts.toml`: every `[host."<url>"]` table in file order (mirrors), then the
 *   `server` (default: the registry itself; docker.io → https://registry-1.docker.io). A URL without a
 *   scheme is https; its path gets `/v2` appended unless it ends in /v2 or `override_path = true`.
 *   `capabilities` (pull, resolve, push; default all three), `ca` (a path or a list), `client` (a path,
 *   a list of paths, or a list of [cert, key] pairs), `skip_verify`, `[header]` (string or list of
 *   strings), `dial_timeout` (a Go duration: bounds connecting to that host, within signet's own request
 *   timeout). Relative paths are relative to the folder.
 * - A host named `http://…` (port other than 80) that also has TLS settings (`ca`, `client`, `skip_verify`)
 *   is tried over HTTPS first, and over plain HTTP when it answers plain HTTP (containerd's HTTPFallback).
 * - A folder without hosts.toml (or one that does not parse, as containerd logs and goes on): Docker's
 *   certificate files there for the registry's own host (`*.crt` CAs, `*.cert` + `*.key` client pairs).
 * - A host other than the registry's own gets `?ns=<registry>` on its requests (containerd's
 *   `isProxy`: any host but the registry itself, docker.io's registry-1.docker.io excepted).
 *
 * Files are read on every lookup (cached by content), like containerd: changes take effect at once.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parse } from 'smol-toml';
import { DOCKER_HUB, DOCKER_HUB_API } from './reference.js';

export type HostCapability = 'pull' | 'resolve' | 'push';

export interface HostTls {
  /** CA files (PEM) trusted in addition to the system's. */
  ca: string[];
  /** Client certificate and key files; an empty key means the key is in the certificate's file. */
  clients: Array<[string, string]>;
  skipVerify?: boolean;
}

export interface RegistryHost {
  scheme: 'http' | 'https';
  /** host[:port] */
  host: string;
  /** The API root, e.g. `/v2` or `/v2/upstream` or (override_path) any path. */
  path: string;
  capabilities: ReadonlySet<HostCapability>;
  tls?: HostTls;
  header: Record<string, string[]>;
  /** `?ns=` value for a host other than the registry's own. */
  ns?: string;
  /** The hosts.toml (or certs folder) it comes from; undefined: the registry's own host by default. */
  source?: string;
  /** A mirror (a `[host]` table), as opposed to the server. */
  mirror: boolean;
  /** hosts.toml `dial_timeout`: how long connecting to this host may take (else only the request's timeout). */
  dialTimeoutMs?: number;
  /**
   * Named `http://` with TLS settings: the scheme is then https, and plain HTTP is used when the host
   * answers plain HTTP to the TLS handshake (or, without a port, refuses port 443), as containerd does.
   */
  httpFallback?: boolean;
}

export const DEFAULT_REGISTRY_CONFIG_PATH = '/etc/containerd/certs.d';

const ALL: ReadonlySet<HostCapability> = new Set(['pull', 'resolve', 'push']);

export interface RegistryHostsOptions {
  /** containerd's `registry.config_path`; undefined: no hosts.toml, the registry's own host only. */
  configPath?: string;
  /** `host:port` registries whose own host is reached over plain HTTP (signet's insecureRegistries). */
  insecure?: Iterable<string>;
}

/** Where a registry's hosts come from; `hostsFor` re-reads the files (cached by content). */
export class RegistryHosts {
  private readonly insecure: Set<string>;
  private readonly parsed = new Map<string, { text: string; hosts: RegistryHost[] | Error }>();
  /** Problems met in hosts.toml files (containerd logs them and uses the Docker certificate files instead). */
  readonly problems = new Map<string, string>();

  constructor(private readonly options: RegistryHostsOptions = {}) {
    this.insecure = new Set(options.insecure ?? []);
  }

  /** The hosts to try for `registry`, in order; the last is the server. */
  hostsFor(registry: string): RegistryHost[] {
    const dir = this.options.configPath === undefined ? undefined : hostDir(this.options.configPath, registry);
    let hosts: RegistryHost[] | undefined;
    if (dir !== undefined) hosts = this.loadDir(dir, registry);
    return hosts ?? [this.defaultHost(registry, undefined)];
  }

  /** The registry's own host: https unless listed insecure (docker.io: registry-1.docker.io). */
  private defaultHost(registry: string, source: string | undefined, tls?: HostTls): RegistryHost {
    return {
      scheme: this.insecure.has(registry) ? 'http' : 'https',
      host: registry === DOCKER_HUB ? DOCKER_HUB_API : registry,
      path: '/v2',
      capabilities: ALL,
      header: {},
      mirror: false,
      ...(tls !== undefined ? { tls } : {}),
      ...(source !== undefined ? { source } : {}),
    };
  }

  private loadDir(dir: string, registry: string): RegistryHost[] {
    const file = join(dir, 'hosts.toml');
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.problems.set(file, `cannot read: ${(err as NodeJS.ErrnoException).code}`);
    }
    if (text.length > 0) {
      const key = `${file}|${registry}`;
      let entry = this.parsed.get(key);
      if (entry?.text !== text) {
        let hosts: RegistryHost[] | Error;
        try {
          hosts = parseHostsToml(text, dir, file, registry, (server) => this.defaultHost(server, file));
          this.problems.delete(file);
        } catch (err) {
          hosts = err as Error;
          this.problems.set(file, (err as Error).message);
        }
        entry = { text, hosts };
        this.parsed.set(key, entry);
        if (this.parsed.size > 256) this.parsed.delete(this.parsed.keys().next().value!);
      }
      if (!(entry.hosts instanceof Error)) return entry.hosts;
    }
    // No hosts.toml, or one containerd could not use either: Docker's certificate files.
    const tls = certFiles(dir);
    return [this.defaultHost(registry, tls === undefined ? undefined : dir, tls)];
  }
}

/** containerd's hostPaths: `host_port_`, `host:port`, `_default`; the first that exists. */
export function hostDir(root: string, registry: string): string | undefined {
  const candidates: string[] = [];
  const colon = registry.lastIndexOf(':');
  if (colon > 0) candidates.push(`${registry.slice(0, colon)}_${registry.slice(colon + 1)}_`);
  candidates.push(registry, '_default');
  for (const c of candidates) {
    if (c.includes('/') || c === '..' || c === '.') continue;
    const p = join(root, c);
    // Asked on every registry request (containerd, too, reads the folder on every pull): no exception
    // for the usual absent entry. Another error (EACCES…) counts as absent, as containerd's os.Stat does.
    try {
      if (statSync(p, { throwIfNoEntry: false }) !== undefined) return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function certFiles(dir: string): HostTls | undefined {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return undefined;
  }
  const tls: HostTls = { ca: [], clients: [] };
  for (const n of names) {
    if (n.endsWith('.crt')) tls.ca.push(join(dir, n));
    if (n.endsWith('.cert')) {
      const key = join(dir, `${n.slice(0, -5)}.key`);
      let hasKey = false;
      try {
        hasKey = statSync(key).isFile();
      } catch {
        /* no key file */
      }
      tls.clients.push([join(dir, n), hasKey ? key : '']);
    }
  }
  return tls.ca.length > 0 || tls.clients.length > 0 ? tls : undefined;
}

function strings(value: unknown, what: string, file: string): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  throw new Error(`${file}: ${what} must be a string or a list of strings`);
}

/** Parse one hosts.toml: the mirrors in file order, then the server. Throws on what containerd refuses. */
export function parseHostsToml(text: string, dir: string, file: string, registry: string, defaultServer: (registry: string) => RegistryHost): RegistryHost[] {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  const abs = (p: string): string => (isAbsolute(p) ? p : join(dir, p));
  const one = (url: string | undefined, table: Record<string, unknown>, what: string, mirror: boolean): RegistryHost => {
    let base: RegistryHost;
    if (url === undefined || url === '') base = { ...defaultServer(registry), source: file };
    else {
      let u: URL;
      try {
        u = new URL(url.startsWith('http') ? url : `https://${url}`);
      } catch {
        throw new Error(`${file}: ${what}: "${url}" is not a URL`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${file}: ${what}: "${url}" is neither http nor https`);
      let path = u.pathname.replace(/\/+$/, '').replace(/\/{2,}/g, '/');
      if (table['override_path'] !== true && !path.endsWith('/v2')) path = `${path}/v2`;
      const isOwn = u.host === registry || (registry === DOCKER_HUB && u.host === DOCKER_HUB_API);
      base = {
        scheme: u.protocol === 'http:' ? 'http' : 'https',
        host: u.host,
        path,
        capabilities: ALL,
        header: {},
        source: file,
        mirror,
        ...(isOwn ? {} : { ns: registry }),
      };
    }
    if (url === undefined || url === '') base.mirror = false;
    const caps = table['capabilities'];
    if (caps !== undefined) {
      const list = strings(caps, `${what}: capabilities`, file);
      if (list.length > 0) {
        const set = new Set<HostCapability>();
        for (const c of list) {
          const lc = c.toLowerCase();
          if (lc !== 'pull' && lc !== 'resolve' && lc !== 'push') throw new Error(`${file}: ${what}: unknown capability "${c}"`);
          set.add(lc);
        }
        base.capabilities = set;
      }
    }
    const tls: HostTls = { ca: [], clients: [], ...(base.tls ?? {}) };
    let explicit = false;
    if (table['ca'] !== undefined) {
      tls.ca = strings(table['ca'], `${what}: ca`, file).map(abs);
      explicit = true;
    }
    const client = table['client'];
    if (client !== undefined) {
      explicit = true;
      if (typeof client === 'string') tls.clients = [[abs(client), '']];
      else if (Array.isArray(client)) {
        tls.clients = client.map((entry): [string, string] => {
          if (typeof entry === 'string') return [abs(entry), ''];
          if (Array.isArray(entry) && entry.length === 2 && entry.every((e) => typeof e === 'string'))
            return [abs(entry[0] as string), entry[1] === '' ? '' : abs(entry[1] as string)];
          throw new Error(`${file}: ${what}: client must be a path, a list of paths or a list of [cert, key] pairs`);
        });
      } else throw new Error(`${file}: ${what}: client must be a path, a list of paths or a list of [cert, key] pairs`);
    }
    if (table['skip_verify'] !== undefined) {
      if (typeof table['skip_verify'] !== 'boolean') throw new Error(`${file}: ${what}: skip_verify must be true or false`);
      tls.skipVerify = table['skip_verify'];
      explicit = true;
    }
    if (explicit) base.tls = tls;
    // containerd (hosts.go): "host will try HTTPS first since it is configured for HTTP with a TLS configuration".
    if (explicit && base.scheme === 'http' && writtenPort(url || `http://${base.host}`) !== '80') {
      base.scheme = 'https';
      base.httpFallback = true;
    }
    const dial = table['dial_timeout'];
    if (dial !== undefined) {
      if (typeof dial !== 'string') throw new Error(`${file}: ${what}: dial_timeout must be a duration such as "1s" or "500ms"`);
      if (dial !== '') {
        const ms = parseGoDuration(dial);
        if (ms === undefined) throw new Error(`${file}: ${what}: dial_timeout "${dial}" is not a duration such as "1s" or "500ms"`);
        // Go's dialer: 0 is no timeout. A negative one (every dial fails at once there) is refused here.
        if (ms < 0) throw new Error(`${file}: ${what}: dial_timeout "${dial}" is negative`);
        if (ms > 0) base.dialTimeoutMs = Math.max(1, Math.round(ms));
      }
    }
    const header = table['header'];
    if (header !== undefined) {
      if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error(`${file}: ${what}: header must be a table`);
      const h: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(header)) h[k.toLowerCase()] = strings(v, `${what}: header ${k}`, file);
      base.header = h;
    }
    return base;
  };
  const mirrors: RegistryHost[] = [];
  const hostTable = doc['host'];
  if (hostTable !== undefined) {
    if (typeof hostTable !== 'object' || hostTable === null || Array.isArray(hostTable))
      throw new Error(`${file}: host must be a table of [host."URL"] tables`);
    // smol-toml keeps the file's key order, which is containerd's order (getSortedHosts).
    for (const [url, table] of Object.entries(hostTable as Record<string, unknown>)) {
      if (typeof table !== 'object' || table === null || Array.isArray(table)) throw new Error(`${file}: host."${url}" must be a table`);
      mirrors.push(one(url, table as Record<string, unknown>, `host."${url}"`, true));
    }
  }
  const server = doc['server'];
  if (server !== undefined && typeof server !== 'string') throw new Error(`${file}: server must be a string`);
  return [...mirrors, one(server as string | undefined, doc, 'server', false)];
}

/** The port as written in a hosts.toml URL (the URL parser drops a scheme's default port); '' when none. */
function writtenPort(url: string | undefined): string {
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url ?? '')?.[1] ?? '';
  return /:(\d+)$/.exec(authority.slice(authority.lastIndexOf('@') + 1))?.[1] ?? '';
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration ("1s", "1m30s", "1.5s", "250ms", "0"), in milliseconds; undefined if not one. */
export function parseGoDuration(text: string): number | undefined {
  const m = /^([-+]?)(.*)$/s.exec(text)!;
  const sign = m[1] === '-' ? -1 : 1;
  const rest = m[2]!;
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  const part = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let at = 0;
  while (at < rest.length) {
    part.lastIndex = at;
    const p = part.exec(rest);
    if (p === null) return undefined;
    total += Number(p[1]) * DURATION_UNITS[p[2]!]!;
    at = part.lastIndex;
  }
  return sign * total;
}

/** A host as a URL base for messages: `https://mirror.example/v2`. */
export function hostLabel(h: RegistryHost): string {
  return `${h.scheme}://${h.host}${h.path}`;
}
