/**
 * Key stores: where trust anchors come from. Each store is one module — a KeyStore: the policy field
 * that selects it (`file:`, `pkcs11:`, `certificates:`, `sigstore:`), the key's printable location and a
 * provider that loads its keys — listed once in ./index.ts. The key ring, Status, explanations and the
 * schema's one-of-these check (held to the list by test/unit/registries.test.ts) derive from the list.
 * A new store is one module that adds its field to KeySpec (declaration merging, as ./file.ts does)
 * and one line in ./index.ts.
 */
import type { TrustedKey } from './types.js';
import type { KeyKind } from './index.js';

/**
 * A key as the policy names it: exactly one store's field. The fields are declared by the store
 * modules (`declare module './provider.js' { interface KeySpec { file?: string } }`).
 */
export interface KeySpec {}

/** The store a key spec names: `file`, `pkcs11`, `certificates` or `sigstore` (the list's kinds). */
export type KeyScheme = KeyKind;

export interface KeyProvider {
  readonly scheme: KeyScheme;
  /** Look the key up (again) and return a usable TrustedKey; throws a SignetError naming the key on failure. */
  load(name: string, spec: KeySpec): Promise<TrustedKey>;
  /** Release sessions, modules and the like. */
  close(): Promise<void>;
}

/** Settings a store's provider may take from the daemon's configuration. */
export interface KeyStoreOptions {
  /** The default PKCS#11 module (`pkcs11.module`); a URI's module-path wins. */
  pkcs11Module?: string;
}

export interface KeyStore<K extends string = string> {
  /** The policy field that selects this store: a key with `file: …` is a `file` key. */
  readonly kind: K;
  /** Where a key of this store lives, safe to print (Status, logs, explanations): PINs never included. */
  location(spec: KeySpec): string;
  /** A provider for keys of this store. */
  provider(options: KeyStoreOptions): KeyProvider;
}
