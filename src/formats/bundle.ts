/**
 * Sigstore bundles (cosign v3 image signatures, stored as OCI 1.1 referrers): parsed and validated with
 * the sigstore project's own @sigstore/bundle, then verified against a policy key — a PEM key or an HSM
 * key through TrustedKey, so `verifyOn: token` works here too. For an image, the bundle's DSSE envelope
 * carries an in-toto statement of predicate type https://sigstore.dev/cosign/sign/v1 whose subject must
 * include the image digest.
 *
 * Keyless bundles (Fulcio certificates) are verified with the sigstore project's @sigstore/verify against
 * a trusted root named by a `sigstore` key (offline), including the transparency-log evidence, and the
 * certificate's issuer and subject. Key-based bundles are checked against the policy key; their
 * transparency-log entries are not required (the key is the trust).
 */
import { createHash } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { toSignedEntity, Verifier, type TrustMaterial } from '@sigstore/verify';
import { SignetError } from '../errors.js';
import type { TrustedKey } from '../keys/types.js';
import { checkEnvelope, INTOTO_PAYLOAD_TYPE } from './dsse.js';
import { parseStatement, statementCoversDigest } from './intoto.js';
import { parseStrictJson } from './strict-json.js';
import type { ExpectedSubject, SignatureCheck, SignatureFormat, UntrustedSignature } from './types.js';

export const SIGSTORE_BUNDLE_MEDIA_TYPES = [
  'application/vnd.dev.sigstore.bundle.v0.3+json',
  'application/vnd.dev.sigstore.bundle+json;version=0.3',
  'application/vnd.dev.sigstore.bundle+json;version=0.2',
  'application/vnd.dev.sigstore.bundle+json;version=0.1',
];
export const COSIGN_SIGN_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1';
const MAX_BUNDLE_BYTES = 1024 * 1024;

/** Parse strictly (duplicate keys), then let @sigstore/bundle validate the structure. */
export function parseBundle(untrustedBytes: Buffer): Bundle {
  const json = parseStrictJson(untrustedBytes.toString('utf8'), 'sigstore bundle', 'SIGNATURE_MALFORMED', MAX_BUNDLE_BYTES);
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (err) {
    throw new SignetError('SIGNATURE_MALFORMED', `sigstore bundle is invalid: ${(err as Error).message}`);
  }
  if (!SIGSTORE_BUNDLE_MEDIA_TYPES.includes(bundle.mediaType)) throw new SignetError('SIGNATURE_MALFORMED', `sigstore bundle has media type ${JSON.stringify(bundle.mediaType)}`);
  return bundle;
}

const isKeyless = (bundle: Bundle) => bundle.verificationMaterial.content.$case !== 'publicKey';

function keylessReason(bundle: Bundle, key: TrustedKey): string | undefined {
  const keyless = isKeyless(bundle);
  if (keyless && key.sigstore === undefined) return `keyless sigstore bundle: key "${key.name}" is a public key; keyless signers are trusted through a sigstore key (trustedRoot, issuer, subject)`;
  if (!keyless && key.sigstore !== undefined) return `key-based sigstore bundle: key "${key.name}" trusts keyless signers only`;
  return undefined;
}

/**
 * Keyless: @sigstore/verify checks the certificate chain up to a Fulcio CA of the trusted root at the
 * time the transparency log (or a timestamp authority) vouches for, the log entry against the bundle and
 * its signed inclusion promise or proof, the signature, and the issuer and subject of the certificate.
 */
function verifyKeyless(bundle: Bundle, key: TrustedKey): SignatureCheck | undefined {
  const trust = key.sigstore!;
  let signer;
  try {
    const verifier = new Verifier(trust.trustMaterial as TrustMaterial, { tlogThreshold: 1, ctlogThreshold: trust.ctlogCount > 0 ? 1 : 0, timestampThreshold: 1 });
    signer = verifier.verify(toSignedEntity(bundle), { extensions: { issuer: trust.issuer }, ...(trust.subject !== undefined ? { subjectAlternativeName: trust.subject } : {}) });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const code = e.code === 'UNTRUSTED_SIGNER_ERROR' ? 'IDENTITY_MISMATCH' : 'SIGNATURE_INVALID';
    return { valid: false, code, reason: `keyless sigstore bundle refused by key "${key.name}": ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}` };
  }
  const san = signer.identity?.subjectAlternativeName ?? '';
  if (trust.subjectRegExp !== undefined && !trust.subjectRegExp.test(san)) {
    return { valid: false, code: 'IDENTITY_MISMATCH', reason: `keyless signer "${san}" does not match the subjectRegExp of key "${key.name}"` };
  }
  return undefined;
}

/** Check the signature of a bundle's DSSE envelope with `key`, then the statement it carries. */
async function verifyDsseBundle(bundle: Bundle, key: TrustedKey, expectedDigest: string): Promise<SignatureCheck> {
  if (bundle.content.$case !== 'dsseEnvelope') return { valid: false, code: 'SIGNATURE_MALFORMED', reason: 'a message-signature bundle signs a blob, not an image; image bundles carry a DSSE envelope' };
  const env = bundle.content.dsseEnvelope;
  if (isKeyless(bundle)) {
    const refusal = verifyKeyless(bundle, key);
    if (refusal) return refusal;
  } else {
    const check = await checkEnvelope({ payloadType: env.payloadType, untrustedPayload: env.payload, signatures: env.signatures.map((s) => ({ keyid: s.keyid, untrustedSig: s.sig })) }, key);
    if (!check.verified) return { valid: false, code: 'SIGNATURE_INVALID', reason: `sigstore bundle does not verify with key "${key.name}" (signed by another key, or the payload was altered)` };
  }
  // Authentic from here on.
  if (env.payloadType !== INTOTO_PAYLOAD_TYPE) return { valid: false, code: 'SIGNATURE_MALFORMED', reason: `sigstore bundle payload type is ${JSON.stringify(env.payloadType)}, not ${INTOTO_PAYLOAD_TYPE}` };
  let statement;
  try {
    statement = parseStatement(env.payload);
  } catch (err) {
    return { valid: false, code: 'SIGNATURE_MALFORMED', reason: (err as Error).message };
  }
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE_TYPE) return { valid: false, code: 'SIGNATURE_MALFORMED', reason: `bundle by key "${key.name}" is a ${statement.predicateType} statement, not an image signature (${COSIGN_SIGN_PREDICATE_TYPE})` };
  if (!statementCoversDigest(statement, expectedDigest)) return { valid: false, code: 'DIGEST_MISMATCH', reason: `bundle by key "${key.name}" is not about ${expectedDigest}` };
  const name = statement.subject.find((s) => s.digest['sha256'] === expectedDigest.replace(/^sha256:/, ''))?.name ?? '';
  return { valid: true, signedIdentity: name, signedDigest: expectedDigest, annotations: {} };
}

export const sigstoreBundleFormat: SignatureFormat = {
  name: 'sigstore-bundle',
  async verify(signature: UntrustedSignature, key: TrustedKey, expected: ExpectedSubject): Promise<SignatureCheck> {
    let bundle: Bundle;
    try {
      bundle = parseBundle(signature.untrustedPayload);
    } catch (err) {
      return { valid: false, code: 'SIGNATURE_MALFORMED', reason: (err as Error).message };
    }
    const mismatch = keylessReason(bundle, key);
    if (mismatch) return { valid: false, code: 'SIGNATURE_INVALID', reason: mismatch };
    return verifyDsseBundle(bundle, key, expected.digest);
  },
};

/**
 * A message-signature bundle over a blob (`cosign sign-blob`): the message digest must be the blob's
 * SHA-256 and the signature must verify over the blob with `key`.
 */
export async function verifyBlobBundle(untrustedBytes: Buffer, blob: Buffer, key: TrustedKey): Promise<SignatureCheck> {
  let bundle: Bundle;
  try {
    bundle = parseBundle(untrustedBytes);
  } catch (err) {
    return { valid: false, code: 'SIGNATURE_MALFORMED', reason: (err as Error).message };
  }
  const mismatch = keylessReason(bundle, key);
  if (mismatch) return { valid: false, code: 'SIGNATURE_INVALID', reason: mismatch };
  if (isKeyless(bundle) && bundle.content.$case !== 'dsseEnvelope') return { valid: false, code: 'SIGNATURE_MALFORMED', reason: 'keyless message-signature bundles are not supported' };
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  if (bundle.content.$case === 'dsseEnvelope') return verifyDsseBundle(bundle, key, digest);
  const m = bundle.content.messageSignature;
  if (m.messageDigest !== undefined && !m.messageDigest.digest.equals(createHash('sha256').update(blob).digest())) {
    return { valid: false, code: 'DIGEST_MISMATCH', reason: 'the bundle signs another blob' };
  }
  const ok = await key.verify(blob, m.signature, 'sha256');
  return ok ? { valid: true, signedIdentity: '', signedDigest: digest, annotations: {} } : { valid: false, code: 'SIGNATURE_INVALID', reason: `sigstore bundle does not verify with key "${key.name}"` };
}
