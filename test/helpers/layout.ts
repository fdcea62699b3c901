/** Write an OCI image layout from registry content, as `cosign save` does for an image and its signatures. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RegistryClient, RepositoryRef } from '../../src/registry/client.js';

export async function saveLayout(client: RegistryClient, repo: RepositoryRef, dir: string, refs: string[]): Promise<void> {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const manifests = [];
  const put = (digest: string, bytes: Buffer) => writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  for (const ref of refs) {
    const m = await client.getManifest(repo, ref);
    put(m.digest, m.bytes);
    const doc = JSON.parse(m.bytes.toString()) as { config?: { digest: string }; layers?: Array<{ digest: string }>; manifests?: Array<{ digest: string }> };
    for (const d of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) put(d.digest, await client.getBlob(repo, d.digest));
    manifests.push({ mediaType: m.mediaType, digest: m.digest, size: m.bytes.length, annotations: { 'org.opencontainers.image.ref.name': ref } });
  }
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
}
