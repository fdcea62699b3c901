/**
 * Where signature artifacts are read from: a registry, or an OCI image layout on disk for air-gapped
 * nodes. Sources (cosign, attestations, referrers-based formats) read through this seam only.
 */
import type { RepositoryRef } from './client.js';
import type { Descriptor, FetchedManifest } from './types.js';

export interface StoreCallOptions {
  signal?: AbortSignal;
}

export interface ContentStore {
  /** For reasons and audit lines: `registry` or `oci-layout:/var/lib/signet/layouts/app`. */
  readonly name: string;
  /** A manifest by tag or digest, or undefined when the store does not have it. */
  tryGetManifest(repo: RepositoryRef, reference: string, options?: StoreCallOptions & { accept?: string[] }): Promise<FetchedManifest | undefined>;
  /** A blob, digest-verified, at most `maxBytes`. */
  getBlob(repo: RepositoryRef, digest: string, options?: StoreCallOptions & { maxBytes?: number }): Promise<Buffer>;
  /** Manifests whose `subject` is `digest` (OCI 1.1 referrers), filtered by artifact type, at most `limit`. */
  referrers(repo: RepositoryRef, digest: string, options: StoreCallOptions & { artifactType?: string; limit: number }): Promise<Descriptor[]>;
}
