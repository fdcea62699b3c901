/**
 * Notation as a SignatureFormat: the trust store is the key's certificates (a `certificates:` PEM file or
 * a PKCS#11 certificate object); trusted identities come from the key's policy entry. The verification
 * itself is in ./notation/ (the Notary Project specification, check by check).
 */
import type { TrustedKey } from '../keys/types.js';
import { precheckNotation } from './notation-precheck.js';
import type { ExpectedSubject, FormatOptions, SignatureCheck, SignatureFormat, UntrustedSignature } from './types.js';

export const NOTATION_ARTIFACT_TYPE = 'application/vnd.cncf.notary.signature';

export const notationFormat: SignatureFormat<'notation'> = {
  name: 'notation',
  location: {
    kind: 'referrers',
    artifactTypes: [NOTATION_ARTIFACT_TYPE],
    layerMediaTypes: ['application/jose+json', 'application/cose'],
    maxEnvelopeBytes: 1024 * 1024,
  },
  precheck: precheckNotation,
  async verify(signature: UntrustedSignature, key: TrustedKey, expected: ExpectedSubject, options?: FormatOptions): Promise<SignatureCheck> {
    if (key.certificates === undefined || key.certificates.length === 0) {
      return {
        valid: false,
        code: 'KEY_INVALID',
        reason: `key "${key.name}" is not a certificate trust store (give certificates: FILE, or a PKCS#11 certificate object)`,
      };
    }
    // Loaded when first used: the format list is read by policy loading and discovery too.
    const { verifyNotationSignature } = await import('./notation/index.js');
    const r = await verifyNotationSignature({
      untrustedEnvelope: signature.untrustedPayload,
      envelopeMediaType: signature.envelopeMediaType ?? '',
      expected,
      trustStore: key.certificates,
      ...(options?.trustedIdentities ? { trustedIdentities: options.trustedIdentities } : {}),
      ...(key.timestampAuthorities !== undefined ? { timestampAuthorities: key.timestampAuthorities } : {}),
    });
    if (!r.valid) return { valid: false, code: r.code, reason: `Notation signature, trust store "${key.name}": ${r.reason}` };
    return {
      valid: true,
      signedDigest: expected.digest,
      annotations: { ...r.annotations, signer: r.signer.subject, signingScheme: r.signingScheme, signingTime: r.signingTime.toISOString() },
    };
  },
};
