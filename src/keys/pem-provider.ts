import { SignetError } from '../errors.js';
import { loadCertificateKey, loadPemKey } from './pem.js';
import type { KeyProvider, KeySpec } from './provider.js';
import type { TrustedKey } from './types.js';

export class PemKeyProvider implements KeyProvider {
  readonly scheme = 'file' as const;

  async load(name: string, spec: KeySpec): Promise<TrustedKey> {
    if (spec.certificates !== undefined) return loadCertificateKey(name, spec.certificates);
    if (spec.file === undefined) throw new SignetError('KEY_INVALID', `key "${name}" has no file`);
    return loadPemKey(name, spec.file);
  }

  async close(): Promise<void> {}
}
