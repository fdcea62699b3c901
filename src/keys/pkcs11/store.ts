/**
 * `pkcs11:` keys: a public-key or certificate object on a PKCS#11 token (RFC 7512 URI), verified in
 * process with the cached public key or, with `verifyOn: token`, on the token (./provider.ts). The
 * provider and the PKCS#11 binding are loaded when a key of this store is first loaded.
 */
import type { KeyProvider, KeySpec, KeyStore, KeyStoreOptions } from '../provider.js';
import type { TrustedKey } from '../types.js';
import { redactKeyLocation } from './uri.js';

declare module '../provider.js' {
  interface KeySpec {
    /** RFC 7512 PKCS#11 URI of a public-key (or certificate) object. */
    pkcs11?: string;
    /** PKCS#11 only: verify in process with the cached public key (default) or on the token itself. */
    verifyOn?: 'node' | 'token';
  }
}

function lazyProvider(options: KeyStoreOptions): KeyProvider {
  let provider: Promise<KeyProvider> | undefined;
  const open = () =>
    (provider ??= import('./provider.js').then(
      ({ Pkcs11KeyProvider }) => new Pkcs11KeyProvider(options.pkcs11Module !== undefined ? { defaultModule: options.pkcs11Module } : {}),
    ));
  return {
    scheme: 'pkcs11',
    load: async (name: string, spec: KeySpec): Promise<TrustedKey> => (await open()).load(name, spec),
    close: async () => {
      if (provider !== undefined) await (await provider).close();
    },
  };
}

export const pkcs11KeyStore: KeyStore<'pkcs11'> = {
  kind: 'pkcs11',
  location: (spec: KeySpec) => redactKeyLocation(spec.pkcs11 ?? ''),
  provider: lazyProvider,
};
