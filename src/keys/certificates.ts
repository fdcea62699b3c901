/**
 * `certificates:` keys: a trust store of X.509 root certificates (PEM file). Notation's trust store: a
 * signer's chain must lead to one of them. For cosign signatures that carry a certificate (a company
 * PKI), the same roots with optional `intermediates` and identity rules on the leaf's subject
 * alternative names (`subjectEmail`, `subjectHostname`, `subjectURI`).
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SignetError } from '../errors.js';
import { loadCertificateKey } from './pem.js';
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

export async function loadPemList(name: string, path: string, what: string): Promise<X509Certificate[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SignetError(
      code === 'ENOENT' ? 'KEY_NOT_FOUND' : 'KEY_UNAVAILABLE',
      `key "${name}": cannot read ${what} ${path}: ${code ?? (err as Error).message}`,
    );
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new SignetError('KEY_INVALID', `key "${name}": ${path} holds no PEM certificate`);
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    throw new SignetError('KEY_INVALID', `key "${name}": ${path} holds an invalid certificate: ${(err as Error).message}`);
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
