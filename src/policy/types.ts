/** The trust policy as the engine sees it, after loading, merging, validation and defaults. */
import type { FormatName } from '../formats/types.js';
import type { KeySpec } from '../keys/provider.js';

export type Action = 'verify' | 'accept' | 'reject';
export type Mode = 'enforce' | 'warn';

/** How the signed identity (cosign `docker-reference`) must relate to the image name (containers-policy.json(5) names). */
export type IdentityRule =
  | { type: 'matchRepository' }
  | { type: 'matchExact' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string };

/** One group: at least `threshold` distinct keys of `keys` with a valid signature. */
export interface SignatureRequirement {
  keys: string[];
  threshold: number;
  identity: IdentityRule;
}

export interface ScopePolicy {
  action: Action;
  /** `warn`: the decision is computed and recorded, and the image is allowed. */
  mode: Mode;
  /** Every group must hold (e.g. release team AND security team). Empty unless action is verify. */
  signatures: SignatureRequirement[];
  /** A valid signature by any of these keys refuses the image, whatever else is valid. */
  rejectIfSignedBy: string[];
  /** Digests refused in this scope. */
  denyDigests: string[];
  /** Signed attestations that must be present; every requirement must hold. */
  attestations: AttestationRequirement[];
  /** Where signatures are looked for, in this order (default: the registry). */
  signatureSources: SignatureSourceSpec[];
  /** Which signature formats count (default: all). */
  formats: FormatName[];
}

/** The image's registry, or an OCI image layout directory (air-gapped nodes). */
export type SignatureSourceSpec = 'registry' | { ociLayout: string };

/** At least `threshold` distinct keys attested `predicateType` for the digest (cosign `.att`, DSSE). */
export interface AttestationRequirement {
  predicateType: string;
  keys: string[];
  threshold: number;
  /** Vulnerability predicate: maximum age of the scan. */
  maxAgeMs?: number;
  /** Vulnerability predicate: highest severity still allowed. */
  maxSeverity?: 'none' | 'low' | 'medium' | 'high' | 'critical';
  /** Vulnerability predicate: finding IDs that do not count. */
  ignore: string[];
}

/** A trust anchor with its lifecycle. */
export interface KeyDefinition extends KeySpec {
  notBefore?: Date;
  notAfter?: Date;
  /** How long before notAfter to warn; default 30 days. */
  expiryWarningMs: number;
  revoked: boolean;
  /** Notation: identities (`x509.subject: C=US, ST=WA, O=Acme`, or `*`) the signing certificate must match. */
  trustedIdentities?: string[];
}

export interface Policy {
  apiVersion: 'signet/v1';
  keys: Record<string, KeyDefinition>;
  default: ScopePolicy;
  /** Scope string (`host/repo`, `host`, `*.example.com`, …) to its policy. */
  scopes: Record<string, ScopePolicy>;
  /** Digests refused everywhere. */
  denyDigests: string[];
  /** Content hash of the merged policy: `sha256:<hex>`; reported in Status and audit lines. */
  generation: string;
  /** The files it was merged from, absolute paths, sorted. */
  files: string[];
  /** Where each key and scope was defined, for explanations: `file:line`. */
  origins: Record<string, string>;
}

/** One problem found while loading a policy, located so that an operator can fix it. */
export interface PolicyProblem {
  file: string;
  line?: number;
  column?: number;
  /** JSON pointer into the file (`/scopes/registry.example.com~1prod/threshold`) when known. */
  path?: string;
  message: string;
}
