/** Fresh in-memory key pairs for tests, as a Signer plus the PEM public key a policy can trust. */
import { createHash, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { HashAlgorithm, KeyAlgorithm, Signer } from '../../src/keys/types.js';

export interface TestKey {
  signer: Signer;
  privateKey: KeyObject;
  publicPem: string;
  writePublic(path: string): string;
}

export function makeTestKey(algorithm: KeyAlgorithm = 'ecdsa-p256'): TestKey {
  const pair =
    algorithm === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : algorithm === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 3072 })
        : generateKeyPairSync('ec', { namedCurve: algorithm === 'ecdsa-p384' ? 'P-384' : algorithm === 'ecdsa-p521' ? 'P-521' : 'P-256' });
  const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const fingerprint = `sha256:${createHash('sha256')
    .update(pair.publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')}`;
  const signer: Signer = {
    algorithm,
    fingerprint,
    publicKeyPem: () => publicPem,
    sign: async (data: Uint8Array, hash: HashAlgorithm) => cryptoSign(algorithm === 'ed25519' ? null : hash, data, pair.privateKey),
  };
  return {
    signer,
    privateKey: pair.privateKey,
    publicPem,
    writePublic(path: string): string {
      writeFileSync(path, publicPem);
      return path;
    },
  };
}
