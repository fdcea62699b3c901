/**
 * Whether the signature `signet sign` is about to make is already there: a signature of the same claims
 * that verifies with the signing key. ECDSA signatures are randomised, so two signatures of the same
 * payload by the same key differ in their bytes: they are compared by verifying, with the format's own
 * `verify`, never by bytes. Then signing again would only add a duplicate for every node to examine.
 */
import { createPublicKey } from 'node:crypto';
import { cosignFormat, decodeBase64Strict, parseSignatureManifest, sha256Digest } from '../formats/cosign.js';
import { sigstoreBundleFormat } from '../formats/bundle.js';
import type { ExpectedSubject } from '../formats/types.js';
import { trustedKeyFromKeyObject } from '../keys/node-key.js';
import type { Signer, TrustedKey } from '../keys/types.js';
import type { RegistryClient, RepositoryRef } from '../registry/client.js';
import type { Descriptor } from '../registry/types.js';
import { SignetError } from '../errors.js';

/** Existing referrers read at most when looking for a bundle by the same key (each costs two requests). */
export const MAX_REFERRERS_CHECKED = 64;

/** The signer's public key as a TrustedKey, to check existing signatures with. */
export function signerKey(signer: Signer): TrustedKey {
  return trustedKeyFromKeyObject('signing key', signer.fingerprint, createPublicKey(signer.publicKeyPem()));
}

/**
 * The index of a layer of the `.sig` manifest `untrustedManifest` whose payload is `payload` (same
 * digest: the same claims, annotations included) and whose signature verifies with `key`; undefined
 * when there is none, or the manifest cannot be read (then the caller appends, as before).
 */
export async function findCosignSignature(
  untrustedManifest: Buffer | undefined,
  payload: Buffer,
  key: TrustedKey,
  subject: ExpectedSubject,
): Promise<number | undefined> {
  if (untrustedManifest === undefined) return undefined;
  let layers;
  try {
    layers = parseSignatureManifest(untrustedManifest);
  } catch {
    return undefined;
  }
  const digest = sha256Digest(payload);
  for (const [i, layer] of layers.entries()) {
    if (layer.descriptor.digest !== digest) continue;
    let untrustedSignature: Buffer;
    try {
      untrustedSignature = decodeBase64Strict(layer.untrustedSignatureBase64, 'signature annotation');
    } catch {
      continue;
    }
    const annotations = Object.fromEntries(Object.entries(layer.descriptor.annotations ?? {}).filter(([, v]) => typeof v === 'string'));
    const check = await cosignFormat.verify(
      { format: 'cosign', source: `layer ${i}`, untrustedPayload: payload, untrustedSignature, untrustedAnnotations: annotations },
      key,
      subject,
    );
    if (check.valid) return i;
  }
  return undefined;
}

/**
 * The digest of a sigstore-bundle referrer of `subject` that verifies with `key` for this digest, or
 * undefined. Reads at most MAX_REFERRERS_CHECKED referrers of the bundle artifact type.
 */
export async function findBundleReferrer(
  client: RegistryClient,
  repo: RepositoryRef,
  subject: Descriptor,
  key: TrustedKey,
  options: { signal?: AbortSignal } = {},
): Promise<string | undefined> {
  const location = sigstoreBundleFormat.location;
  if (location.kind !== 'referrers') return undefined;
  const signal = options.signal ? { signal: options.signal } : {};
  const artifactType = location.artifactTypes[0]!;
  const referrers = await client.referrers(repo, subject.digest, { artifactType, limit: MAX_REFERRERS_CHECKED, ...signal });
  for (const referrer of referrers.slice(0, MAX_REFERRERS_CHECKED)) {
    if (referrer.artifactType !== artifactType) continue;
    try {
      const manifest = await client.getManifest(repo, referrer.digest, signal);
      const doc = JSON.parse(manifest.bytes.toString('utf8')) as { layers?: Array<{ mediaType?: unknown; digest?: unknown }> };
      const layer = (doc.layers ?? []).find((l) => typeof l.mediaType === 'string' && location.layerMediaTypes.includes(l.mediaType));
      if (typeof layer?.digest !== 'string') continue;
      const bundle = await client.getBlob(repo, layer.digest, { maxBytes: location.maxEnvelopeBytes, ...signal });
      const check = await sigstoreBundleFormat.verify(
        {
          format: 'sigstore-bundle',
          source: referrer.digest,
          untrustedPayload: bundle,
          untrustedSignature: Buffer.alloc(0),
          envelopeMediaType: layer.mediaType as string,
        },
        key,
        { digest: subject.digest, mediaType: subject.mediaType, size: subject.size },
      );
      if (check.valid && check.signedDigest === subject.digest) return referrer.digest;
    } catch (err) {
      // One unreadable referrer does not stop signing; a registry that fails does.
      if (err instanceof SignetError && ['SIGNATURE_MALFORMED', 'DIGEST_MISMATCH', 'BLOB_TOO_LARGE', 'REGISTRY_NOT_FOUND'].includes(err.code)) continue;
      if (err instanceof SyntaxError) continue;
      throw err;
    }
  }
  return undefined;
}
