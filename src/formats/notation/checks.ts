/**
 * One check, one function — the Notary Project verification steps (trust-store-trust-policy.md,
 * "Signature Verification"; signature-specification.md, algorithm and certificate requirements).
 * Each throws a SignetError whose code says which check failed; verify.ts runs them in the
 * specification's order (integrity, authenticity, expiry, trusted timestamp).
 */
import { createHash, constants, verify as cryptoVerify, X509Certificate as NodeX509, type KeyObject } from 'node:crypto';
import { X509Certificate as SigstoreX509 } from '@sigstore/core';
import { SignetError } from '../../errors.js';
import type { ExpectedSubject } from '../types.js';
import { isPlainObject, parseStrictJson, requireExactKeys } from '../strict-json.js';
import { dnMatches, formatDn, parseDerName, parseTrustedIdentity, type DistinguishedName } from './dn.js';
import {
  HDR_AUTHENTIC_SIGNING_TIME,
  HDR_EXPIRY,
  HDR_SIGNING_SCHEME,
  HDR_SIGNING_TIME,
  HDR_VERIFICATION_PLUGIN,
  HDR_VERIFICATION_PLUGIN_MIN_VERSION,
  NOTATION_PAYLOAD_CONTENT_TYPE,
  SIGNING_SCHEMES,
  malformed,
  type NotationAlgorithm,
  type SigningScheme,
  type UntrustedNotationEnvelope,
} from './envelope.js';

const OID_EKU = '2.5.29.37';
const OID_CODE_SIGNING = '1.3.6.1.5.5.7.3.3';

/** A certificate from the envelope or the trust store, parsed once by both parsers. */
export interface ParsedCertificate {
  der: Buffer;
  node: NodeX509;
  asn1: SigstoreX509;
  /** `sha256:<hex>` of the DER certificate (notation's certificate fingerprint). */
  fingerprint: string;
  subject: DistinguishedName;
}

/** The subject Name of a v3 TBSCertificate (version, serial, signature, issuer, validity, subject, …). */
function subjectName(cert: SigstoreX509) {
  const tbs = cert.tbsCertificate;
  const name = tbs.subs[0]?.tag.isContextSpecific(0) ? tbs.subs[5] : tbs.subs[4];
  if (name === undefined) throw new Error('certificate has no subject');
  return name;
}

export function parseCertificate(der: Buffer, where: string): ParsedCertificate {
  try {
    const node = new NodeX509(der);
    // Node parses the public key lazily: a broken one must fail here, as a malformed certificate, not
    // later as an untyped OpenSSL error in the middle of a check.
    void node.publicKey;
    const asn1 = SigstoreX509.parse(der as Buffer<ArrayBuffer>);
    // @sigstore/core decodes extensions and times lazily, too: read now everything the checks read later,
    // so that a malformed extension is a malformed certificate here, not an untyped error mid-check.
    void asn1.extKeyUsage?.digitalSignature;
    void asn1.extBasicConstraints?.pathLenConstraint;
    void asn1.notBefore;
    void asn1.notAfter;
    asn1.extension(OID_EKU)?.valueObj.subs[0]?.subs.forEach((s) => s.toOID());
    return { der, node, asn1, fingerprint: `sha256:${createHash('sha256').update(der).digest('hex')}`, subject: parseDerName(subjectName(asn1)) };
  } catch (err) {
    if (err instanceof SignetError) throw new SignetError('SIGNATURE_MALFORMED', `notation ${where}: ${err.message}`);
    throw malformed(`${where} is not a DER X.509 certificate: ${(err as Error).message}`);
  }
}

export function describeCert(cert: ParsedCertificate): string {
  return `"${formatDn(cert.subject)}" (${cert.fingerprint.slice(0, 19)}…)`;
}

// ---------------------------------------------------------------- envelope headers

const KNOWN_CRITICAL = new Set([HDR_SIGNING_SCHEME, HDR_EXPIRY, HDR_AUTHENTIC_SIGNING_TIME, HDR_VERIFICATION_PLUGIN, HDR_VERIFICATION_PLUGIN_MIN_VERSION]);

/**
 * Critical headers: every name in `crit` must be one this verifier understands and present in the
 * protected header; every extended attribute the specification marks critical must be listed.
 */
export function checkCriticalHeaders(env: UntrustedNotationEnvelope): void {
  if (new Set(env.critical).size !== env.critical.length) throw malformed('"crit" lists a header twice');
  for (const name of env.critical) {
    if (!KNOWN_CRITICAL.has(name)) throw malformed(`critical header ${JSON.stringify(name)} is not understood`);
    if (!env.protectedHeaderNames.includes(name)) throw malformed(`critical header ${JSON.stringify(name)} is not in the protected header`);
  }
  for (const name of KNOWN_CRITICAL) {
    if ((name === HDR_SIGNING_SCHEME || env.protectedHeaderNames.includes(name)) && !env.critical.includes(name)) {
      throw malformed(`protected header ${JSON.stringify(name)} is present but not listed in "crit"`);
    }
  }
  if (env.verificationPlugin !== undefined) {
    throw new SignetError(
      'SIGNATURE_INVALID',
      `notation signature requires the verification plugin ${JSON.stringify(env.verificationPlugin)}; signet runs no plugins`,
    );
  }
}

export function checkContentType(env: UntrustedNotationEnvelope): void {
  if (env.contentType !== NOTATION_PAYLOAD_CONTENT_TYPE)
    throw malformed(`content type ${JSON.stringify(env.contentType)} is not ${NOTATION_PAYLOAD_CONTENT_TYPE}`);
}

/** The signing scheme is known, carries the time attribute it needs, and is the one the policy asks for. */
export function checkSigningScheme(env: UntrustedNotationEnvelope, required?: SigningScheme): SigningScheme {
  const scheme = env.signingScheme;
  if (!(SIGNING_SCHEMES as readonly string[]).includes(scheme))
    throw malformed(`signing scheme ${JSON.stringify(scheme)} is not notary.x509 or notary.x509.signingAuthority`);
  if (scheme === 'notary.x509' && env.signingTime === undefined) throw malformed(`signing scheme notary.x509 without "${HDR_SIGNING_TIME}"`);
  if (scheme === 'notary.x509.signingAuthority' && env.authenticSigningTime === undefined)
    throw malformed(`signing scheme notary.x509.signingAuthority without "${HDR_AUTHENTIC_SIGNING_TIME}"`);
  if (required !== undefined && scheme !== required)
    throw new SignetError('SIGNATURE_INVALID', `notation signing scheme is ${scheme}; the policy requires ${required}`);
  return scheme as SigningScheme;
}

// ---------------------------------------------------------------- integrity

interface AlgorithmSpec {
  hash: 'sha256' | 'sha384' | 'sha512';
  /** RSASSA-PSS salt length = hash length; ECDSA raw r||s length. */
  bytes: number;
}
const ALG_SPECS: Record<NotationAlgorithm, AlgorithmSpec> = {
  PS256: { hash: 'sha256', bytes: 32 },
  PS384: { hash: 'sha384', bytes: 48 },
  PS512: { hash: 'sha512', bytes: 64 },
  ES256: { hash: 'sha256', bytes: 64 },
  ES384: { hash: 'sha384', bytes: 96 },
  ES512: { hash: 'sha512', bytes: 132 },
};

/** The one algorithm the specification allows for a key: RSA 2048/3072/4096 → PS256/384/512, P-256/384/521 → ES256/384/512. */
export function algorithmForKey(key: KeyObject): NotationAlgorithm | undefined {
  if (key.asymmetricKeyType === 'rsa') {
    return ({ 2048: 'PS256', 3072: 'PS384', 4096: 'PS512' } as Record<number, NotationAlgorithm>)[key.asymmetricKeyDetails?.modulusLength ?? 0];
  }
  if (key.asymmetricKeyType === 'ec') {
    return ({ prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' } as Record<string, NotationAlgorithm>)[key.asymmetricKeyDetails?.namedCurve ?? ''];
  }
  return undefined;
}

function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails;
  return key.asymmetricKeyType === 'rsa' ? `RSA ${d?.modulusLength ?? '?'}-bit` : `${key.asymmetricKeyType ?? 'unknown'} ${d?.namedCurve ?? ''}`.trim();
}

/** The envelope's algorithm is the one the signing certificate's key type and size call for. */
export function checkAlgorithmMatchesKey(env: UntrustedNotationEnvelope, leaf: ParsedCertificate): void {
  const expected = algorithmForKey(leaf.node.publicKey);
  if (expected === undefined)
    throw new SignetError(
      'CERTIFICATE_INVALID',
      `notation signing certificate has a ${describeKey(leaf.node.publicKey)} key, which the Notary Project does not allow`,
    );
  if (expected !== env.alg)
    throw new SignetError(
      'SIGNATURE_INVALID',
      `notation envelope says ${env.alg}, but the signing certificate's ${describeKey(leaf.node.publicKey)} key signs with ${expected}`,
    );
}

/** The signature over the signing input verifies with the leaf certificate's key. */
export function checkIntegrity(env: UntrustedNotationEnvelope, leaf: ParsedCertificate): void {
  const spec = ALG_SPECS[env.alg];
  const key = leaf.node.publicKey;
  let ok = false;
  try {
    if (env.alg.startsWith('PS')) {
      ok = cryptoVerify(spec.hash, env.signingInput, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.bytes }, env.untrustedSignature);
    } else if (env.untrustedSignature.length === spec.bytes) {
      ok = cryptoVerify(spec.hash, env.signingInput, { key, dsaEncoding: 'ieee-p1363' }, env.untrustedSignature);
    }
  } catch {
    ok = false;
  }
  if (!ok)
    throw new SignetError(
      'SIGNATURE_INVALID',
      `notation ${env.alg} signature does not verify with the key of ${describeCert(leaf)} (the payload, headers or signature were altered)`,
    );
}

/** The signed payload is a Notary Project payload whose `targetArtifact` is the image descriptor. */
export function checkTargetArtifact(untrustedPayload: Buffer, expected: ExpectedSubject): Record<string, string> {
  const doc = parseStrictJson(untrustedPayload.toString('utf8'), 'notation payload', 'SIGNATURE_MALFORMED');
  if (!isPlainObject(doc)) throw malformed('payload is not a JSON object');
  requireExactKeys(doc, ['targetArtifact'], [], 'notation payload');
  const target = doc['targetArtifact'];
  if (!isPlainObject(target)) throw malformed('payload "targetArtifact" is not an object');
  requireExactKeys(target, ['mediaType', 'digest', 'size'], ['annotations'], 'notation payload targetArtifact');
  const { mediaType, digest, size, annotations } = target;
  if (typeof mediaType !== 'string' || typeof digest !== 'string' || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw malformed('payload "targetArtifact" needs a string mediaType and digest and a non-negative integer size');
  }
  if (annotations !== undefined && (!isPlainObject(annotations) || !Object.values(annotations).every((v) => typeof v === 'string'))) {
    throw malformed('payload "targetArtifact.annotations" is not a map of strings');
  }
  if (digest !== expected.digest) throw new SignetError('DIGEST_MISMATCH', `notation signature is about ${digest.slice(0, 80)}, not ${expected.digest}`);
  if (mediaType !== expected.mediaType)
    throw new SignetError('DIGEST_MISMATCH', `notation signature names media type ${mediaType.slice(0, 80)}, the image is ${expected.mediaType}`);
  if (size !== expected.size) throw new SignetError('DIGEST_MISMATCH', `notation signature names size ${size}, the image is ${expected.size} bytes`);
  return (annotations as Record<string, string> | undefined) ?? {};
}

// ---------------------------------------------------------------- authenticity

function hasEku(cert: ParsedCertificate): string[] | undefined {
  const ext = cert.asn1.extension(OID_EKU);
  if (ext === undefined) return undefined;
  // extnValue is an OCTET STRING wrapping SEQUENCE OF KeyPurposeId.
  const seq = ext.valueObj.subs[0];
  if (seq === undefined) throw new SignetError('CERTIFICATE_INVALID', `certificate ${describeCert(cert)} has a malformed extended key usage extension`);
  return seq.subs.map((s) => s.toOID());
}

export function checkKeyStrength(cert: ParsedCertificate): void {
  const key = cert.node.publicKey;
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType === 'rsa' && bits >= 2048) return;
  if (key.asymmetricKeyType === 'ec' && ['prime256v1', 'secp384r1', 'secp521r1'].includes(key.asymmetricKeyDetails?.namedCurve ?? '')) return;
  throw new SignetError(
    'CERTIFICATE_INVALID',
    `certificate ${describeCert(cert)} has a ${describeKey(key)} key (RSA ≥ 2048 bits or ECDSA P-256/384/521 required)`,
  );
}

/**
 * Certificate requirements: the leaf is a code-signing certificate (keyUsage with digitalSignature and
 * without keyCertSign/cRLSign, not a CA, codeSigning among its EKUs when it has EKUs); every other
 * certificate is a CA allowed to sign certificates, within its path length.
 */
export function checkCertificateRequirements(chain: ParsedCertificate[]): void {
  const [leaf, ...cas] = chain;
  if (leaf === undefined) throw malformed('certificate chain is empty');
  const ku = leaf.asn1.extKeyUsage;
  if (ku === undefined || !ku.digitalSignature)
    throw new SignetError('CERTIFICATE_INVALID', `signing certificate ${describeCert(leaf)} lacks the digitalSignature key usage`);
  if (ku.keyCertSign || ku.crlSign)
    throw new SignetError(
      'CERTIFICATE_INVALID',
      `signing certificate ${describeCert(leaf)} may sign certificates or CRLs; a code-signing certificate must not`,
    );
  if (leaf.asn1.extBasicConstraints?.isCA === true)
    throw new SignetError('CERTIFICATE_INVALID', `signing certificate ${describeCert(leaf)} is a CA certificate`);
  const eku = hasEku(leaf);
  if (eku !== undefined && !eku.includes(OID_CODE_SIGNING))
    throw new SignetError('CERTIFICATE_INVALID', `signing certificate ${describeCert(leaf)} has extended key usages without codeSigning`);
  checkKeyStrength(leaf);
  cas.forEach((ca, i) => {
    const bc = ca.asn1.extBasicConstraints;
    if (bc === undefined || !bc.isCA) throw new SignetError('CERTIFICATE_INVALID', `certificate ${describeCert(ca)} issues another but is not a CA`);
    const caKu = ca.asn1.extKeyUsage;
    if (caKu !== undefined && !caKu.keyCertSign)
      throw new SignetError('CERTIFICATE_INVALID', `CA certificate ${describeCert(ca)} lacks the keyCertSign key usage`);
    const below = i; // intermediate CAs between this one and the leaf
    if (bc.pathLenConstraint !== undefined && BigInt(below) > bc.pathLenConstraint)
      throw new SignetError(
        'CERTIFICATE_INVALID',
        `CA certificate ${describeCert(ca)} allows a path length of ${bc.pathLenConstraint}, the chain has ${below} below it`,
      );
    checkKeyStrength(ca);
  });
}

function issuedBy(cert: ParsedCertificate, issuer: ParsedCertificate): boolean {
  try {
    return cert.node.checkIssued(issuer.node) && cert.node.verify(issuer.node.publicKey);
  } catch {
    return false;
  }
}

/** Each certificate is issued (name and signature) by the next one. */
export function checkChainLinks(chain: ParsedCertificate[]): void {
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!issuedBy(chain[i]!, chain[i + 1]!))
      throw new SignetError(
        'CERTIFICATE_INVALID',
        `certificate ${describeCert(chain[i]!)} is not issued by the next one in the chain, ${describeCert(chain[i + 1]!)}`,
      );
  }
}

/**
 * The chain leads to a trust-store certificate: one of its certificates is a trust-store certificate
 * (byte for byte), or its last certificate is issued by one. Returns the chain up to and including the
 * anchor, whose validity periods then matter. Otherwise the last certificate must be a self-signed root
 * (the envelope carries the whole chain, as the specification requires) — and it is not trusted.
 */
export function checkTrustStore(chain: ParsedCertificate[], trustStore: ParsedCertificate[]): { anchor: ParsedCertificate; path: ParsedCertificate[] } {
  if (trustStore.length === 0) throw new SignetError('CERTIFICATE_UNTRUSTED', 'the trust store has no certificates');
  for (let i = 0; i < chain.length; i++) {
    const anchor = trustStore.find((t) => t.der.equals(chain[i]!.der));
    if (anchor !== undefined) return { anchor, path: chain.slice(0, i + 1) };
  }
  const last = chain[chain.length - 1]!;
  const issuer = trustStore.find((t) => issuedBy(last, t));
  if (issuer !== undefined) return { anchor: issuer, path: [...chain, issuer] };
  const root = issuedBy(last, last) ? 'ends at the root' : 'ends at';
  throw new SignetError('CERTIFICATE_UNTRUSTED', `notation certificate chain ${root} ${describeCert(last)}, which is not in (or issued by) the trust store`);
}

function validAt(cert: ParsedCertificate, at: Date): boolean {
  return cert.asn1.notBefore.getTime() <= at.getTime() && at.getTime() <= cert.asn1.notAfter.getTime();
}

/** Every certificate of `path` is within its validity period at `at`. */
export function checkValidityAt(path: ParsedCertificate[], at: Date, what: string): void {
  for (const cert of path) {
    if (!validAt(cert, at)) {
      throw new SignetError(
        'CERTIFICATE_INVALID',
        `certificate ${describeCert(cert)} (valid ${cert.asn1.notBefore.toISOString()} to ${cert.asn1.notAfter.toISOString()}) is not valid at ${what} ${at.toISOString()}`,
      );
    }
  }
}

/**
 * Trusted identities: `*`, or an `x509.subject:` DN every attribute of which the signing certificate's
 * subject carries with the same value. Undefined means the policy sets no identity rule.
 */
export function checkTrustedIdentity(leaf: ParsedCertificate, trustedIdentities: readonly string[] | undefined): void {
  if (trustedIdentities === undefined || trustedIdentities.includes('*')) return;
  for (const identity of trustedIdentities) {
    if (dnMatches(parseTrustedIdentity(identity), leaf.subject)) return;
  }
  throw new SignetError('IDENTITY_MISMATCH', `notation signing certificate subject "${formatDn(leaf.subject)}" matches none of the trusted identities`);
}

// ---------------------------------------------------------------- expiry and time

export function checkExpiry(env: UntrustedNotationEnvelope, now: Date): void {
  if (env.expiry !== undefined && now.getTime() > env.expiry.getTime())
    throw new SignetError('SIGNATURE_EXPIRED', `notation signature expired at ${env.expiry.toISOString()}`);
}

/**
 * The time at which the certificate chain must be valid ("Validate Trusted Timestamp"):
 * - notary.x509.signingAuthority: the authentic signing time the signing authority vouches for;
 * - notary.x509: the time of an RFC 3161 countersignature when there is one and the key names
 *   timestamp authorities (verified in verify.ts, which then does not call this); otherwise — as the
 *   specification says for a signature without one — the current time.
 */
export function trustedTimeFor(env: UntrustedNotationEnvelope, scheme: SigningScheme, now: Date): { at: Date; what: string } {
  if (scheme === 'notary.x509.signingAuthority') return { at: env.authenticSigningTime!, what: 'the authentic signing time' };
  return { at: now, what: 'the verification time' };
}
