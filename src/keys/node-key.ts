/**
 * A TrustedKey backed by a Node KeyObject: verification in process with node:crypto.
 * Used for PEM files and for public keys read once from a PKCS#11 token and cached.
 */
import { createHash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { SignetError } from '../errors.js';
import type { HashAlgorithm, KeyAlgorithm, TrustedKey } from './types.js';

export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') return 'ecdsa-p256';
    if (curve === 'secp384r1' || curve === 'P-384') return 'ecdsa-p384';
    if (curve === 'secp521r1' || curve === 'P-521') return 'ecdsa-p521';
    throw new SignetError('KEY_INVALID', `unsupported EC curve ${curve ?? 'unknown'}`);
  }
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new SignetError('KEY_INVALID', `RSA key of ${bits} bits is too weak (2048 at least)`);
    return 'rsa';
  }
  if (type === 'ed25519') return 'ed25519';
  throw new SignetError('KEY_INVALID', `unsupported key type ${type ?? 'unknown'} (ECDSA P-256/P-384/P-521, RSA, Ed25519)`);
}

/** `sha256:<hex>` of the DER SubjectPublicKeyInfo. */
export function fingerprintOf(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

export function trustedKeyFromKeyObject(name: string, location: string, key: KeyObject): TrustedKey {
  if (key.type !== 'public') throw new SignetError('KEY_INVALID', `key "${name}" at ${location} is not a public key`);
  const algorithm = keyAlgorithmOf(key);
  return {
    name,
    location,
    algorithm,
    fingerprint: fingerprintOf(key),
    async verify(data: Uint8Array, signature: Uint8Array, hash: HashAlgorithm): Promise<boolean> {
      try {
        return cryptoVerify(algorithm === 'ed25519' ? null : hash, data, key, signature);
      } catch {
        // Malformed DER, wrong length and the like: a signature that does not verify.
        return false;
      }
    },
  };
}
