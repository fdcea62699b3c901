/**
 * The engine's decision core without a registry or a daemon: policies through the real loader
 * (buildPolicy, so the rules are the documented ones), keys through a KeyRing with the PEM provider
 * (public keys written to a temporary folder) or a small in-memory KeySet, signatures and attestations
 * made here with node:crypto keys and the project's own encoders, served by in-memory sources.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey } from 'node:crypto';
import { SignetError } from '../../src/errors.js';
import { VerificationEngine, type AttestationLookup, type EngineOptions, type PolicySnapshot } from '../../src/engine/engine.js';
import type { Decision } from '../../src/engine/decision.js';
import type { UntrustedAttestation } from '../../src/engine/attestation-source.js';
import type { DiscoveredSignature, SignatureSource } from '../../src/engine/sources.js';
import { buildSimpleSigningPayload } from '../../src/formats/cosign.js';
import { INTOTO_PAYLOAD_TYPE, serializeEnvelope, signEnvelope } from '../../src/formats/dsse.js';
import { buildStatement, serializeStatement, subjectForDigest } from '../../src/formats/intoto.js';
import type { FormatName, UntrustedSignature } from '../../src/formats/types.js';
import { KeyRing, type KeyLookup, type KeySet } from '../../src/keys/keyring.js';
import { trustedKeyFromKeyObject } from '../../src/keys/node-key.js';
import { PemKeyProvider } from '../../src/keys/pem-provider.js';
import type { HashAlgorithm, TrustedKey } from '../../src/keys/types.js';
import { buildPolicy } from '../../src/policy/load.js';
import type { Policy, SignatureSourceSpec } from '../../src/policy/types.js';
import { buildImageBundle, BUNDLE_ARTIFACT_TYPE } from '../../src/signing/bundle-sign.js';
import { makeTestKey, type TestKey } from './keys.js';

export const REPO = 'registry.example.com/prod/app';
export const IMAGE = `${REPO}:1.0`;
export const DIGEST = `sha256:${createHash('sha256').update('the image').digest('hex')}`;
export const OTHER_DIGEST = `sha256:${createHash('sha256').update('another image').digest('hex')}`;
export const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** P-256 keys made once per process (fast), by the names the tests' policies give them. */
export const KEYS = {
  release: makeTestKey('ecdsa-p256'),
  security: makeTestKey('ecdsa-p256'),
  qa: makeTestKey('ecdsa-p256'),
  leaked: makeTestKey('ecdsa-p256'),
  stranger: makeTestKey('ecdsa-p256'),
  edge: makeTestKey('ed25519'),
};
export type KeyName = keyof typeof KEYS;

const KEY_DIR = mkdtempSync(join(tmpdir(), 'signet-engine-'));
process.on('exit', () => rmSync(KEY_DIR, { recursive: true, force: true }));
for (const [name, key] of Object.entries(KEYS)) key.writePublic(join(KEY_DIR, `${name}.pub`));

/** The absolute path the PEM provider reads key `name` from. */
export const keyFile = (name: string): string => join(KEY_DIR, `${name}.pub`);

/** `keys:` of a policy file: each name to its PEM file, with extra fields (notAfter, revoked…) per name. */
export function keysDoc(names: string[], extra: Record<string, Record<string, unknown>> = {}): Record<string, Record<string, unknown>> {
  return Object.fromEntries(names.map((n) => [n, { file: keyFile(n), ...extra[n] }]));
}

/** A policy through the real loader, from one file's content. */
export function loadPolicy(doc: Record<string, unknown>): Policy {
  return buildPolicy([{ path: '/etc/signet/policy.d/policy.yaml', text: JSON.stringify({ apiVersion: 'signet/v1', ...doc }) }]);
}

/** A policy whose one scope (REPO's) is `scope`, with `keys` from KEY_DIR. */
export function scopePolicy(scope: Record<string, unknown>, keys: string[] = Object.keys(KEYS), extra: Record<string, unknown> = {}): Policy {
  return loadPolicy({ keys: keysDoc(keys), scopes: { [REPO]: scope }, ...extra });
}

/** The keys a policy names, as signetd loads them: a KeyRing with the PEM provider. */
export async function ringKeys(policy: Policy): Promise<KeySet> {
  return new KeyRing([new PemKeyProvider()]).load(policy.keys);
}

/** A TrustedKey for a test key (node:crypto), optionally slowed down or made to fail. */
export function trustedKey(name: string, key: TestKey, options: { delayMs?: number; fail?: SignetError; onVerify?: () => void } = {}): TrustedKey {
  const inner = trustedKeyFromKeyObject(name, `memory:${name}`, createPublicKey(key.publicPem));
  return {
    ...inner,
    async verify(data: Uint8Array, signature: Uint8Array, hash: HashAlgorithm): Promise<boolean> {
      options.onVerify?.();
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      if (options.fail) throw options.fail;
      return inner.verify(data, signature, hash);
    },
  };
}

/** A tiny in-memory KeySet: names to keys or to the error a lookup gives; records markFailed. */
export class MemoryKeys implements KeySet {
  readonly failed: Array<{ name: string; error: SignetError }> = [];
  constructor(private readonly keys: Record<string, TrustedKey | SignetError>) {}
  get(name: string): KeyLookup {
    const k = this.keys[name];
    if (k === undefined) return { error: new SignetError('KEY_NOT_FOUND', `key "${name}" is not defined in the policy`) };
    return k instanceof SignetError ? { error: k } : { key: k };
  }
  markFailed(name: string, error: SignetError): void {
    this.failed.push({ name, error });
    this.keys[name] = error;
  }
}

/** A cosign simple-signing signature by `key`, as signet sign makes it (payload + DER signature). */
export async function cosignSignature(key: TestKey, options: { reference?: string; digest?: string; source?: string } = {}): Promise<UntrustedSignature> {
  const untrustedPayload = buildSimpleSigningPayload(options.reference ?? REPO, options.digest ?? DIGEST);
  const signature = await key.signer.sign(untrustedPayload, 'sha256');
  return { format: 'cosign', source: options.source ?? `${REPO}:sha256-….sig#${nextIndex()}`, untrustedPayload, untrustedSignature: Buffer.from(signature) };
}

/** A key-based sigstore bundle (cosign v3 style: DSSE over an in-toto statement), as signet sign makes it. */
export async function bundleSignature(key: TestKey, options: { repository?: string; digest?: string; source?: string } = {}): Promise<UntrustedSignature> {
  const untrustedPayload = await buildImageBundle(options.repository ?? REPO, options.digest ?? DIGEST, key.signer);
  return {
    format: 'sigstore-bundle',
    source: options.source ?? `${REPO}@referrer#${nextIndex()}`,
    untrustedPayload,
    untrustedSignature: Buffer.alloc(0),
    envelopeMediaType: BUNDLE_ARTIFACT_TYPE,
  };
}

/** A signature found but unreadable (a tampered payload blob, an oversized layer). */
export function unreadable(error: SignetError, format: FormatName = 'cosign', source = `${REPO}:sha256-….sig#${nextIndex()}`): DiscoveredSignature {
  return { format, source, error };
}

/** A DSSE-wrapped in-toto statement of `predicateType` about `digest`, signed by `key`: a `.att` layer. */
export async function attestation(
  key: TestKey,
  predicateType: string,
  predicate: Record<string, unknown>,
  options: { digest?: string; source?: string; payloadType?: string } = {},
): Promise<UntrustedAttestation> {
  const statement = buildStatement([subjectForDigest(REPO, options.digest ?? DIGEST)], predicateType, predicate);
  const envelope = await signEnvelope(options.payloadType ?? INTOTO_PAYLOAD_TYPE, serializeStatement(statement), key.signer);
  return { source: options.source ?? `${REPO}:sha256-….att#${nextIndex()}`, untrustedEnvelope: serializeEnvelope(envelope) };
}

let index = 0;
const nextIndex = (): number => index++;

type Find<T> = (signal: AbortSignal | undefined) => Promise<T[]>;

/** An in-memory source: a fixed list, or a function (to hold, fail or hang). Records each call's signal. */
export class MemorySource<T> {
  readonly signals: Array<AbortSignal | undefined> = [];
  private readonly answer: Find<T>;
  constructor(
    readonly name: string,
    answer: T[] | Find<T>,
  ) {
    this.answer = typeof answer === 'function' ? answer : async () => answer;
  }
  find(_image: unknown, _digest: string, options: { limit: number; signal?: AbortSignal }): Promise<T[]> {
    this.signals.push(options.signal);
    return this.answer(options.signal);
  }
}

/** A source that never answers until its signal aborts, then fails as the registry client does. */
export function hangingSource<T>(name: string): MemorySource<T> {
  return new MemorySource<T>(
    name,
    (signal) =>
      new Promise<T[]>((_, reject) =>
        signal?.addEventListener('abort', () => reject(new SignetError('REGISTRY_TIMEOUT', 'request cancelled')), { once: true }),
      ),
  );
}

/** A source whose lookup fails with `error` (a referrers endpoint answering 500…). */
export function failingSource<T>(name: string, error: SignetError): MemorySource<T> {
  return new MemorySource<T>(name, async () => {
    throw error;
  });
}

export interface Harness {
  engine: VerificationEngine;
  /** Each sourcesFor call: the scope's signatureSources and formats. */
  sourceCalls: Array<{ specs: SignatureSourceSpec[]; formats: readonly FormatName[] }>;
  /** How many times the engine read the snapshot. */
  snapshots: () => number;
  decide(name?: string, digest?: string): Promise<Decision>;
}

export interface HarnessOptions {
  policy?: Policy;
  /** Default: the policy's keys through a KeyRing with the PEM provider. */
  keys?: KeySet;
  /** Overrides policy/keys: the snapshot function itself. */
  snapshot?: () => PolicySnapshot;
  signatures?: DiscoveredSignature[] | Array<SignatureSource | MemorySource<DiscoveredSignature>>;
  attestations?: UntrustedAttestation[] | Array<AttestationLookup | MemorySource<UntrustedAttestation>>;
  timeoutMs?: number;
  maxSignatures?: number;
  now?: Date;
}

const isSource = (x: unknown): x is { find: unknown } => typeof x === 'object' && x !== null && 'find' in x;

export async function harness(options: HarnessOptions): Promise<Harness> {
  const keys = options.keys ?? (options.policy ? await ringKeys(options.policy) : undefined);
  const signatures = options.signatures ?? [];
  const attestations = options.attestations ?? [];
  const signatureSources = (
    signatures.length > 0 && signatures.every(isSource) ? signatures : [new MemorySource('registry', signatures as DiscoveredSignature[])]
  ) as SignatureSource[];
  const attestationSources = (
    attestations.length > 0 && attestations.every(isSource) ? attestations : [new MemorySource('registry', attestations as UntrustedAttestation[])]
  ) as AttestationLookup[];
  const sourceCalls: Harness['sourceCalls'] = [];
  let snapshots = 0;
  const engineOptions: EngineOptions = {
    snapshot: () => {
      snapshots++;
      return options.snapshot ? options.snapshot() : { ...(options.policy ? { policy: options.policy } : {}), ...(keys ? { keys } : {}) };
    },
    sourcesFor: (specs, formats) => {
      sourceCalls.push({ specs, formats });
      return { signatures: signatureSources, attestations: attestationSources };
    },
    timeoutMs: options.timeoutMs ?? 2000,
    maxSignatures: options.maxSignatures ?? 32,
    ...(options.now ? { now: () => options.now! } : {}),
  };
  const engine = new VerificationEngine(engineOptions);
  return {
    engine,
    sourceCalls,
    snapshots: () => snapshots,
    decide: (name = IMAGE, digest = DIGEST) => engine.verify({ name, descriptor: { mediaType: MANIFEST, digest, size: 1234 } }),
  };
}
