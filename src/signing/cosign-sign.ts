/**
 * Write a cosign simple-signing signature for an image digest: payload blob, signature as layer
 * annotation, appended to the existing `sha256-<hex>.sig` manifest so earlier signatures survive
 * (`sha512-<hex>.sig` for a sha512 image, as cosign names it).
 */
import { cosignFormat, cosignSignatureTag } from '../formats/cosign.js';
import type { Signer } from '../keys/types.js';
import type { RegistryClient, RepositoryRef } from '../registry/client.js';
import { appendArtifactLayer } from './artifact-manifest.js';

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
    cosignSignatureTag(digest),
    signed.blob,
    {
      mediaType: signed.mediaType,
      ...(signed.annotations !== undefined ? { annotations: signed.annotations } : {}),
    },
    options.signal,
  );
  return { digest, signatureTag: res.tag, signatureManifestDigest: res.manifestDigest, payloadDigest: res.layerDigest, layers: res.layers };
}
