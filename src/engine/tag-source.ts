/**
 * Signatures stored beside the image under a tag derived from its digest — cosign's `sha256-<hex>.sig`
 * (`sha512-<hex>.sig` for a sha512 image: cosign's name, 139 characters, see isRegistryTag) — in a
 * registry or an OCI layout. Generic over the format: the format's `location` names the suffix, reads
 * the manifest's layers and caps the payload size.
 */
import { SignetError } from '../errors.js';
import type { FormatName } from '../formats/index.js';
import type { SignatureFormat, UntrustedTagLayer } from '../formats/types.js';
import type { ContentStore } from '../registry/store.js';
import { isDigest, repositoryName, type ImageReference } from '../registry/reference.js';
import { canonicalAnnotations } from './signature-order.js';
import type { DiscoveredSignature, FindOptions, SignatureSource } from './sources.js';

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

  async find(image: ImageReference, digest: string, options: FindOptions): Promise<DiscoveredSignature[]> {
    const location = this.format.location;
    if (location.kind !== 'tag') return [];
    const format = this.format.name;
    const repo = { registry: image.registry, repository: image.repository };
    const tag = digestTag(digest, location.suffix);
    const where = `${this.client.name === 'registry' ? '' : `${this.client.name} `}${repositoryName(image)}:${tag}`;
    const signal = options.signal ? { signal: options.signal } : {};
    const manifest = await this.client.tryGetManifest(repo, tag, signal);
    if (manifest === undefined) return [];
    let layers;
    try {
      layers = location.readManifest(manifest.bytes);
    } catch (err) {
      return [{ format, source: where, error: err as SignetError }];
    }
    // Identical layers are read once (what verification reads of a layer: its payload, named by digest,
    // and its annotations, which carry the signature; see signature-order.ts). With an `order`, up to
    // `candidates` layers are read and ordered so that the `limit` examined are the likeliest to verify.
    const distinct = distinctLayers(layers);
    const read = options.order ? Math.max(options.limit, options.candidates ?? options.limit) : options.limit;
    // One payload blob fetched once however many layers name it (stale signatures often share one).
    const payloads = new Map<string, Promise<Buffer>>();
    const payload = (layerDigest: string): Promise<Buffer> => {
      let p = payloads.get(layerDigest);
      if (p === undefined) {
        p = this.client.getBlob(repo, layerDigest, { maxBytes: location.maxPayloadBytes, ...signal });
        p.catch(() => undefined); // awaited by each layer that names it
        payloads.set(layerDigest, p);
      }
      return p;
    };
    const found = await Promise.all(
      distinct.slice(0, read).map(async ({ layer, index }): Promise<DiscoveredSignature> => {
        const source = `${where}#${index}`;
        try {
          const untrustedSignature = layer.signature();
          const untrustedPayload = await payload(layer.digest);
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
    if (distinct.length > options.limit) options.leftOut?.(distinct.length - options.limit);
    if (options.order === undefined || found.length <= options.limit) return found;
    return (await options.order(found)).slice(0, options.limit);
  }
}

/** The layers with repeats left out (the first stays), each with its index in the manifest (for `source`). */
function distinctLayers(layers: UntrustedTagLayer[]): Array<{ layer: UntrustedTagLayer; index: number }> {
  const seen = new Set<string>();
  const out: Array<{ layer: UntrustedTagLayer; index: number }> = [];
  for (const [index, layer] of layers.entries()) {
    const key = `${layer.digest}\n${canonicalAnnotations(layer.annotations)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ layer, index });
  }
  return out;
}
