/**
 * Notary Project (Notation) signatures, JWS (`application/jose+json`) and COSE_Sign1 (`application/cose`)
 * envelopes, verified as the Notary Project specification says, one check per function:
 * envelope and critical headers, allowed algorithm for the signing key, integrity (signature over the
 * JWS signing input / COSE Sig_structure with the leaf certificate's key), the certificate chain (x5c,
 * leaf first) up to a trust-store certificate, signing time within validity, expiry, the payload's
 * targetArtifact equal to the image descriptor, and trusted identities (x509.subject DN matching).
 *
 * Known limits, documented: no RFC 3161 timestamp countersignatures (for notary.x509 the chain must be
 * valid both at the signing time and now), no revocation checking (OCSP/CRL), no verification plugins
 * (a signature naming one is refused), and the leaf's basic keyUsage is not inspected (Node does not
 * expose it); the extended key usage, when present, must allow code signing.
 */
import { X509Certificate, verify as cryptoVerify, constants, type KeyObject } from 'node:crypto';
import { decode as cborDecode, encode as cborEncode, Tag } from 'cbor2';
import { SignetError, type ErrorCode } from '../errors.js';
import type { TrustedKey } from '../keys/types.js';
import { isPlainObject, parseStrictJson, requireExactKeys } from './strict-json.js';
import type { ExpectedSubject, SignatureCheck, SignatureFormat, UntrustedSignature } from './types.js';

export const NOTATION_ARTIFACT_TYPE = 'application/vnd.cncf.notary.signature';
export const NOTATION_PAYLOAD_TYPE = 'application/vnd.cncf.notary.payload.v1+json';
const SCHEME = 'io.cncf.notary.signingScheme';
const SIGNING_TIME = 'io.cncf.notary.signingTime';
const AUTHENTIC_SIGNING_TIME = 'io.cncf.notary.authenticSigningTime';
const EXPIRY = 'io.cncf.notary.expiry';
const PLUGIN = 'io.cncf.notary.verificationPlugin';
const PLUGIN_MIN = 'io.cncf.notary.verificationPluginMinVersion';
const CODE_SIGNING_EKU = '1.3.6.1.5.5.7.3.3';
const MAX_CHAIN = 10;

type Alg = 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';
const COSE_ALGS: Record<number, Alg> = { [-37]: 'PS256', [-38]: 'PS384', [-39]: 'PS512', [-7]: 'ES256', [-35]: 'ES384', [-36]: 'ES512' };
/** The algorithm the spec pairs with each key type and size. */
const ALG_FOR_KEY: Record<string, Alg> = { 'rsa-2048': 'PS256', 'rsa-3072': 'PS384', 'rsa-4096': 'PS512', 'ec-prime256v1': 'ES256', 'ec-secp384r1': 'ES384', 'ec-secp521r1': 'ES512' };

/** What both envelope formats come down to. */
interface UntrustedNotation {
  alg: Alg;
  critical: string[];
  contentType: unknown;
  scheme: unknown;
  signingTime: unknown;
  authenticSigningTime: unknown;
  expiry: unknown;
  /** Protected header names present (for the critical-header check). */
  protectedNames: string[];
  untrustedPayload: Buffer;
  signingInput: Buffer;
  untrustedSignature: Buffer;
  untrustedChain: Buffer[];
}

class Refusal extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}
const malformed = (m: string) => new Refusal('SIGNATURE_MALFORMED', m);

function b64url(text: unknown, what: string): Buffer {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text)) throw malformed(`JWS ${what} is not base64url`);
  return Buffer.from(text, 'base64url');
}

function parseJws(bytes: Buffer): UntrustedNotation {
  let doc: unknown;
  try {
    doc = parseStrictJson(bytes.toString('utf8'), 'JWS envelope');
  } catch (err) {
    throw malformed((err as Error).message);
  }
  if (!isPlainObject(doc)) throw malformed('JWS envelope is not a JSON object');
  try {
    requireExactKeys(doc, ['payload', 'protected', 'header', 'signature'], [], 'JWS envelope');
  } catch (err) {
    throw malformed((err as Error).message);
  }
  const protectedB64 = doc['protected'] as string;
  const payloadB64 = doc['payload'] as string;
  let ph: unknown;
  try {
    ph = parseStrictJson(b64url(protectedB64, 'protected header').toString('utf8'), 'JWS protected header');
  } catch (err) {
    throw err instanceof Refusal ? err : malformed((err as Error).message);
  }
  if (!isPlainObject(ph)) throw malformed('JWS protected header is not an object');
  const header = doc['header'];
  if (!isPlainObject(header)) throw malformed('JWS unprotected header is not an object');
  for (const k of Object.keys(header)) if (k !== 'x5c' && k !== 'io.cncf.notary.signingAgent' && k !== 'io.cncf.notary.timestampSignature') throw malformed(`JWS unprotected header "${k}" is not allowed`);
  if (!Array.isArray(header['x5c']) || header['x5c'].length === 0) throw malformed('JWS has no x5c certificate chain');
  if (typeof ph['alg'] !== 'string' || !Object.values(COSE_ALGS).includes(ph['alg'] as Alg)) throw malformed(`JWS alg ${JSON.stringify(ph['alg'])} is not allowed (PS256/384/512, ES256/384/512)`);
  if (ph['crit'] !== undefined && (!Array.isArray(ph['crit']) || ph['crit'].some((c) => typeof c !== 'string'))) throw malformed('JWS crit is not a list of names');
  return {
    alg: ph['alg'] as Alg,
    critical: (ph['crit'] as string[] | undefined) ?? [],
    contentType: ph['cty'],
    scheme: ph[SCHEME],
    signingTime: ph[SIGNING_TIME],
    authenticSigningTime: ph[AUTHENTIC_SIGNING_TIME],
    expiry: ph[EXPIRY],
    protectedNames: Object.keys(ph),
    untrustedPayload: b64url(payloadB64, 'payload'),
    signingInput: Buffer.from(`${protectedB64}.${payloadB64}`, 'ascii'),
    untrustedSignature: b64url(doc['signature'], 'signature'),
    untrustedChain: (header['x5c'] as unknown[]).map((c) => {
      if (typeof c !== 'string') throw malformed('JWS x5c entry is not a string');
      return Buffer.from(c, 'base64');
    }),
  };
}

function parseCose(bytes: Buffer): UntrustedNotation {
  let tag: unknown;
  try {
    tag = cborDecode(new Uint8Array(bytes), { preferMap: true, rejectDuplicateKeys: true } as never);
  } catch (err) {
    throw malformed(`COSE envelope is not valid CBOR: ${(err as Error).message}`);
  }
  if (!(tag instanceof Tag) || Number(tag.tag) !== 18 || !Array.isArray(tag.contents) || tag.contents.length !== 4) throw malformed('COSE envelope is not a COSE_Sign1 (tag 18, four elements)');
  const [protectedBytes, unprotected, payload, signature] = tag.contents as [unknown, unknown, unknown, unknown];
  if (!(protectedBytes instanceof Uint8Array) || !(payload instanceof Uint8Array) || !(signature instanceof Uint8Array) || !(unprotected instanceof Map)) throw malformed('COSE_Sign1 elements have the wrong types');
  let ph: unknown;
  try {
    ph = cborDecode(protectedBytes, { preferMap: true, rejectDuplicateKeys: true } as never);
  } catch (err) {
    throw malformed(`COSE protected header is not valid CBOR: ${(err as Error).message}`);
  }
  if (!(ph instanceof Map)) throw malformed('COSE protected header is not a map');
  const alg = COSE_ALGS[Number(ph.get(1))];
  if (alg === undefined) throw malformed(`COSE alg ${String(ph.get(1))} is not allowed (PS256/384/512, ES256/384/512)`);
  const crit = ph.get(2);
  if (crit !== undefined && (!Array.isArray(crit) || crit.some((c) => typeof c !== 'string'))) throw malformed('COSE crit is not a list of names');
  const x5chain = unprotected.get(33);
  const chain = x5chain instanceof Uint8Array ? [x5chain] : x5chain;
  if (!Array.isArray(chain) || chain.length === 0 || chain.some((c) => !(c instanceof Uint8Array))) throw malformed('COSE has no x5chain certificate chain');
  for (const k of unprotected.keys()) if (k !== 33 && k !== 'io.cncf.notary.signingAgent' && k !== 'io.cncf.notary.timestampSignature') throw malformed(`COSE unprotected header ${String(k)} is not allowed`);
  const time = (v: unknown) => (v instanceof Date ? v.toISOString() : v);
  const names = [...ph.keys()].map((k) => ({ 1: 'alg', 2: 'crit', 3: 'cty' } as Record<string, string>)[String(k)] ?? String(k));
  // Sig_structure = ["Signature1", body_protected, external_aad (empty), payload] (RFC 9052 §4.4).
  const signingInput = Buffer.from(cborEncode(['Signature1', protectedBytes, new Uint8Array(0), payload]));
  return {
    alg,
    critical: (crit as string[] | undefined) ?? [],
    contentType: ph.get(3),
    scheme: ph.get(SCHEME),
    signingTime: time(ph.get(SIGNING_TIME)),
    authenticSigningTime: time(ph.get(AUTHENTIC_SIGNING_TIME)),
    expiry: time(ph.get(EXPIRY)),
    protectedNames: names,
    untrustedPayload: Buffer.from(payload),
    signingInput,
    untrustedSignature: Buffer.from(signature),
    untrustedChain: (chain as Uint8Array[]).map((c) => Buffer.from(c)),
  };
}

/** Critical headers: the spec's required ones are listed, and nothing listed is unknown to us. */
function checkHeaders(n: UntrustedNotation): { scheme: 'notary.x509' | 'notary.x509.signingAuthority'; signingTime: Date; expiry?: Date } {
  if (n.contentType !== NOTATION_PAYLOAD_TYPE) throw malformed(`content type ${JSON.stringify(n.contentType)} is not ${NOTATION_PAYLOAD_TYPE}`);
  if (n.scheme !== 'notary.x509' && n.scheme !== 'notary.x509.signingAuthority') throw malformed(`signing scheme ${JSON.stringify(n.scheme)} is not notary.x509 or notary.x509.signingAuthority`);
  const understood = [SCHEME, EXPIRY, AUTHENTIC_SIGNING_TIME, PLUGIN, PLUGIN_MIN];
  for (const c of n.critical) {
    if (!understood.includes(c)) throw malformed(`critical header "${c}" is not understood`);
    if (!n.protectedNames.includes(c)) throw malformed(`critical header "${c}" is listed but absent`);
  }
  const mustBeCritical = [SCHEME, ...(n.expiry !== undefined ? [EXPIRY] : []), ...(n.scheme === 'notary.x509.signingAuthority' ? [AUTHENTIC_SIGNING_TIME] : []), ...(n.protectedNames.includes(PLUGIN) ? [PLUGIN] : [])];
  for (const c of mustBeCritical) if (!n.critical.includes(c)) throw malformed(`header "${c}" must be marked critical`);
  if (n.protectedNames.includes(PLUGIN)) throw new Refusal('SIGNATURE_INVALID', 'the signature requires a verification plugin, which signet does not run');
  const timeText = n.scheme === 'notary.x509' ? n.signingTime : n.authenticSigningTime;
  const signingTime = typeof timeText === 'string' ? new Date(timeText) : undefined;
  if (signingTime === undefined || Number.isNaN(signingTime.getTime())) throw malformed(`${n.scheme === 'notary.x509' ? SIGNING_TIME : AUTHENTIC_SIGNING_TIME} is missing or not a time`);
  let expiry: Date | undefined;
  if (n.expiry !== undefined) {
    expiry = typeof n.expiry === 'string' ? new Date(n.expiry) : undefined;
    if (expiry === undefined || Number.isNaN(expiry.getTime())) throw malformed(`${EXPIRY} is not a time`);
  }
  return { scheme: n.scheme, signingTime, ...(expiry ? { expiry } : {}) };
}

function keyId(key: KeyObject): string {
  const d = key.asymmetricKeyDetails;
  return key.asymmetricKeyType === 'rsa' ? `rsa-${d?.modulusLength}` : `ec-${d?.namedCurve}`;
}

/** The signature over the signing input, with the leaf certificate's key and the algorithm its key requires. */
function checkIntegrity(n: UntrustedNotation, leaf: X509Certificate): void {
  const expected = ALG_FOR_KEY[keyId(leaf.publicKey)];
  if (expected === undefined) throw new Refusal('SIGNATURE_INVALID', `the signing certificate's key (${keyId(leaf.publicKey)}) is not allowed by the Notary Project specification`);
  if (expected !== n.alg) throw new Refusal('SIGNATURE_INVALID', `alg ${n.alg} does not match the signing key (${keyId(leaf.publicKey)} signs with ${expected})`);
  const hash = `sha${n.alg.slice(2)}`;
  const ok = n.alg.startsWith('PS')
    ? cryptoVerify(hash, n.signingInput, { key: leaf.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(n.alg.slice(2)) / 8 }, n.untrustedSignature)
    : cryptoVerify(hash, n.signingInput, { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' }, n.untrustedSignature);
  if (!ok) throw new Refusal('SIGNATURE_INVALID', 'the Notation signature does not verify with its signing certificate (altered payload or signature)');
}

/** The chain, leaf first, leads to a trust-store certificate; every certificate valid at `times`. */
function checkChain(chain: X509Certificate[], trustStore: readonly X509Certificate[], times: Date[], keyName: string): void {
  if (chain.length > MAX_CHAIN) throw malformed(`certificate chain longer than ${MAX_CHAIN}`);
  const leaf = chain[0]!;
  const eku = leaf.keyUsage;
  if (eku !== undefined && eku.length > 0 && !eku.includes(CODE_SIGNING_EKU)) throw new Refusal('SIGNATURE_INVALID', 'the signing certificate is not for code signing (extended key usage)');
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) throw new Refusal('SIGNATURE_INVALID', `certificate ${i} of the chain is not signed by certificate ${i + 1}`);
  }
  const last = chain[chain.length - 1]!;
  const anchored = trustStore.some((t) => t.fingerprint256 === last.fingerprint256 || (last.checkIssued(t) && last.verify(t.publicKey)));
  if (!anchored) throw new Refusal('SIGNATURE_INVALID', `the certificate chain (leaf ${leaf.subject.replace(/\n/g, ', ')}) does not lead to a certificate of trust store "${keyName}"`);
  for (const c of chain) {
    for (const t of times) {
      if (t < new Date(c.validFrom) || t > new Date(c.validTo)) throw new Refusal('SIGNATURE_INVALID', `certificate ${c.subject.replace(/\n/g, ', ')} is not valid at ${t.toISOString()} (valid ${new Date(c.validFrom).toISOString()} to ${new Date(c.validTo).toISOString()})`);
    }
  }
}

/** `x509.subject: C=US, ST=WA, O=Notary` matches a subject holding at least those attributes; `*` matches any. */
export function identityMatches(identity: string, subject: string): boolean {
  if (identity === '*') return true;
  const m = /^x509\.subject:\s*(.+)$/.exec(identity.trim());
  if (m === null) return false;
  const parse = (dn: string, sep: RegExp) => dn.split(sep).map((p) => p.trim()).filter(Boolean).map((p) => {
    const eq = p.indexOf('=');
    return [p.slice(0, eq).trim().toUpperCase(), p.slice(eq + 1).trim()] as const;
  });
  const have = parse(subject, /\n/);
  return parse(m[1]!, /,(?=\s*[A-Za-z.]+\s*=)/).every(([k, v]) => have.some(([hk, hv]) => hk === k && hv === v));
}

function checkPayload(untrustedPayload: Buffer, expected: ExpectedSubject): void {
  let doc: unknown;
  try {
    doc = parseStrictJson(untrustedPayload.toString('utf8'), 'Notation payload');
    if (!isPlainObject(doc)) throw new Error('Notation payload is not an object');
    requireExactKeys(doc, ['targetArtifact'], [], 'Notation payload');
  } catch (err) {
    throw malformed((err as Error).message);
  }
  const t = (doc as Record<string, unknown>)['targetArtifact'];
  if (!isPlainObject(t)) throw malformed('Notation payload targetArtifact is not an object');
  if (t['digest'] !== expected.digest) throw new Refusal('DIGEST_MISMATCH', `the Notation signature is for ${String(t['digest'])}, not ${expected.digest}`);
  if (t['mediaType'] !== expected.mediaType || t['size'] !== expected.size) {
    throw new Refusal('DIGEST_MISMATCH', `the Notation signature's target (${String(t['mediaType'])}, ${String(t['size'])} bytes) is not the image descriptor (${expected.mediaType}, ${expected.size} bytes)`);
  }
}

export interface NotationOptions {
  trustedIdentities?: readonly string[];
  now?: Date;
}

/** Every check on one Notation envelope, against one trust store. */
export function verifyNotation(untrustedEnvelope: Buffer, envelopeMediaType: string | undefined, expected: ExpectedSubject, trustStore: readonly X509Certificate[], keyName: string, options: NotationOptions = {}): SignatureCheck {
  try {
    const n = envelopeMediaType === 'application/cose' ? parseCose(untrustedEnvelope) : envelopeMediaType === 'application/jose+json' || envelopeMediaType === undefined ? parseJws(untrustedEnvelope) : (() => {
      throw malformed(`envelope media type ${envelopeMediaType} is not application/jose+json or application/cose`);
    })();
    const headers = checkHeaders(n);
    let chain: X509Certificate[];
    try {
      chain = n.untrustedChain.map((der) => new X509Certificate(der));
    } catch (err) {
      throw malformed(`certificate chain does not parse: ${(err as Error).message}`);
    }
    checkIntegrity(n, chain[0]!);
    // Authentic from here on (signed by the leaf); now: is the leaf trusted for this?
    const now = options.now ?? new Date();
    checkChain(chain, trustStore, headers.scheme === 'notary.x509' ? [headers.signingTime, now] : [headers.signingTime], keyName);
    if (headers.expiry && headers.expiry < now) throw new Refusal('SIGNATURE_INVALID', `the Notation signature expired on ${headers.expiry.toISOString()}`);
    const identities = options.trustedIdentities ?? ['*'];
    if (!identities.some((id) => identityMatches(id, chain[0]!.subject))) {
      throw new Refusal('IDENTITY_MISMATCH', `signer ${chain[0]!.subject.replace(/\n/g, ', ')} is not among the trusted identities of "${keyName}"`);
    }
    checkPayload(n.untrustedPayload, expected);
    return { valid: true, signedDigest: expected.digest, annotations: { signingScheme: headers.scheme, signingTime: headers.signingTime.toISOString() } };
  } catch (err) {
    if (err instanceof Refusal) return { valid: false, code: err.code, reason: err.message };
    if (err instanceof SignetError) return { valid: false, code: err.code, reason: err.message };
    return { valid: false, code: 'SIGNATURE_MALFORMED', reason: (err as Error).message };
  }
}

export const notationFormat: SignatureFormat = {
  name: 'notation',
  async verify(signature: UntrustedSignature, key: TrustedKey, expected: ExpectedSubject, options?: { trustedIdentities?: readonly string[] }): Promise<SignatureCheck> {
    if (key.certificates === undefined || key.certificates.length === 0) {
      return { valid: false, code: 'KEY_INVALID', reason: `key "${key.name}" is not a certificate trust store (give certificates: FILE, or a PKCS#11 certificate object)` };
    }
    return verifyNotation(signature.untrustedPayload, signature.envelopeMediaType, expected, key.certificates, key.name, options?.trustedIdentities ? { trustedIdentities: options.trustedIdentities } : {});
  },
};
