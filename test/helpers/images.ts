/** Build real OCI images (random layers) and push them with the project's registry client. */
import { createHash, randomBytes } from 'node:crypto';
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

export async function pushImage(client: RegistryClient, repo: RepositoryRef, tag?: string, platform = { architecture: 'amd64', os: 'linux' }): Promise<PushedImage> {
  const layer = randomBytes(512 + Math.floor(Math.random() * 512));
  const config = Buffer.from(JSON.stringify({ ...platform, created: new Date().toISOString(), rootfs: { type: 'layers', diff_ids: [sha256(layer)] }, config: {} }));
  await client.pushBlob(repo, layer);
  await client.pushBlob(repo, config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
  }));
  const digest = await client.pushManifest(repo, tag ?? sha256(manifest), manifest, MEDIA_TYPES.ociManifest);
  return { digest, size: manifest.length, mediaType: MEDIA_TYPES.ociManifest, manifestBytes: manifest };
}

export async function pushIndex(client: RegistryClient, repo: RepositoryRef, tag?: string): Promise<PushedImage & { children: PushedImage[] }> {
  const platforms = [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }];
  const children: PushedImage[] = [];
  for (const p of platforms) children.push(await pushImage(client, repo, undefined, p));
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: children.map((c, i): Descriptor => ({ mediaType: c.mediaType, digest: c.digest, size: c.size, platform: platforms[i]! })),
  }));
  const digest = await client.pushManifest(repo, tag ?? sha256(index), index, MEDIA_TYPES.ociIndex);
  return { digest, size: index.length, mediaType: MEDIA_TYPES.ociIndex, manifestBytes: index, children };
}

/** Push an OCI image layout (index.json + blobs/) as is; returns the first manifest, tagged. */
export async function pushOciLayout(client: RegistryClient, repo: RepositoryRef, layoutDir: string, tag: string): Promise<PushedImage> {
  const index = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const blob = (d: string) => readFileSync(join(layoutDir, 'blobs', ...d.split(':')));
  const top = index.manifests[0]!;
  const manifestBytes = blob(top.digest);
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
  for (const d of [manifest.config, ...manifest.layers]) await client.pushBlob(repo, blob(d.digest));
  const digest = await client.pushManifest(repo, tag, manifestBytes, top.mediaType);
  return { digest, size: manifestBytes.length, mediaType: top.mediaType, manifestBytes };
}
