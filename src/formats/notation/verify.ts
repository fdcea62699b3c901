/**
 * Pure verification of one Notary Project signature envelope (JWS or COSE) against a trust store:
 * bytes, certificates and a policy in, a result out — no I/O. Runs the specification's steps in order:
 * integrity (envelope, content type, critical headers, algorithm, signature, payload target),
 * authenticity (certificate requirements, chain, trust store, trusted identities), expiry, trusted
 * timestamp. Revocation (OCSP/CRL) needs the network and is not checked here.
 */
import type { X509Certificate } from 'node:crypto';
import { SignetError, type ErrorCode } from '../../errors.js';
import type { TimestampAuthority } from '../../keys/types.js';
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
import { verifyTimestampCountersignature } from './timestamp.js';

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
   * The timestamp authorities the key trusts: with them, an RFC 3161 countersignature is verified and
   * its time range (genTime ± accuracy) is when a notary.x509 chain must be valid.
   */
  timestampAuthorities?: readonly TimestampAuthority[];
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
  // Trusted timestamp: a verified RFC 3161 countersignature, whose whole time range the chain must
  // cover; without one (or without authorities to check it with) as trustedTimeFor says.
  const stamped =
    scheme === 'notary.x509' && env.untrustedTimestampSignature !== undefined && (options.timestampAuthorities?.length ?? 0) > 0
      ? verifyTimestampCountersignature(env.untrustedTimestampSignature, env.untrustedSignature, options.timestampAuthorities!)
      : undefined;
  if (stamped !== undefined) {
    const what = `the RFC 3161 timestamp by ${stamped.authority}, which can be as early as`;
    checkValidityAt(path, stamped.lower, what);
    checkValidityAt(path, stamped.upper, what.replace('early', 'late'));
  } else {
    const trusted = trustedTimeFor(env, scheme, now);
    checkValidityAt(path, trusted.at, trusted.what);
  }
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
