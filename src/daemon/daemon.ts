/**
 * signetd's core: the policy in force (swapped atomically on reload), the keys it names, the engine
 * and the audit trail. The gRPC server is a thin layer over verify() and status().
 */
import { describeError } from '../errors.js';
import { AuditLog, type AuditHealth } from '../audit/audit-log.js';
import { ContainerdClient } from '../containerd/client.js';
import { NodeImageEnforcer, type NodeEnforcerStatus } from '../containerd/node-enforcer.js';
import { CreationGate, type CreationStatus } from '../nri/creation.js';
import { NriPlugin, type NriStatus } from '../nri/plugin.js';
import type { Decision, VerifyRequest } from '../engine/decision.js';
import { VerificationEngine } from '../engine/engine.js';
import { SourceFactory } from '../engine/default-sources.js';
import { keyUsability } from '../policy/key-window.js';
import { KeyRing, type KeySet } from '../keys/keyring.js';
import { PemKeyProvider } from '../keys/pem-provider.js';
import { SigstoreKeyProvider } from '../keys/sigstore-provider.js';
import type { KeyProvider } from '../keys/provider.js';
import type { KeyStatus } from '../keys/types.js';
import type { Policy } from '../policy/types.js';
import { PolicyWatcher } from '../policy/watcher.js';
import { loadPolicyFiles, PolicyLoadError, readPolicyFiles } from '../policy/load.js';
import { PolicySource, type PolicyArtifact, type PolicySourceStatus } from '../policy-source/source.js';
import { CachingRegistryClient } from '../registry/content-cache.js';
import { VerdictCache, type VerdictCacheStats } from '../cache/verdict-cache.js';
import { Metrics } from '../metrics/metrics.js';
import { MetricsServer } from '../metrics/server.js';
import type { NodeContext, CreateContext } from '../audit/audit-log.js';
import type { ContentCacheStats } from '../registry/content-cache.js';
import { Admission, type AdmissionStatus } from './admission.js';
import { IdleCompactor } from './idle-gc.js';
import { VerifyImagePath } from './verify-image.js';
import type { DaemonConfig } from './config.js';
import type { Logger } from './logger.js';
import { VERSION } from '../version.js';

export { VERSION };

export interface DaemonStatus {
  version: string;
  ready: boolean;
  policyGeneration: string;
  policyFiles: string[];
  policyDir: string;
  lastReload: string;
  lastReloadError: string;
  keys: KeyStatus[];
  uptimeSeconds: number;
  decisions: number;
  warnings: string[];
  /** Decisions in progress and waiting, and what was refused for lack of capacity. */
  admission: AdmissionStatus;
  audit: AuditHealth & { onFailure: DaemonConfig['auditFailure'] };
  /** The watch over containerd's images; absent when `containerd.enabled` is false. */
  containerd?: NodeEnforcerStatus;
  /** signetd as an NRI plugin (container creation); absent when `nri` is not configured. */
  nri?: NriStatus & CreationStatus;
  /** The verdict cache (shared by every path) and the content cache (manifests and blobs by digest). */
  cache: VerdictCacheStats & { ttlMs: number; negativeTtlMs: number; content: ContentCacheStats };
  /** Where the metrics are served, or '' when off. */
  metricsListen: string;
  /** The signed policy artifact (`policySource`); absent when none is configured. */
  policySource?: PolicySourceStatus;
}

export class Daemon {
  /** The policy and its keys, swapped together in one assignment (see PolicySnapshot). */
  private snapshot: { policy: Policy; keys: KeySet } | undefined;
  private lastReload: Date | undefined;
  private lastReloadError: string | undefined;
  private decisions = 0;
  private readonly startedAt = Date.now();
  private readonly keys: KeyRing;
  private readonly engine: VerificationEngine;
  private readonly audit: AuditLog;
  /** The local policy directory; absent when `policySource` alone gives the policy. */
  private readonly watcher: PolicyWatcher | undefined;
  /** The fleet's signed policy artifact, and the one verified last (merged with the local directory). */
  private readonly source: PolicySource | undefined;
  private sourceArtifact: PolicyArtifact | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Serialises key loading so a reload and a refresh never interleave. */
  private keyWork: Promise<void> = Promise.resolve();
  private readonly statusListeners = new Set<() => void>();
  private readonly nodeImages: NodeImageEnforcer | undefined;
  /** The NRI plugin and the decisions it asks for at container creation. */
  private readonly nri: { plugin: NriPlugin; gate: CreationGate; client: ContainerdClient } | undefined;
  /** Bounds decisions in flight and waiting (the gRPC server runs VerifyImage through it). */
  readonly admission: Admission;
  /** VerifyImage for every door (gRPC, the verifier's HTTP socket): cache, admission, decision, audit. */
  readonly verifyImage: VerifyImagePath;
  private readonly compactor = new IdleCompactor();
  /** Bumped on every change of the keys (a policy load, a refresh that saw a key change): part of the cache key. */
  private keyGeneration = 0;
  /** One verdict cache for every path: VerifyImage, the image watcher, NRI creation. */
  readonly verdicts: VerdictCache;
  private readonly registry: CachingRegistryClient;
  readonly metrics: Metrics;
  private metricsServer: MetricsServer | undefined;
  private metricsAddress = '';

  constructor(
    private readonly config: DaemonConfig,
    private readonly log: Logger,
    extraProviders: KeyProvider[] = [],
  ) {
    this.keys = new KeyRing([new PemKeyProvider(), new SigstoreKeyProvider(), ...extraProviders], log);
    this.metrics = new Metrics({
      policy: () => ({ loaded: this.policy !== undefined, generation: this.policy?.generation ?? '' }),
      keys: () => {
        const status = new Map(this.keys.status().map((k) => [k.name, k]));
        return Object.entries(this.policy?.keys ?? {}).map(([name, def]) => ({
          name,
          loaded: status.get(name)?.lastError === undefined && status.get(name)?.fingerprint !== undefined,
          revoked: def.revoked,
          ...(def.notAfter ? { notAfter: def.notAfter } : {}),
        }));
      },
      verdictCache: () => this.verdicts.stats(),
      contentCache: () => this.registry.contentStats(),
      audit: () => this.audit.health(),
      admission: () => this.admission.status(),
      containerd: () => (this.nodeImages ? this.nodeImages.status() : undefined),
      nri: () => (this.nri ? { socket: this.config.nri!.socket, connected: this.nri.plugin.status().connected, ...this.nri.gate.status() } : undefined),
      policySource: () => this.source?.status(),
    });
    const client = (this.registry = new CachingRegistryClient({
      contentCacheBytes: config.contentCacheBytes,
      onExchange: (info) => this.metrics.registryExchange(info),
      insecureRegistries: config.insecureRegistries,
      requestTimeoutMs: config.registryTimeoutMs,
      retries: config.registryRetries,
      concurrencyPerHost: config.registryConcurrency,
      ...(config.dockerConfig !== undefined ? { dockerConfigPath: config.dockerConfig } : {}),
      ...(config.registryConfigPath !== undefined ? { registryConfigPath: config.registryConfigPath } : {}),
      userAgent: `signetd/${VERSION}`,
    }));
    const sources = new SourceFactory(client);
    // After a burst of decisions, once idle, the heap V8 grew for it is given back (idle-gc.ts).
    this.admission = new Admission({
      maxInFlight: config.maxConcurrentDecisions,
      maxQueued: config.maxQueuedDecisions,
      maxQueueWaitMs: config.maxQueueWaitMs,
      onSettled: (busy) => this.compactor.ended(busy),
    });
    this.verifyImage = new VerifyImagePath(this, log);
    this.engine = new VerificationEngine({
      snapshot: () => ({ ...this.snapshot, ...(this.lastReloadError ? { error: this.lastReloadError } : {}) }),
      sourcesFor: (specs, formats) => sources.sources(specs, formats),
      timeoutMs: config.verifyTimeoutMs,
      maxSignatures: config.maxSignatures,
    });
    this.verdicts = new VerdictCache(
      { decide: (request) => this.engine.verify(request), snapshot: () => ({ ...this.snapshot, keyGeneration: this.keyGeneration }) },
      { ttlMs: config.cacheTtlMs, negativeTtlMs: config.negativeCacheTtlMs, maxEntries: config.cacheEntries },
    );
    this.audit = new AuditLog(config.auditLog, log);
    this.audit.onHealthChange(() => this.notify());
    if (config.policySource) {
      this.source = new PolicySource(config.policySource, {
        client,
        keyProviders: [new PemKeyProvider(), ...extraProviders],
        log,
        timeoutMs: config.verifyTimeoutMs,
        maxSignatures: config.maxSignatures,
        apply: (artifact) => this.applySource(artifact),
        onCheck: (result) => {
          this.metrics.policySourceCheck(result);
          this.notify();
        },
      });
    }
    this.watcher =
      config.policyDir === ''
        ? undefined
        : new PolicyWatcher(
            config.policyDir,
            {
              onPolicy: (policy) => {
                // Merged with an artifact the source has replaced meanwhile: merge again with the one verified last.
                const artifact = this.sourceArtifact;
                if (artifact !== undefined && !policy.generation.startsWith(artifact.digest)) {
                  this.applySource(artifact).catch((err: unknown) =>
                    this.log.error('policy not loaded; the last good policy stays in force', { policyDir: config.policyDir, error: describeError(err) }),
                  );
                  return;
                }
                // A policy already in force (the source installed this merge itself) is not installed twice.
                if (policy.generation !== this.policy?.generation) void this.install(policy);
              },
              onError: (err) => {
                this.metrics.policyReload(false);
                this.lastReloadError = describeError(err);
                this.log.error('policy not loaded; the last good policy stays in force', {
                  policyDir: config.policyDir,
                  error: this.lastReloadError,
                  generation: this.policy?.generation ?? null,
                });
                this.notify();
              },
              onRecovered: (policy) => {
                // The directory loads again and gives the policy in force: the error in status is history.
                this.lastReloadError = undefined;
                this.log.info('policy directory loads again; the policy in force is unchanged', { policyDir: config.policyDir, generation: policy.generation });
                this.notify();
              },
            },
            { rescanMs: config.policyRescanIntervalMs, ...(this.source ? { load: (dir: string) => this.loadWithSource(dir) } : {}) },
          );
    if (config.containerd.enabled) {
      this.nodeImages = new NodeImageEnforcer(
        {
          ...(config.containerd.namespaces ? { namespaces: config.containerd.namespaces } : {}),
          onUnverified: config.images.onUnverified,
          reverifyIntervalMs: config.images.reverifyIntervalMs,
        },
        {
          client: new ContainerdClient(config.containerd.address),
          decide: (request) => this.decideCached(request),
          ready: () => this.policy !== undefined,
          policyGeneration: () => this.policy?.generation ?? '',
          // An image decided when it arrived is not decided again when a container is created from it: the
          // verdict cache is shared with NRI.
          record: (verdict, event, action) => void this.record(verdict.decision, { event, namespace: verdict.image.namespace, action }),
          log,
        },
      );
    }
    if (config.nri) {
      // Container creation through NRI: the image name resolved to its digest in CRI's namespace, then
      // the same engine and policy as a pull. Not through admission: creations are few, and bounded.
      const client = new ContainerdClient(config.containerd.address, config.nri.timeoutMs);
      // The gate's own verdict memory is off: the shared verdict cache answers for it.
      const gate = new CreationGate(
        {
          images: client,
          decide: (request) => this.decideCached(request),
          policyGeneration: () => this.policy?.generation ?? '',
          record: (decision, context) => this.record(decision, context),
          auditFailure: () => this.config.auditFailure,
          log,
        },
        { cacheTtlMs: 0 },
      );
      this.nri = { client, gate, plugin: new NriPlugin({ socket: config.nri.socket, index: config.nri.index, timeoutMs: config.nri.timeoutMs }, gate, log) };
    }
  }

  async start(): Promise<void> {
    // The source first: the local directory is merged with the artifact it verified (or kept in cacheDir).
    await this.source?.start();
    await this.watcher?.start();
    await this.keyWork;
    if (this.policy === undefined)
      this.log.error('no valid policy at start: every image is rejected until one loads', {
        policyDir: this.config.policyDir,
        policySource: this.config.policySource?.ref ?? null,
      });
    this.refreshTimer = setInterval(() => void this.refreshKeys(), this.config.keyRefreshIntervalMs);
    this.refreshTimer.unref();
    this.nodeImages?.start();
    this.nri?.plugin.start();
    if (this.config.metrics) {
      this.metricsServer = new MetricsServer(this.metrics, this.config.metrics.listen);
      this.metricsAddress = await this.metricsServer.start();
      this.log.info('metrics served', { listen: this.metricsAddress });
    }
  }

  /** A decision through the verdict cache (cached: true when it came from memory). */
  private async decideCached(request: VerifyRequest): Promise<Decision> {
    const { decision, cached } = await this.verdicts.decide(request);
    return cached ? decision : { ...decision, cached: false };
  }

  /** The audit line, and the decision counted in the metrics. */
  private record(decision: Decision, context?: NodeContext | CreateContext): boolean {
    const written = this.audit.record(decision, context);
    const scopes = this.policy?.scopes;
    const mode = (decision.scope === 'default' ? this.policy?.default.mode : scopes?.[decision.scope]?.mode) ?? '';
    this.metrics.decision(context?.event ?? 'decision', decision, mode, decision.durationMs / 1000);
    return written;
  }

  /** Drop every verdict: the policy or the keys changed. */
  private keysChanged(): void {
    this.keyGeneration++;
    this.verdicts.clear();
    this.nri?.gate.clear();
  }

  /**
   * The local directory merged with the verified policy artifact, as two files are merged. The
   * generation is the artifact's digest (followed by `+` and the merge's content hash when a local
   * directory takes part), so every audit line, status and metric names the artifact in force.
   */
  private async merged(localFiles: Array<{ path: string; text: string }>, artifact: PolicyArtifact): Promise<Policy> {
    const policy = await loadPolicyFiles(
      [...localFiles, ...artifact.files],
      `${this.config.policyDir ? `${this.config.policyDir} + ` : ''}${artifact.ref}@${artifact.digest}`,
    );
    return { ...policy, generation: localFiles.length > 0 ? `${artifact.digest}+${policy.generation}` : artifact.digest };
  }

  /** The watcher's load when a policySource is configured: the directory with the artifact in force. */
  private async loadWithSource(dir: string): Promise<Policy> {
    const artifact = this.sourceArtifact;
    if (artifact === undefined) {
      throw new PolicyLoadError(
        [
          {
            file: this.config.policySource!.ref,
            message:
              'no verified policy artifact yet (the registry gave none that verifies, and cacheDir holds none): every image is rejected until one is verified',
          },
        ],
        'POLICY_NOT_FOUND',
      );
    }
    return this.merged(await readPolicyFiles(dir, { allowEmpty: true }), artifact);
  }

  /** A verified artifact: merged with the local directory and installed, or a throw (nothing changes). */
  private async applySource(artifact: PolicyArtifact): Promise<void> {
    const local = this.config.policyDir === '' ? [] : await readPolicyFiles(this.config.policyDir, { allowEmpty: true });
    const policy = await this.merged(local, artifact);
    this.sourceArtifact = artifact;
    if (policy.generation !== this.policy?.generation) await this.install(policy);
  }

  /** Load the keys the new policy names, then swap policy in one assignment. */
  private install(policy: Policy): Promise<void> {
    this.keyWork = this.keyWork.then(async () => {
      const keys = await this.keys.load(policy.keys);
      // The cache is dropped in the same tick as the swap: no request sees the new snapshot with old verdicts.
      this.keyGeneration++;
      this.snapshot = { policy, keys };
      this.verdicts.clear();
      this.metrics.policyReload(true);
      this.lastReload = new Date();
      this.lastReloadError = undefined;
      this.log.info('policy loaded', { generation: policy.generation, files: policy.files, keys: this.keys.size });
      this.notify();
      this.nri?.gate.clear();
      // Images already on the node are decided again under the new policy.
      void this.nodeImages?.reverify('policy');
    });
    return this.keyWork;
  }

  refreshKeys(): Promise<void> {
    this.keyWork = this.keyWork
      .then(async () => {
        const before = this.keyFingerprint();
        await this.keys.refresh();
        // A key that went away, came back or changed changes verdicts: decide the node's images again.
        if (this.keyFingerprint() !== before) {
          this.keysChanged();
          void this.nodeImages?.reverify('keys');
        }
      })
      .catch((err: unknown) => {
        this.log.error('key refresh failed', { error: describeError(err) });
      });
    return this.keyWork;
  }

  private keyFingerprint(): string {
    return JSON.stringify(this.keys.status().map((k) => [k.name, k.fingerprint ?? '', k.lastError ?? '']));
  }

  /** Reload on SIGHUP: policy files and keys. */
  async reload(): Promise<void> {
    this.audit.reopen();
    await this.watcher?.reload();
    await this.source?.reload();
    await this.refreshKeys();
  }

  async verify(request: VerifyRequest): Promise<Decision> {
    return this.conclude(await this.decideCached(request));
  }

  /**
   * VerifyImage answered from the verdict cache, synchronously (audited like any other), or undefined:
   * a cached verdict needs no decision slot, so the gRPC layer asks here before admission.
   */
  verifyCached(request: VerifyRequest): Decision | undefined {
    const decision = this.verdicts.peek(request);
    return decision === undefined ? undefined : this.conclude(decision);
  }

  /** Count, audit, and refuse what cannot be audited (auditFailure: reject). */
  private conclude(decision: Decision): Decision {
    this.decisions++;
    if (this.record(decision) || this.config.auditFailure === 'allow' || !decision.ok) return decision;
    // Like auditd's disk_full_action: what cannot be recorded is not allowed.
    const { lastError } = this.audit.health();
    return {
      ...decision,
      ok: false,
      decision: 'reject',
      code: 'AUDIT_UNAVAILABLE',
      reason: `rejected ${decision.image}@${decision.digest}: the decision cannot be recorded in the audit log ${this.config.auditLog} (${lastError}); auditFailure: reject refuses what cannot be audited`,
    };
  }

  status(): DaemonStatus {
    return {
      version: VERSION,
      ready: this.policy !== undefined,
      policyGeneration: this.policy?.generation ?? '',
      policyFiles: this.policy?.files ?? [],
      policyDir: this.config.policyDir,
      lastReload: this.lastReload?.toISOString() ?? '',
      lastReloadError: this.lastReloadError ?? '',
      keys: this.keys.status(),
      uptimeSeconds: (Date.now() - this.startedAt) / 1000,
      decisions: this.decisions,
      warnings: this.keyWarnings(),
      admission: this.admission.status(),
      audit: { ...this.audit.health(), onFailure: this.config.auditFailure },
      ...(this.nodeImages ? { containerd: this.nodeImages.status() } : {}),
      ...(this.nri ? { nri: { ...this.nri.plugin.status(), ...this.nri.gate.status() } } : {}),
      cache: { ...this.verdicts.stats(), ttlMs: this.config.cacheTtlMs, negativeTtlMs: this.config.negativeCacheTtlMs, content: this.registry.contentStats() },
      metricsListen: this.metricsAddress,
      ...(this.source ? { policySource: this.source.status() } : {}),
    };
  }

  /** Keys whose validity window ends soon (expiryWarning), or has ended. */
  private keyWarnings(): string[] {
    const now = new Date();
    return Object.entries(this.policy?.keys ?? {}).flatMap(([name, def]) => {
      const u = keyUsability(name, def, now);
      if (u.usable) return u.warning ? [u.warning] : [];
      return u.code === 'KEY_EXPIRED' || u.code === 'KEY_REVOKED' ? [u.reason] : [];
    });
  }

  private get policy(): Policy | undefined {
    return this.snapshot?.policy;
  }

  get ready(): boolean {
    return this.policy !== undefined;
  }

  /** Health: a policy is loaded and decisions can be recorded. */
  get serving(): boolean {
    return this.ready && this.audit.health().writable;
  }

  onStatusChange(listener: () => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private notify(): void {
    for (const l of this.statusListeners) l();
  }

  async stop(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.compactor.stop();
    await this.metricsServer?.stop();
    await this.nri?.plugin.stop();
    this.nri?.client.close();
    await this.nodeImages?.stop();
    await this.source?.close();
    await this.watcher?.close();
    await this.keyWork.catch(() => undefined);
    await this.keys.close();
    await this.audit.close();
  }
}
