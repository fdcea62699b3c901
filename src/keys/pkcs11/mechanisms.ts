/** Which Cryptoki mechanism signs/verifies for each key algorithm, and how data and signatures are shaped for it. */
import { createHash } from 'node:crypto';
import pkcs11js from './binding.js';
import type { HashAlgorithm, KeyAlgorithm } from '../types.js';
import { derToRaw, rawToDer } from './ecdsa-encoding.js';
import { CKM_EDDSA } from './objects.js';

export interface MechanismPlan {
  mechanism: number;
  /** What the token is given: the hash for CKM_ECDSA, the message otherwise. */
  input: Buffer;
  /** Format signature (DER for ECDSA) → token signature (raw r||s). */
  toToken(signature: Uint8Array): Buffer;
  /** Token signature → format signature. */
  fromToken(signature: Buffer): Buffer;
  /** Room for the token's output. */
  maxSignatureBytes: number;
}

const RSA_MECH: Record<HashAlgorithm, number> = {
  sha256: pkcs11js.CKM_SHA256_RSA_PKCS,
  sha384: pkcs11js.CKM_SHA384_RSA_PKCS,
  sha512: pkcs11js.CKM_SHA512_RSA_PKCS,
};

export function plan(algorithm: KeyAlgorithm, data: Uint8Array, hash: HashAlgorithm): MechanismPlan {
  const same = (s: Uint8Array) => Buffer.from(s);
  switch (algorithm) {
    case 'ecdsa-p256':
    case 'ecdsa-p384':
    case 'ecdsa-p521': {
      const size = algorithm === 'ecdsa-p256' ? 32 : algorithm === 'ecdsa-p384' ? 48 : 66;
      return {
        mechanism: pkcs11js.CKM_ECDSA,
        input: createHash(hash).update(data).digest(),
        toToken: (s) => derToRaw(s, size),
        fromToken: (s) => rawToDer(s),
        maxSignatureBytes: 2 * size,
      };
    }
    case 'rsa':
      return { mechanism: RSA_MECH[hash], input: Buffer.from(data), toToken: same, fromToken: same, maxSignatureBytes: 1024 };
    case 'ed25519':
      return { mechanism: CKM_EDDSA, input: Buffer.from(data), toToken: same, fromToken: same, maxSignatureBytes: 64 };
  }
}
