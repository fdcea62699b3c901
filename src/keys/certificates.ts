/**
 * `certificates:` keys: a trust store of X.509 certificates (PEM file) — Notation's trust store: a
 * signer's chain must lead to one of them.
 */
import { SignetError } from '../errors.js';
import { loadCertificateKey } from './pem.js';
import type { KeySpec, KeyStore } from './provider.js';

declare module './provider.js' {
  interface KeySpec {
    /** Path of a PEM file of trust-store certificates (Notation's trust store). */
    certificates?: string;
  }
}

export const certificatesKeyStore: KeyStore<'certificates'> = {
  kind: 'certificates',
  location: (spec: KeySpec) => `file:${spec.certificates}`,
  provider: () => ({
    scheme: 'certificates',
    async load(name, spec) {
      if (spec.certificates === undefined) throw new SignetError('KEY_INVALID', `key "${name}" has no certificates file`);
      return loadCertificateKey(name, spec.certificates);
    },
    async close() {},
  }),
};
