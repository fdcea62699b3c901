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
 * The token's signature, message imprint and chain (valid at the timestamp's time, as notation-go checks
 * it) are verified by the sigstore project's RFC 3161 code, the one cosign keyless timestamps go
 * through; the checks here are what the Notary Project adds.
 */
import { createHash, X509Certificate as NodeX509 } from 'node:crypto';
import { ASN1Obj, RFC3161Timestamp, X509Certificate as SigstoreX509 } from '@sigstore/core';
import { verifyRFC3161Timestamp } from '@sigstore/verify/dist/timestamp/tsa.js';
import { SignetError } from '../../errors.js';
import type { TimestampAuthority } from '../../keys/types.js';
import { checkKeyStrength, describeCert, parseCertificate, type ParsedCertificate } from './checks.js';
import { signedDataCertificates } from '../sigstore-timestamp.js';
import { malformed } from './envelope.js';

const OID_EKU = '2.5.29.37';
const OID_TIME_STAMPING = '1.3.6.1.5.5.7.3.8';
const OID_SIGNING_CERTIFICATE = '1.2.840.113549.1.9.16.2.12';
const OID_SIGNING_CERTIFICATE_V2 = '1.2.840.113549.1.9.16.2.47';
/** ETSI baseline time-stamp policy (RFC 3628): an accuracy of one second when the token states none. */
const OID_BASELINE_TIMESTAMP_POLICY = '0.4.0.2023.1.1';
const SHA2: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** A verified timestamp: the TSA vouches that the signature existed at some time in [lower, upper]. */
export interface TrustedTimestamp {
  genTime: Date;
  lower: Date;
  upper: Date;
  /** The authority's signing certificate and where the key found it. */
  authority: string;
}

function invalid(what: string): SignetError {
  return new SignetError('SIGNATURE_INVALID', `the RFC 3161 timestamp countersignature ${what}`);
}

/** DER length octets. */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

interface ParsedToken {
  timestamp: RFC3161Timestamp;
  tstInfo: ASN1Obj;
  signerInfo: ASN1Obj;
  embedded: Buffer[];
}

const RSA_PKCS1 = new Set(['1.2.840.113549.1.1.1', '1.2.840.113549.1.1.11', '1.2.840.113549.1.1.12', '1.2.840.113549.1.1.13']);
const ECDSA_SHA2 = new Set(['1.2.840.10045.4.3.2', '1.2.840.10045.4.3.3', '1.2.840.10045.4.3.4']);

/**
 * The token's signature algorithm is one the Notary Project allows that the sigstore RFC 3161 code
 * verifies: ECDSA with SHA-2, or RSA PKCS #1 v1.5 with SHA-256 (it verifies RSA with OpenSSL's default
 * digest for RSA keys, SHA-256).
 */
function checkSignatureAlgorithm(signerInfo: ASN1Obj): void {
  const digest = SHA2[signerInfo.subs[2]?.subs[0]?.toOID() ?? ''];
  const signature = signerInfo.subs[4]?.subs[0]?.toOID() ?? '';
  if (RSA_PKCS1.has(signature) && digest !== 'sha256')
    throw invalid(`is an RSA signature with ${digest ?? 'an unknown digest'}; RSA timestamp tokens are verified with SHA-256 only`);
  if (!RSA_PKCS1.has(signature) && !ECDSA_SHA2.has(signature))
    throw invalid(`is signed with ${signature}; the Notary Project allows ECDSA and RSA (this verifier: RSA PKCS #1 v1.5)`);
}

function parseToken(untrustedToken: Buffer): ParsedToken {
  try {
    // @sigstore/core reads a TimeStampResp: the token wrapped with a granted status.
    const body = Buffer.concat([Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), untrustedToken]);
    const timestamp = RFC3161Timestamp.parse(Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]) as Buffer<ArrayBuffer>);
    const token = ASN1Obj.parseBuffer(Buffer.from(untrustedToken) as Buffer<ArrayBuffer>);
    if (!token.toDER().equals(untrustedToken)) throw new Error('it is not DER (or has bytes after it)');
    if (token.tag.toDER() !== 0x30) throw new Error('it is not a ContentInfo');
    // Strictly, as the sigstore bundles' timestamps are read: SignedData v3, SHA-2, a TSTInfo, no CRLs, one signer.
    const embedded = signedDataCertificates(token);
    const signedData = token.subs[1]!.subs[0]!;
    const signerInfo = signedData.subs[signedData.subs.length - 1]!.subs[0]!;
    // Read everything the checks read later, so that a malformed token fails here, as malformed.
    void timestamp.signingTime;
    void timestamp.signerIssuer;
    void timestamp.signerSerialNumber;
    const tstInfo = ASN1Obj.parseBuffer(timestamp.tstInfo.raw as Buffer<ArrayBuffer>);
    return { timestamp, tstInfo, signerInfo, embedded };
  } catch (err) {
    if (err instanceof SignetError) throw err;
    throw malformed(`RFC 3161 timestamp countersignature cannot be read: ${(err as Error).message}`);
  }
}

/** TSTInfo: version 1, a SHA-2 message imprint; returns genTime and the accuracy in milliseconds. */
function readTstInfo(tstInfo: ASN1Obj): { genTime: Date; accuracyMs: number } {
  const [version, policy, imprint, , genTimeObj, ...rest] = tstInfo.subs;
  if (version === undefined || policy === undefined || imprint === undefined || genTimeObj === undefined) throw malformed('timestamp TSTInfo is incomplete');
  if (version.toInteger() !== 1n) throw invalid(`has TSTInfo version ${version.toInteger()}, not 1`);
  const imprintOid = imprint.subs[0]?.subs[0]?.toOID() ?? '';
  if (SHA2[imprintOid] === undefined)
    throw invalid(`hashes the signature with ${imprintOid || 'an unnamed algorithm'}; the Notary Project allows SHA-256, SHA-384 and SHA-512`);
  const accuracy = rest.find((o) => o.tag.isUniversal() && o.tag.number === 0x10);
  let accuracyMs = 0;
  if (accuracy !== undefined) {
    for (const part of accuracy.subs) {
      const n = Number(BigInt(`0x${part.value.toString('hex') || '0'}`));
      if (part.tag.isContextSpecific(0)) accuracyMs += n;
      else if (part.tag.isContextSpecific(1)) accuracyMs += n / 1000;
      else accuracyMs += n * 1000;
    }
  }
  // No (or a zero) accuracy under the baseline policy means one second (as notation-go reads it).
  if (accuracyMs === 0 && policy.toOID() === OID_BASELINE_TIMESTAMP_POLICY) accuracyMs = 1000;
  return { genTime: genTimeObj.toDate(), accuracyMs };
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
function checkSigningCertificateAttribute(signerInfo: ASN1Obj, signer: ParsedCertificate): void {
  const signedAttrs = signerInfo.subs.find((o) => o.tag.isContextSpecific(0));
  const attr = (oid: string) => signedAttrs?.subs.find((a) => a.subs[0]?.tag.isOID() === true && a.subs[0].toOID() === oid);
  const v2 = attr(OID_SIGNING_CERTIFICATE_V2);
  const v1 = v2 === undefined ? attr(OID_SIGNING_CERTIFICATE) : undefined;
  // Attribute ::= SEQUENCE { type, SET { SigningCertificate(V2) ::= SEQUENCE { certs SEQUENCE OF ESSCertID(v2), … } } }
  const essCertId = (v2 ?? v1)?.subs[1]?.subs[0]?.subs[0]?.subs[0];
  if (essCertId === undefined) throw invalid('has no signing-certificate-v2 (or signing-certificate) signed attribute');
  let hash: string = 'sha1';
  let certHash = essCertId.subs[0];
  if (v2 !== undefined) {
    hash = 'sha256';
    if (essCertId.subs[0]?.tag.isUniversal() === true && essCertId.subs[0].tag.number === 0x10) {
      const named = SHA2[essCertId.subs[0].subs[0]?.toOID() ?? ''];
      if (named === undefined) throw invalid('signing-certificate-v2 attribute hashes the certificate with an unknown algorithm');
      hash = named;
      certHash = essCertId.subs[1];
    }
  }
  if (certHash === undefined || !certHash.tag.isOctetString() || !createHash(hash).update(signer.der).digest().equals(certHash.value))
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
function chainFromToken(tsa: TimestampAuthority, embedded: NodeX509[], timestamp: RFC3161Timestamp): TimestampAuthority | undefined {
  const issued = (cert: NodeX509, by: NodeX509) => {
    try {
      return cert.checkIssued(by) && cert.verify(by.publicKey);
    } catch {
      return false;
    }
  };
  const signer = embedded.find((c) => {
    const parsed = SigstoreX509.parse(Buffer.from(c.raw) as Buffer<ArrayBuffer>);
    return parsed.serialNumber.equals(timestamp.signerSerialNumber) && parsed.issuer.equals(timestamp.signerIssuer);
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
  const { timestamp, tstInfo, signerInfo, embedded } = parseToken(untrustedToken);
  const { genTime, accuracyMs } = readTstInfo(tstInfo);
  checkSignatureAlgorithm(signerInfo);
  // The authority whose signing certificate signed this token, valid (with its chain) at its time.
  let embeddedCertificates: NodeX509[];
  try {
    embeddedCertificates = embedded.map((der) => new NodeX509(der));
  } catch (err) {
    throw malformed(`RFC 3161 timestamp countersignature embeds a certificate that does not parse: ${(err as Error).message}`);
  }
  const candidates = authorities.flatMap((tsa) => (tsa.certChain.every((c) => c.ca) ? (chainFromToken(tsa, embeddedCertificates, timestamp) ?? []) : [tsa]));
  const matched = candidates.find((tsa) => {
    try {
      verifyRFC3161Timestamp(timestamp, untrustedSignature, [toCertAuthority(tsa)]);
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
  checkSigningCertificateAttribute(signerInfo, chain[0]!);
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
