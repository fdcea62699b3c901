/**
 * Signatures stored as OCI 1.1 referrers of the image (sigstore bundles, Notation): found by
 * artifact type through the store's referrers listing, one envelope per referrer manifest. Generic
 * over the format: its `location` names the artifact types, layer media types and size cap.
 */
import { SignetError } from '../errors.js';
import { isPlainObject, parseStrictJson } from '../formats/strict-json.js';
import type { FormatName } from '../formats/index.js';
import type { SignatureFormat } from '../formats/types.js';
import { isDigest, repositoryName, type ImageReference } from '../registry/reference.js';
import type { ContentStore } from '../registry/store.js';
import type { Descriptor } from '../registry/types.js';
import type { DiscoveredSignature, FindOptions, SignatureSource } from './sources.js';

/**
 * One referrers listing per store and decision, shared by every referrers-based format: the registry is
 * asked once (unfiltered), and each format keeps its own artifact types.
 */
export class ReferrersListing {
  private listing: Promise<Descriptor[]> | undefined;

  constructor(readonly store: ContentStore) {}

  list(repo: { registry: string; repository: string }, digest: string, limit: number, signal?: AbortSignal): Promise<Descriptor[]> {
    this.listing ??= this.store.referrers(repo, digest, { limit, ...(signal ? { signal } : {}) });
    return this.listing;
  }
}

export class ReferrersSource implements SignatureSource {
  readonly name: string;
  private readonly store: ContentStore;

  private readonly spec: { format: FormatName; artifactTypes: readonly string[]; layerMediaTypes: readonly string[]; maxEnvelopeBytes: number };

  constructor(
    private readonly listing: ReferrersListing,
    format: SignatureFormat<FormatName>,
  ) {
    if (format.location.kind !== 'referrers') throw new SignetError('INVALID_ARGUMENT', `${format.name} signatures are not stored as referrers`);
    this.spec = { format: format.name, ...format.location };
    this.store = listing.store;
    this.name = this.store.name;
  }

  async find(image: ImageReference, digest: string, options: FindOptions): Promise<DiscoveredSignature[]> {
    const repo = { registry: image.registry, repository: image.repository };
    const signal = options.signal ? { signal: options.signal } : {};
    // Listed unfiltered (other formats share the listing), a few times the per-format limit, then filtered here.
    const all = await this.listing.list(repo, digest, options.limit * 4, options.signal);
    const listed = all.filter((d) => d.artifactType !== undefined && this.spec.artifactTypes.includes(d.artifactType));
    // More than are examined: those likeliest to verify first, from the listing's annotations (not fetched to rank).
    if (listed.length > options.limit) options.leftOut?.(listed.length - options.limit);
    const descriptors = listed.length > options.limit && options.orderReferrers ? options.orderReferrers(listed) : listed;
    const where = `${this.store.name === 'registry' ? '' : `${this.store.name} `}${repositoryName(image)}`;
    return Promise.all(
      descriptors.slice(0, options.limit).map(async (d): Promise<DiscoveredSignature> => {
        const source = `${where}@${d.digest}`;
        try {
          const manifest = await this.store.tryGetManifest(repo, d.digest, signal);
          if (manifest === undefined) throw new SignetError('REGISTRY_NOT_FOUND', `referrer ${d.digest} is listed but not found`);
          const doc = parseStrictJson(manifest.bytes.toString('utf8'), `${this.spec.format} signature manifest`);
          const layers = isPlainObject(doc) && Array.isArray(doc['layers']) ? (doc['layers'] as unknown[]) : [];
          const layer = layers.find(
            (l): l is { mediaType: string; digest: string } =>
              isPlainObject(l) &&
              typeof l['mediaType'] === 'string' &&
              this.spec.layerMediaTypes.includes(l['mediaType']) &&
              typeof l['digest'] === 'string' &&
              isDigest(l['digest']),
          );
          if (layer === undefined)
            throw new SignetError(
              'SIGNATURE_MALFORMED',
              `${this.spec.format} signature manifest ${d.digest} has no ${this.spec.layerMediaTypes.join(' or ')} layer`,
            );
          const untrustedPayload = await this.store.getBlob(repo, layer.digest, { maxBytes: this.spec.maxEnvelopeBytes, ...signal });
          return { format: this.spec.format, source, untrustedPayload, untrustedSignature: Buffer.alloc(0), envelopeMediaType: layer.mediaType };
        } catch (err) {
          if (err instanceof SignetError && ['SIGNATURE_MALFORMED', 'DIGEST_MISMATCH', 'BLOB_TOO_LARGE', 'REGISTRY_NOT_FOUND'].includes(err.code))
            return { format: this.spec.format, source, error: err };
          throw err;
        }
      }),
    );
  }
}
