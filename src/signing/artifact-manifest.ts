/**
 * Cosign keeps signatures and attestations as OCI manifests under a tag derived from the image digest
 * (`sha256-<hex>.sig`, `.att`; `sha512-<hex>.sig` for a sha512 image, as cosign names it), one layer
 * each. Appending keeps what was there.
 */
import { SignetError } from '../errors.js';
import { appendSignatureLayer, sha256Digest } from '../formats/cosign.js';
import type { RegistryClient, RepositoryRef } from '../registry/client.js';
import { MEDIA_TYPES, type Descriptor } from '../registry/types.js';

export interface AppendResult {
  tag: string;
  manifestDigest: string;
  layerDigest: string;
  layers: number;
}

export async function appendArtifactLayer(
  client: RegistryClient,
  repo: RepositoryRef,
  tag: string,
  blob: Buffer,
  layer: Omit<Descriptor, 'digest' | 'size'>,
  signal?: AbortSignal,
): Promise<AppendResult> {
  const opts = signal ? { signal } : {};
  const existing = await client.tryGetManifest(repo, tag, { accept: [MEDIA_TYPES.ociManifest], ...opts });
  const descriptor: Descriptor = { ...layer, digest: sha256Digest(blob), size: blob.length };
  const { manifest, config } = appendSignatureLayer(existing?.bytes, descriptor);
  await client.pushBlob(repo, blob, opts);
  await client.pushBlob(repo, config, opts);
  const manifestDigest = await client.pushManifest(repo, tag, manifest, MEDIA_TYPES.ociManifest, opts).catch((err: unknown) => {
    throw explainLongTag(err, tag);
  });
  const layers = (JSON.parse(manifest.toString('utf8')) as { layers: unknown[] }).layers.length;
  return { tag, manifestDigest, layerDigest: descriptor.digest, layers };
}

/** Tags longer than this break the OCI tag rule; cosign's tags for sha512 digests are (139 characters). */
const OCI_TAG_MAX = 128;

/**
 * A registry that refuses a digest-derived tag longer than the OCI rule allows (distribution answers
 * 404 for the whole route) gets an error saying so, instead of a bare "404".
 */
export function explainLongTag(err: unknown, tag: string): unknown {
  if (tag.length <= OCI_TAG_MAX || !(err instanceof SignetError) || !['REGISTRY_NOT_FOUND', 'REGISTRY_PROTOCOL'].includes(err.code)) return err;
  return new SignetError(
    err.code,
    `${err.message}; the registry refuses the tag ${tag.slice(0, 15)}…${tag.slice(-4)}: it is how cosign names the artifacts of a ${tag.slice(0, tag.indexOf('-'))} image, ${tag.length} characters, and this registry keeps to the 128 the OCI distribution spec allows for tags`,
    { cause: err },
  );
}
