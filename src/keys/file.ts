/** `file:` keys: a PEM public key (or a certificate, whose public key is used) read from a file. */
import { SignetError } from '../errors.js';
import { loadPemKey } from './pem.js';
import type { KeySpec, KeyStore } from './provider.js';

declare module './provider.js' {
  interface KeySpec {
    /** Path of a PEM public key or certificate. */
    file?: string;
  }
}

export const fileKeyStore: KeyStore<'file'> = {
  kind: 'file',
  location: (spec: KeySpec) => `file:${spec.file}`,
  provider: () => ({
    scheme: 'file',
    async load(name, spec) {
      if (spec.file === undefined) throw new SignetError('KEY_INVALID', `key "${name}" has no file`);
      return loadPemKey(name, spec.file);
    },
    async close() {},
  }),
};
