/** Where a key lives, as every output prints it (Status, logs, explanations): PINs never included. */
import { keyStoreFor } from './index.js';
import { redactKeyLocation } from './pkcs11/uri.js';
import type { KeySpec } from './provider.js';

export { redactKeyLocation };

/** `file:/etc/signet/keys/a.pub`, `sigstore:/etc/signet/trusted_root.json`, or the PKCS#11 URI without PIN attributes: the key store's own (keys/index.ts). */
export function keyLocation(spec: KeySpec | undefined): string {
  if (spec === undefined) return 'undefined';
  return keyStoreFor(spec)?.location(spec) ?? 'unknown';
}
