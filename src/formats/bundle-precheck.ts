/**
 * The sigstore-bundle pre-check (SignatureFormat.precheck): what a bundle says about its signer, read
 * without the sigstore libraries. A key-based DSSE bundle is checked with the key in process (the DSSE
 * signature over the pre-authentication encoding); a keyless one only says "a certificate"; the key
 * hint, unsigned, only says which key the bundle claims. Orders candidates; never decides.
 */
import { dsseHashFor, preAuthEncoding } from './dsse.js';
import { isPlainObject } from './strict-json.js';
import type { Likelihood, PrecheckKey, UntrustedSignature } from './types.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function base64(untrusted: unknown): Buffer | undefined {
  return typeof untrusted === 'string' && BASE64.test(untrusted) ? Buffer.from(untrusted, 'base64') : undefined;
}

/** A key hint as signet (`sha256:<hex>`) or others (hex, base64 of the digest) write the key's fingerprint. */
function hintNames(hint: string, fingerprint: string): boolean {
  const hex = fingerprint.replace(/^sha256:/, '');
  return hint === fingerprint || hint === hex || hint === Buffer.from(hex, 'hex').toString('base64');
}

export async function precheckBundle(signature: UntrustedSignature, key: PrecheckKey): Promise<Likelihood> {
  let doc: unknown;
  try {
    doc = JSON.parse(signature.untrustedPayload.toString('utf8'));
  } catch {
    return 'unknown'; // verification will say what is wrong with it
  }
  const material = isPlainObject(doc) ? doc['verificationMaterial'] : undefined;
  if (!isPlainObject(material)) return 'unknown';
  if (material['certificate'] !== undefined || material['x509CertificateChain'] !== undefined) return key.keyless ? 'names-key' : 'other-key';
  if (key.keyless) return 'other-key';
  const publicKey = material['publicKey'];
  const hint = isPlainObject(publicKey) && typeof publicKey['hint'] === 'string' ? publicKey['hint'] : undefined;
  const envelope = isPlainObject(doc) ? doc['dsseEnvelope'] : undefined;
  const first = isPlainObject(envelope) && Array.isArray(envelope['signatures']) ? (envelope['signatures'] as unknown[])[0] : undefined;
  const payload = isPlainObject(envelope) ? base64(envelope['payload']) : undefined;
  const sig = isPlainObject(first) ? base64(first['sig']) : undefined;
  const payloadType = isPlainObject(envelope) ? envelope['payloadType'] : undefined;
  if (key.verifyInProcess && payload !== undefined && sig !== undefined && typeof payloadType === 'string') {
    const pae = preAuthEncoding(payloadType, payload);
    // The hash signet and cosign ≥ 2.5 sign with, then SHA-256 (older cosign), as ./dsse.ts verifies.
    for (const hash of new Set([dsseHashFor(key.algorithm === 'sigstore-identity' ? 'ecdsa-p256' : key.algorithm), 'sha256' as const])) {
      if (await key.verifyInProcess(pae, sig, hash)) return 'verifies';
    }
    return 'other-key';
  }
  if (hint !== undefined) return hintNames(hint, key.fingerprint) ? 'names-key' : 'unknown';
  return 'unknown';
}
