/** Cosign attestations in the image's repository: tag `sha256-<hex>.att` (`sha512-<hex>.att`), one DSSE envelope per layer. */
import { SignetError } from '../errors.js';
import { cosignAttestationTag, DSSE_ENVELOPE_MEDIA_TYPE } from '../attest/vuln.js';
import { parseStrictJson, isPlainObject } from '../formats/strict-json.js';
import { isDigest, repositoryName, type ImageReference } from '../registry/reference.js';
import type { ContentStore } from '../registry/store.js';

const MAX_ENVELOPE_BYTES = 4 * 1024 * 1024;
const MAX_LAYERS = 64;

export interface UntrustedAttestation {
  source: string;
  untrustedEnvelope?: Buffer;
  /** Set when the layer could not be read. */
  error?: SignetError;
}

export class AttestationSource {
  readonly name: string;

  constructor(private readonly client: ContentStore) {
    this.name = client.name;
  }

  async find(image: ImageReference, digest: string, options: { limit: number; signal?: AbortSignal }): Promise<UntrustedAttestation[]> {
    const repo = { registry: image.registry, repository: image.repository };
    const tag = cosignAttestationTag(digest);
    const where = `${this.client.name === 'registry' ? '' : `${this.client.name} `}${repositoryName(image)}:${tag}`;
    const signal = options.signal ? { signal: options.signal } : {};
    const manifest = await this.client.tryGetManifest(repo, tag, signal);
    if (manifest === undefined) return [];
    let layers: Array<{ digest: string }>;
    try {
      const doc = parseStrictJson(manifest.bytes.toString('utf8'), 'attestation manifest');
      const raw = isPlainObject(doc) && Array.isArray(doc['layers']) ? (doc['layers'] as unknown[]) : undefined;
      if (raw === undefined) throw new SignetError('SIGNATURE_MALFORMED', 'attestation manifest has no layers array');
      if (raw.length > MAX_LAYERS) throw new SignetError('SIGNATURE_MALFORMED', `attestation manifest has ${raw.length} layers, more than ${MAX_LAYERS}`);
      layers = raw.filter(
        (l): l is { digest: string; mediaType: string } =>
          isPlainObject(l) && l['mediaType'] === DSSE_ENVELOPE_MEDIA_TYPE && typeof l['digest'] === 'string' && isDigest(l['digest']),
      );
    } catch (err) {
      return [{ source: where, error: err as SignetError }];
    }
    return Promise.all(
      layers.slice(0, options.limit).map(async (layer, i): Promise<UntrustedAttestation> => {
        const source = `${where}#${i}`;
        try {
          return { source, untrustedEnvelope: await this.client.getBlob(repo, layer.digest, { maxBytes: MAX_ENVELOPE_BYTES, ...signal }) };
        } catch (err) {
          if (err instanceof SignetError && ['DIGEST_MISMATCH', 'BLOB_TOO_LARGE', 'REGISTRY_NOT_FOUND'].includes(err.code)) return { source, error: err };
          throw err;
        }
      }),
    );
  }
}
