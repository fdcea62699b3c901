/**
 * The key stores this build reads, one module each. The key ring picks a key's store from this list
 * (the one whose field the key sets), Status and explanations print its location, and the policy
 * schema's "exactly one of" check is held to it (test/unit/registries.test.ts).
 *
 * A new key store is one module (a KeyStore, adding its field to KeySpec) and one line here.
 */
import { certificatesKeyStore } from './certificates.js';
import { fileKeyStore } from './file.js';
import { pkcs11KeyStore } from './pkcs11/store.js';
import type { KeySpec, KeyStore } from './provider.js';
import { sigstoreKeyStore } from './sigstore-provider.js';

export const KEY_STORES = [fileKeyStore, pkcs11KeyStore, certificatesKeyStore, sigstoreKeyStore] as const;

export type KeyKind = (typeof KEY_STORES)[number]['kind'];

export const KEY_KINDS: readonly KeyKind[] = KEY_STORES.map((s) => s.kind);

/** The store `spec` names (the first of the list whose field it sets), or undefined when it names none. */
export function keyStoreFor(spec: KeySpec): KeyStore<KeyKind> | undefined {
  return KEY_STORES.find((s) => (spec as Record<string, unknown>)[s.kind] !== undefined);
}
