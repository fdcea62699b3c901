/** Where trust anchors come from. A new key store is a new KeyProvider, nothing else changes. */
import type { TrustedKey } from './types.js';

/** A key as the policy names it: exactly one of `file` or `pkcs11`. */
export interface KeySpec {
  /** Path of a PEM public key or certificate. */
  file?: string;
  /** RFC 7512 PKCS#11 URI of a public-key (or certificate) object. */
  pkcs11?: string;
  /** Path of a PEM file of trust-store certificates (Notation's trust store). */
  certificates?: string;
  /** Keyless sigstore signers: a trusted root JSON file and the identity the signing certificate must carry. */
  sigstore?: { trustedRoot: string; issuer: string; subject?: string; subjectRegExp?: string };
  /** PKCS#11 only: verify in process with the cached public key (default) or on the token itself. */
  verifyOn?: 'node' | 'token';
}

export type KeyScheme = 'file' | 'pkcs11' | 'sigstore';

export function schemeOf(spec: KeySpec): KeyScheme {
  return spec.pkcs11 !== undefined ? 'pkcs11' : spec.sigstore !== undefined ? 'sigstore' : 'file';
}

export interface KeyProvider {
  readonly scheme: KeyScheme;
  /** Look the key up (again) and return a usable TrustedKey; throws a SignetError naming the key on failure. */
  load(name: string, spec: KeySpec): Promise<TrustedKey>;
  /** Release sessions, modules and the like. */
  close(): Promise<void>;
}
