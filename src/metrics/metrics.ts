/**
 * signetd's Prometheus metrics (prom-client, a registry of its own). Counters that the daemon already
 * keeps for Status (audit, admission, containerd watch, NRI) are read from it at scrape time, so the
 * two never disagree; decisions, latency and registry requests are counted as they happen.
 * Every metric is listed, with its labels, in the README ("Caching and metrics").
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ExchangeInfo } from '../registry/client.js';
import { pkcs11PoolStats, type Pkcs11PoolStats } from '../keys/pkcs11/pool-stats.js';

/** What the daemon reports at scrape time. */
export interface MetricsSource {
  policy(): { generation: string; loaded: boolean };
  keys(): Array<{ name: string; loaded: boolean; revoked: boolean; notAfter?: Date }>;
  verdictCache(): { entries: number; maxEntries: number; hits: number; misses: number; coalesced: number; cleared: number };
  contentCache(): { entries: number; bytes: number; maxBytes: number; hits: number; misses: number };
  audit(): { written: number; failures: number; writable: boolean };
  admission(): { inFlight: number; queued: number; refusedQueueFull: number; refusedQueueTimeout: number };
  containerd():
    { address: string; connected: boolean; imageEvents: number; imageEventsRefused: number; imagesRemoved: number; reverifications: number } | undefined;
  nri(): { socket: string; connected: boolean; decided: number; refused: number; timedOut: number; cached: number } | undefined;
  /** The signed policy artifact (policySource), when one is configured. */
  policySource?(): { ref: string; digest: string; lastError: string } | undefined;
  /** PKCS#11 session pools and Cryptoki errors (default: this process's, keys/pkcs11/pool-stats.ts). */
  pkcs11?(): Pkcs11PoolStats;
}

/** Decision latency buckets, seconds: a cached answer is sub-millisecond, a registry walk tens of ms, the bound 7 s. */
const DECISION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5];
const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** A counter whose value is read from `read()` at scrape time (it only ever grows there). */
function readCounter(register: Registry, name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [register],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

function readGauge(register: Registry, name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [register],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.set(labels, value);
    },
  });
}

export class Metrics {
  readonly register = new Registry();
  private readonly decisions: Counter;
  private readonly latency: Histogram;
  private readonly decisionSeries = new Map<string, { count: Counter.Internal; latency: Histogram.Internal<string> }>();
  private readonly registryRequests: Counter;
  private readonly registryLatency: Histogram;
  private readonly reloads: Counter;
  private readonly sourceChecks: Counter;

  constructor(source: MetricsSource, options: { now?: () => number; processMetrics?: boolean } = {}) {
    const r = this.register;
    const now = options.now ?? Date.now;
    if (options.processMetrics !== false) collectDefaultMetrics({ register: r });
    this.decisions = new Counter({
      name: 'signet_decisions_total',
      help: 'Images decided, by path (event: decision, image-event, reverify, create), outcome, code, scope, scope mode and whether the verdict came from the cache.',
      labelNames: ['event', 'decision', 'code', 'scope', 'mode', 'cached'],
      registers: [r],
    });
    this.latency = new Histogram({
      name: 'signet_decision_duration_seconds',
      help: 'Time to decide one image (cache lookups included), by path and whether it came from the cache.',
      labelNames: ['event', 'cached'],
      buckets: DECISION_BUCKETS,
      registers: [r],
    });
    this.registryRequests = new Counter({
      name: 'signet_registry_requests_total',
      help: 'HTTP requests to registries (token services and redirected storage included), by host, method and status (the HTTP status, or the error code when there was no answer).',
      labelNames: ['host', 'method', 'status'],
      registers: [r],
    });
    this.registryLatency = new Histogram({
      name: 'signet_registry_request_duration_seconds',
      help: 'Duration of registry HTTP requests, by host.',
      labelNames: ['host'],
      buckets: REQUEST_BUCKETS,
      registers: [r],
    });
    this.reloads = new Counter({
      name: 'signet_policy_reloads_total',
      help: 'Policy loads, by result (success, failure).',
      labelNames: ['result'],
      registers: [r],
    });
    this.reloads.inc({ result: 'success' }, 0);
    this.reloads.inc({ result: 'failure' }, 0);
    this.sourceChecks = new Counter({
      name: 'signet_policy_source_checks_total',
      help: 'Checks of the policy artifact (policySource), by result: unchanged (one HEAD), applied (a new artifact verified and in force, or the one kept in cacheDir at start), rejected (signature, content or merge refused; nothing changed), unavailable (could not check: registry unreachable, a policySource key unreadable).',
      labelNames: ['result'],
      registers: [r],
    });
    readGauge(
      r,
      'signet_policy_source_info',
      'The policy artifact in force (policySource): its reference and digest as labels; value 1 (absent until one is verified).',
      ['ref', 'digest'],
      () => {
        const s = source.policySource?.();
        return s && s.digest ? [[{ ref: s.ref, digest: s.digest }, 1]] : [];
      },
    );
    readGauge(
      r,
      'signet_policy_source_failing',
      '1 while the last check of the policy artifact failed (unreachable or refused; the artifact in force stays), 0 otherwise; absent without policySource.',
      ['ref'],
      () => {
        const s = source.policySource?.();
        return s ? [[{ ref: s.ref }, s.lastError ? 1 : 0]] : [];
      },
    );
    readGauge(r, 'signet_policy_loaded', 'Whether a valid policy is in force (1) or every image is refused (0).', [], () => [
      [{}, source.policy().loaded ? 1 : 0],
    ]);
    readGauge(r, 'signet_policy_generation_info', 'The policy generation in force (content hash), as a label; value 1.', ['generation'], () => {
      const p = source.policy();
      return p.loaded ? [[{ generation: p.generation }, 1]] : [];
    });
    readGauge(r, 'signet_key_loaded', 'Each key the policy names: 1 loaded and usable by its provider, 0 failing (file missing, token gone).', ['key'], () =>
      source.keys().map((k) => [{ key: k.name }, k.loaded ? 1 : 0]),
    );
    readGauge(r, 'signet_key_revoked', 'Each key the policy names: 1 when the policy marks it revoked.', ['key'], () =>
      source.keys().map((k) => [{ key: k.name }, k.revoked ? 1 : 0]),
    );
    readGauge(r, 'signet_key_expiry_seconds', "Seconds until each key's notAfter (negative once expired); keys without notAfter are not listed.", ['key'], () =>
      source.keys().flatMap((k): Array<[Record<string, string>, number]> => (k.notAfter ? [[{ key: k.name }, (k.notAfter.getTime() - now()) / 1000]] : [])),
    );
    readCounter(r, 'signet_verdict_cache_hits_total', 'Decisions answered from the verdict cache.', [], () => [[{}, source.verdictCache().hits]]);
    readCounter(r, 'signet_verdict_cache_misses_total', 'Decisions the verdict cache could not answer (a verification started).', [], () => [
      [{}, source.verdictCache().misses],
    ]);
    readCounter(r, 'signet_verdict_cache_coalesced_total', 'Requests that joined an identical verification already under way.', [], () => [
      [{}, source.verdictCache().coalesced],
    ]);
    readCounter(r, 'signet_verdict_cache_clears_total', 'Times the verdict cache was dropped (policy or key change).', [], () => [
      [{}, source.verdictCache().cleared],
    ]);
    readGauge(r, 'signet_verdict_cache_entries', 'Verdicts in the cache.', [], () => [[{}, source.verdictCache().entries]]);
    readGauge(r, 'signet_verdict_cache_max_entries', 'The bound on verdicts in the cache (cacheEntries).', [], () => [[{}, source.verdictCache().maxEntries]]);
    readCounter(r, 'signet_content_cache_hits_total', 'Manifests and blobs by digest served from the content cache.', [], () => [
      [{}, source.contentCache().hits],
    ]);
    readCounter(r, 'signet_content_cache_misses_total', 'Manifests and blobs by digest fetched from a registry.', [], () => [
      [{}, source.contentCache().misses],
    ]);
    readGauge(r, 'signet_content_cache_bytes', 'Bytes held by the content cache.', [], () => [[{}, source.contentCache().bytes]]);
    readGauge(r, 'signet_content_cache_entries', 'Manifests and blobs held by the content cache.', [], () => [[{}, source.contentCache().entries]]);
    readCounter(r, 'signet_audit_records_total', 'Audit records written.', [], () => [[{}, source.audit().written]]);
    readCounter(r, 'signet_audit_write_failures_total', 'Audit records that could not be written (lost).', [], () => [[{}, source.audit().failures]]);
    readGauge(r, 'signet_audit_writable', '1 while the audit log is written, 0 during a failure episode.', [], () => [[{}, source.audit().writable ? 1 : 0]]);
    readGauge(r, 'signet_admission_in_flight', 'VerifyImage decisions running.', [], () => [[{}, source.admission().inFlight]]);
    readGauge(r, 'signet_admission_queued', 'VerifyImage decisions waiting for a slot.', [], () => [[{}, source.admission().queued]]);
    readCounter(r, 'signet_admission_refused_total', 'VerifyImage requests refused for lack of capacity (RESOURCE_EXHAUSTED), by reason.', ['reason'], () => {
      const a = source.admission();
      return [
        [{ reason: 'queue-full' }, a.refusedQueueFull],
        [{ reason: 'queue-timeout' }, a.refusedQueueTimeout],
      ];
    });
    readGauge(
      r,
      'signet_containerd_connected',
      "1 while signetd follows containerd's image events at `address` (absent when the watch is off).",
      ['address'],
      () => {
        const c = source.containerd();
        return c ? [[{ address: c.address }, c.connected ? 1 : 0]] : [];
      },
    );
    readCounter(r, 'signet_image_events_total', 'Image records decided from containerd events, by result (accepted or refused).', ['result'], () => {
      const c = source.containerd();
      return c
        ? [
            [{ result: 'refused' }, c.imageEventsRefused],
            [{ result: 'accepted' }, c.imageEvents - c.imageEventsRefused],
          ]
        : [];
    });
    readCounter(r, 'signet_images_removed_total', 'Refused images removed from containerd (onUnverified: remove).', [], () => {
      const c = source.containerd();
      return c ? [[{}, c.imagesRemoved]] : [];
    });
    readCounter(r, 'signet_reverifications_total', 'Passes deciding every image on the node again (start, reconnect, policy, keys, interval).', [], () => {
      const c = source.containerd();
      return c ? [[{}, c.reverifications]] : [];
    });
    readGauge(
      r,
      'signet_nri_registered',
      "1 while signetd is registered with containerd's NRI at `socket` (absent when nri: is off). 0 means containers are created unchecked.",
      ['socket'],
      () => {
        const n = source.nri();
        return n ? [[{ socket: n.socket }, n.connected ? 1 : 0]] : [];
      },
    );
    const nri = (name: string, help: string, read: (n: NonNullable<ReturnType<MetricsSource['nri']>>) => number): void =>
      readCounter(r, name, help, [], () => {
        const n = source.nri();
        return n ? [[{}, read(n)]] : [];
      });
    nri('signet_nri_images_decided_total', 'Images decided at container creation (a container image and its pod sandbox image each count).', (n) => n.decided);
    nri('signet_nri_images_cached_total', 'Of those, answered from the verdict cache.', (n) => n.cached);
    nri('signet_nri_creations_refused_total', 'Container creations and pod sandboxes refused.', (n) => n.refused);
    nri('signet_nri_creations_timed_out_total', 'Of those, refused because no decision came within nri.timeout.', (n) => n.timedOut);
    // PKCS#11: one series per token a key has used (none before the first use), errors since start.
    const pkcs11 = (): Pkcs11PoolStats => source.pkcs11?.() ?? pkcs11PoolStats;
    const pool = (name: string, help: string, read: (p: ReturnType<Pkcs11PoolStats['pools']>[number]) => number): void =>
      readGauge(r, name, help, ['module', 'token'], () =>
        pkcs11()
          .pools()
          .map((p) => [{ module: p.module, token: p.token }, read(p)]),
      );
    pool('signet_pkcs11_sessions_open', 'PKCS#11 sessions open on each token (the pool holds at most 8 per token).', (p) => p.open);
    pool('signet_pkcs11_sessions_in_use', 'Of those, in use by a key lookup, verification or signature now.', (p) => p.inUse);
    pool('signet_pkcs11_session_waiters', 'Callers waiting for a session of each token (all sessions in use).', (p) => p.waiters);
    readCounter(
      r,
      'signet_pkcs11_errors_total',
      'Failed Cryptoki calls, by function (C_OpenSession, C_Login, C_Verify…) and CKR return value (CKR_PIN_INCORRECT, CKR_DEVICE_REMOVED…).',
      ['operation', 'code'],
      () =>
        pkcs11()
          .errors()
          .map((e) => [{ operation: e.operation, code: e.code }, e.count]),
    );
  }

  /** One image decided (any path). */
  decision(event: string, d: { decision: string; code?: string; scope: string; cached?: boolean }, mode: string, seconds: number): void {
    const cached = d.cached === true ? 'true' : 'false';
    // Counted on every decision, cached answers included: each label set's series is looked up once
    // (prom-client validates and hashes the labels on every call otherwise). As many as the series.
    const key = `${event}\u0000${d.decision}\u0000${d.code ?? ''}\u0000${d.scope}\u0000${mode}\u0000${cached}`;
    let series = this.decisionSeries.get(key);
    if (series === undefined) {
      series = {
        count: this.decisions.labels({ event, decision: d.decision, code: d.code ?? '', scope: d.scope, mode, cached }),
        latency: this.latency.labels({ event, cached }),
      };
      this.decisionSeries.set(key, series);
    }
    series.count.inc();
    series.latency.observe(seconds);
  }

  registryExchange(info: ExchangeInfo): void {
    this.registryRequests.inc({ host: info.host, method: info.method, status: info.status > 0 ? String(info.status) : (info.error ?? 'error') });
    this.registryLatency.observe({ host: info.host }, info.seconds);
  }

  policySourceCheck(result: 'unchanged' | 'applied' | 'rejected' | 'unavailable'): void {
    this.sourceChecks.inc({ result });
  }

  policyReload(ok: boolean): void {
    this.reloads.inc({ result: ok ? 'success' : 'failure' });
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.register.contentType, body: await this.register.metrics() };
  }
}
