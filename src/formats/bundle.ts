/**
 * Sigstore bundles as a SignatureFormat (cosign v3 image signatures, stored as OCI 1.1 referrers).
 * The verification itself is in ./sigstore-bundle.ts: key-based bundles against a policy key (PEM or
 * HSM, through TrustedKey), keyless bundles against a `sigstore` key's offline trusted root and
 * identity (certificate chain, transparency-log and timestamp evidence, issuer and subject).
 */
import type { TrustedKey } from '../keys/types.js';
import { COSIGN_SIGN_V1_PREDICATE_TYPE, verifySigstoreBundle } from './sigstore-bundle.js';
import type { ExpectedSubject, SignatureCheck, SignatureFormat, UntrustedSignature } from './types.js';

export { COSIGN_SIGN_V1_PREDICATE_TYPE as COSIGN_SIGN_PREDICATE_TYPE };

export const sigstoreBundleFormat: SignatureFormat = {
  name: 'sigstore-bundle',
  async verify(signature: UntrustedSignature, key: TrustedKey, expected: ExpectedSubject): Promise<SignatureCheck> {
    const r = await verifySigstoreBundle({
      untrustedBundle: signature.untrustedPayload,
      expectedDigest: expected.digest,
      ...(key.sigstore !== undefined
        ? { trustedRoot: key.sigstore.trustedRoot, identity: { issuer: key.sigstore.issuer, ...(key.sigstore.subject !== undefined ? { subject: key.sigstore.subject } : {}), ...(key.sigstore.subjectRegExp !== undefined ? { subjectRegExp: key.sigstore.subjectRegExp } : {}) } }
        : { key }),
    });
    if (!r.valid) return { valid: false, code: r.code, reason: `sigstore bundle, key "${key.name}": ${r.reason}` };
    return {
      valid: true,
      signedDigest: r.signedDigest,
      ...(r.subjectNames[0] !== undefined ? { signedIdentity: r.subjectNames[0] } : {}),
      annotations: { ...r.signer, evidence: r.evidence },
    };
  },
};
