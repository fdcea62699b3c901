/**
 * Cosign "simple signing" signatures (cosign ≤ v2, podman, skopeo): the manifest at tag
 * `sha256-<hex>.sig` in the image's repository, one layer per signature, the layer blob is the
 * payload and the `dev.cosignproject.cosign/signature` annotation is the base64 signature over the
 * exact payload bytes (SHA-256). With a policy key the signature is checked with the key; with a
 * `sigstore` key (keyless: certificate, chain and Rekor record annotations) by ./cosign-keyless.ts.
 */
import { createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { SignetError } from '../errors.js';
import { isDigest } from '../registry/reference.js';
import type { Descriptor } from '../registry/types.js';
import { MEDIA_TYPES } from '../registry/types.js';
import type { TrustedKey } from '../keys/types.js';
import { isPlainObject, parseStrictJson, requireExactKeys } from './strict-json.js';
import type { Signer } from '../keys/types.js';
import type {
  ExpectedSubject,
  FormatOptions,
  Likelihood,
  PrecheckKey,
  SignatureCheck,
  SignatureFormat,
  SignedArtifact,
  SignRequest,
  UntrustedSignature,
  UntrustedTagLayer,
} from './types.js';

export const COSIGN_SIMPLESIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** The signing certificate (PEM) of keyless and PKI cosign signatures. */
export const COSIGN_CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
/** More layers than this in one .sig manifest is treated as hostile. */
export const MAX_SIGNATURE_LAYERS = 256;
export const MAX_PAYLOAD_BYTES = 64 * 1024;

/** `sha256:abc…` → `sha256-abc….sig`, the tag cosign stores signatures under. */
export function cosignSignatureTag(digest: string): string {
  if (!isDigest(digest)) throw new SignetError('INVALID_ARGUMENT', `not a digest: ${digest}`);
  return `${digest.replace(':', '-')}.sig`;
}

/** A layer of a signature manifest that claims to be a simple-signing signature. */
export interface UntrustedSignatureLayer {
  descriptor: Descriptor;
  untrustedSignatureBase64: string;
}

/** Parse a `.sig` manifest strictly enough to find its signature layers; anything else is malformed. */
export function parseSignatureManifest(untrustedBytes: Buffer): UntrustedSignatureLayer[] {
  const manifest = parseStrictJson(untrustedBytes.toString('utf8'), 'signature manifest');
  if (!isPlainObject(manifest) || !Array.isArray(manifest['layers'])) {
    throw new SignetError('SIGNATURE_MALFORMED', 'signature manifest has no layers array');
  }
  const layers = manifest['layers'] as unknown[];
  if (layers.length > MAX_SIGNATURE_LAYERS) {
    throw new SignetError('SIGNATURE_MALFORMED', `signature manifest has ${layers.length} layers, more than ${MAX_SIGNATURE_LAYERS}`);
  }
  const out: UntrustedSignatureLayer[] = [];
  for (const [i, layer] of layers.entries()) {
    if (!isPlainObject(layer)) throw new SignetError('SIGNATURE_MALFORMED', `signature manifest layer ${i} is not an object`);
    const { mediaType, digest, size, annotations } = layer;
    if (mediaType !== COSIGN_SIMPLESIGNING_MEDIA_TYPE) continue; // not a simple-signing layer: not ours to judge
    if (typeof digest !== 'string' || !isDigest(digest)) throw new SignetError('SIGNATURE_MALFORMED', `signature layer ${i} has an invalid digest`);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
      throw new SignetError('SIGNATURE_MALFORMED', `signature layer ${i} has an invalid size`);
    if (size > MAX_PAYLOAD_BYTES) throw new SignetError('SIGNATURE_MALFORMED', `signature layer ${i} payload is ${size} bytes, more than ${MAX_PAYLOAD_BYTES}`);
    const sig = isPlainObject(annotations) ? annotations[COSIGN_SIGNATURE_ANNOTATION] : undefined;
    if (typeof sig !== 'string' || sig.length === 0)
      throw new SignetError('SIGNATURE_MALFORMED', `signature layer ${i} has no ${COSIGN_SIGNATURE_ANNOTATION} annotation`);
    out.push({ descriptor: { mediaType, digest, size, annotations: annotations as Record<string, string> }, untrustedSignatureBase64: sig });
  }
  return out;
}

/**
 * Strict base64 (RFC 4648, padding optional): Buffer.from silently skips junk, so check first. Line
 * breaks are allowed, as Go's decoder (cosign's) skips them; nothing else is.
 */
export function decodeBase64Strict(untrusted: string, what: string): Buffer {
  const compact = untrusted.replace(/[\r\n]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) {
    throw new SignetError('SIGNATURE_MALFORMED', `${what} is not valid base64`);
  }
  return Buffer.from(compact, 'base64');
}

export interface SimpleSigningClaims {
  dockerReference: string;
  manifestDigest: string;
  optional: Record<string, unknown>;
}

/** Parse a simple-signing payload: unknown critical fields, duplicate keys and wrong types are errors. */
export function parseSimpleSigningPayload(untrustedPayload: Buffer): SimpleSigningClaims {
  const doc = parseStrictJson(untrustedPayload.toString('utf8'), 'simple-signing payload', 'SIGNATURE_MALFORMED', MAX_PAYLOAD_BYTES);
  const where = 'simple-signing payload';
  if (!isPlainObject(doc)) throw new SignetError('SIGNATURE_MALFORMED', `${where} is not a JSON object`);
  requireExactKeys(doc, ['critical'], ['optional'], where);
  const critical = doc['critical'];
  if (!isPlainObject(critical)) throw new SignetError('SIGNATURE_MALFORMED', `${where}: "critical" is not an object`);
  requireExactKeys(critical, ['identity', 'image', 'type'], [], `${where} critical`);
  if (critical['type'] !== COSIGN_SIGNATURE_TYPE) {
    throw new SignetError('SIGNATURE_MALFORMED', `${where}: critical.type is ${JSON.stringify(critical['type'])}, expected "${COSIGN_SIGNATURE_TYPE}"`);
  }
  const identity = critical['identity'];
  if (!isPlainObject(identity)) throw new SignetError('SIGNATURE_MALFORMED', `${where}: critical.identity is not an object`);
  requireExactKeys(identity, ['docker-reference'], [], `${where} critical.identity`);
  const image = critical['image'];
  if (!isPlainObject(image)) throw new SignetError('SIGNATURE_MALFORMED', `${where}: critical.image is not an object`);
  requireExactKeys(image, ['docker-manifest-digest'], [], `${where} critical.image`);
  const dockerReference = identity['docker-reference'];
  const manifestDigest = image['docker-manifest-digest'];
  if (typeof dockerReference !== 'string') throw new SignetError('SIGNATURE_MALFORMED', `${where}: docker-reference is not a string`);
  if (typeof manifestDigest !== 'string' || !isDigest(manifestDigest))
    throw new SignetError('SIGNATURE_MALFORMED', `${where}: docker-manifest-digest is not a digest`);
  const optional = doc['optional'];
  if (optional !== undefined && optional !== null && !isPlainObject(optional))
    throw new SignetError('SIGNATURE_MALFORMED', `${where}: "optional" is not an object`);
  return { dockerReference, manifestDigest, optional: (optional as Record<string, unknown> | null | undefined) ?? {} };
}

/** The payload `signet sign` signs: the same shape and field order cosign writes. */
export function buildSimpleSigningPayload(dockerReference: string, manifestDigest: string, optional?: Record<string, string>): Buffer {
  const payload = {
    critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': manifestDigest }, type: COSIGN_SIGNATURE_TYPE },
    optional: optional !== undefined && Object.keys(optional).length > 0 ? optional : null,
  };
  return Buffer.from(JSON.stringify(payload));
}

/**
 * A `.sig` manifest with `layer` appended to the layers of `existing` (so earlier signatures survive).
 * The config is an empty OCI config naming the layers' digests, as cosign writes it.
 */
export function appendSignatureLayer(existing: Buffer | undefined, layer: Descriptor): { manifest: Buffer; config: Buffer } {
  let layers: Descriptor[] = [];
  if (existing !== undefined) {
    const parsed = parseStrictJson(existing.toString('utf8'), 'existing signature manifest');
    if (isPlainObject(parsed) && Array.isArray(parsed['layers'])) layers = parsed['layers'] as Descriptor[];
  }
  layers = [
    ...layers.filter((l) => l.digest !== layer.digest || l.annotations?.[COSIGN_SIGNATURE_ANNOTATION] !== layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION]),
    layer,
  ];
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: MEDIA_TYPES.ociConfig, size: config.length, digest: sha256Digest(config) },
      layers,
    }),
  );
  return { manifest, config };
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The `.sig` manifest's simple-signing layers, as the generic tag source reads them. */
function readSignatureManifest(untrustedManifest: Buffer): UntrustedTagLayer[] {
  return parseSignatureManifest(untrustedManifest).map((layer) => ({
    digest: layer.descriptor.digest,
    annotations: Object.fromEntries(Object.entries(layer.descriptor.annotations ?? {}).filter(([, v]) => typeof v === 'string')),
    signature: () => decodeBase64Strict(layer.untrustedSignatureBase64, 'signature annotation'),
  }));
}

/** A simple-signing payload for the image, signed over its exact bytes (SHA-256), as cosign does. */
async function signSimpleSigning(request: SignRequest, signer: Signer): Promise<SignedArtifact> {
  const payload = buildSimpleSigningPayload(request.dockerReference, request.digest, request.annotations);
  const signature = await signer.sign(payload, 'sha256');
  return {
    blob: payload,
    mediaType: COSIGN_SIMPLESIGNING_MEDIA_TYPE,
    annotations: { [COSIGN_SIGNATURE_ANNOTATION]: Buffer.from(signature).toString('base64') },
  };
}

/**
 * The pre-check (SignatureFormat.precheck): the key's own check of the signature over the payload, in
 * process (microseconds). A signature with a certificate, for keyless and PKI keys: whether the
 * certificate's key made it (the chain and the log are left to verification).
 */
async function precheckSimpleSigning(signature: UntrustedSignature, key: PrecheckKey): Promise<Likelihood> {
  const payload = signature.untrustedPayload;
  if (!key.keyless && key.verifyInProcess && (await key.verifyInProcess(payload, signature.untrustedSignature, 'sha256'))) return 'verifies';
  const certificate = signature.untrustedAnnotations?.[COSIGN_CERTIFICATE_ANNOTATION];
  if ((key.keyless || key.certificates !== undefined) && certificate) {
    try {
      return cryptoVerify('sha256', payload, new X509Certificate(certificate).publicKey, signature.untrustedSignature) ? 'names-key' : 'other-key';
    } catch {
      return 'other-key';
    }
  }
  return key.verifyInProcess || key.keyless ? 'other-key' : 'unknown';
}

/** One check, one function: authenticity, then integrity of the claims. */
export const cosignFormat: SignatureFormat<'cosign'> = {
  name: 'cosign',
  location: { kind: 'tag', suffix: '.sig', maxPayloadBytes: MAX_PAYLOAD_BYTES, readManifest: readSignatureManifest },
  sign: signSimpleSigning,
  precheck: precheckSimpleSigning,
  async verify(signature: UntrustedSignature, key: TrustedKey, expected: ExpectedSubject, options?: FormatOptions): Promise<SignatureCheck> {
    const expectedDigest = expected.digest;
    let signer: Record<string, string> = {};
    if (key.sigstore !== undefined) {
      // Keyless (cosign v2 `.sig` with certificate and Rekor record): the sigstore libraries, loaded when first needed.
      const { verifyCosignKeyless } = await import('./cosign-keyless.js');
      const r = await verifyCosignKeyless(
        signature.untrustedPayload,
        signature.untrustedSignature,
        signature.untrustedAnnotations ?? {},
        key.sigstore.trustedRoot,
        key.sigstore,
      );
      if (!r.valid) return { valid: false, code: r.code, reason: `${r.reason} (key "${key.name}")` };
      signer = { issuer: r.issuer, subject: r.subject };
    } else {
      // A trust store with identity rules counts only certificates it issued; otherwise the key itself may have signed.
      const direct = key.certificateIdentity === undefined && (await key.verify(signature.untrustedPayload, signature.untrustedSignature, 'sha256'));
      const certificate = signature.untrustedAnnotations?.[COSIGN_CERTIFICATE_ANNOTATION];
      if (!direct && key.certificates !== undefined && certificate !== undefined && certificate !== '') {
        // Private PKI: the signing certificate chains to the key's trust store (./cosign-pki.ts).
        const { verifyCosignPki } = await import('./cosign-pki.js');
        const r = await verifyCosignPki(
          signature.untrustedPayload,
          signature.untrustedSignature,
          signature.untrustedAnnotations ?? {},
          key,
          options?.now ?? new Date(),
        );
        if (!r.valid) return { valid: false, code: r.code, reason: r.reason };
        signer = { subject: r.subject };
      } else if (!direct) {
        return {
          valid: false,
          code: 'SIGNATURE_INVALID',
          reason: `signature does not verify with key "${key.name}" (signed by another key, or the payload was altered)`,
        };
      } else if (key.tlog !== undefined) {
        // tlog: required — the key signed it; a log the policy trusts must have recorded it (./cosign-tlog.ts).
        const { verifyTlogRecord } = await import('./cosign-tlog.js');
        try {
          const entry = verifyTlogRecord(signature.untrustedPayload, signature.untrustedSignature, signature.untrustedAnnotations ?? {}, key, key.tlog);
          signer = { loggedAt: new Date(entry.integratedTime * 1000).toISOString(), logIndex: String(entry.logIndex) };
        } catch (err) {
          if (err instanceof SignetError) return { valid: false, code: err.code, reason: `signature by key "${key.name}": ${err.message}` };
          throw err;
        }
      }
    }
    // Authentic from here on: the key holder signed these bytes.
    let claims: SimpleSigningClaims;
    try {
      claims = parseSimpleSigningPayload(signature.untrustedPayload);
    } catch (err) {
      return { valid: false, code: 'SIGNATURE_MALFORMED', reason: (err as Error).message };
    }
    if (claims.manifestDigest !== expectedDigest) {
      return { valid: false, code: 'DIGEST_MISMATCH', reason: `signature by key "${key.name}" is for digest ${claims.manifestDigest}, not ${expectedDigest}` };
    }
    return {
      valid: true,
      signedIdentity: claims.dockerReference,
      signedDigest: claims.manifestDigest,
      annotations: { ...claims.optional, ...(Object.keys(signer).length > 0 ? { signer } : {}) },
    };
  },
};
