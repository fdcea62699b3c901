/**
 * Sigstore bundles as a SignatureFormat (cosign v3 image signatures, stored as OCI 1.1 referrers).
 * The verification itself is in ./sigstore-bundle.ts: key-based bundles against a policy key (PEM or
 * HSM, through TrustedKey), keyless bundles against a `sigstore` key's offline trusted root and
 * identity (certificate chain, transparency-log and timestamp evidence, issuer and subject). A key with
 * `tlog: required` has its bundles' evidence checked too: against its `trustedRoot` (Rekor v1 and v2
 * entries, RFC 3161 timestamps), or with a `rekorKey` alone against that log key (Rekor v1 entries,
 * whose signed entry timestamp gives the time; a Rekor v2 checkpoint needs the log's origin and a
 * timestamp authority, which only a trusted root names).
 */
import type { TlogRequirement } from '../keys/tlog.js';
import type { Signer, TrustedKey } from '../keys/types.js';
import { precheckBundle } from './bundle-precheck.js';
import type { ExpectedSubject, SignatureCheck, SignatureFormat, SignedArtifact, SignRequest, UntrustedSignature } from './types.js';

// The sigstore libraries are loaded when a bundle is first verified or signed: the format list is read
// by policy loading and discovery, which need only where bundles live.
/** The same values as ./sigstore-bundle.ts exports (held equal by test/unit/registries.test.ts). */
export const COSIGN_SIGN_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1';
const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/**
 * A key-based cosign v3 image signature: an in-toto statement (predicate cosign/sign/v1) about the
 * digest, in a DSSE envelope signed over the pre-authentication encoding, wrapped in a v0.3 bundle.
 */
async function signBundle(request: SignRequest, signer: Signer): Promise<SignedArtifact> {
  const [{ bundleToJSON, toDSSEBundle }, { dsseHashFor, INTOTO_PAYLOAD_TYPE, preAuthEncoding }, { buildStatement, serializeStatement, subjectForDigest }] =
    await Promise.all([import('@sigstore/bundle'), import('./dsse.js'), import('./intoto.js')]);
  const statement = serializeStatement(buildStatement([subjectForDigest(request.repositoryName, request.digest)], COSIGN_SIGN_PREDICATE_TYPE, {}));
  const signature = Buffer.from(await signer.sign(preAuthEncoding(INTOTO_PAYLOAD_TYPE, statement), dsseHashFor(signer.algorithm)));
  const bundle = toDSSEBundle({ artifact: statement, artifactType: INTOTO_PAYLOAD_TYPE, signature, keyHint: signer.fingerprint });
  return { blob: Buffer.from(JSON.stringify(bundleToJSON(bundle))), mediaType: BUNDLE_MEDIA_TYPE };
}

/** The trusted root a key-based bundle's evidence is checked against, when the key requires evidence. */
function evidenceRoot(tlog: TlogRequirement): unknown {
  if (tlog.trustedRoot !== undefined) return tlog.trustedRoot;
  return {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: tlog.logKeys.map((k) => ({
      baseUrl: '',
      hashAlgorithm: 'SHA2_256',
      publicKey: {
        rawBytes: k.key.export({ type: 'spki', format: 'der' }).toString('base64'),
        // Only says how @sigstore/verify decodes rawBytes (an RSA detail would make it read PKCS#1): SPKI here.
        keyDetails: k.key.asymmetricKeyType === 'ed25519' ? 'PKIX_ED25519' : 'PKIX_ECDSA_P256_SHA_256',
        ...(k.validFrom !== undefined ? { validFor: { start: k.validFrom.toISOString(), ...(k.validTo ? { end: k.validTo.toISOString() } : {}) } } : {}),
      },
      logId: { keyId: k.logId.toString('base64') },
    })),
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  };
}

export const sigstoreBundleFormat: SignatureFormat<'sigstore-bundle'> = {
  name: 'sigstore-bundle',
  location: { kind: 'referrers', artifactTypes: [BUNDLE_MEDIA_TYPE], layerMediaTypes: [BUNDLE_MEDIA_TYPE], maxEnvelopeBytes: 1024 * 1024 },
  sign: signBundle,
  precheck: precheckBundle,
  async verify(signature: UntrustedSignature, key: TrustedKey, expected: ExpectedSubject): Promise<SignatureCheck> {
    const { verifySigstoreBundle } = await import('./sigstore-bundle.js');
    const r = await verifySigstoreBundle({
      untrustedBundle: signature.untrustedPayload,
      expectedDigest: expected.digest,
      ...(key.sigstore !== undefined
        ? {
            trustedRoot: key.sigstore.trustedRoot,
            identity: {
              issuer: key.sigstore.issuer,
              ...(key.sigstore.subject !== undefined ? { subject: key.sigstore.subject } : {}),
              ...(key.sigstore.subjectRegExp !== undefined ? { subjectRegExp: key.sigstore.subjectRegExp } : {}),
            },
          }
        : { key, ...(key.tlog !== undefined ? { trustedRoot: evidenceRoot(key.tlog) } : {}) }),
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
