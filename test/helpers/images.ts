/** Build real OCI images (random config and layers) and push them with the project's registry client. */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RegistryClient, RepositoryRef } from '../../src/registry/client.js';
import { MEDIA_TYPES, type Descriptor } from '../../src/registry/types.js';

export interface PushedImage {
  digest: string;
  size: number;
  mediaType: string;
  manifestBytes: Buffer;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An OCI image manifest over a random config and one or two random layers, under `tag` or by digest. */
export async function pushImage(
  client: RegistryClient,
  repo: RepositoryRef,
  tag?: string,
  platform = { architecture: 'amd64', os: 'linux' },
): Promise<PushedImage> {
  const layers = Array.from({ length: randomInt(1, 3) }, () => randomBytes(512 + randomInt(512)));
  const config = Buffer.from(
    JSON.stringify({ ...platform, created: new Date().toISOString(), rootfs: { type: 'layers', diff_ids: layers.map(sha256) }, config: {} }),
  );
  for (const blob of [...layers, config]) await client.pushBlob(repo, blob);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: MEDIA_TYPES.ociConfig, digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(l), size: l.length })),
    }),
  );
  const digest = await client.pushManifest(repo, tag ?? sha256(manifest), manifest, MEDIA_TYPES.ociManifest);
  return { digest, size: manifest.length, mediaType: MEDIA_TYPES.ociManifest, manifestBytes: manifest };
}

/** An OCI image index over two platform images, linux/amd64 and linux/arm64. */
export async function pushIndex(client: RegistryClient, repo: RepositoryRef, tag?: string): Promise<PushedImage & { children: PushedImage[] }> {
  const platforms = [
    { architecture: 'amd64', os: 'linux' },
    { architecture: 'arm64', os: 'linux' },
  ];
  const children: PushedImage[] = [];
  for (const p of platforms) children.push(await pushImage(client, repo, undefined, p));
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: children.map((c, i): Descriptor => ({ mediaType: c.mediaType, digest: c.digest, size: c.size, platform: platforms[i]! })),
    }),
  );
  const digest = await client.pushManifest(repo, tag ?? sha256(index), index, MEDIA_TYPES.ociIndex);
  return { digest, size: index.length, mediaType: MEDIA_TYPES.ociIndex, manifestBytes: index, children };
}

const INDEX_TYPES = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]);

/**
 * Push an OCI image layout (index.json + blobs/) as is: every manifest index.json lists, nested indexes
 * and their manifests, configs and layers, byte for byte. The entry whose
 * `org.opencontainers.image.ref.name` is `tag` (else the first) is tagged `tag`; the others go by digest.
 */
export async function pushOciLayout(client: RegistryClient, repo: RepositoryRef, layoutDir: string, tag: string): Promise<PushedImage> {
  const index = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
  if (!Array.isArray(index.manifests) || index.manifests.length === 0) throw new Error(`${layoutDir}/index.json lists no manifests`);
  const blob = (d: Descriptor) => {
    const bytes = readFileSync(join(layoutDir, 'blobs', ...d.digest.split(':')));
    if (sha256(bytes) !== d.digest) throw new Error(`${layoutDir}: blob ${d.digest} does not match its digest`);
    return bytes;
  };
  const pushed = new Set<string>();
  const pushManifestTree = async (d: Descriptor, reference: string): Promise<Buffer> => {
    const bytes = blob(d);
    const doc = JSON.parse(bytes.toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    if (INDEX_TYPES.has(d.mediaType)) {
      for (const child of doc.manifests ?? []) await pushManifestTree(child, child.digest);
    } else {
      for (const b of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
        if (pushed.has(b.digest)) continue;
        await client.pushBlob(repo, blob(b));
        pushed.add(b.digest);
      }
    }
    await client.pushManifest(repo, reference, bytes, d.mediaType);
    return bytes;
  };
  const top = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag) ?? index.manifests[0]!;
  for (const m of index.manifests) if (m !== top) await pushManifestTree(m, m.digest);
  const manifestBytes = await pushManifestTree(top, tag);
  return { digest: top.digest, size: manifestBytes.length, mediaType: top.mediaType, manifestBytes };
}
