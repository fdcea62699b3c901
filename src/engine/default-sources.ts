/**
 * The stores signatures are read from, and the sources that read each format from a store. The
 * sources follow the format list (formats/index.ts): a format stored under a tag gets a TagSource, one
 * stored as referrers a ReferrersSource sharing the store's one listing. A scope's `signatureSources`
 * picks the stores (default: registry).
 */
import type { RegistryClient } from '../registry/client.js';
import { OciLayoutStore } from '../registry/oci-layout.js';
import { RegistryStore } from '../registry/registry-store.js';
import type { ContentStore } from '../registry/store.js';
import type { SignatureSourceSpec } from '../policy/types.js';
import { AttestationSource } from './attestation-source.js';
import type { SignatureSource } from './sources.js';
import { ALL_FORMATS, FORMAT_LIST, type FormatName } from '../formats/index.js';
import { ReferrersListing, ReferrersSource } from './referrers-source.js';
import { TagSource } from './tag-source.js';

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

  /**
   * Sources for the stores in `specs`, for the formats a scope accepts. Referrers are only listed for
   * formats this build can verify (each listing costs registry round trips on every decision).
   */
  sources(specs: SignatureSourceSpec[], formats: readonly FormatName[] = ALL_FORMATS): SourceSet {
    const stores = specs.map((s) => this.store(s));
    const signatures: SignatureSource[] = [];
    for (const store of stores) {
      const listing = new ReferrersListing(store);
      for (const format of FORMAT_LIST) {
        if (!formats.includes(format.name)) continue;
        signatures.push(format.location.kind === 'tag' ? new TagSource(store, format) : new ReferrersSource(listing, format));
      }
    }
    return { signatures, attestations: stores.map((s) => new AttestationSource(s)) };
  }
}
