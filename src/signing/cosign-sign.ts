/**
 * Write a cosign simple-signing signature for an image digest: payload blob, signature as layer
 * annotation, appended to the existing `sha256-<hex>.sig` manifest so earlier signatures survive.
 */
import { appendSignatureLayer, buildSimpleSigningPayload, COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIMPLESIGNING_MEDIA_TYPE, cosignSignatureTag, sha256Digest } from '../formats/cosign.js';
import type { Signer } from '../keys/types.js';
import type { RegistryClient } from '../registry/client.js';
import type { Descriptor } from '../registry/types.js';
import { MEDIA_TYPES } from '../registry/types.js';

export interface RepositoryRef {
  registry: string;
  repository: string;
}

export interface CosignSignResult {
  digest: string;
  signatureTag: string;
  signatureManifestDigest: string;
  payloadDigest: string;
  /** Number of signature layers now in the .sig manifest. */
  layers: number;
}

export async function signImageCosign(
  client: RegistryClient,
  repo: RepositoryRef,
  digest: string,
  signer: Signer,
  options: { dockerReference: string; annotations?: Record<string, string>; signal?: AbortSignal },
): Promise<CosignSignResult> {
  const payload = buildSimpleSigningPayload(options.dockerReference, digest, options.annotations);
  const signature = await signer.sign(payload, 'sha256');
  const signal = options.signal ? { signal: options.signal } : {};
  const tag = cosignSignatureTag(digest);
  const existing = await client.tryGetManifest(repo, tag, { accept: [MEDIA_TYPES.ociManifest], ...signal });
  const layer: Descriptor = {
    mediaType: COSIGN_SIMPLESIGNING_MEDIA_TYPE,
    digest: sha256Digest(payload),
    size: payload.length,
    annotations: { [COSIGN_SIGNATURE_ANNOTATION]: Buffer.from(signature).toString('base64') },
  };
  const { manifest, config } = appendSignatureLayer(existing?.bytes, layer);
  await client.pushBlob(repo, payload, signal);
  await client.pushBlob(repo, config, signal);
  const signatureManifestDigest = await client.pushManifest(repo, tag, manifest, MEDIA_TYPES.ociManifest, signal);
  const layers = (JSON.parse(manifest.toString('utf8')) as { layers: unknown[] }).layers.length;
  return { digest, signatureTag: tag, signatureManifestDigest, payloadDigest: layer.digest, layers };
}
