/** The registry as a ContentStore. */
import type { RegistryClient, RepositoryRef } from './client.js';
import type { ContentStore, StoreCallOptions } from './store.js';

export class RegistryStore implements ContentStore {
  readonly name = 'registry';

  constructor(private readonly client: RegistryClient) {}

  tryGetManifest(repo: RepositoryRef, reference: string, options: StoreCallOptions & { accept?: string[] } = {}) {
    return this.client.tryGetManifest(repo, reference, options);
  }

  getBlob(repo: RepositoryRef, digest: string, options: StoreCallOptions & { maxBytes?: number } = {}) {
    return this.client.getBlob(repo, digest, options);
  }

  referrers(repo: RepositoryRef, digest: string, options: StoreCallOptions & { artifactType?: string; limit: number }) {
    return this.client.referrers(repo, digest, options);
  }
}
