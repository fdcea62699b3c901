/**
 * The seams between verification and key storage. Verification code sees only TrustedKey;
 * where the key lives (PEM file, PKCS#11 token) is the provider's business.
 */
export type KeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'ecdsa-p521' | 'rsa' | 'ed25519';
/** What Status shows for a key: its algorithm, or `sigstore-identity` for keyless trust. */
export type TrustedKeyKind = KeyAlgorithm | 'sigstore-identity';
export type HashAlgorithm = 'sha256' | 'sha384' | 'sha512';

import type { X509Certificate } from 'node:crypto';
import type { TlogRequirement } from './tlog.js';

/** A public key that signatures can be checked against. */
export interface TrustedKey {
  /** The name the policy gives the key. */
  readonly name: string;
  /** Where it lives, safe to print: `file:/etc/signet/keys/a.pub` or a PKCS#11 URI without PIN attributes. */
  readonly location: string;
  readonly algorithm: TrustedKeyKind;
  /** `sha256:<hex>` of the DER SubjectPublicKeyInfo. */
  readonly fingerprint: string;
  /**
   * Check `signature` over `data`. For ECDSA the signature is DER (as cosign and most formats carry it);
   * `hash` is ignored for Ed25519 (pure EdDSA). Resolves false for a wrong signature; rejects only when
   * the key cannot be used at all (token gone), with a SignetError naming the key.
   */
  verify(data: Uint8Array, signature: Uint8Array, hash: HashAlgorithm): Promise<boolean>;
  /** `verify` is a round trip to a device (PKCS#11 `verifyOn: token`): never used for cheap pre-checks. */
  readonly verifiesOnDevice?: boolean;
  /**
   * For X.509-based formats (Notation): the trust-store certificates this key stands for. A signer's
   * certificate chain must lead to one of them; `verify` checks with the first one's key.
   */
  readonly certificates?: readonly X509Certificate[];
  /** Private PKI (`certificates` keys): intermediates that may complete a signer's chain to `certificates`. */
  readonly intermediates?: readonly X509Certificate[];
  /** Private PKI: the subject alternative names the signing certificate must carry (each given one must match). */
  readonly certificateIdentity?: CertificateIdentity;
  /** Timestamp authorities whose RFC 3161 countersignatures vouch for when a Notation signature was made. */
  readonly timestampAuthorities?: readonly TimestampAuthority[];
  /** `tlog: required`: the transparency-log keys a cosign signature's Rekor record must verify with. */
  readonly tlog?: TlogRequirement;
  /**
   * For keyless sigstore bundles: the trusted root (Fulcio CAs, Rekor logs) and the signer identity the
   * policy requires. Such a key has no public key of its own; `verify` always resolves false.
   */
  readonly sigstore?: SigstoreIdentity;
}

/** One timestamp authority a key trusts: a `tsaCertificates` file, or one of a trusted root's `timestampAuthorities`. */
export interface TimestampAuthority {
  /** The authority's signing certificate first, then its chain; or only CA certificates (its roots), the token's certificates leading to one. */
  readonly certChain: readonly X509Certificate[];
  /** When its timestamps count (a trusted root's `validFor`); a `tsaCertificates` file sets none. */
  readonly validFor?: { readonly start: Date; readonly end?: Date };
  /** Where it came from, for reasons: `tsaCertificates /etc/…` or `trusted root /etc/… (timestamp authority 0)`. */
  readonly source: string;
}

export interface CertificateIdentity {
  /** An rfc822Name SAN, exactly. */
  subjectEmail?: string;
  /** A dNSName SAN, case-insensitively. */
  subjectHostname?: string;
  /** A uniformResourceIdentifier SAN, exactly. */
  subjectURI?: string;
}

export interface SigstoreIdentity {
  /** The sigstore trusted root (`trusted_root.json`), parsed and checked to be usable. */
  trustedRoot: unknown;
  issuer: string;
  subject?: string;
  /** Matched against the whole subject. */
  subjectRegExp?: string;
}

/** Per-key state for Status and audit. */
export interface KeyStatus {
  name: string;
  location: string;
  algorithm?: TrustedKeyKind;
  fingerprint?: string;
  lastRefresh?: string;
  lastError?: string;
}

/** Something that signs with a private key it may never reveal (HSM) or holds in memory (PEM). */
export interface Signer {
  readonly algorithm: KeyAlgorithm;
  readonly fingerprint: string;
  /** The public key as PEM SubjectPublicKeyInfo. */
  publicKeyPem(): string;
  /** Sign `data`; ECDSA signatures come back DER-encoded. */
  sign(data: Uint8Array, hash: HashAlgorithm): Promise<Uint8Array>;
  close?(): Promise<void>;
}
