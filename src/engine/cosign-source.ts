/**
 * Cosign signatures stored beside the image under tag `sha256-<hex>.sig` (`sha512-<hex>.sig` for a
 * sha512 image: cosign's name, 139 characters, see isRegistryTag), in a registry or an OCI layout.
 */
import { SignetError } from '../errors.js';
import { cosignSignatureTag, decodeBase64Strict, parseSignatureManifest } from '../formats/cosign.js';
import type { ContentStore } from '../registry/store.js';
import { repositoryName, type ImageReference } from '../registry/reference.js';
import type { DiscoveredSignature, SignatureSource } from './sources.js';

const MAX_PAYLOAD_BYTES = 64 * 1024;

export class CosignSource implements SignatureSource {
  readonly name: string;

  constructor(private readonly client: ContentStore) {
    this.name = client.name;
  }

  async find(image: ImageReference, digest: string, options: { limit: number; signal?: AbortSignal }): Promise<DiscoveredSignature[]> {
    const repo = { registry: image.registry, repository: image.repository };
    const tag = cosignSignatureTag(digest);
    const where = `${this.client.name === 'registry' ? '' : `${this.client.name} `}${repositoryName(image)}:${tag}`;
    const manifest = await this.client.tryGetManifest(repo, tag, options.signal ? { signal: options.signal } : {});
    if (manifest === undefined) return [];
    let layers;
    try {
      layers = parseSignatureManifest(manifest.bytes);
    } catch (err) {
      return [{ format: 'cosign', source: where, error: err as SignetError }];
    }
    return Promise.all(
      layers.slice(0, options.limit).map(async (layer, i): Promise<DiscoveredSignature> => {
        const source = `${where}#${i}`;
        try {
          const untrustedSignature = decodeBase64Strict(layer.untrustedSignatureBase64, 'signature annotation');
          const untrustedPayload = await this.client.getBlob(repo, layer.descriptor.digest, {
            maxBytes: MAX_PAYLOAD_BYTES,
            ...(options.signal ? { signal: options.signal } : {}),
          });
          return { format: 'cosign', source, untrustedPayload, untrustedSignature };
        } catch (err) {
          if (err instanceof SignetError && err.code === 'DIGEST_MISMATCH') {
            return { format: 'cosign', source, error: new SignetError('DIGEST_MISMATCH', `payload blob ${layer.descriptor.digest} does not match its digest: tampered in the registry`) };
          }
          if (err instanceof SignetError && (err.code === 'SIGNATURE_MALFORMED' || err.code === 'BLOB_TOO_LARGE' || err.code === 'REGISTRY_NOT_FOUND')) {
            return { format: 'cosign', source, error: err };
          }
          throw err; // the lookup itself failed: the caller refuses with that reason
        }
      }),
    );
  }
}
