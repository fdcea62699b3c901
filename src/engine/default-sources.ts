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
import { ALL_FORMATS, type FormatName } from '../formats/types.js';
import { FORMATS } from './evaluate.js';
import { ReferrersListing, ReferrersSource, REFERRER_FORMATS } from './referrers-source.js';

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
      if (formats.includes('cosign')) signatures.push(new CosignSource(store));
      const listing = new ReferrersListing(store);
      for (const f of ['sigstore-bundle', 'notation'] as const) {
        if (formats.includes(f) && FORMATS[f] !== undefined) signatures.push(new ReferrersSource(listing, REFERRER_FORMATS[f]));
      }
    }
    return { signatures, attestations: stores.map((s) => new AttestationSource(s)) };
  }
}
