/**
 * PEM keys and trust stores from files, in one provider (as callers built the key ring before the key
 * stores were modules: `new KeyRing([new PemKeyProvider(), …])`). The stores themselves are ./file.ts
 * and ./certificates.ts; the ring sends `certificates:` keys to the certificates store.
 */
import { certificatesKeyStore } from './certificates.js';
import { fileKeyStore } from './file.js';
import type { KeyProvider, KeySpec } from './provider.js';
import type { TrustedKey } from './types.js';

export class PemKeyProvider implements KeyProvider {
  readonly scheme = 'file' as const;
  private readonly file = fileKeyStore.provider({});
  private readonly certificates = certificatesKeyStore.provider({});

  async load(name: string, spec: KeySpec): Promise<TrustedKey> {
    return spec.certificates !== undefined ? this.certificates.load(name, spec) : this.file.load(name, spec);
  }

  async close(): Promise<void> {}
}
