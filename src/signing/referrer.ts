/**
 * Push an artifact (a signature envelope) as an OCI 1.1 referrer of an image: a manifest with
 * `artifactType`, an empty config, one layer and `subject`; and, for registries without the referrers
 * API, the referrers tag schema (the image index at `sha256-<hex>`, `sha512-<hex>`) kept up to date.
 */
import { sha256Digest } from '../formats/cosign.js';
import { explainLongTag } from './artifact-manifest.js';
import type { RegistryClient, RepositoryRef } from '../registry/client.js';
import { MEDIA_TYPES, type Descriptor } from '../registry/types.js';

export async function pushReferrer(
  client: RegistryClient,
  repo: RepositoryRef,
  subject: Descriptor,
  artifactType: string,
  layerMediaType: string,
  blob: Buffer,
): Promise<string> {
  const empty = Buffer.from('{}');
  await client.pushBlob(repo, empty);
  await client.pushBlob(repo, blob);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType,
      config: { mediaType: MEDIA_TYPES.ociEmpty, digest: sha256Digest(empty), size: empty.length },
      layers: [{ mediaType: layerMediaType, digest: sha256Digest(blob), size: blob.length }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    }),
  );
  const digest = await client.pushManifest(repo, sha256Digest(manifest), manifest, MEDIA_TYPES.ociManifest);
  const tag = subject.digest.replace(':', '-');
  const existing = await client.tryGetManifest(repo, tag, { accept: [MEDIA_TYPES.ociIndex] });
  const manifests: Descriptor[] = existing ? ((JSON.parse(existing.bytes.toString('utf8')) as { manifests?: Descriptor[] }).manifests ?? []) : [];
  if (!manifests.some((m) => m.digest === digest)) manifests.push({ mediaType: MEDIA_TYPES.ociManifest, digest, size: manifest.length, artifactType });
  await client
    .pushManifest(repo, tag, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests })), MEDIA_TYPES.ociIndex)
    .catch((err: unknown) => {
      throw explainLongTag(err, tag);
    });
  return digest;
}
