/**
 * The stores signatures are read from, and the sources that read each format from a store: the one
 * place to add a format or a store. A scope's `signatureSources` picks the stores (default: registry).
 */
import type { RegistryClient } from '../registry/client.js';
import { OciLayoutStore } from '../registry/oci-layout.js';
import { RegistryStore } from '../registry/registry-store.js';
import type { ContentStore } from '../registry/store.js';
import type { SignatureSourceSpec } from '../policy/types.js';
import { AttestationSource } from './attestation-source.js';
import { CosignSource } from './cosign-source.js';
import type { SignatureSource } from './sources.js';

export interface SourceSet {
  signatures: SignatureSource[];
  attestations: AttestationSource[];
}

/** Builds (and caches) the sources for a list of store specs. */
export class SourceFactory {
  private readonly registry: ContentStore;
  private readonly layouts = new Map<string, ContentStore>();

  constructor(client: RegistryClient) {
    this.registry = new RegistryStore(client);
  }

  store(spec: SignatureSourceSpec): ContentStore {
    if (spec === 'registry') return this.registry;
    let s = this.layouts.get(spec.ociLayout);
    if (s === undefined) {
      s = new OciLayoutStore(spec.ociLayout);
      this.layouts.set(spec.ociLayout, s);
    }
    return s;
  }

  sources(specs: SignatureSourceSpec[]): SourceSet {
    const stores = specs.map((s) => this.store(s));
    return { signatures: stores.map((s) => new CosignSource(s)), attestations: stores.map((s) => new AttestationSource(s)) };
  }
}
