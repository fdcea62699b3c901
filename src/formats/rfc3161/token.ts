/**
 * One strict reader of RFC 3161 timestamp tokens (RFC 3161 §2.4.2 over RFC 5652 SignedData), for every
 * format that carries one: sigstore bundles and cosign's `dev.sigstore.cosign/timestamp` (a TimeStampResp)
 * and Notation's `io.cncf.notary.timestampSignature` (the token alone). The signature is verified by the
 * sigstore project's RFC 3161 code (@sigstore/verify), which reads the structure leniently — by position,
 * without checking tags — where the reference implementations' DER decoders refuse a changed byte. So the
 * token is read here, once, strictly: everything the formats and that code read has the type the RFCs give
 * it, and what that code cannot verify is refused here with a reason rather than an exception there.
 *
 * Checks common to all formats live here; what a format adds (what the imprint is over, which authorities
 * it trusts, the time at which their chains must be valid, TSTInfo version, accuracy) stays in the format.
 * Every failure is a SignetError: SIGNATURE_MALFORMED for a structure that is not what the RFCs say,
 * SIGNATURE_INVALID for a well-formed token that cannot be verified.
 */
import { ASN1Obj, RFC3161Timestamp } from '@sigstore/core';
import { SignetError } from '../../errors.js';

export type Sha2 = 'sha256' | 'sha384' | 'sha512';

/** The ESS signing-certificate(-v2) signed attribute (RFC 2634, RFC 5035): a hash of the certificate that signed. */
export type SigningCertificateAttribute =
  | { kind: 'absent' }
  /** Present but not an ESSCertID(v2) list: formats that need it refuse; the sigstore ones do not read it. */
  | { kind: 'malformed'; why: string }
  | { kind: 'present'; version: 1 | 2; hash: 'sha1' | Sha2; certHash: Buffer };

export interface TimestampToken {
  /** The token as @sigstore/verify's RFC 3161 code takes it (a TimeStampResp, granted). */
  timestamp: RFC3161Timestamp;
  /** SignedData.certificates, DER, in order: untrusted. */
  certificates: Buffer[];
  /** TSTInfo fields. */
  version: bigint;
  policy: string;
  imprint: { algorithm: Sha2; hashedMessage: Buffer };
  genTime: Date;
  /** The accuracy field in milliseconds; undefined when the token has none. */
  accuracyMs: number | undefined;
  /** The SignerInfo's issuer (DER Name) and serial number (INTEGER contents), as @sigstore/verify matches them. */
  signer: { issuer: Buffer; serialNumber: Buffer };
  /** SignerInfo digest algorithm and signature algorithm (OID). */
  digestAlgorithm: Sha2;
  signatureAlgorithm: string;
  signingCertificate: SigningCertificateAttribute;
}

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_TST_INFO = '1.2.840.113549.1.9.16.1.4';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const OID_SIGNING_CERTIFICATE = '1.2.840.113549.1.9.16.2.12';
const OID_SIGNING_CERTIFICATE_V2 = '1.2.840.113549.1.9.16.2.47';
export const SHA2_OIDS: Readonly<Record<string, Sha2>> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
const DIGEST_BYTES: Record<Sha2, number> = { sha256: 32, sha384: 48, sha512: 64 };
export const RSA_PKCS1_OIDS: ReadonlySet<string> = new Set(['1.2.840.113549.1.1.1', '1.2.840.113549.1.1.11', '1.2.840.113549.1.1.12', '1.2.840.113549.1.1.13']);
export const ECDSA_SHA2_OIDS: ReadonlySet<string> = new Set(['1.2.840.10045.4.3.2', '1.2.840.10045.4.3.3', '1.2.840.10045.4.3.4']);
const OID_RSA_PSS = '1.2.840.113549.1.1.10';
const OID_ED25519 = '1.3.101.112';
/**
 * What a timestamp authority signs with: ECDSA with SHA-2, RSA PKCS#1 v1.5 (also as `rsaEncryption`, the
 * OID openssl and GlobalSign's TSA name it by, the digest being the signer's), RSA-PSS, Ed25519.
 */
const SIGNATURE_ALGORITHMS = new Set([...ECDSA_SHA2_OIDS, ...RSA_PKCS1_OIDS, OID_RSA_PSS, OID_ED25519]);
/** The time syntax @sigstore/core reads (RFC 3161 §2.4.2: UTC, `Z`), milliseconds at most. */
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{3}))?Z$/;

const SEQUENCE = 0x30;
const SET = 0x31;
const BOOLEAN = 0x01;
const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const NULL = 0x05;
const OID = 0x06;
const GENERALIZED_TIME_TAG = 0x18;

/** A structure that is not what RFC 3161 and RFC 5652 say; becomes SIGNATURE_MALFORMED. */
class Malformed extends Error {}
/** A well-formed token that cannot be verified; becomes SIGNATURE_INVALID. */
class Unverifiable extends Error {}

function expect(o: ASN1Obj | undefined, tag: number, what: string): ASN1Obj {
  if (o === undefined || o.tag.toDER() !== tag) throw new Malformed(`${what} is missing or not of the ASN.1 type RFC 3161 and RFC 5652 give it`);
  return o;
}

function oidOf(o: ASN1Obj | undefined, what: string): string {
  try {
    return expect(o, OID, what).toOID();
  } catch (err) {
    if (err instanceof Malformed) throw err;
    throw new Malformed(`${what} is not an object identifier`);
  }
}

function integerOf(o: ASN1Obj | undefined, what: string): bigint {
  const i = expect(o, INTEGER, what);
  if (i.value.length === 0) throw new Malformed(`${what} is an empty INTEGER`);
  return i.toInteger();
}

/** AlgorithmIdentifier: an OID with absent or NULL parameters (a SEQUENCE for RSA-PSS); returns the OID. */
function algorithm(o: ASN1Obj | undefined, what: string): string {
  const alg = expect(o, SEQUENCE, what);
  const oid = oidOf(alg.subs[0], `${what} OID`);
  const params = alg.subs.slice(1);
  const ok =
    params.length === 0 ||
    (params.length === 1 && (params[0]!.tag.toDER() === NULL ? params[0]!.value.length === 0 : oid === OID_RSA_PSS && params[0]!.tag.toDER() === SEQUENCE));
  if (!ok) throw new Malformed(`${what} (${oid}) has parameters it does not take`);
  return oid;
}

function sha2(o: ASN1Obj | undefined, what: string): Sha2 {
  const oid = algorithm(o, what);
  const name = SHA2_OIDS[oid];
  if (name === undefined) throw new Unverifiable(`${what} is ${oid}; only SHA-256, SHA-384 and SHA-512 can be verified`);
  return name;
}

/** Parse `der` as one DER object, nothing after it. */
function parseDer(der: Buffer, what: string): ASN1Obj {
  let obj: ASN1Obj;
  try {
    obj = ASN1Obj.parseBuffer(Buffer.from(der) as Buffer<ArrayBuffer>);
  } catch (err) {
    throw new Malformed(`${what} is not ASN.1 (${(err as Error).message})`);
  }
  if (!obj.toDER().equals(der)) throw new Malformed(`${what} is not DER (or has bytes after it)`);
  return obj;
}

function readGenTime(o: ASN1Obj | undefined): Date {
  const m = GENERALIZED_TIME.exec(expect(o, GENERALIZED_TIME_TAG, 'TSTInfo genTime').value.toString('latin1'));
  if (m === null) throw new Malformed('TSTInfo genTime is not YYYYMMDDhhmmss[.fff]Z');
  const [y, mo, d, h, mi, s, ms] = m.slice(1).map((v) => Number(v ?? 0)) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms));
  // Date.UTC rolls over (month 13, 25 o'clock); a time that does not exist is not a time.
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || date.getUTCHours() !== h || date.getUTCMinutes() !== mi)
    throw new Malformed('TSTInfo genTime is not a calendar time');
  if (s > 59) throw new Malformed('TSTInfo genTime is not a calendar time');
  return date;
}

/** Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, millis [0] INTEGER OPTIONAL, micros [1] INTEGER OPTIONAL }, in milliseconds. */
function readAccuracy(accuracy: ASN1Obj): number {
  const parts: Array<[number, number]> = [
    [INTEGER, 1000],
    [0x80, 1],
    [0x81, 0.001],
  ];
  let ms = 0;
  let next = 0;
  for (const part of accuracy.subs) {
    const at = parts.findIndex(([tag], i) => i >= next && tag === part.tag.toDER());
    if (at < 0) throw new Malformed('TSTInfo accuracy is not seconds, millis [0], micros [1] in that order, each once');
    next = at + 1;
    if (part.value.length === 0 || part.value.length > 6) throw new Malformed('TSTInfo accuracy has an empty or out-of-range INTEGER');
    const n = Number(BigInt.asIntN(part.value.length * 8, BigInt(`0x${part.value.toString('hex')}`)));
    ms += n * parts[at]![1];
  }
  return ms;
}

interface TstInfo {
  version: bigint;
  policy: string;
  imprint: { algorithm: Sha2; hashedMessage: Buffer };
  genTime: Date;
  accuracyMs: number | undefined;
}

/** TSTInfo (RFC 3161 §2.4.2), every field of its type and in its order. */
function readTstInfo(eContent: Buffer): TstInfo {
  const tstInfo = expect(parseDer(eContent, 'the TSTInfo'), SEQUENCE, 'TSTInfo');
  const [version, policy, imprint, serial, genTime, ...optional] = tstInfo.subs;
  const v = integerOf(version, 'TSTInfo version');
  const policyOid = oidOf(policy, 'TSTInfo policy');
  const mi = expect(imprint, SEQUENCE, 'TSTInfo messageImprint');
  if (mi.subs.length !== 2) throw new Malformed('TSTInfo messageImprint is not an algorithm and a hash');
  const imprintAlgorithm = sha2(mi.subs[0], 'the message imprint algorithm');
  const hashedMessage = expect(mi.subs[1], OCTET_STRING, 'TSTInfo hashedMessage').value;
  if (hashedMessage.length !== DIGEST_BYTES[imprintAlgorithm]) throw new Malformed(`TSTInfo hashedMessage is not a ${imprintAlgorithm} digest`);
  integerOf(serial, 'TSTInfo serialNumber');
  const time = readGenTime(genTime);
  // accuracy SEQUENCE, ordering BOOLEAN, nonce INTEGER, tsa [0] GeneralName, extensions [1]: each optional, in order.
  const order = [SEQUENCE, BOOLEAN, INTEGER, 0xa0, 0xa1];
  let next = 0;
  let accuracyMs: number | undefined;
  for (const o of optional) {
    const at = order.indexOf(o.tag.toDER(), next);
    if (at < 0) throw new Malformed('TSTInfo has fields after genTime that are not accuracy, ordering, nonce, tsa, extensions in that order');
    next = at + 1;
    if (at === 0) accuracyMs = readAccuracy(o);
    if (at === 1 && o.value.length !== 1) throw new Malformed('TSTInfo ordering is not a BOOLEAN');
    if (at === 2) integerOf(o, 'TSTInfo nonce');
  }
  return { version: v, policy: policyOid, imprint: { algorithm: imprintAlgorithm, hashedMessage }, genTime: time, accuracyMs };
}

/** SigningCertificate(V2) ::= SEQUENCE { certs SEQUENCE OF ESSCertID(v2), policies OPTIONAL }: the first ESSCertID. */
function readSigningCertificate(attribute: ASN1Obj, version: 1 | 2): SigningCertificateAttribute {
  try {
    const values = attribute.subs[1]!.subs;
    if (values.length !== 1) throw new Malformed('has not exactly one value');
    const certs = expect(expect(values[0], SEQUENCE, 'SigningCertificate').subs[0], SEQUENCE, 'certs');
    const essCertId = expect(certs.subs[0], SEQUENCE, 'ESSCertID');
    // ESSCertIDv2 ::= SEQUENCE { hashAlgorithm DEFAULT sha256, certHash OCTET STRING, issuerSerial OPTIONAL }; ESSCertID: SHA-1, no algorithm.
    const named = version === 2 && essCertId.subs[0]?.tag.toDER() === SEQUENCE;
    let hash: 'sha1' | Sha2 = version === 2 ? 'sha256' : 'sha1';
    if (named) {
      const oid = algorithm(essCertId.subs[0], 'ESSCertIDv2 hashAlgorithm');
      const sha = SHA2_OIDS[oid];
      if (sha === undefined) throw new Malformed(`names the hash algorithm ${oid}, not SHA-2`);
      hash = sha;
    }
    const certHash = expect(essCertId.subs[named ? 1 : 0], OCTET_STRING, 'certHash').value;
    return { kind: 'present', version, hash, certHash };
  } catch (err) {
    return { kind: 'malformed', why: (err as Error).message };
  }
}

/** Signed attributes: each an OID and a non-empty SET; the message digest (which the signature covers the TSTInfo through) once. */
function readSignedAttributes(signedAttrs: ASN1Obj): SigningCertificateAttribute {
  const seen = new Set<string>();
  for (const [i, a] of signedAttrs.subs.entries()) {
    const attr = expect(a, SEQUENCE, `signed attribute ${i}`);
    const type = oidOf(attr.subs[0], `signed attribute ${i} type`);
    if (attr.subs.length !== 2 || expect(attr.subs[1], SET, `signed attribute ${i} values`).subs.length === 0)
      throw new Malformed(`signed attribute ${i} is not a type and a set of values`);
    if (seen.has(type)) throw new Malformed(`signed attribute ${type} appears twice`);
    seen.add(type);
  }
  const find = (oid: string) => signedAttrs.subs.find((a) => a.subs[0]!.toOID() === oid);
  const digest = find(OID_MESSAGE_DIGEST)?.subs[1]!.subs;
  if (digest === undefined || digest.length !== 1) throw new Malformed('the signed attributes have no message digest (or more than one)');
  expect(digest[0], OCTET_STRING, 'the message digest attribute');
  const v2 = find(OID_SIGNING_CERTIFICATE_V2);
  if (v2 !== undefined) return readSigningCertificate(v2, 2);
  const v1 = find(OID_SIGNING_CERTIFICATE);
  return v1 !== undefined ? readSigningCertificate(v1, 1) : { kind: 'absent' };
}

/** ContentInfo holding SignedData (RFC 5652 §5) as a timestamp token has it. */
function readToken(token: ASN1Obj): Omit<TimestampToken, 'timestamp'> {
  expect(token, SEQUENCE, 'the token (ContentInfo)');
  if (token.subs.length !== 2 || oidOf(token.subs[0], 'contentType') !== OID_SIGNED_DATA) throw new Malformed('the token is not SignedData');
  const explicit = expect(token.subs[1], 0xa0, 'content');
  if (explicit.subs.length !== 1) throw new Malformed('the token holds more than SignedData');
  const [version, digestAlgorithms, encap, ...more] = expect(explicit.subs[0], SEQUENCE, 'SignedData').subs;
  if (integerOf(version, 'SignedData version') !== 3n) throw new Malformed('SignedData version is not 3');
  const digests = expect(digestAlgorithms, SET, 'digestAlgorithms').subs.map((a, i) => sha2(a, `digestAlgorithms[${i}]`));
  const encapsulated = expect(encap, SEQUENCE, 'encapContentInfo');
  if (encapsulated.subs.length !== 2 || oidOf(encapsulated.subs[0], 'eContentType') !== OID_TST_INFO)
    throw new Malformed('the signed content is not a TSTInfo');
  const eContent = expect(encapsulated.subs[1], 0xa0, 'eContent');
  if (eContent.subs.length !== 1) throw new Malformed('eContent holds more than the TSTInfo');
  const tstInfo = readTstInfo(expect(eContent.subs[0], OCTET_STRING, 'eContent OCTET STRING').value);
  const signerInfos = expect(more.pop(), SET, 'signerInfos');
  if (more.length > 1 || (more[0] !== undefined && more[0].tag.toDER() !== 0xa0))
    throw new Malformed('SignedData has CRLs or other fields a timestamp token has not');
  const certificates = (more[0]?.subs ?? []).map((c, i) => expect(c, SEQUENCE, `certificate ${i}`).toDER());
  if (signerInfos.subs.length !== 1) throw new Malformed('a timestamp token has exactly one signer');
  const [siVersion, sid, digestAlgorithm, signedAttrs, signatureAlgorithm, signature, ...unsigned] = expect(signerInfos.subs[0], SEQUENCE, 'SignerInfo').subs;
  const v = integerOf(siVersion, 'SignerInfo version');
  let signer: TimestampToken['signer'];
  if (v === 1n) {
    const issuerSerial = expect(sid, SEQUENCE, 'sid');
    if (issuerSerial.subs.length !== 2) throw new Malformed('sid is not an issuer and serial number');
    const issuer = expect(issuerSerial.subs[0], SEQUENCE, 'sid issuer');
    integerOf(issuerSerial.subs[1], 'sid serial number');
    signer = { issuer: issuer.value, serialNumber: issuerSerial.subs[1]!.value };
  } else if (v === 3n) {
    expect(sid, 0x80, 'sid subject key identifier');
    throw new Unverifiable('names its signer by subject key identifier; the signing certificate is found by issuer and serial number');
  } else throw new Malformed('SignerInfo version is neither 1 nor 3');
  const digest = sha2(digestAlgorithm, 'the SignerInfo digest algorithm');
  if (!digests.includes(digest)) throw new Malformed("digestAlgorithms does not list the signer's");
  const signingCertificate = readSignedAttributes(expect(signedAttrs, 0xa0, 'signedAttrs'));
  const signatureOid = algorithm(signatureAlgorithm, 'SignerInfo signatureAlgorithm');
  if (!SIGNATURE_ALGORITHMS.has(signatureOid)) throw new Unverifiable(`is signed with ${signatureOid}, not an algorithm a timestamp authority signs with`);
  // The sigstore RFC 3161 code verifies RSA PKCS#1 v1.5 with OpenSSL's default digest for RSA keys, SHA-256.
  if (RSA_PKCS1_OIDS.has(signatureOid) && digest !== 'sha256')
    throw new Unverifiable(`is an RSA signature with ${digest}; RSA timestamp tokens are verified with SHA-256 only`);
  expect(signature, OCTET_STRING, 'signature');
  // Unsigned attributes are neither signed nor read (nor by the reference implementations).
  if (unsigned.length > 1 || (unsigned[0] !== undefined && unsigned[0].tag.toDER() !== 0xa1))
    throw new Malformed('SignerInfo has fields a timestamp token has not');
  return { certificates, ...tstInfo, signer, digestAlgorithm: digest, signatureAlgorithm: signatureOid, signingCertificate };
}

/** DER length octets. */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function asSignetError(err: unknown, what: string): SignetError {
  if (err instanceof Unverifiable) return new SignetError('SIGNATURE_INVALID', `${what} cannot be verified: it ${err.message}`);
  return new SignetError('SIGNATURE_MALFORMED', `${what} cannot be read: ${err instanceof Malformed ? err.message : `malformed (${(err as Error).message})`}`);
}

/** A TimeStampToken (ContentInfo, DER), as Notation carries it. `what` names it in errors. */
export function readTimestampToken(untrustedToken: Buffer, what: string): TimestampToken {
  try {
    const fields = readToken(parseDer(untrustedToken, 'the token'));
    // @sigstore/core reads a TimeStampResp: the token wrapped with a granted status.
    const body = Buffer.concat([Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), untrustedToken]);
    const timestamp = RFC3161Timestamp.parse(Buffer.concat([Buffer.from([SEQUENCE]), derLength(body.length), body]) as Buffer<ArrayBuffer>);
    return { timestamp, ...fields };
  } catch (err) {
    throw asSignetError(err, what);
  }
}

/** A TimeStampResp (DER) whose status is granted (or granted with modifications, which RFC 3161 allows and the references accept). */
export function readTimestampResponse(untrustedResponse: Buffer, what: string): TimestampToken {
  try {
    const resp = expect(parseDer(untrustedResponse, 'the response'), SEQUENCE, 'TimeStampResp');
    if (resp.subs.length !== 2) throw new Malformed('it is not a TimeStampResp with a token');
    const statusInfo = expect(resp.subs[0], SEQUENCE, 'status');
    const status = integerOf(statusInfo.subs[0], 'status');
    if (status !== 0n && status !== 1n) throw new Malformed(`its status is ${status}, not granted`);
    const fields = readToken(resp.subs[1]!);
    return { timestamp: RFC3161Timestamp.parse(Buffer.from(untrustedResponse) as Buffer<ArrayBuffer>), ...fields };
  } catch (err) {
    throw asSignetError(err, what);
  }
}
