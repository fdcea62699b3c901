/** The trust policy as the engine sees it, after loading, merging and validation. */
import type { KeySpec } from '../keys/provider.js';

export type Action = 'verify' | 'accept' | 'reject';

/** How the signed identity (cosign `docker-reference`) must relate to the image name. */
export type IdentityRule =
  | { type: 'matchRepository' }
  | { type: 'matchExact' };

export interface SignatureRequirement {
  /** Names of keys from the policy's `keys`. */
  keys: string[];
  /** At least this many distinct keys must have a valid signature (default 1). */
  threshold: number;
  identity: IdentityRule;
}

export interface ScopePolicy {
  action: Action;
  /** Present when action is `verify`. */
  signatures?: SignatureRequirement;
}

export interface Policy {
  apiVersion: 'signet/v1';
  keys: Record<string, KeySpec>;
  default: ScopePolicy;
  /** Scope string (`host/repo`, `host`, `*.example.com`, …) to its policy. */
  scopes: Record<string, ScopePolicy>;
  /** Content hash of the merged policy: `sha256:<hex>`; reported in Status and audit lines. */
  generation: string;
  /** The files it was merged from, absolute paths, sorted. */
  files: string[];
}

/** One problem found while loading a policy, located so that an operator can fix it. */
export interface PolicyProblem {
  file: string;
  line?: number;
  column?: number;
  /** `/scopes/registry.example.com~1prod/threshold` style pointer when known. */
  path?: string;
  message: string;
}
