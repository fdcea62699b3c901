/**
 * DSSE v1 (Dead Simple Signing Envelope, secure-systems-lab/dsse): the envelope cosign stores
 * attestations in. The signature is over the pre-authentication encoding
 *
 *     PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 *
 * where LEN is the decimal byte length without leading zeros — never over the base64 payload.
 *
 * Hash per key, as sigstore's default signer for the key signs (cosign ≥ 2.5 loads keys with
 * LoadDefaultSignerVerifier): ECDSA P-256 → SHA-256, P-384 → SHA-384, P-521 → SHA-512, RSA
 * (PKCS#1 v1.5) → SHA-256, Ed25519 → pure Ed25519. signet signs that way. Older cosign (≤ 2.4)
 * loaded every key with SHA-256, so a P-384/P-521 signature is also accepted over SHA-256 when the
 * default hash does not verify. Not supported: cosign's Ed25519ph (pre-hashed) signatures, which
 * recent cosign makes for Ed25519 keys by default — they do not verify as pure Ed25519.
 */
import { SignetError } from '../errors.js';
import type { HashAlgorithm, KeyAlgorithm, Signer, TrustedKey } from '../keys/types.js';
import { isPlainObject, parseStrictJson, requireExactKeys } from './strict-json.js';

export const DSSE_ENVELOPE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** Envelopes larger than this are refused before parsing. */
export const MAX_ENVELOPE_BYTES = 16 * 1024 * 1024;
/** More signatures than this on one envelope is treated as hostile. */
export const MAX_ENVELOPE_SIGNATURES = 64;

/** The envelope as written: what signEnvelope returns and JSON.stringify serialises. */
export interface DsseEnvelope {
  payloadType: string;
  /** Standard base64 of the payload bytes. */
  payload: string;
  signatures: Array<{ keyid: string; sig: string }>;
}

/** A parsed envelope whose signatures have not been checked yet. */
export interface UntrustedEnvelope {
  payloadType: string;
  untrustedPayload: Buffer;
  signatures: Array<{ keyid?: string; untrustedSig: Buffer }>;
}

/** The DSSE v1 pre-authentication encoding of `payload` under `payloadType`. */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'ascii'), type, Buffer.from(` ${payload.length} `, 'ascii'), payload]);
}

/** The hash signet signs with for a key algorithm (sigstore's default for that key). */
export function dsseHashFor(algorithm: KeyAlgorithm): HashAlgorithm {
  switch (algorithm) {
    case 'ecdsa-p384':
      return 'sha384';
    case 'ecdsa-p521':
      return 'sha512';
    default:
      return 'sha256'; // P-256, RSA; ignored for Ed25519
  }
}

/** Hashes tried when verifying, in order: the default, then SHA-256 for signatures by cosign ≤ 2.4. */
export function dsseVerifyHashesFor(algorithm: KeyAlgorithm): HashAlgorithm[] {
  const first = dsseHashFor(algorithm);
  return first === 'sha256' ? ['sha256'] : [first, 'sha256'];
}

/**
 * Sign `payload` into a one-signature envelope. `keyid` is an unauthenticated hint; cosign writes
 * an empty string for key-based signatures and so does this by default.
 */
export async function signEnvelope(payloadType: string, payload: Uint8Array, signer: Signer, keyid = ''): Promise<DsseEnvelope> {
  const sig = await signer.sign(preAuthEncoding(payloadType, payload), dsseHashFor(signer.algorithm));
  return {
    payloadType,
    payload: Buffer.from(payload).toString('base64'),
    signatures: [{ keyid, sig: Buffer.from(sig).toString('base64') }],
  };
}

/** The envelope's bytes as stored in a `.att` layer. */
export function serializeEnvelope(envelope: DsseEnvelope): Buffer {
  return Buffer.from(JSON.stringify(envelope));
}

/**
 * Base64 as DSSE allows it (standard or URL-safe alphabet, padding optional), strictly: one
 * alphabet per value, no whitespace, no junk, and canonical (no stray bits in the last character).
 */
export function decodeDsseBase64(untrusted: string, what: string): Buffer {
  const standard = /^[A-Za-z0-9+/]*={0,2}$/.test(untrusted);
  const urlSafe = /^[A-Za-z0-9_-]*={0,2}$/.test(untrusted);
  const bare = untrusted.replace(/=+$/, '');
  const padded = untrusted.length !== bare.length;
  if ((!standard && !urlSafe) || bare.length % 4 === 1 || (padded && untrusted.length % 4 !== 0)) {
    throw new SignetError('SIGNATURE_MALFORMED', `${what} is not valid base64`);
  }
  const bytes = Buffer.from(bare, standard ? 'base64' : 'base64url');
  const again = bytes.toString(standard ? 'base64' : 'base64url').replace(/=+$/, '');
  if (again !== bare) throw new SignetError('SIGNATURE_MALFORMED', `${what} is not canonical base64`);
  return bytes;
}

/**
 * Parse an envelope strictly: exactly `payloadType`, `payload`, `signatures` (each `sig` and an
 * optional `keyid`), no duplicate keys, base64 that decodes cleanly, at least one signature.
 * Anything else is SIGNATURE_MALFORMED.
 */
export function parseEnvelope(untrustedBytes: Uint8Array | string, maxBytes = MAX_ENVELOPE_BYTES): UntrustedEnvelope {
  const text = typeof untrustedBytes === 'string' ? untrustedBytes : Buffer.from(untrustedBytes).toString('utf8');
  const doc = parseStrictJson(text, 'DSSE envelope', 'SIGNATURE_MALFORMED', maxBytes);
  const where = 'DSSE envelope';
  if (!isPlainObject(doc)) throw new SignetError('SIGNATURE_MALFORMED', `${where} is not a JSON object`);
  requireExactKeys(doc, ['payloadType', 'payload', 'signatures'], [], where);
  const { payloadType, payload, signatures } = doc;
  if (typeof payloadType !== 'string' || payloadType.length === 0)
    throw new SignetError('SIGNATURE_MALFORMED', `${where}: payloadType is not a non-empty string`);
  if (typeof payload !== 'string') throw new SignetError('SIGNATURE_MALFORMED', `${where}: payload is not a string`);
  if (!Array.isArray(signatures)) throw new SignetError('SIGNATURE_MALFORMED', `${where}: signatures is not an array`);
  if (signatures.length === 0) throw new SignetError('SIGNATURE_MALFORMED', `${where} has no signatures`);
  if (signatures.length > MAX_ENVELOPE_SIGNATURES)
    throw new SignetError('SIGNATURE_MALFORMED', `${where} has ${signatures.length} signatures, more than ${MAX_ENVELOPE_SIGNATURES}`);
  const out: UntrustedEnvelope = { payloadType, untrustedPayload: decodeDsseBase64(payload, `${where} payload`), signatures: [] };
  for (const [i, s] of signatures.entries()) {
    const w = `${where} signature ${i}`;
    if (!isPlainObject(s)) throw new SignetError('SIGNATURE_MALFORMED', `${w} is not an object`);
    requireExactKeys(s, ['sig'], ['keyid'], w);
    if (typeof s['sig'] !== 'string' || s['sig'].length === 0) throw new SignetError('SIGNATURE_MALFORMED', `${w}: sig is not a non-empty string`);
    const keyid = s['keyid'];
    if (keyid !== undefined && typeof keyid !== 'string') throw new SignetError('SIGNATURE_MALFORMED', `${w}: keyid is not a string`);
    out.signatures.push({ ...(keyid !== undefined ? { keyid } : {}), untrustedSig: decodeDsseBase64(s['sig'], `${w} sig`) });
  }
  return out;
}

export interface EnvelopeCheck {
  verified: boolean;
  /** Which signature verified. */
  signatureIndex?: number;
  /** Over which hash (absent for Ed25519, which has none of its own choosing). */
  hash?: HashAlgorithm;
}

/** Check every signature of `envelope` against `key` over the PAE; the first that verifies wins. */
export async function checkEnvelope(envelope: UntrustedEnvelope, key: TrustedKey): Promise<EnvelopeCheck> {
  // A keyless identity has no key of its own to check a signature with.
  if (key.algorithm === 'sigstore-identity') return { verified: false };
  const pae = preAuthEncoding(envelope.payloadType, envelope.untrustedPayload);
  const hashes = key.algorithm === 'ed25519' ? (['sha256'] as HashAlgorithm[]) : dsseVerifyHashesFor(key.algorithm);
  for (const [i, s] of envelope.signatures.entries()) {
    for (const hash of hashes) {
      if (await key.verify(pae, s.untrustedSig, hash)) {
        return key.algorithm === 'ed25519' ? { verified: true, signatureIndex: i } : { verified: true, signatureIndex: i, hash };
      }
    }
  }
  return { verified: false };
}
