/**
 * Write a cosign simple-signing signature for an image digest: payload blob, signature as layer
 * annotation, appended to the existing `sha256-<hex>.sig` manifest so earlier signatures survive
 * (`sha512-<hex>.sig` for a sha512 image, as cosign names it). A signature of the same payload that
 * verifies with the same key is already there: nothing is appended (./already-signed.ts).
 */
import { buildSimpleSigningPayload, cosignFormat, cosignSignatureTag, parseSignatureManifest, sha256Digest } from '../formats/cosign.js';
import type { Signer } from '../keys/types.js';
import type { RegistryClient, RepositoryRef } from '../registry/client.js';
import { MEDIA_TYPES } from '../registry/types.js';
import { findCosignSignature, signerKey } from './already-signed.js';
import { appendArtifactLayer } from './artifact-manifest.js';

export interface CosignSignResult {
  digest: string;
  signatureTag: string;
  signatureManifestDigest: string;
  payloadDigest: string;
  /** Number of signature layers now in the .sig manifest. */
  layers: number;
  /** False when the manifest already held a signature of this payload by this key: nothing was pushed. */
  added: boolean;
}

export async function signImageCosign(
  client: RegistryClient,
  repo: RepositoryRef,
  digest: string,
  signer: Signer,
  options: { dockerReference: string; annotations?: Record<string, string>; signal?: AbortSignal },
): Promise<CosignSignResult> {
  const tag = cosignSignatureTag(digest);
  const opts = options.signal ? { signal: options.signal } : {};
  // The payload is deterministic (same reference, digest and annotations: same bytes), the signature is not.
  const payload = buildSimpleSigningPayload(options.dockerReference, digest, options.annotations);
  const existing = await client.tryGetManifest(repo, tag, { accept: [MEDIA_TYPES.ociManifest], ...opts });
  if ((await findCosignSignature(existing?.bytes, payload, signerKey(signer), { digest, mediaType: '', size: 0 })) !== undefined) {
    return {
      digest,
      signatureTag: tag,
      signatureManifestDigest: existing!.digest,
      payloadDigest: sha256Digest(payload),
      layers: parseSignatureManifest(existing!.bytes).length,
      added: false,
    };
  }
  const signed = await cosignFormat.sign!(
    {
      repositoryName: options.dockerReference,
      dockerReference: options.dockerReference,
      digest,
      ...(options.annotations !== undefined ? { annotations: options.annotations } : {}),
    },
    signer,
  );
  const res = await appendArtifactLayer(
    client,
    repo,
    tag,
    signed.blob,
    {
      mediaType: signed.mediaType,
      ...(signed.annotations !== undefined ? { annotations: signed.annotations } : {}),
    },
    options.signal,
  );
  return { digest, signatureTag: res.tag, signatureManifestDigest: res.manifestDigest, payloadDigest: res.layerDigest, layers: res.layers, added: true };
}
