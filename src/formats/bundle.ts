/**
 * Sigstore bundles (cosign v3 image signatures, stored as OCI 1.1 referrers): parsed and validated with
 * the sigstore project's own @sigstore/bundle, then verified against a policy key — a PEM key or an HSM
 * key through TrustedKey, so `verifyOn: token` works here too. For an image, the bundle's DSSE envelope
 * carries an in-toto statement of predicate type https://sigstore.dev/cosign/sign/v1 whose subject must
 * include the image digest.
 *
 * Not verified here (yet): keyless bundles (Fulcio certificates; they need a sigstore trusted root) and
 * transparency-log or timestamp evidence. A keyless bundle is refused with a reason saying so.
 */
import { createHash } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
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

function keylessReason(bundle: Bundle): string | undefined {
  const c = bundle.verificationMaterial.content.$case;
  return c === 'publicKey' ? undefined : `keyless sigstore bundle (${c}): verifying it needs a sigstore trusted root, which this build does not support yet`;
}

/** Check the signature of a bundle's DSSE envelope with `key`, then the statement it carries. */
async function verifyDsseBundle(bundle: Bundle, key: TrustedKey, expectedDigest: string): Promise<SignatureCheck> {
  if (bundle.content.$case !== 'dsseEnvelope') return { valid: false, code: 'SIGNATURE_MALFORMED', reason: 'a message-signature bundle signs a blob, not an image; image bundles carry a DSSE envelope' };
  const env = bundle.content.dsseEnvelope;
  const check = await checkEnvelope({ payloadType: env.payloadType, untrustedPayload: env.payload, signatures: env.signatures.map((s) => ({ keyid: s.keyid, untrustedSig: s.sig })) }, key);
  if (!check.verified) return { valid: false, code: 'SIGNATURE_INVALID', reason: `sigstore bundle does not verify with key "${key.name}" (signed by another key, or the payload was altered)` };
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
    const keyless = keylessReason(bundle);
    if (keyless) return { valid: false, code: 'SIGNATURE_MALFORMED', reason: keyless };
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
  const keyless = keylessReason(bundle);
  if (keyless) return { valid: false, code: 'SIGNATURE_MALFORMED', reason: keyless };
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  if (bundle.content.$case === 'dsseEnvelope') return verifyDsseBundle(bundle, key, digest);
  const m = bundle.content.messageSignature;
  if (m.messageDigest !== undefined && !m.messageDigest.digest.equals(createHash('sha256').update(blob).digest())) {
    return { valid: false, code: 'DIGEST_MISMATCH', reason: 'the bundle signs another blob' };
  }
  const ok = await key.verify(blob, m.signature, 'sha256');
  return ok ? { valid: true, signedIdentity: '', signedDigest: digest, annotations: {} } : { valid: false, code: 'SIGNATURE_INVALID', reason: `sigstore bundle does not verify with key "${key.name}"` };
}
