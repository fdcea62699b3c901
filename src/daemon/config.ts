/** signetd's configuration file (YAML): strict, with defaults for everything. */
import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { SignetError } from '../errors.js';
import { isValidHost, parseReference } from '../registry/reference.js';
import { parseDuration } from '../util/duration.js';
import { parseListen } from '../metrics/server.js';
import { DEFAULTS } from '../defaults.js';

export interface DaemonConfig {
  socket: string;
  /**
   * The verifier's HTTP/1.1 socket (signet-verifier.sh asks here with curl: far cheaper than a gRPC
   * client per pull); '' turns it off. Default: verify.sock beside `socket`.
   */
  verifySocket: string;
  /** The local policy directory; '' when only `policySource` gives the policy. */
  policyDir: string;
  /**
   * The policy from a signed OCI artifact (a fleet): polled every `intervalMs`, its signature verified
   * with `keys` (defined here, never by the policy), the last verified one kept in `cacheDir`; merged
   * with `policyDir` when both are set.
   */
  policySource?: { ref: string; keys: Record<string, { file?: string; pkcs11?: string }>; intervalMs: number; cacheDir: string };
  /** File path for the JSON-lines audit log, or `-` for standard output. */
  auditLog: string;
  /** `host:port` registries reached over plain HTTP. */
  insecureRegistries: string[];
  /** Docker-style config.json with registry credentials (default: $DOCKER_CONFIG/config.json when DOCKER_CONFIG is set). */
  dockerConfig?: string;
  /** containerd's hosts.toml folder (its registry.config_path): mirrors, CAs, client certificates, as containerd pulls. */
  registryConfigPath?: string;
  registryTimeoutMs: number;
  registryRetries: number;
  /** Bound on one decision; below the verifier's 8 s so the daemon answers before it gives up. */
  verifyTimeoutMs: number;
  maxSignatures: number;
  /** Decisions run at once; more wait in a queue. */
  maxConcurrentDecisions: number;
  /** Decisions waiting for a slot; beyond, a request is refused at once (RESOURCE_EXHAUSTED, fail closed). */
  maxQueuedDecisions: number;
  /** Longest wait in that queue (also ended just before the caller's own deadline). */
  maxQueueWaitMs: number;
  /** Requests in flight to one registry host at once; more wait (their timeout starts when they are sent). */
  registryConcurrency: number;
  keyRefreshIntervalMs: number;
  /** Load the policy directory and check its watch this often, events or not (0: never); a safety net under the watch. */
  policyRescanIntervalMs: number;
  pkcs11Module?: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  /** What a decision does when its audit record cannot be written: `reject` it (default) or `allow` it. */
  auditFailure: 'reject' | 'allow';
  /** containerd's API, for image events and reverification; `enabled: false` turns the watch off. */
  containerd: { enabled: boolean; address: string; namespaces?: string[] };
  /** What to do about images that reached containerd without passing the policy. */
  images: { onUnverified: 'report' | 'remove'; reverifyIntervalMs: number };
  /**
   * signetd as an NRI plugin: every container creation decided (present in the file = on). `index`:
   * two digits, containerd calls plugins in ascending order; `timeoutMs`: bound on one creation
   * decision, below containerd's plugin_request_timeout (2 s by default; NRI fails open after it).
   */
  nri?: { socket: string; index: string; timeoutMs: number };
  /** Longest life of a cached acceptance (0: no verdict cache; identical requests still share one verification). */
  cacheTtlMs: number;
  /** Longest life of a cached refusal ("could not check" is never cached). */
  negativeCacheTtlMs: number;
  /** Verdicts kept at most (least recently used dropped first). */
  cacheEntries: number;
  /** Bytes of manifests and blobs fetched by digest kept at most (0: no content cache). */
  contentCacheBytes: number;
  /** Prometheus metrics endpoint (absent: off). `listen`: `host:port` or an absolute unix socket path. */
  metrics?: { listen: string };
}

export const DEFAULT_NRI = { socket: '/var/run/nri/nri.sock', index: '10', timeoutMs: 1500 };

export const DEFAULT_CONFIG: DaemonConfig = {
  socket: '/run/signet/signetd.sock',
  verifySocket: DEFAULTS.verifySocket,
  policyDir: '/etc/signet/policy.d',
  auditLog: '/var/log/signet/audit.log',
  insecureRegistries: [],
  registryConfigPath: '/etc/containerd/certs.d',
  registryTimeoutMs: DEFAULTS.registryTimeoutMs,
  registryRetries: DEFAULTS.registryRetries,
  verifyTimeoutMs: DEFAULTS.verifyTimeoutMs,
  maxSignatures: DEFAULTS.maxSignatures,
  maxConcurrentDecisions: 64,
  maxQueuedDecisions: 1024,
  maxQueueWaitMs: 5000,
  registryConcurrency: DEFAULTS.registryConcurrency,
  keyRefreshIntervalMs: 5 * 60_000,
  policyRescanIntervalMs: 30_000,
  logLevel: 'info',
  auditFailure: 'reject',
  containerd: { enabled: true, address: '/run/containerd/containerd.sock' },
  images: { onUnverified: 'report', reverifyIntervalMs: 60 * 60_000 },
  cacheTtlMs: 5 * 60_000,
  negativeCacheTtlMs: 10_000,
  cacheEntries: 10_000,
  contentCacheBytes: 64 * 1024 * 1024,
};

const KNOWN_KEYS = [
  'socket',
  'verifySocket',
  'policyDir',
  'auditLog',
  'insecureRegistries',
  'dockerConfig',
  'registryConfigPath',
  'registryTimeout',
  'registryRetries',
  'verifyTimeout',
  'maxSignatures',
  'maxConcurrentDecisions',
  'maxQueuedDecisions',
  'maxQueueWait',
  'registryConcurrency',
  'keyRefreshInterval',
  'policyRescanInterval',
  'pkcs11',
  'logLevel',
  'auditFailure',
  'containerd',
  'images',
  'nri',
  'cacheTTL',
  'negativeCacheTTL',
  'cacheEntries',
  'contentCacheSize',
  'metrics',
  'policySource',
];
export const DEFAULT_POLICY_SOURCE = { intervalMs: 60_000, cacheDir: '/var/lib/signet/policy' };

export async function loadConfig(path: string): Promise<DaemonConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new SignetError('CONFIG_INVALID', `cannot read config ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfig(text, path);
}

export function parseConfig(text: string, file: string): DaemonConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new SignetError('CONFIG_INVALID', `${file}:${lines.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 10 }) ?? {};
  const fail = (key: string, what: string): never => {
    const node = doc.getIn([key], true) as { range?: [number, number] } | undefined;
    const line = node?.range ? lines.linePos(node.range[0]).line : undefined;
    throw new SignetError('CONFIG_INVALID', `${file}${line ? `:${line}` : ''}: ${key}: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SignetError('CONFIG_INVALID', `${file}: the config must be a YAML mapping`);
  const c = raw as Record<string, unknown>;
  for (const key of Object.keys(c)) if (!KNOWN_KEYS.includes(key)) fail(key, `unknown setting (known: ${KNOWN_KEYS.join(', ')})`);

  const config: DaemonConfig = {
    ...DEFAULT_CONFIG,
    insecureRegistries: [],
    containerd: { ...DEFAULT_CONFIG.containerd },
    images: { ...DEFAULT_CONFIG.images },
  };
  const path = (key: 'socket' | 'policyDir' | 'auditLog' | 'dockerConfig' | 'registryConfigPath'): void => {
    const v = c[key];
    if (v === undefined) return;
    if (typeof v !== 'string' || v.length === 0) fail(key, 'must be a non-empty string');
    if (!(key === 'auditLog' && v === '-') && !isAbsolute(v as string)) fail(key, `must be an absolute path, got "${v}"`);
    config[key] = v as string;
  };
  path('socket');
  // Beside the gRPC socket unless named ('' turns it off): one folder holds what containerd's side reaches.
  if (c['verifySocket'] === undefined) config.verifySocket = join(dirname(config.socket), basename(DEFAULTS.verifySocket));
  else if (c['verifySocket'] === '') config.verifySocket = '';
  else {
    if (typeof c['verifySocket'] !== 'string' || !isAbsolute(c['verifySocket'])) fail('verifySocket', 'must be an absolute path, or "" to turn it off');
    if (c['verifySocket'] === config.socket) fail('verifySocket', 'must not be the gRPC socket');
    config.verifySocket = c['verifySocket'] as string;
  }
  path('policyDir');
  path('auditLog');
  path('dockerConfig');
  path('registryConfigPath');
  if (c['insecureRegistries'] !== undefined) {
    const list = c['insecureRegistries'];
    if (!Array.isArray(list)) fail('insecureRegistries', 'must be a list of host:port');
    for (const h of list as unknown[]) {
      if (typeof h !== 'string' || !isValidHost(h) || h.includes('/')) fail('insecureRegistries', `"${String(h)}" is not a host or host:port`);
    }
    config.insecureRegistries = list as string[];
  }
  const duration = (key: string): number | undefined => {
    if (c[key] === undefined) return undefined;
    try {
      return parseDuration(c[key], key, 'CONFIG_INVALID');
    } catch (err) {
      return fail(key, (err as Error).message.replace(`${key}: `, ''));
    }
  };
  config.registryTimeoutMs = duration('registryTimeout') ?? config.registryTimeoutMs;
  config.verifyTimeoutMs = duration('verifyTimeout') ?? config.verifyTimeoutMs;
  config.keyRefreshIntervalMs = duration('keyRefreshInterval') ?? config.keyRefreshIntervalMs;
  config.policyRescanIntervalMs = duration('policyRescanInterval') ?? config.policyRescanIntervalMs;
  if (config.policyRescanIntervalMs !== 0 && config.policyRescanIntervalMs < 1000)
    fail('policyRescanInterval', 'must be at least 1s (or 0s to turn the rescan off)');
  config.maxQueueWaitMs = duration('maxQueueWait') ?? config.maxQueueWaitMs;
  const int = (key: string, min: number, max: number): number | undefined => {
    const v = c[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(key, `must be an integer from ${min} to ${max}`);
    return v as number;
  };
  config.registryRetries = int('registryRetries', 0, 10) ?? config.registryRetries;
  config.maxSignatures = int('maxSignatures', 1, 1000) ?? config.maxSignatures;
  config.maxConcurrentDecisions = int('maxConcurrentDecisions', 1, 4096) ?? config.maxConcurrentDecisions;
  config.maxQueuedDecisions = int('maxQueuedDecisions', 0, 65536) ?? config.maxQueuedDecisions;
  config.registryConcurrency = int('registryConcurrency', 1, 1024) ?? config.registryConcurrency;
  if (c['pkcs11'] !== undefined) {
    const p = c['pkcs11'];
    if (typeof p !== 'object' || p === null || Array.isArray(p)) fail('pkcs11', 'must be a mapping like { module: /usr/lib/softhsm/libsofthsm2.so }');
    for (const k of Object.keys(p as object)) if (k !== 'module') fail('pkcs11', `unknown setting "${k}" (known: module)`);
    const m = (p as Record<string, unknown>)['module'];
    if (m !== undefined && (typeof m !== 'string' || !isAbsolute(m))) fail('pkcs11', 'module must be an absolute path');
    if (typeof m === 'string') config.pkcs11Module = m;
  }
  if (c['auditFailure'] !== undefined) {
    if (c['auditFailure'] !== 'reject' && c['auditFailure'] !== 'allow') fail('auditFailure', 'must be reject (refuse what cannot be audited) or allow');
    config.auditFailure = c['auditFailure'] as DaemonConfig['auditFailure'];
  }
  if (c['logLevel'] !== undefined) {
    if (!['error', 'warn', 'info', 'debug'].includes(c['logLevel'] as string)) fail('logLevel', 'must be error, warn, info or debug');
    config.logLevel = c['logLevel'] as DaemonConfig['logLevel'];
  }
  const mapping = (key: string, known: string[], example: string): Record<string, unknown> | undefined => {
    const v = c[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(key, `must be a mapping like ${example}`);
    for (const k of Object.keys(v as object)) if (!known.includes(k)) fail(key, `unknown setting "${k}" (known: ${known.join(', ')})`);
    return v as Record<string, unknown>;
  };
  const ctd = mapping('containerd', ['enabled', 'address', 'namespaces'], '{ address: /run/containerd/containerd.sock, namespaces: [k8s.io] }');
  if (ctd) {
    if (ctd['enabled'] !== undefined) {
      if (typeof ctd['enabled'] !== 'boolean') fail('containerd', 'enabled must be true or false');
      config.containerd.enabled = ctd['enabled'] as boolean;
    }
    if (ctd['address'] !== undefined) {
      if (typeof ctd['address'] !== 'string' || !isAbsolute(ctd['address'])) fail('containerd', "address must be the absolute path of containerd's socket");
      config.containerd.address = ctd['address'] as string;
    }
    if (ctd['namespaces'] !== undefined) {
      const ns = ctd['namespaces'];
      if (!Array.isArray(ns) || ns.length === 0 || !ns.every((n) => typeof n === 'string' && /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(n)))
        fail('containerd', 'namespaces must be a non-empty list of containerd namespace names (leave it out for all)');
      config.containerd.namespaces = ns as string[];
    }
  }
  const images = mapping('images', ['onUnverified', 'reverifyInterval'], '{ onUnverified: report, reverifyInterval: 1h }');
  if (images) {
    if (images['onUnverified'] !== undefined) {
      if (images['onUnverified'] !== 'report' && images['onUnverified'] !== 'remove') fail('images', 'onUnverified must be report or remove');
      config.images.onUnverified = images['onUnverified'] as 'report' | 'remove';
    }
    if (images['reverifyInterval'] !== undefined) {
      try {
        config.images.reverifyIntervalMs = parseDuration(images['reverifyInterval'], 'reverifyInterval', 'CONFIG_INVALID');
      } catch (err) {
        fail('images', (err as Error).message);
      }
      if (config.images.reverifyIntervalMs < 1000) fail('images', 'reverifyInterval must be at least 1s');
    }
  }
  if (c['nri'] !== undefined) {
    // `nri:` alone (null) turns the plugin on with the defaults.
    if (c['nri'] === null) c['nri'] = {};
    const n = mapping('nri', ['socket', 'index', 'timeout'], '{ socket: /var/run/nri/nri.sock, index: "10", timeout: 1.5s }')!;
    config.nri = { ...DEFAULT_NRI };
    if (n['socket'] !== undefined) {
      if (typeof n['socket'] !== 'string' || !isAbsolute(n['socket'])) fail('nri', "socket must be the absolute path of containerd's NRI socket");
      config.nri.socket = n['socket'] as string;
    }
    if (n['index'] !== undefined) {
      const idx =
        typeof n['index'] === 'number' && Number.isInteger(n['index']) && n['index'] >= 0 && n['index'] <= 99
          ? String(n['index']).padStart(2, '0')
          : n['index'];
      if (typeof idx !== 'string' || !/^[0-9]{2}$/.test(idx)) fail('nri', `index must be two digits ("00" to "99"), got ${JSON.stringify(n['index'])}`);
      config.nri.index = idx as string;
    }
    if (n['timeout'] !== undefined) {
      try {
        config.nri.timeoutMs = parseDuration(n['timeout'], 'timeout', 'CONFIG_INVALID');
      } catch (err) {
        fail('nri', (err as Error).message);
      }
      if (config.nri.timeoutMs < 100 || config.nri.timeoutMs > 60_000)
        fail('nri', "timeout must be from 100ms to 60s (and below containerd's plugin_request_timeout, 2s by default)");
    }
  }
  config.cacheTtlMs = duration('cacheTTL') ?? config.cacheTtlMs;
  config.negativeCacheTtlMs = duration('negativeCacheTTL') ?? config.negativeCacheTtlMs;
  if (config.cacheTtlMs > 24 * 3600_000) fail('cacheTTL', 'must be at most 24h');
  if (config.negativeCacheTtlMs > config.cacheTtlMs && c['negativeCacheTTL'] !== undefined) fail('negativeCacheTTL', 'must not be longer than cacheTTL');
  config.cacheEntries = int('cacheEntries', 1, 10_000_000) ?? config.cacheEntries;
  if (c['contentCacheSize'] !== undefined) {
    const bytes = parseSize(c['contentCacheSize']);
    if (bytes === undefined || bytes > 16 * 1024 ** 3)
      fail('contentCacheSize', 'must be a size like 64MiB, 512KiB or a number of bytes (0 turns it off; at most 16GiB)');
    config.contentCacheBytes = bytes!;
  }
  if (c['metrics'] !== undefined) {
    // `metrics:` alone (null) turns the endpoint on at 127.0.0.1:9464.
    if (c['metrics'] === null) c['metrics'] = {};
    const m = mapping('metrics', ['listen'], '{ listen: "127.0.0.1:9464" } or { listen: /run/signet/metrics.sock }')!;
    const listen = m['listen'] ?? '127.0.0.1:9464';
    if (typeof listen !== 'string' || parseListen(listen) === undefined)
      fail('metrics', `listen must be host:port (127.0.0.1:9464) or an absolute unix socket path, got ${JSON.stringify(listen)}`);
    config.metrics = { listen: listen as string };
  }
  if (c['policySource'] !== undefined) {
    const ps = mapping(
      'policySource',
      ['ref', 'keys', 'interval', 'cacheDir'],
      '{ ref: registry.example.com/security/node-policy:prod, keys: { policy-signer: { file: /etc/signet/policy-signer.pub } } }',
    )!;
    const ref = ps['ref'];
    if (typeof ref !== 'string') fail('policySource', "ref must be the policy artifact's reference, like registry.example.com/security/node-policy:prod");
    try {
      const parsed = parseReference(ref as string);
      if (parsed.tag === undefined && parsed.digest === undefined) fail('policySource', 'ref needs a tag (or a digest)');
    } catch (err) {
      if (err instanceof SignetError && err.code === 'CONFIG_INVALID') throw err;
      fail('policySource', `ref: ${(err as Error).message}`);
    }
    const keys = ps['keys'];
    if (typeof keys !== 'object' || keys === null || Array.isArray(keys) || Object.keys(keys).length === 0)
      fail('policySource', 'keys must name at least one key that may sign the policy, like { policy-signer: { file: /etc/signet/policy-signer.pub } }');
    const specs: Record<string, { file?: string; pkcs11?: string }> = {};
    for (const [name, spec] of Object.entries(keys as Record<string, unknown>)) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) fail('policySource', `key name "${name}" may hold letters, digits, ".", "_" and "-"`);
      const s = spec as Record<string, unknown> | null;
      const kinds = s !== null && typeof s === 'object' && !Array.isArray(s) ? Object.keys(s) : [];
      if (kinds.length !== 1 || !['file', 'pkcs11'].includes(kinds[0]!))
        fail('policySource', `key "${name}" must be { file: /absolute/path.pub } or { pkcs11: "pkcs11:…" }`);
      const v = s![kinds[0]!];
      if (kinds[0] === 'file' && (typeof v !== 'string' || !isAbsolute(v))) fail('policySource', `key "${name}": file must be an absolute path`);
      if (kinds[0] === 'pkcs11' && (typeof v !== 'string' || !v.startsWith('pkcs11:')))
        fail('policySource', `key "${name}": pkcs11 must be an RFC 7512 URI (pkcs11:…)`);
      specs[name] = { [kinds[0]!]: v as string };
    }
    let intervalMs = DEFAULT_POLICY_SOURCE.intervalMs;
    if (ps['interval'] !== undefined) {
      try {
        intervalMs = parseDuration(ps['interval'], 'interval', 'CONFIG_INVALID');
      } catch (err) {
        fail('policySource', (err as Error).message);
      }
      if (intervalMs < 1000) fail('policySource', 'interval must be at least 1s');
    }
    const cacheDir = ps['cacheDir'] ?? DEFAULT_POLICY_SOURCE.cacheDir;
    if (typeof cacheDir !== 'string' || !isAbsolute(cacheDir)) fail('policySource', 'cacheDir must be an absolute path');
    config.policySource = { ref: ref as string, keys: specs, intervalMs, cacheDir: cacheDir as string };
    // The policy comes from the source alone unless a local directory is named too.
    if (c['policyDir'] === undefined) config.policyDir = '';
  }
  if (config.verifyTimeoutMs >= 8000) fail('verifyTimeout', "must be below 8s, the verifier's own deadline, so that signetd answers first");
  return config;
}

/** `64MiB`, `512KiB`, `1GiB`, `1000000` (bytes): bytes, or undefined when it is none of these. */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^([0-9]+)\s*(B|KiB|MiB|GiB)?$/.exec(v.trim());
  if (!m) return undefined;
  const unit = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[(m[2] ?? 'B') as 'B' | 'KiB' | 'MiB' | 'GiB'];
  return Number(m[1]) * unit;
}
