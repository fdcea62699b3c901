/**
 * Signatures stored beside the image under a tag derived from its digest — cosign's `sha256-<hex>.sig`
 * (`sha512-<hex>.sig` for a sha512 image: cosign's name, 139 characters, see isRegistryTag) — in a
 * registry or an OCI layout. Generic over the format: the format's `location` names the suffix, reads
 * the manifest's layers and caps the payload size.
 */
import { SignetError } from '../errors.js';
import type { FormatName } from '../formats/index.js';
import type { SignatureFormat } from '../formats/types.js';
import type { ContentStore } from '../registry/store.js';
import { isDigest, repositoryName, type ImageReference } from '../registry/reference.js';
import type { DiscoveredSignature, SignatureSource } from './sources.js';

/** `sha256:abc…` + `.sig` → `sha256-abc….sig`. */
export function digestTag(digest: string, suffix: string): string {
  if (!isDigest(digest)) throw new SignetError('INVALID_ARGUMENT', `not a digest: ${digest}`);
  return `${digest.replace(':', '-')}${suffix}`;
}

export class TagSource implements SignatureSource {
  readonly name: string;

  constructor(
    private readonly client: ContentStore,
    private readonly format: SignatureFormat<FormatName>,
  ) {
    if (format.location.kind !== 'tag') throw new SignetError('INVALID_ARGUMENT', `${format.name} signatures are not stored under a tag`);
    this.name = client.name;
  }

  async find(image: ImageReference, digest: string, options: { limit: number; signal?: AbortSignal }): Promise<DiscoveredSignature[]> {
    const location = this.format.location;
    if (location.kind !== 'tag') return [];
    const format = this.format.name;
    const repo = { registry: image.registry, repository: image.repository };
    const tag = digestTag(digest, location.suffix);
    const where = `${this.client.name === 'registry' ? '' : `${this.client.name} `}${repositoryName(image)}:${tag}`;
    const manifest = await this.client.tryGetManifest(repo, tag, options.signal ? { signal: options.signal } : {});
    if (manifest === undefined) return [];
    let layers;
    try {
      layers = location.readManifest(manifest.bytes);
    } catch (err) {
      return [{ format, source: where, error: err as SignetError }];
    }
    return Promise.all(
      layers.slice(0, options.limit).map(async (layer, i): Promise<DiscoveredSignature> => {
        const source = `${where}#${i}`;
        try {
          const untrustedSignature = layer.signature();
          const untrustedPayload = await this.client.getBlob(repo, layer.digest, {
            maxBytes: location.maxPayloadBytes,
            ...(options.signal ? { signal: options.signal } : {}),
          });
          return { format, source, untrustedPayload, untrustedSignature, untrustedAnnotations: layer.annotations };
        } catch (err) {
          if (err instanceof SignetError && err.code === 'DIGEST_MISMATCH') {
            return {
              format,
              source,
              error: new SignetError('DIGEST_MISMATCH', `payload blob ${layer.digest} does not match its digest: tampered in the registry`),
            };
          }
          if (err instanceof SignetError && (err.code === 'SIGNATURE_MALFORMED' || err.code === 'BLOB_TOO_LARGE' || err.code === 'REGISTRY_NOT_FOUND')) {
            return { format, source, error: err };
          }
          throw err; // the lookup itself failed: the caller refuses with that reason
        }
      }),
    );
  }
}
