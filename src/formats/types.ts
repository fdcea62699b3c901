/**
 * The seam between discovery and verification. A format module says where its signatures live
 * (`location`), how to check one against a key (`verify`) and, optionally, how to make one (`sign`).
 * The modules are listed once, in ./index.ts: sources, evaluation and the policy schema's `formats`
 * enum derive from that list. A new envelope is one module plus one line there.
 */
import type { ErrorCode } from '../errors.js';
import type { Signer, TrustedKey } from '../keys/types.js';
import type { FormatName } from './index.js';

export type { FormatName };
export { ALL_FORMATS } from './index.js';

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
  /** For tag formats: the layer's annotations as stored (cosign certificate, chain, bundle…), unchecked. */
  untrustedAnnotations?: Record<string, string>;
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

/** One layer of a tag-stored signature manifest, as the format reads it; nothing about it checked. */
export interface UntrustedTagLayer {
  /** The payload blob's digest. */
  digest: string;
  /** The layer's annotations (strings only). */
  annotations: Record<string, string>;
  /** The raw signature bytes carried beside the payload; throws SIGNATURE_MALFORMED when they cannot be decoded. */
  signature(): Buffer;
}

/** Where a format's signatures are stored, relative to the image they are about. */
export type SignatureLocation =
  | {
      kind: 'tag';
      /** The tag is the digest with `:` made `-` plus this suffix (`sha256-<hex>.sig`). */
      suffix: string;
      /** Size cap of one payload blob. */
      maxPayloadBytes: number;
      /** The signature layers of the manifest at the tag; throws SIGNATURE_MALFORMED for a malformed manifest. */
      readManifest(untrustedManifest: Buffer): UntrustedTagLayer[];
    }
  | {
      kind: 'referrers';
      /** Artifact types (or, for older clients, config media types) of the referrer manifests. */
      artifactTypes: readonly string[];
      /** Media types of the envelope layer. */
      layerMediaTypes: readonly string[];
      /** Size cap of one envelope blob. */
      maxEnvelopeBytes: number;
    };

/** What to sign: the image and the identity to bind it to. */
export interface SignRequest {
  /** `registry/repo` without tag or digest (the in-toto subject name). */
  repositoryName: string;
  /** The docker-reference a simple-signing payload names. */
  dockerReference: string;
  digest: string;
  /** Unsigned-by-policy extras (cosign's `optional`). */
  annotations?: Record<string, string>;
}

/** A signature ready to store where the format's `location` says: the blob and its layer. */
export interface SignedArtifact {
  blob: Buffer;
  mediaType: string;
  annotations?: Record<string, string>;
}

export interface SignatureFormat<N extends string = string> {
  readonly name: N;
  /** Where signatures of this format live (discovery derives its sources from this). */
  readonly location: SignatureLocation;
  /**
   * Check authenticity (signature by `key`) and integrity (the payload is about `expected`).
   * Identity rules are the policy's business and are applied by the caller to `signedIdentity`.
   * Rejects only when the key itself is unusable (HSM gone); a bad signature resolves `valid: false`.
   */
  verify(signature: UntrustedSignature, key: TrustedKey, expected: ExpectedSubject, options?: FormatOptions): Promise<SignatureCheck>;
  /** Make a signature of this format (formats signet only reads leave this out). */
  sign?(request: SignRequest, signer: Signer): Promise<SignedArtifact>;
  /**
   * A cheap look at whether `key` could verify this signature: parsing and in-process crypto only, no
   * network, no token, no certificate path building. It orders candidates (engine/signature-order.ts)
   * so that a flood cannot push a valid signature past `maxSignatures`; it never decides anything.
   * Resolves 'unknown' rather than throwing. Absent: every signature of the format is 'unknown'.
   */
  precheck?(signature: UntrustedSignature, key: PrecheckKey): Promise<Likelihood>;
}

/**
 * What a pre-check found, best first: the key verified the signature's bytes locally (`verifies`; its
 * claims are not checked); the signature names the key or one of its trust anchors (`names-key`,
 * unchecked: a hint, a certificate chain); nothing cheap to tell (`unknown`); the key's own check failed
 * or the signature names other keys only (`other-key`).
 */
export type Likelihood = 'verifies' | 'names-key' | 'unknown' | 'other-key';

/** A policy key as a pre-check sees it: `verifyInProcess` only when checking costs no device round trip. */
export interface PrecheckKey {
  readonly name: string;
  readonly algorithm: TrustedKey['algorithm'];
  readonly fingerprint: string;
  readonly certificates?: TrustedKey['certificates'];
  /** Set for keyless (sigstore identity) keys: their signatures carry a certificate. */
  readonly keyless: boolean;
  verifyInProcess?: TrustedKey['verify'];
}

/** Per-key settings from the policy that some formats use. */
export interface FormatOptions {
  /** Notation: `x509.subject: …` identities the signing certificate must match (default: any). */
  trustedIdentities?: readonly string[];
  /** The decision's time: certificates without trusted-time evidence must be valid then (default: now). */
  now?: Date;
}
