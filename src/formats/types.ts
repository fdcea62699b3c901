/**
 * The seam between discovery and verification. A source finds untrusted signatures for a digest;
 * a format checks one of them against one key. A new envelope is a new SignatureFormat module.
 */
import type { ErrorCode } from '../errors.js';
import type { TrustedKey } from '../keys/types.js';

export type FormatName = 'cosign' | 'sigstore-bundle' | 'notation';
export const ALL_FORMATS: readonly FormatName[] = ['cosign', 'sigstore-bundle', 'notation'];

/** The image a signature must be about: the descriptor containerd resolved. */
export interface ExpectedSubject {
  digest: string;
  mediaType: string;
  size: number;
}

/** One signature as found, nothing about it checked yet. */
export interface UntrustedSignature {
  format: FormatName;
  /** Where it was found, for reasons and audit: `127.0.0.1:5000/app:sha256-….sig#0`. */
  source: string;
  /** The exact signed bytes. */
  untrustedPayload: Buffer;
  /** The raw signature bytes (DER for ECDSA); empty when the signature is inside the payload (envelopes). */
  untrustedSignature: Buffer;
  /** For envelope formats: the media type of the envelope (`application/jose+json`, `application/cose`, bundle). */
  envelopeMediaType?: string;
}

/** What one signature proved, checked against one key. */
export type SignatureCheck =
  | {
      valid: true;
      /**
       * The identity the signer vouched for (cosign `docker-reference`, bundle subject name), now trusted
       * as signed. Absent for formats that bind to the digest only (Notation): identity rules do not apply.
       */
      signedIdentity?: string;
      signedDigest: string;
      annotations: Record<string, unknown>;
    }
  | { valid: false; code: ErrorCode; reason: string };

export interface SignatureFormat {
  readonly name: FormatName;
  /**
   * Check authenticity (signature by `key`) and integrity (the payload is about `expected`).
   * Identity rules are the policy's business and are applied by the caller to `signedIdentity`.
   * Rejects only when the key itself is unusable (HSM gone); a bad signature resolves `valid: false`.
   */
  verify(signature: UntrustedSignature, key: TrustedKey, expected: ExpectedSubject, options?: FormatOptions): Promise<SignatureCheck>;
}

/** Per-key settings from the policy that some formats use. */
export interface FormatOptions {
  /** Notation: `x509.subject: …` identities the signing certificate must match (default: any). */
  trustedIdentities?: readonly string[];
}
