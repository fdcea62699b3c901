/**
 * `certificates:` keys: a trust store of X.509 root certificates (PEM file). Notation's trust store: a
 * signer's chain must lead to one of them. For cosign signatures that carry a certificate (a company
 * PKI), the same roots with optional `intermediates` and identity rules on the leaf's subject
 * alternative names (`subjectEmail`, `subjectHostname`, `subjectURI`).
 */
import { SignetError } from '../errors.js';
import { loadCertificateKey, loadPemList } from './pem.js';
import type { KeySpec, KeyStore } from './provider.js';
import { loadTsaTrustedRoot } from './timestamp-authorities.js';
import type { CertificateIdentity, TimestampAuthority, TrustedKey } from './types.js';

declare module './provider.js' {
  interface KeySpec {
    /** Path of a PEM file of trust-store (root) certificates. */
    certificates?: string;
    /** Path of a PEM file of intermediate certificates (cosign signatures with certificates). */
    intermediates?: string;
    /** cosign signatures with certificates: the leaf's email SAN must be this. */
    subjectEmail?: string;
    /** … its DNS SAN (case-insensitive). */
    subjectHostname?: string;
    /** … its URI SAN. */
    subjectURI?: string;
    /** Path of a PEM file of timestamp-authority certificates (its signing certificate first, or its roots only): Notation countersignatures. */
    tsaCertificates?: string;
  }
}

export const certificatesKeyStore: KeyStore<'certificates'> = {
  kind: 'certificates',
  location: (spec: KeySpec) => `file:${spec.certificates}`,
  provider: () => ({
    scheme: 'certificates',
    async load(name, spec): Promise<TrustedKey> {
      if (spec.certificates === undefined) throw new SignetError('KEY_INVALID', `key "${name}" has no certificates file`);
      const key = await loadCertificateKey(name, spec.certificates);
      const identity: CertificateIdentity = {
        ...(spec.subjectEmail !== undefined ? { subjectEmail: spec.subjectEmail } : {}),
        ...(spec.subjectHostname !== undefined ? { subjectHostname: spec.subjectHostname } : {}),
        ...(spec.subjectURI !== undefined ? { subjectURI: spec.subjectURI } : {}),
      };
      const timestampAuthorities: TimestampAuthority[] = [
        ...(spec.tsaCertificates !== undefined
          ? [
              {
                certChain: await loadPemList(name, spec.tsaCertificates, 'timestamp-authority certificates'),
                source: `tsaCertificates ${spec.tsaCertificates}`,
              },
            ]
          : []),
        ...(spec.tsaTrustedRoot !== undefined ? await loadTsaTrustedRoot(name, spec.tsaTrustedRoot) : []),
      ];
      return {
        ...key,
        ...(spec.intermediates !== undefined ? { intermediates: await loadPemList(name, spec.intermediates, 'intermediates') } : {}),
        ...(timestampAuthorities.length > 0 ? { timestampAuthorities } : {}),
        ...(Object.keys(identity).length > 0 ? { certificateIdentity: identity } : {}),
      };
    },
    async close() {},
  }),
};
