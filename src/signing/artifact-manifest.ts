/**
 * Cosign keeps signatures and attestations as OCI manifests under a tag derived from the image digest
 * (`sha256-<hex>.sig`, `.att`), one layer each. Appending keeps what was there.
 */
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
  const manifestDigest = await client.pushManifest(repo, tag, manifest, MEDIA_TYPES.ociManifest, opts);
  const layers = (JSON.parse(manifest.toString('utf8')) as { layers: unknown[] }).layers.length;
  return { tag, manifestDigest, layerDigest: descriptor.digest, layers };
}
