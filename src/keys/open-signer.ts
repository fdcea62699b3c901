/** `--key KEYREF` for signing: a PKCS#11 URI (key stays on the token) or a PEM PKCS#8 file. */
import { PemSigner } from './pem-signer.js';
import { Pkcs11Signer } from './pkcs11/signer.js';
import type { Signer } from './types.js';

export async function openSigner(keyRef: string, options: { pkcs11Module?: string } = {}): Promise<Signer> {
  if (keyRef.startsWith('pkcs11:')) return Pkcs11Signer.open(keyRef, options.pkcs11Module !== undefined ? { module: options.pkcs11Module } : {});
  return PemSigner.open(keyRef);
}
