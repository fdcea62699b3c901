/**
 * Manifests and blobs fetched by digest are immutable: a RegistryClient that keeps them, bounded by
 * bytes (least recently used dropped first), so that a decision made again after a policy change costs
 * only the lookups by tag and the listings. Only what the registry served and the client verified
 * against its digest is kept; entries are per repository (a digest readable in one repository says
 * nothing about another's access rules). Tags, listings and referrers are never cached.
 */
import { LRUCache } from 'lru-cache';
import { isDigest } from './reference.js';
import { RegistryClient, type CallOptions, type RegistryClientOptions, type RepositoryRef } from './client.js';
import type { FetchedManifest } from './types.js';

export interface ContentCacheStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
}

type Content = { kind: 'manifest'; manifest: FetchedManifest } | { kind: 'blob'; bytes: Buffer };

/** Default bound: 64 MiB of manifests and signature/attestation blobs. */
export const DEFAULT_CONTENT_CACHE_BYTES = 64 * 1024 * 1024;

export class CachingRegistryClient extends RegistryClient {
  private readonly content: LRUCache<string, Content>;
  private readonly counts = { hits: 0, misses: 0 };
  /** False with contentCacheSize 0: every fetch goes to the registry. */
  private readonly enabled: boolean;

  constructor(options: RegistryClientOptions & { contentCacheBytes?: number } = {}) {
    super(options);
    const maxSize = options.contentCacheBytes ?? DEFAULT_CONTENT_CACHE_BYTES;
    this.enabled = maxSize > 0;
    this.content = new LRUCache<string, Content>({
      maxSize: Math.max(1, maxSize),
      sizeCalculation: (c) => Math.max(1, c.kind === 'manifest' ? c.manifest.bytes.length : c.bytes.length),
    });
  }

  override async getManifest(repo: RepositoryRef, reference: string, options: CallOptions & { accept?: string[] } = {}): Promise<FetchedManifest> {
    if (!this.enabled || !isDigest(reference)) return super.getManifest(repo, reference, options);
    const key = `m\u0000${repo.registry}/${repo.repository}\u0000${reference}`;
    const hit = this.content.get(key);
    if (hit?.kind === 'manifest' && (options.accept === undefined || options.accept.includes(hit.manifest.mediaType))) {
      this.counts.hits++;
      return hit.manifest;
    }
    this.counts.misses++;
    const manifest = await super.getManifest(repo, reference, options);
    this.content.set(key, { kind: 'manifest', manifest: { ...manifest, bytes: unpooled(manifest.bytes) } });
    return manifest;
  }

  override async getBlob(repo: RepositoryRef, digest: string, options: CallOptions & { maxBytes?: number } = {}): Promise<Buffer> {
    if (!this.enabled) return super.getBlob(repo, digest, options);
    const key = `b\u0000${repo.registry}/${repo.repository}\u0000${digest}`;
    const hit = this.content.get(key);
    if (hit?.kind === 'blob' && (options.maxBytes === undefined || hit.bytes.length <= options.maxBytes)) {
      this.counts.hits++;
      return hit.bytes;
    }
    this.counts.misses++;
    const bytes = await super.getBlob(repo, digest, options);
    this.content.set(key, { kind: 'blob', bytes: unpooled(bytes) });
    return bytes;
  }

  contentStats(): ContentCacheStats {
    return { entries: this.content.size, bytes: this.content.calculatedSize, maxBytes: this.content.maxSize, ...this.counts };
  }
}

/**
 * A copy in memory of its own: a small Buffer is often a slice of Node's shared 8 KiB pool, and keeping
 * it would keep the whole slab, so the cache would hold far more than the bytes it counts.
 */
function unpooled(b: Buffer): Buffer {
  const own = Buffer.allocUnsafeSlow(b.length);
  b.copy(own);
  return own;
}
