/** Signing with a PEM PKCS#8 private key file (passphrase from SIGNET_KEY_PASSPHRASE when encrypted). */
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { SignetError } from '../errors.js';
import { fingerprintOf, keyAlgorithmOf } from './node-key.js';
import type { HashAlgorithm, KeyAlgorithm, Signer } from './types.js';

export class PemSigner implements Signer {
  readonly algorithm: KeyAlgorithm;
  readonly fingerprint: string;
  private readonly publicKey: KeyObject;

  private constructor(private readonly privateKey: KeyObject) {
    this.publicKey = createPublicKey(privateKey);
    this.algorithm = keyAlgorithmOf(this.publicKey);
    this.fingerprint = fingerprintOf(this.publicKey);
  }

  static open(path: string, passphrase = process.env['SIGNET_KEY_PASSPHRASE']): PemSigner {
    let pem: string;
    try {
      pem = readFileSync(path, 'utf8');
    } catch (err) {
      throw new SignetError('KEY_NOT_FOUND', `cannot read key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!pem.includes('PRIVATE KEY-----'))
      throw new SignetError('KEY_INVALID', `${path} is not a PEM private key (PKCS#8 "BEGIN PRIVATE KEY" or "BEGIN ENCRYPTED PRIVATE KEY")`);
    const encrypted = pem.includes('ENCRYPTED PRIVATE KEY');
    if (encrypted && !passphrase) throw new SignetError('KEY_INVALID', `${path} is encrypted: set SIGNET_KEY_PASSPHRASE`);
    try {
      return new PemSigner(createPrivateKey({ key: pem, format: 'pem', ...(encrypted ? { passphrase } : {}) }));
    } catch (err) {
      throw new SignetError(
        'KEY_INVALID',
        encrypted ? `${path}: cannot decrypt the key (wrong SIGNET_KEY_PASSPHRASE?)` : `${path}: not a usable private key: ${(err as Error).message}`,
      );
    }
  }

  publicKeyPem(): string {
    return this.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  async sign(data: Uint8Array, hash: HashAlgorithm): Promise<Uint8Array> {
    return cryptoSign(this.algorithm === 'ed25519' ? null : hash, data, this.privateKey);
  }
}
