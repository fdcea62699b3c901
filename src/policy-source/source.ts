/**
 * signetd's `policySource`: the trust policy of a fleet, read from a signed OCI artifact.
 *
 * Every `interval` the reference is resolved with one HEAD request (the manifest digest). An unchanged
 * digest costs nothing more. A new one is verified first — with the engine, under a tiny policy of its
 * own whose only scope is the reference's repository and whose keys are `policySource.keys` (trust in
 * the policy never comes from the policy) — and only then is a byte of the artifact read: the manifest
 * and the layer by digest (digest-verified), the tar read strictly, the files handed to `apply`, which
 * merges and installs them atomically or throws. A verified artifact is kept in `cacheDir` as an OCI
 * image layout together with its signature; at start it is verified again there, with the same keys,
 * and enforced before the registry is asked, so a node that boots without the registry enforces it. A digest that fails is not verified again until the next
 * SIGHUP (reload()), so a bad push costs each node one verification, not one per interval.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, SignetError } from '../errors.js';
import { couldNotCheck } from '../cache/verdict-cache.js';
import { cosignSignatureTag } from '../formats/cosign.js';
import { VerificationEngine, type PolicySnapshot } from '../engine/engine.js';
import { SourceFactory } from '../engine/default-sources.js';
import { KeyRing, type KeySet } from '../keys/keyring.js';
import type { KeyProvider, KeySpec } from '../keys/provider.js';
import type { Policy, ScopePolicy, SignatureSourceSpec } from '../policy/types.js';
import type { RegistryClient } from '../registry/client.js';
import { OciLayoutStore } from '../registry/oci-layout.js';
import { formatReference, parseReference, repositoryName, type ImageReference } from '../registry/reference.js';
import { MEDIA_TYPES, type Descriptor } from '../registry/types.js';
import { LIMITS, printable } from '../util/printable.js';
import { MAX_POLICY_LAYER_BYTES, POLICY_ARTIFACT_TYPE, policyLayerOf, readPolicyTar } from './artifact.js';

export interface PolicySourceConfig {
  /** `host/repo:tag` (or `@digest`) of the policy artifact. */
  ref: string;
  /** The keys that may sign the policy: PEM files or PKCS#11 URIs. */
  keys: Record<string, Pick<KeySpec, 'file' | 'pkcs11'>>;
  intervalMs: number;
  /** Where the last verified artifact is kept (an OCI image layout). */
  cacheDir: string;
}

/** A verified artifact's policy files, named `host/repo@sha256:…/file.yaml` in problems and status. */
export interface PolicyArtifact {
  ref: string;
  digest: string;
  files: Array<{ path: string; text: string }>;
  fromCache: boolean;
}

export type PolicySourceCheck = 'unchanged' | 'applied' | 'rejected' | 'unavailable';

export interface PolicySourceStatus {
  ref: string;
  /** The artifact in force, or ''. */
  digest: string;
  /** RFC 3339: when the artifact in force was verified. */
  verifiedAt: string;
  /** Read from cacheDir at start (the registry could not give a verified artifact). */
  fromCache: boolean;
  /** What the reference pointed to at the last check that reached the registry. */
  remoteDigest: string;
  lastCheck: string;
  /** Why the last check did not leave the reference's artifact in force ('' when it did). */
  lastError: string;
  /** Checks that failed: registry unreachable, or an artifact refused. */
  failures: number;
  /** Artifacts refused (signature, content, or they do not load). */
  rejected: number;
  checks: number;
  intervalMs: number;
  cacheDir: string;
}

export interface PolicySourceLogger {
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  error(message: string, meta?: Record<string, unknown>): unknown;
}

export interface PolicySourceDeps {
  client: RegistryClient;
  keyProviders: KeyProvider[];
  log: PolicySourceLogger;
  /** Bound on verifying the artifact's signature (verifyTimeout). */
  timeoutMs: number;
  maxSignatures: number;
  /** Merge and install a verified artifact, atomically; throws (PolicyLoadError…) when it cannot be. */
  apply(artifact: PolicyArtifact): Promise<void>;
  /** Each check's outcome (metrics) and status changes. */
  onCheck?(result: PolicySourceCheck): void;
}

const REF_NAME = 'org.opencontainers.image.ref.name';
/** Verifications that could not decide (a key file missing, a token gone, the registry failing): not a refusal to remember. */
const TRANSIENT = new WeakSet<Error>();
const MAX_SIGNATURE_BLOB_BYTES = 1024 * 1024;

export class PolicySource {
  private readonly ref: ImageReference;
  private readonly refName: string;
  private readonly repo: { registry: string; repository: string };
  private readonly keyRing: KeyRing;
  private keys: KeySet | undefined;
  private readonly engine: VerificationEngine;
  private snapshot: PolicySnapshot = {};
  private readonly registryPolicy: Policy;
  private readonly cachePolicy: Policy;
  private applied: { digest: string; verifiedAt: Date; fromCache: boolean } | undefined;
  /** A digest refused once: not verified again until reload(). */
  private refused: { digest: string; error: string } | undefined;
  private remoteDigest = '';
  private lastCheck: Date | undefined;
  private lastError = '';
  private failures = 0;
  private rejected = 0;
  private checks = 0;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly config: PolicySourceConfig,
    private readonly deps: PolicySourceDeps,
  ) {
    this.ref = parseReference(config.ref);
    this.refName = formatReference(this.ref);
    this.repo = { registry: this.ref.registry, repository: this.ref.repository };
    this.keyRing = new KeyRing(deps.keyProviders, deps.log);
    this.registryPolicy = signerPolicy(this.ref, config.keys, ['registry']);
    this.cachePolicy = signerPolicy(this.ref, config.keys, [{ ociLayout: config.cacheDir }]);
    const sources = new SourceFactory(deps.client);
    this.engine = new VerificationEngine({
      snapshot: () => this.snapshot,
      sourcesFor: (specs, formats) => sources.sources(specs, formats),
      timeoutMs: deps.timeoutMs,
      maxSignatures: deps.maxSignatures,
    });
  }

  /**
   * The last verified artifact in cacheDir first, verified again (local, fast: a node that boots
   * without the registry enforces it at once, not after the registry's timeouts), then the first
   * check of the registry: awaited when the cache gave nothing, in the background when it did (a
   * newer artifact then follows within moments). Then a check every interval.
   */
  async start(): Promise<void> {
    this.keys = await this.keyRing.load(this.config.keys);
    await this.loadCache();
    if (this.closed) return;
    if (this.applied === undefined) await this.poll();
    else void this.poll();
    if (this.closed) return;
    this.timer = setInterval(() => void this.poll(), this.config.intervalMs);
    this.timer.unref();
  }

  /** SIGHUP: keys read again, a refused digest may be tried again, and a check now. */
  async reload(): Promise<void> {
    this.refused = undefined;
    await this.keyRing.refresh();
    await this.poll();
  }

  /** One check (serialised: a check under way is joined, never doubled). */
  poll(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.polling ??= this.check().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.polling;
  }

  status(): PolicySourceStatus {
    return {
      ref: this.refName,
      digest: this.applied?.digest ?? '',
      verifiedAt: this.applied?.verifiedAt.toISOString() ?? '',
      fromCache: this.applied?.fromCache ?? false,
      remoteDigest: this.remoteDigest,
      lastCheck: this.lastCheck?.toISOString() ?? '',
      lastError: this.lastError === '' ? '' : `${this.lastError}; ${this.inForce()}`,
      failures: this.failures,
      rejected: this.rejected,
      checks: this.checks,
      intervalMs: this.config.intervalMs,
      cacheDir: this.config.cacheDir,
    };
  }

  private async check(): Promise<void> {
    this.checks++;
    this.lastCheck = new Date();
    let descriptor: Descriptor;
    try {
      // One HEAD: the manifest digest. Nothing else is asked while it does not change.
      descriptor = await this.deps.client.resolve(this.repo, this.ref.digest ?? this.ref.tag ?? 'latest');
    } catch (err) {
      this.fail('unavailable', `cannot resolve ${this.refName}: ${describeError(err)}`);
      return;
    }
    this.remoteDigest = descriptor.digest;
    if (this.applied?.digest === descriptor.digest) {
      if (this.applied.fromCache) this.applied = { ...this.applied, fromCache: false };
      this.succeed('unchanged');
      return;
    }
    if (this.refused?.digest === descriptor.digest) {
      // Refused before: counted and shown again, verified again only after a reload (SIGHUP).
      this.fail('rejected', this.refused.error, { repeat: true });
      return;
    }
    let artifact: PolicyArtifact;
    try {
      await this.keyRing.refresh();
      artifact = await this.fetchVerified(descriptor);
    } catch (err) {
      const message = describeError(err);
      // Could not check (registry, key or token unavailable, out of time): tried again at the next check.
      if (TRANSIENT.has(err as Error) || (err instanceof SignetError && ['REGISTRY_UNAVAILABLE', 'REGISTRY_TIMEOUT'].includes(err.code))) {
        this.fail('unavailable', `${this.refName}@${descriptor.digest}: ${message}`);
        return;
      }
      const error = `policy artifact ${this.refName}@${descriptor.digest} refused: ${message}`;
      this.refused = { digest: descriptor.digest, error };
      this.fail('rejected', error);
      return;
    }
    try {
      await this.install(artifact);
    } catch (err) {
      // Not remembered as refused: the local directory it is merged with may be fixed meanwhile.
      this.fail('rejected', `policy artifact ${this.refName}@${descriptor.digest} refused: ${describeError(err)}`);
      return;
    }
    await this.saveCache(descriptor).catch((err: unknown) =>
      this.deps.log.warn('policy artifact not kept in cacheDir: a node restarted without the registry will not have it', {
        cacheDir: this.config.cacheDir,
        error: describeError(err),
      }),
    );
  }

  /** Verify the signature, then (and only then) read the artifact. */
  private async fetchVerified(descriptor: Descriptor): Promise<PolicyArtifact> {
    await this.verifySignature(this.registryPolicy, descriptor);
    const where = `${repositoryName(this.ref)}@${descriptor.digest}`;
    const manifest = await this.deps.client.getManifest(this.repo, descriptor.digest, { accept: [MEDIA_TYPES.ociManifest] });
    const layer = policyLayerOf(manifest.bytes, where);
    const tar = await this.deps.client.getBlob(this.repo, layer.digest, { maxBytes: MAX_POLICY_LAYER_BYTES });
    return this.artifact(descriptor.digest, tar, false);
  }

  private artifact(digest: string, tar: Buffer, fromCache: boolean): PolicyArtifact {
    const where = `${repositoryName(this.ref)}@${digest}`;
    return { ref: this.refName, digest, fromCache, files: readPolicyTar(tar, where).map((f) => ({ path: `${where}/${f.name}`, text: f.text })) };
  }

  private async verifySignature(policy: Policy, descriptor: Descriptor): Promise<void> {
    this.snapshot = { policy, ...(this.keys ? { keys: this.keys } : {}) };
    const decision = await this.engine.verify({
      name: this.refName,
      descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size },
    });
    if (decision.ok && decision.decision === 'accept') return;
    const err = new SignetError(
      decision.code ?? 'SIGNATURE_INVALID',
      `signature not verified with the policySource keys (${Object.keys(this.config.keys).join(', ')}): ${decision.reason}`,
    );
    // A policySource key file missing (KEY_NOT_FOUND) is the node's problem, not the artifact's.
    if (couldNotCheck(decision) || decision.code === 'KEY_NOT_FOUND') TRANSIENT.add(err);
    throw err;
  }

  private async install(artifact: PolicyArtifact): Promise<void> {
    try {
      await this.deps.apply(artifact);
    } catch (err) {
      throw new SignetError('POLICY_INVALID', `the signature is valid but the policy does not load: ${describeError(err)}`, { cause: err });
    }
    const previous = this.applied?.digest;
    this.applied = { digest: artifact.digest, verifiedAt: new Date(), fromCache: artifact.fromCache };
    this.deps.log.info(artifact.fromCache ? 'policy artifact kept in cacheDir verified again and in force' : 'policy artifact verified and in force', {
      ref: this.refName,
      digest: artifact.digest,
      previous: previous ?? null,
      files: artifact.files.length,
    });
    // From cacheDir, what kept the registry's artifact out (unreachable, refused) is still true.
    if (artifact.fromCache) this.deps.onCheck?.('applied');
    else this.succeed('applied');
  }

  private inForce(): string {
    if (this.applied === undefined) return 'no policy from this source is in force';
    return `${this.applied.digest}${this.applied.fromCache ? ' (verified again from cacheDir)' : ''} stays in force`;
  }

  private succeed(result: PolicySourceCheck): void {
    const changed = this.lastError !== '';
    if (changed) this.deps.log.info('policy source checks again', { ref: this.refName, digest: this.applied?.digest ?? null });
    this.lastError = '';
    this.deps.onCheck?.(result);
  }

  private fail(result: PolicySourceCheck, error: string, options: { repeat?: boolean } = {}): void {
    this.failures++;
    if (result === 'rejected' && !options.repeat) this.rejected++;
    if (error !== this.lastError) {
      const log = result === 'rejected' ? this.deps.log.error.bind(this.deps.log) : this.deps.log.warn.bind(this.deps.log);
      log(result === 'rejected' ? 'policy artifact refused; nothing changes' : 'policy source could not be checked; nothing changes', {
        ref: this.refName,
        error: printable(`${error}; ${this.inForce()}`, LIMITS.reason),
      });
    }
    this.lastError = error;
    this.deps.onCheck?.(result);
  }

  /** The artifact in cacheDir, verified with the policySource keys as if it came from the registry. */
  private async loadCache(): Promise<void> {
    const layout = new OciLayoutStore(this.config.cacheDir);
    let entry: Descriptor | undefined;
    try {
      const index = JSON.parse(await readFile(join(this.config.cacheDir, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
      entry = (index.manifests ?? []).find((m) => m.annotations?.[REF_NAME] === this.refName && m.artifactType === POLICY_ARTIFACT_TYPE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.deps.log.warn('cacheDir cannot be read', { cacheDir: this.config.cacheDir, error: describeError(err) });
      return;
    }
    if (entry === undefined) return;
    try {
      const descriptor: Descriptor = { mediaType: MEDIA_TYPES.ociManifest, digest: entry.digest, size: entry.size };
      await this.verifySignature(this.cachePolicy, descriptor);
      const where = `${repositoryName(this.ref)}@${entry.digest}`;
      const manifest = await layout.getBlob(this.repo, entry.digest, { maxBytes: 64 * 1024 });
      const layer = policyLayerOf(manifest, where);
      const tar = await layout.getBlob(this.repo, layer.digest, { maxBytes: MAX_POLICY_LAYER_BYTES });
      await this.install(this.artifact(entry.digest, tar, true));
    } catch (err) {
      this.fail('rejected', `the policy artifact kept in ${this.config.cacheDir} (${entry.digest}) is not used: ${describeError(err)}`);
    }
  }

  /** Keep the artifact and its signature as an OCI image layout in cacheDir (written, then renamed into place). */
  private async saveCache(descriptor: Descriptor): Promise<void> {
    const { client } = this.deps;
    const manifest = await client.getManifest(this.repo, descriptor.digest, { accept: [MEDIA_TYPES.ociManifest] });
    const sigTag = cosignSignatureTag(descriptor.digest);
    const sig = await client.getManifest(this.repo, sigTag, { accept: [MEDIA_TYPES.ociManifest] });
    const blobs = new Map<string, Buffer>([
      [manifest.digest, manifest.bytes],
      [sig.digest, sig.bytes],
    ]);
    for (const m of [manifest.bytes, sig.bytes]) {
      const doc = JSON.parse(m.toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
      for (const d of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
        if (!blobs.has(d.digest))
          blobs.set(d.digest, await client.getBlob(this.repo, d.digest, { maxBytes: Math.max(MAX_POLICY_LAYER_BYTES, MAX_SIGNATURE_BLOB_BYTES) }));
      }
    }
    const dir = this.config.cacheDir;
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true, mode: 0o700 });
    for (const [digest, bytes] of blobs) await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [
        {
          mediaType: MEDIA_TYPES.ociManifest,
          digest: manifest.digest,
          size: manifest.bytes.length,
          artifactType: POLICY_ARTIFACT_TYPE,
          annotations: { [REF_NAME]: this.refName },
        },
        { mediaType: MEDIA_TYPES.ociManifest, digest: sig.digest, size: sig.bytes.length, annotations: { [REF_NAME]: sigTag } },
      ],
    };
    await writeFile(join(dir, 'index.json.tmp'), JSON.stringify(index));
    await rename(join(dir, 'index.json.tmp'), join(dir, 'index.json'));
    // Blobs of earlier artifacts go.
    const keep = new Set([...blobs.keys()].map((d) => d.slice(7)));
    for (const name of await readdir(join(dir, 'blobs', 'sha256'))) if (!keep.has(name)) await rm(join(dir, 'blobs', 'sha256', name), { force: true });
  }
}

/** The policy that decides whether a policy artifact may be trusted: its repository, signed (cosign) by one of `keys`. */
function signerPolicy(ref: ImageReference, keys: Record<string, Pick<KeySpec, 'file' | 'pkcs11'>>, sources: SignatureSourceSpec[]): Policy {
  const reject: ScopePolicy = {
    action: 'reject',
    mode: 'enforce',
    signatures: [],
    rejectIfSignedBy: [],
    denyDigests: [],
    attestations: [],
    signatureSources: ['registry'],
    formats: ['cosign'],
  };
  const scope: ScopePolicy = {
    ...reject,
    action: 'verify',
    signatures: [{ keys: Object.keys(keys), threshold: 1, identity: { type: 'matchRepository' } }],
    signatureSources: sources,
  };
  return {
    apiVersion: 'signet/v1',
    keys: Object.fromEntries(Object.entries(keys).map(([name, spec]) => [name, { ...spec, expiryWarningMs: 0, revoked: false }])),
    default: reject,
    scopes: { [repositoryName(ref)]: scope },
    denyDigests: [],
    generation: 'policy-source',
    files: [],
    origins: {},
  };
}
