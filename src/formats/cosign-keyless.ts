/**
 * Cosign v2 keyless `.sig` signatures (and any cosign signature carrying a certificate), verified with
 * the sigstore project's own packages. Besides `dev.cosignproject.cosign/signature`, a keyless layer
 * carries annotations:
 *
 *   dev.sigstore.cosign/certificate  the Fulcio leaf certificate, PEM
 *   dev.sigstore.cosign/chain        intermediates and root, PEM (not trusted: the trusted root is)
 *   dev.sigstore.cosign/bundle       the Rekor record: {"SignedEntryTimestamp": base64,
 *                                    "Payload": {"body": base64, "integratedTime", "logIndex", "logID": hex}}
 *   dev.sigstore.cosign/timestamp    optionally {"SignedRFC3161Timestamp": base64}
 *
 * The layer maps onto a sigstore message-signature bundle (v0.1: an inclusion promise, no proof) over
 * the payload bytes, with the Rekor record as a hashedrekord tlog entry, so @sigstore/verify checks the
 * certificate chain to a Fulcio CA of the trusted root at the time the log (or a timestamp authority)
 * vouches for, the signed entry timestamp with a log key of the trusted root, the entry's body against
 * this signature and payload digest, and the signature itself; the timestamp annotation becomes the
 * bundle's RFC 3161 timestamp, read and checked as a bundle's is (./sigstore-timestamp.ts: strictly, its
 * embedded certificates the trusted root's). The body's certificate is then compared with the
 * annotation's here (the library compares only signature and digest), and the certificate's identity
 * against the key's.
 */
import { createHash } from 'node:crypto';
import { SignetError } from '../errors.js';
import type { SigstoreIdentity } from '../keys/types.js';
import { base64Field, COSIGN_BUNDLE_ANNOTATION, malformed, parseRekorRecord, pemCertificatesDer, readBody, singleCertificateDer } from './cosign-certs.js';
import { isPlainObject, parseStrictJson } from './strict-json.js';
import { verifySigstoreBundle } from './sigstore-bundle.js';

export const COSIGN_CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const COSIGN_CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
export { COSIGN_BUNDLE_ANNOTATION };
export const COSIGN_TIMESTAMP_ANNOTATION = 'dev.sigstore.cosign/timestamp';

/** Every CA certificate (DER) the trusted root lists. */
function trustedCaCertificates(trustedRoot: unknown): Buffer[] {
  const out: Buffer[] = [];
  const cas = isPlainObject(trustedRoot) && Array.isArray(trustedRoot['certificateAuthorities']) ? (trustedRoot['certificateAuthorities'] as unknown[]) : [];
  for (const ca of cas) {
    const chain =
      isPlainObject(ca) && isPlainObject(ca['certChain']) && Array.isArray(ca['certChain']['certificates'])
        ? (ca['certChain']['certificates'] as unknown[])
        : [];
    for (const c of chain) if (isPlainObject(c) && typeof c['rawBytes'] === 'string') out.push(Buffer.from(c['rawBytes'], 'base64'));
  }
  return out;
}

/**
 * The chain annotation is not what the chain is checked against (the trusted root is), but it is part
 * of the signature as stored: every certificate in it must be one of the trusted root's CA certificates,
 * so a chain that was altered or names another CA is refused rather than ignored.
 */
function checkChainAnnotation(chainPem: string | undefined, trustedRoot: unknown): void {
  if (chainPem === undefined || chainPem === '') return;
  const trusted = trustedCaCertificates(trustedRoot);
  for (const [i, der] of pemCertificatesDer(chainPem, COSIGN_CHAIN_ANNOTATION).entries()) {
    if (!trusted.some((t) => t.equals(der)))
      throw new SignetError(
        'CERTIFICATE_INVALID',
        `cosign keyless signature: certificate ${i} of ${COSIGN_CHAIN_ANNOTATION} is not a CA certificate of the trusted root`,
      );
  }
}

/** The message-signature bundle (v0.1 JSON) a keyless cosign layer stands for. */
export function cosignLayerToBundle(
  untrustedPayload: Buffer,
  untrustedSignature: Buffer,
  annotations: Record<string, string>,
): { bundle: Buffer; certificateDer: Buffer; bodyCertificateDer?: Buffer; timestamp?: Buffer } {
  const certPem = annotations[COSIGN_CERTIFICATE_ANNOTATION];
  if (certPem === undefined || certPem === '') return malformed(`no ${COSIGN_CERTIFICATE_ANNOTATION} annotation (a signature by a key, not keyless)`);
  const certificateDer = singleCertificateDer(certPem, COSIGN_CERTIFICATE_ANNOTATION);
  const recordText = annotations[COSIGN_BUNDLE_ANNOTATION];
  if (recordText === undefined || recordText === '')
    return malformed(`no ${COSIGN_BUNDLE_ANNOTATION} annotation: no transparency-log record vouches for when the certificate was used`);
  const record = parseRekorRecord(recordText);
  const body = readBody(record.body);
  let timestamps: Array<{ signedTimestamp: string }> = [];
  let timestampDer: Buffer | undefined;
  const ts = annotations[COSIGN_TIMESTAMP_ANNOTATION];
  if (ts !== undefined && ts !== '') {
    const doc = parseStrictJson(ts, COSIGN_TIMESTAMP_ANNOTATION, 'SIGNATURE_MALFORMED');
    if (!isPlainObject(doc)) malformed(`${COSIGN_TIMESTAMP_ANNOTATION} is not a JSON object`);
    timestampDer = base64Field((doc as Record<string, unknown>)['SignedRFC3161Timestamp'], `${COSIGN_TIMESTAMP_ANNOTATION} SignedRFC3161Timestamp`);
    timestamps = [{ signedTimestamp: timestampDer.toString('base64') }];
  }
  const bundle = {
    mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
    verificationMaterial: {
      x509CertificateChain: { certificates: [{ rawBytes: certificateDer.toString('base64') }] },
      tlogEntries: [
        {
          logIndex: String(record.logIndex),
          logId: { keyId: record.logId.toString('base64') },
          kindVersion: { kind: body.kind, version: body.apiVersion },
          integratedTime: String(record.integratedTime),
          inclusionPromise: { signedEntryTimestamp: record.set.toString('base64') },
          canonicalizedBody: record.body.toString('base64'),
        },
      ],
      ...(timestamps.length > 0 ? { timestampVerificationData: { rfc3161Timestamps: timestamps } } : {}),
    },
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(untrustedPayload).digest('base64') },
      signature: untrustedSignature.toString('base64'),
    },
  };
  return {
    bundle: Buffer.from(JSON.stringify(bundle)),
    certificateDer,
    ...(body.certificateDer !== undefined ? { bodyCertificateDer: body.certificateDer } : {}),
    ...(timestampDer !== undefined ? { timestamp: timestampDer } : {}),
  };
}

export type KeylessCheck = { valid: true; issuer: string; subject: string } | { valid: false; code: SignetError['code']; reason: string };

/**
 * Authenticity of a keyless cosign layer: everything but the payload's claims (the caller parses the
 * simple-signing payload, now authentic, and compares its digest).
 */
export async function verifyCosignKeyless(
  untrustedPayload: Buffer,
  untrustedSignature: Buffer,
  annotations: Record<string, string>,
  trustedRoot: unknown,
  identity: SigstoreIdentity,
): Promise<KeylessCheck> {
  let mapped;
  try {
    mapped = cosignLayerToBundle(untrustedPayload, untrustedSignature, annotations);
    checkChainAnnotation(annotations[COSIGN_CHAIN_ANNOTATION], trustedRoot);
  } catch (err) {
    if (err instanceof SignetError) return { valid: false, code: err.code, reason: err.message };
    throw err;
  }
  const r = await verifySigstoreBundle({
    untrustedBundle: mapped.bundle,
    expectedDigest: `sha256:${createHash('sha256').update(untrustedPayload).digest('hex')}`,
    artifact: untrustedPayload,
    trustedRoot,
    identity: {
      issuer: identity.issuer,
      ...(identity.subject !== undefined ? { subject: identity.subject } : {}),
      ...(identity.subjectRegExp !== undefined ? { subjectRegExp: identity.subjectRegExp } : {}),
    },
  });
  if (!r.valid) {
    // The annotation is the bundle's only RFC 3161 timestamp: name it as the signature carries it.
    const reason = r.reason.replace(/^sigstore bundle's RFC 3161 timestamp 0\b/, `cosign keyless signature's ${COSIGN_TIMESTAMP_ANNOTATION}`);
    return { valid: false, code: r.code, reason: reason.replace(/^sigstore bundle/, 'cosign keyless signature') };
  }
  // The log vouched for this signature and digest; it must also have logged this certificate.
  if (mapped.bodyCertificateDer === undefined || !mapped.bodyCertificateDer.equals(mapped.certificateDer)) {
    return { valid: false, code: 'SIGNATURE_INVALID', reason: "cosign keyless signature: the Rekor entry does not hold the signature's certificate" };
  }
  return { valid: true, issuer: r.signer.issuer ?? '', subject: r.signer.subject ?? '' };
}
