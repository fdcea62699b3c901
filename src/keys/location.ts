/** Where a key lives, as every output prints it (Status, logs, explanations): PINs never included. */
import { redactKeyLocation } from './pkcs11/uri.js';
import type { KeySpec } from './provider.js';

export { redactKeyLocation };

/** `file:/etc/signet/keys/a.pub`, `sigstore:/etc/signet/trusted_root.json`, or the PKCS#11 URI without PIN attributes. */
export function keyLocation(spec: KeySpec | undefined): string {
  if (spec === undefined) return 'undefined';
  if (spec.file !== undefined) return `file:${spec.file}`;
  if (spec.certificates !== undefined) return `file:${spec.certificates}`;
  if (spec.sigstore !== undefined) return `sigstore:${spec.sigstore.trustedRoot}`;
  if (spec.pkcs11 !== undefined) return redactKeyLocation(spec.pkcs11);
  return 'unknown';
}
