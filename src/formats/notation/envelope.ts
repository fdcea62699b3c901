/**
 * The Notary Project signature envelope, read from either serialisation (JWS or COSE_Sign1) into one
 * shape that the checks in checks.ts work on. Nothing here is trusted: the parsers only decode strictly
 * and keep the exact bytes the signature covers (`signingInput`).
 */
import { SignetError } from '../../errors.js';

export const NOTATION_PAYLOAD_CONTENT_TYPE = 'application/vnd.cncf.notary.payload.v1+json';
export const JWS_MEDIA_TYPE = 'application/jose+json';
export const COSE_MEDIA_TYPE = 'application/cose';
export type NotationEnvelopeMediaType = typeof JWS_MEDIA_TYPE | typeof COSE_MEDIA_TYPE;

export type SigningScheme = 'notary.x509' | 'notary.x509.signingAuthority';
export const SIGNING_SCHEMES: readonly SigningScheme[] = ['notary.x509', 'notary.x509.signingAuthority'];

/** The signature algorithms the Notary Project allows, by their JWS names. */
export type NotationAlgorithm = 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';

/** Extended (notary) protected header attributes. */
export const HDR_SIGNING_SCHEME = 'io.cncf.notary.signingScheme';
export const HDR_SIGNING_TIME = 'io.cncf.notary.signingTime';
export const HDR_AUTHENTIC_SIGNING_TIME = 'io.cncf.notary.authenticSigningTime';
export const HDR_EXPIRY = 'io.cncf.notary.expiry';
export const HDR_VERIFICATION_PLUGIN = 'io.cncf.notary.verificationPlugin';
export const HDR_VERIFICATION_PLUGIN_MIN_VERSION = 'io.cncf.notary.verificationPluginMinVersion';
/** Unprotected header attributes. */
export const HDR_SIGNING_AGENT = 'io.cncf.notary.signingAgent';
export const HDR_TIMESTAMP_SIGNATURE = 'io.cncf.notary.timestampSignature';

/** Envelopes larger than this are refused before decoding. */
export const MAX_NOTATION_ENVELOPE_BYTES = 4 * 1024 * 1024;
/** Longer x5c chains are treated as hostile. */
export const MAX_CHAIN_LENGTH = 10;

/** A decoded envelope, nothing about it checked yet. */
export interface UntrustedNotationEnvelope {
  envelopeMediaType: NotationEnvelopeMediaType;
  alg: NotationAlgorithm;
  contentType: string;
  /** The `crit` list, as strings (COSE integer labels as their decimal text). */
  critical: string[];
  /** Every protected header name present (COSE integer labels as their decimal text). */
  protectedHeaderNames: string[];
  signingScheme: string;
  signingTime?: Date;
  authenticSigningTime?: Date;
  expiry?: Date;
  verificationPlugin?: string;
  /** The exact bytes the signature is over (JWS signing input, COSE Sig_structure). */
  signingInput: Buffer;
  /** Raw signature: RSASSA-PSS bytes, or ECDSA r||s (both formats carry it raw). */
  untrustedSignature: Buffer;
  untrustedPayload: Buffer;
  /** DER certificates, leaf first. */
  untrustedCertificateChain: Buffer[];
  signingAgent?: string;
  /** An RFC 3161 countersignature is present (verified when the key has timestamp-authority certificates). */
  hasTimestampSignature: boolean;
  /** The countersignature: a DER TimeStampToken over the signature value, unchecked. */
  untrustedTimestampSignature?: Buffer;
}

export function malformed(what: string): SignetError {
  return new SignetError('SIGNATURE_MALFORMED', `notation ${what}`);
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 date-time (as JWS headers carry times), strictly. */
export function parseRfc3339(untrusted: unknown, where: string): Date {
  if (typeof untrusted !== 'string' || !RFC3339.test(untrusted)) throw malformed(`${where} is not an RFC 3339 time`);
  const date = new Date(untrusted);
  if (Number.isNaN(date.getTime())) throw malformed(`${where} is not a valid time`);
  return date;
}
