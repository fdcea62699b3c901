/**
 * Pure verification of one Notary Project signature envelope (JWS or COSE) against a trust store:
 * bytes, certificates and a policy in, a result out — no I/O. Runs the specification's steps in order:
 * integrity (envelope, content type, critical headers, algorithm, signature, payload target),
 * authenticity (certificate requirements, chain, trust store, trusted identities), expiry, trusted
 * timestamp. Revocation (OCSP/CRL) needs the network and is not checked here.
 */
import type { X509Certificate } from 'node:crypto';
import { RFC3161Timestamp, X509Certificate as SigstoreX509 } from '@sigstore/core';
import { verifyRFC3161Timestamp } from '@sigstore/verify/dist/timestamp/tsa.js';
import { SignetError, type ErrorCode } from '../../errors.js';
import type { ExpectedSubject } from '../types.js';
import {
  checkAlgorithmMatchesKey,
  checkCertificateRequirements,
  checkChainLinks,
  checkContentType,
  checkCriticalHeaders,
  checkExpiry,
  checkIntegrity,
  checkSigningScheme,
  checkTargetArtifact,
  checkTrustedIdentity,
  checkTrustStore,
  checkValidityAt,
  parseCertificate,
  trustedTimeFor,
} from './checks.js';
import { parseCoseEnvelope } from './cose.js';
import { formatDn } from './dn.js';
import { COSE_MEDIA_TYPE, JWS_MEDIA_TYPE, malformed, type NotationEnvelopeMediaType, type SigningScheme, type UntrustedNotationEnvelope } from './envelope.js';
import { parseJwsEnvelope } from './jws.js';

export interface NotationVerifyOptions {
  untrustedEnvelope: Buffer;
  envelopeMediaType: NotationEnvelopeMediaType | string;
  /** The image descriptor the signature must be about (its payload's targetArtifact). */
  expected: ExpectedSubject;
  /** The policy's trust-store certificates (roots or intermediates the chain must lead to). */
  trustStore: readonly X509Certificate[];
  /** `x509.subject: C=…, ST=…, O=…` entries or `*`; undefined = no identity rule. */
  trustedIdentities?: readonly string[];
  /** When set, only this signing scheme is accepted. */
  signingScheme?: SigningScheme;
  /** The verification time (tests); defaults to the current time. */
  now?: Date;
  /**
   * Timestamp-authority certificates (each TSA's signing certificate first, then its chain): with them,
   * an RFC 3161 countersignature is verified and its time is when a notary.x509 chain must be valid.
   */
  tsaCertificates?: readonly X509Certificate[];
}

export interface NotationSigner {
  /** The signing certificate's subject DN, `C=US, ST=WA, L=Seattle, O=Notary, CN=alpine`. */
  subject: string;
  /** `sha256:<hex>` of the signing certificate (DER). */
  fingerprint: string;
}

export type NotationVerifyResult =
  | {
      valid: true;
      envelopeMediaType: NotationEnvelopeMediaType;
      signingScheme: SigningScheme;
      /** notary.x509: the signer's claimed signing time; signingAuthority: the authentic signing time. */
      signingTime: Date;
      expiry?: Date;
      signer: NotationSigner;
      trustAnchor: NotationSigner;
      signingAgent?: string;
      /** The targetArtifact's annotations, now trusted as signed. */
      annotations: Record<string, string>;
    }
  | { valid: false; code: ErrorCode; reason: string };

export function parseNotationEnvelope(untrustedEnvelope: Buffer, envelopeMediaType: string): UntrustedNotationEnvelope {
  if (envelopeMediaType === JWS_MEDIA_TYPE) return parseJwsEnvelope(untrustedEnvelope);
  if (envelopeMediaType === COSE_MEDIA_TYPE) return parseCoseEnvelope(untrustedEnvelope);
  throw malformed(`envelope media type ${JSON.stringify(envelopeMediaType)} is not ${JWS_MEDIA_TYPE} or ${COSE_MEDIA_TYPE}`);
}

export async function verifyNotationSignature(options: NotationVerifyOptions): Promise<NotationVerifyResult> {
  try {
    return verifyOrThrow(options);
  } catch (err) {
    if (err instanceof SignetError) return { valid: false, code: err.code, reason: err.message };
    return { valid: false, code: 'SIGNATURE_MALFORMED', reason: `notation envelope could not be checked: ${(err as Error).message}` };
  }
}

/** DER length octets. */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/**
 * The Notary Project's timestamp countersignature: a TimeStampToken over the signature value, verified
 * with the sigstore project's RFC 3161 code against the key's timestamp-authority certificates (its
 * chain valid at the timestamp's time). Its time is then when the chain must have been valid.
 */
function verifyCountersignature(env: UntrustedNotationEnvelope, tsaCertificates: readonly X509Certificate[]): { at: Date; what: string } {
  const token = env.untrustedTimestampSignature!;
  // @sigstore/core reads a TimeStampResp: wrap the token with a granted status.
  const body = Buffer.concat([Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), token]);
  let timestamp: RFC3161Timestamp;
  try {
    timestamp = RFC3161Timestamp.parse(Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]) as Buffer<ArrayBuffer>);
    void timestamp.signingTime;
  } catch (err) {
    throw malformed(`the RFC 3161 timestamp countersignature cannot be read: ${(err as Error).message}`);
  }
  const certChain = tsaCertificates.map((c) => SigstoreX509.parse(Buffer.from(c.raw) as Buffer<ArrayBuffer>));
  try {
    verifyRFC3161Timestamp(timestamp, env.untrustedSignature, [{ certChain, validFor: { start: new Date(0), end: new Date(8.64e15) } }]);
  } catch (err) {
    throw new SignetError(
      'SIGNATURE_INVALID',
      `the RFC 3161 timestamp countersignature does not verify with the timestamp-authority certificates: ${(err as Error).message}`,
    );
  }
  return { at: timestamp.signingTime, what: `the time of the RFC 3161 timestamp (${timestamp.signingTime.toISOString()})` };
}

function verifyOrThrow(options: NotationVerifyOptions): NotationVerifyResult {
  const now = options.now ?? new Date();
  // Integrity.
  const env = parseNotationEnvelope(options.untrustedEnvelope, options.envelopeMediaType);
  checkContentType(env);
  checkCriticalHeaders(env);
  const scheme = checkSigningScheme(env, options.signingScheme);
  const chain = env.untrustedCertificateChain.map((der, i) => parseCertificate(der, `certificate ${i} of the chain`));
  const leaf = chain[0]!;
  checkAlgorithmMatchesKey(env, leaf);
  checkIntegrity(env, leaf);
  // The envelope is authentic to the leaf's key from here on.
  const annotations = checkTargetArtifact(env.untrustedPayload, options.expected);
  // Authenticity.
  checkCertificateRequirements(chain);
  checkChainLinks(chain);
  const trustStore = options.trustStore.map((c, i) => parseCertificate(Buffer.from(c.raw), `trust-store certificate ${i}`));
  const { anchor, path } = checkTrustStore(chain, trustStore);
  const signingTime = scheme === 'notary.x509' ? env.signingTime! : env.authenticSigningTime!;
  checkValidityAt([leaf], signingTime, 'the signing time');
  checkTrustedIdentity(leaf, options.trustedIdentities);
  // Expiry.
  checkExpiry(env, now);
  // Trusted timestamp: a verified RFC 3161 countersignature, else as trustedTimeFor says.
  const stamped =
    scheme === 'notary.x509' && env.untrustedTimestampSignature !== undefined && (options.tsaCertificates?.length ?? 0) > 0
      ? verifyCountersignature(env, options.tsaCertificates!)
      : undefined;
  const trusted = stamped ?? trustedTimeFor(env, scheme, now);
  checkValidityAt(path, trusted.at, trusted.what);
  return {
    valid: true,
    envelopeMediaType: env.envelopeMediaType,
    signingScheme: scheme,
    signingTime,
    ...(env.expiry !== undefined ? { expiry: env.expiry } : {}),
    signer: { subject: formatDn(leaf.subject), fingerprint: leaf.fingerprint },
    trustAnchor: { subject: formatDn(anchor.subject), fingerprint: anchor.fingerprint },
    ...(env.signingAgent !== undefined ? { signingAgent: env.signingAgent } : {}),
    annotations,
  };
}
