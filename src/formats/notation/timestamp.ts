/**
 * The Notary Project's timestamp countersignature (`io.cncf.notary.timestampSignature`): an RFC 3161
 * TimeStampToken over the signature value, checked as trust-store-trust-policy.md "Validate Trusted
 * Timestamp" says — message imprint over the signature value (SHA-256/384/512), the authority's signing
 * certificate meeting the timestamping certificate requirements of signature-specification.md (extended
 * key usage timeStamping only, critical), an allowed signing algorithm, the signing-certificate(-v2)
 * attribute naming that certificate, its chain leading to a timestamp authority the key trusts (its
 * signing certificate and chain, or only its roots, the token's certificates then leading to one) — and
 * the time range genTime ± accuracy that the signing chain must then cover.
 *
 * The token is read strictly by the reader every format shares (../rfc3161/token.ts); its signature,
 * message imprint and chain (valid at the timestamp's time, as notation-go checks it) are verified by the
 * sigstore project's RFC 3161 code, the one sigstore bundles and cosign keyless timestamps go through;
 * the checks here are what the Notary Project adds.
 */
import { createHash, X509Certificate as NodeX509 } from 'node:crypto';
import { X509Certificate as SigstoreX509 } from '@sigstore/core';
import { verifyRFC3161Timestamp } from '@sigstore/verify/dist/timestamp/tsa.js';
import { SignetError } from '../../errors.js';
import type { TimestampAuthority } from '../../keys/types.js';
import { checkKeyStrength, describeCert, parseCertificate, type ParsedCertificate } from './checks.js';
import { ECDSA_SHA2_OIDS, readTimestampToken, RSA_PKCS1_OIDS, type TimestampToken } from '../rfc3161/token.js';

const OID_EKU = '2.5.29.37';
const OID_TIME_STAMPING = '1.3.6.1.5.5.7.3.8';
/** ETSI baseline time-stamp policy (RFC 3628): an accuracy of one second when the token states none. */
const OID_BASELINE_TIMESTAMP_POLICY = '0.4.0.2023.1.1';
const WHAT = 'the RFC 3161 timestamp countersignature';

/** A verified timestamp: the TSA vouches that the signature existed at some time in [lower, upper]. */
export interface TrustedTimestamp {
  genTime: Date;
  lower: Date;
  upper: Date;
  /** The authority's signing certificate and where the key found it. */
  authority: string;
}

function invalid(what: string): SignetError {
  return new SignetError('SIGNATURE_INVALID', `${WHAT} ${what}`);
}

/**
 * What the Notary Project asks of the token itself: TSTInfo version 1; a signature algorithm it allows
 * (ECDSA, RSA PKCS #1 v1.5 — the shared reader has refused what cannot be verified); and the time range
 * genTime ± accuracy, in milliseconds.
 */
function checkNotaryToken(token: TimestampToken): number {
  if (token.version !== 1n) throw invalid(`has TSTInfo version ${token.version}, not 1`);
  if (!RSA_PKCS1_OIDS.has(token.signatureAlgorithm) && !ECDSA_SHA2_OIDS.has(token.signatureAlgorithm))
    throw invalid(`is signed with ${token.signatureAlgorithm}; the Notary Project allows ECDSA and RSA (this verifier: RSA PKCS #1 v1.5)`);
  if (token.accuracyMs !== undefined && token.accuracyMs < 0) throw invalid('states a negative accuracy');
  // No (or a zero) accuracy under the baseline policy means one second (as notation-go reads it).
  if ((token.accuracyMs ?? 0) === 0 && token.policy === OID_BASELINE_TIMESTAMP_POLICY) return 1000;
  return token.accuracyMs ?? 0;
}

/**
 * Timestamping certificate requirements (signature-specification.md): the signing certificate has
 * keyUsage digitalSignature and no certificate or CRL signing, is not a CA, has one critical extended
 * key usage extension naming timeStamping only, and a strong enough key; its issuers are CAs.
 */
function checkTimestampingCertificates(chain: ParsedCertificate[]): void {
  const [leaf, ...cas] = chain;
  if (leaf === undefined) throw invalid('names no signing certificate');
  const ku = leaf.asn1.extKeyUsage;
  if (ku === undefined || !ku.digitalSignature) throw invalid(`is signed by ${describeCert(leaf)}, which lacks the digitalSignature key usage`);
  if (ku.keyCertSign || ku.crlSign) throw invalid(`is signed by ${describeCert(leaf)}, which may sign certificates or CRLs`);
  if (leaf.asn1.extBasicConstraints?.isCA === true) throw invalid(`is signed by ${describeCert(leaf)}, a CA certificate`);
  const eku = leaf.asn1.extension(OID_EKU);
  const purposes = eku?.valueObj.subs[0]?.subs.map((s) => s.toOID()) ?? [];
  if (eku === undefined || !eku.critical || purposes.length !== 1 || purposes[0] !== OID_TIME_STAMPING)
    throw invalid(`is signed by ${describeCert(leaf)}, whose extended key usage is not timeStamping alone, marked critical (RFC 3161 2.3)`);
  checkKeyStrength(leaf);
  for (const ca of cas) {
    if (ca.asn1.extBasicConstraints?.isCA !== true) throw invalid(`chain has ${describeCert(ca)}, which issues another but is not a CA`);
    if (ca.asn1.extKeyUsage !== undefined && !ca.asn1.extKeyUsage.keyCertSign)
      throw invalid(`chain has CA certificate ${describeCert(ca)} without the keyCertSign key usage`);
  }
}

/** The ESS signing-certificate-v2 (or v1) signed attribute names the certificate that signed (RFC 5035, RFC 2634). */
function checkSigningCertificateAttribute(token: TimestampToken, signer: ParsedCertificate): void {
  const attribute = token.signingCertificate;
  if (attribute.kind === 'absent') throw invalid('has no signing-certificate-v2 (or signing-certificate) signed attribute');
  if (attribute.kind === 'malformed') throw invalid(`has a signing-certificate attribute that is not a list of certificate hashes: ${attribute.why}`);
  if (!createHash(attribute.hash).update(signer.der).digest().equals(attribute.certHash))
    throw invalid(`signing-certificate attribute does not name ${describeCert(signer)}, the certificate that signed it`);
}

/** A TimestampAuthority as @sigstore/verify's RFC 3161 code takes it. */
function toCertAuthority(tsa: TimestampAuthority) {
  return {
    certChain: tsa.certChain.map((c) => SigstoreX509.parse(Buffer.from(c.raw) as Buffer<ArrayBuffer>)),
    validFor: { start: tsa.validFor?.start ?? new Date(0), end: tsa.validFor?.end ?? new Date(8.64e15) },
  };
}

/**
 * An authority given by CA certificates only (TSA roots, as a Notation `tsa` trust store holds them, so
 * that a yearly new signing certificate needs no policy change): its signing certificate and
 * intermediates come from the token — the certificate the SignerInfo names, then issuers among the
 * embedded ones — up to one of its roots. Undefined when the token's certificates lead to none of them.
 */
function chainFromToken(tsa: TimestampAuthority, embedded: NodeX509[], token: TimestampToken): TimestampAuthority | undefined {
  const issued = (cert: NodeX509, by: NodeX509) => {
    try {
      return cert.checkIssued(by) && cert.verify(by.publicKey);
    } catch {
      return false;
    }
  };
  const signer = embedded.find((c) => {
    const parsed = SigstoreX509.parse(Buffer.from(c.raw) as Buffer<ArrayBuffer>);
    return parsed.serialNumber.equals(token.signer.serialNumber) && parsed.issuer.equals(token.signer.issuer);
  });
  if (signer === undefined) return undefined;
  const path = [signer];
  for (let cur = signer; path.length <= 10;) {
    const root = tsa.certChain.find((a) => issued(cur, a));
    if (root !== undefined) return { ...tsa, certChain: [...path, root], source: `${tsa.source} (its signing certificate from the token)` };
    const next = embedded.find((c) => !path.includes(c) && c.ca && issued(cur, c));
    if (next === undefined) return undefined;
    path.push(next);
    cur = next;
  }
  return undefined;
}

/** Verify the countersignature over `untrustedSignature` with the authorities a key trusts. */
export function verifyTimestampCountersignature(
  untrustedToken: Buffer,
  untrustedSignature: Buffer,
  authorities: readonly TimestampAuthority[],
): TrustedTimestamp {
  const token = readTimestampToken(untrustedToken, WHAT);
  const accuracyMs = checkNotaryToken(token);
  const { genTime, certificates: embedded } = token;
  // The authority whose signing certificate signed this token, valid (with its chain) at its time.
  let embeddedCertificates: NodeX509[];
  try {
    embeddedCertificates = embedded.map((der) => new NodeX509(der));
  } catch (err) {
    throw new SignetError('SIGNATURE_MALFORMED', `${WHAT} embeds a certificate that does not parse: ${(err as Error).message}`);
  }
  const candidates = authorities.flatMap((tsa) => (tsa.certChain.every((c) => c.ca) ? (chainFromToken(tsa, embeddedCertificates, token) ?? []) : [tsa]));
  const matched = candidates.find((tsa) => {
    try {
      verifyRFC3161Timestamp(token.timestamp, untrustedSignature, [toCertAuthority(tsa)]);
      return true;
    } catch {
      return false;
    }
  });
  if (matched === undefined)
    throw invalid(
      `does not verify with the timestamp authorities the key trusts (${authorities.map((a) => a.source).join('; ')}): another authority, other bytes stamped, or altered`,
    );
  const chain = matched.certChain.map((c: NodeX509, i) => parseCertificate(Buffer.from(c.raw), `timestamp-authority certificate ${i}`));
  checkTimestampingCertificates(chain);
  checkSigningCertificateAttribute(token, chain[0]!);
  // The certificates the token carries are not what it is checked against (the key's authorities are),
  // but they are part of it: each must be one of the authority's, so that none can be altered unseen.
  for (const [i, der] of embedded.entries()) {
    if (!chain.some((c) => c.der.equals(der))) throw invalid(`carries certificate ${i}, which is not one of the timestamp authority's (${matched.source})`);
  }
  return {
    genTime,
    lower: new Date(genTime.getTime() - accuracyMs),
    upper: new Date(genTime.getTime() + accuracyMs),
    authority: `${describeCert(chain[0]!)} from ${matched.source}`,
  };
}
