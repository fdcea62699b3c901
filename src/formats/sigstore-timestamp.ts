/**
 * The RFC 3161 timestamps of a sigstore bundle, read strictly before @sigstore/verify verifies them.
 * @sigstore/verify checks the token's signature over the signed attributes, the TSTInfo and the message
 * imprint, but reads the rest leniently (tags, versions, the algorithm lists, the embedded certificates)
 * where sigstore-go's DER decoder and its check of the embedded chain refuse a changed byte. So here: the
 * response is DER; its status is granted (or granted with modifications, which RFC 3161 allows and the
 * reference accepts); the token is a ContentInfo of SignedData version 3 (RFC 5652) with SHA-2 digest
 * algorithms listing the signer's, a TSTInfo, no CRLs and one SignerInfo whose signature algorithm is
 * one a timestamp authority signs with; every certificate it embeds is a timestamp-authority
 * certificate of the trusted root (the trust comes from there; an embedded one is never trusted).
 */
import { ASN1Obj } from '@sigstore/core';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { SignetError } from '../errors.js';

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_TST_INFO = '1.2.840.113549.1.9.16.1.4';
const SHA2 = new Set(['2.16.840.1.101.3.4.2.1', '2.16.840.1.101.3.4.2.2', '2.16.840.1.101.3.4.2.3']);
/**
 * ECDSA with SHA-256/384/512, RSA PKCS#1 v1.5 with SHA-256/384/512 (also as `rsaEncryption`, the OID
 * CMS signers such as openssl and GlobalSign's TSA name it by, the digest being the signer's), RSA-PSS, Ed25519.
 */
const SIGNATURE_ALGORITHMS = new Set([
  '1.2.840.10045.4.3.2',
  '1.2.840.10045.4.3.3',
  '1.2.840.10045.4.3.4',
  '1.2.840.113549.1.1.1',
  '1.2.840.113549.1.1.11',
  '1.2.840.113549.1.1.12',
  '1.2.840.113549.1.1.13',
  '1.2.840.113549.1.1.10',
  '1.3.101.112',
]);
const SEQUENCE = 0x30;
const SET = 0x31;
const INTEGER = 0x02;
const OID = 0x06;
const OCTET_STRING = 0x04;
const NULL = 0x05;

class Malformed extends Error {}

function expect(o: ASN1Obj | undefined, tag: number, what: string): ASN1Obj {
  if (o === undefined || o.tag.toDER() !== tag) throw new Malformed(`${what} is missing or not of the ASN.1 type RFC 3161 and RFC 5652 give it`);
  return o;
}

function algorithm(o: ASN1Obj | undefined, what: string, allowed: ReadonlySet<string>): string {
  const alg = expect(o, SEQUENCE, what);
  const oid = expect(alg.subs[0], OID, `${what} OID`).toOID();
  const params = alg.subs.slice(1);
  // Parameters: absent or NULL, except RSA-PSS, whose parameters are a SEQUENCE.
  const paramsOk =
    params.length === 0 || (params.length === 1 && (params[0]!.tag.toDER() === NULL ? params[0]!.value.length === 0 : oid === '1.2.840.113549.1.1.10'));
  if (!allowed.has(oid) || !paramsOk) throw new Malformed(`${what} (${oid}) is not an algorithm a timestamp authority signs with`);
  return oid;
}

/**
 * SignedData (RFC 5652 §5) as a timestamp token has it; returns the embedded certificates (DER). Throws
 * an Error saying what is wrong. Notation's countersignatures are read with it too (notation/timestamp.ts).
 */
export function signedDataCertificates(token: ASN1Obj): Buffer[] {
  if (token.subs.length !== 2 || expect(token.subs[0], OID, 'contentType').toOID() !== OID_SIGNED_DATA) throw new Malformed('the token is not SignedData');
  const explicit = expect(token.subs[1], 0xa0, 'content');
  if (explicit.subs.length !== 1) throw new Malformed('the token holds more than SignedData');
  const [version, digestAlgorithms, encap, ...more] = expect(explicit.subs[0], SEQUENCE, 'SignedData').subs;
  if (expect(version, INTEGER, 'SignedData version').toInteger() !== 3n) throw new Malformed('SignedData version is not 3');
  const digests = expect(digestAlgorithms, SET, 'digestAlgorithms').subs.map((a, i) => algorithm(a, `digestAlgorithms[${i}]`, SHA2));
  const encapsulated = expect(encap, SEQUENCE, 'encapContentInfo');
  if (encapsulated.subs.length !== 2 || expect(encapsulated.subs[0], OID, 'eContentType').toOID() !== OID_TST_INFO)
    throw new Malformed('the signed content is not a TSTInfo');
  const eContent = expect(encapsulated.subs[1], 0xa0, 'eContent');
  if (eContent.subs.length !== 1) throw new Malformed('eContent holds more than the TSTInfo');
  expect(eContent.subs[0], OCTET_STRING, 'eContent OCTET STRING');
  const signerInfos = expect(more.pop(), SET, 'signerInfos');
  if (more.length > 1 || (more[0] !== undefined && more[0].tag.toDER() !== 0xa0))
    throw new Malformed('SignedData has CRLs or other fields a timestamp token has not');
  const certificates = (more[0]?.subs ?? []).map((c, i) => expect(c, SEQUENCE, `certificate ${i}`).toDER());
  if (signerInfos.subs.length !== 1) throw new Malformed('a timestamp token has exactly one signer');
  const [siVersion, sid, digestAlgorithm, signedAttrs, signatureAlgorithm, signature, ...unsigned] = expect(signerInfos.subs[0], SEQUENCE, 'SignerInfo').subs;
  const v = expect(siVersion, INTEGER, 'SignerInfo version').toInteger();
  if (v === 1n) {
    const issuerSerial = expect(sid, SEQUENCE, 'sid');
    if (issuerSerial.subs.length !== 2) throw new Malformed('sid is not an issuer and serial number');
    expect(issuerSerial.subs[0], SEQUENCE, 'sid issuer');
    expect(issuerSerial.subs[1], INTEGER, 'sid serial number');
  } else if (v === 3n) expect(sid, 0x80, 'sid subject key identifier');
  else throw new Malformed('SignerInfo version is neither 1 nor 3');
  const digest = algorithm(digestAlgorithm, 'SignerInfo digestAlgorithm', SHA2);
  if (!digests.includes(digest)) throw new Malformed("digestAlgorithms does not list the signer's");
  expect(signedAttrs, 0xa0, 'signedAttrs').subs.forEach((a, i) => expect(a, SEQUENCE, `signed attribute ${i}`));
  algorithm(signatureAlgorithm, 'SignerInfo signatureAlgorithm', SIGNATURE_ALGORITHMS);
  expect(signature, OCTET_STRING, 'signature');
  // Unsigned attributes are neither signed nor read (nor by the reference implementation).
  if (unsigned.length > 1 || (unsigned[0] !== undefined && unsigned[0].tag.toDER() !== 0xa1))
    throw new Malformed('SignerInfo has fields a timestamp token has not');
  return certificates;
}

/** Every timestamp-authority certificate (DER) the trusted root lists. */
function trustedTsaCertificates(trustedRoot: unknown): Buffer[] {
  return TrustedRoot.fromJSON(trustedRoot).timestampAuthorities.flatMap((t) => (t.certChain?.certificates ?? []).map((c) => Buffer.from(c.rawBytes)));
}

/** Throws a SignetError unless `untrustedResponse` (a TimeStampResp, DER) is strictly what it must be. */
export function checkTimestampResponse(untrustedResponse: Buffer, trustedRoot: unknown, where: string): void {
  let certificates: Buffer[];
  try {
    const resp = ASN1Obj.parseBuffer(Buffer.from(untrustedResponse) as Buffer<ArrayBuffer>);
    if (!resp.toDER().equals(untrustedResponse)) throw new Malformed('it is not DER (or has bytes after it)');
    if (resp.tag.toDER() !== SEQUENCE || resp.subs.length !== 2) throw new Malformed('it is not a TimeStampResp with a token');
    const status = expect(expect(resp.subs[0], SEQUENCE, 'status').subs[0], INTEGER, 'status').toInteger();
    if (status !== 0n && status !== 1n) throw new Malformed(`its status is ${status}, not granted`);
    certificates = signedDataCertificates(expect(resp.subs[1], SEQUENCE, 'timeStampToken'));
  } catch (err) {
    throw new SignetError('SIGNATURE_MALFORMED', `${where} cannot be read: ${(err as Error).message}`);
  }
  const trusted = trustedTsaCertificates(trustedRoot);
  certificates.forEach((c, i) => {
    if (!trusted.some((t) => t.equals(c)))
      throw new SignetError('CERTIFICATE_INVALID', `${where}: embedded certificate ${i} is not a timestamp-authority certificate of the trusted root`);
  });
}
