/** Scope resolution: most specific wins, as containers-policy.json(5) says. Pure. */
import type { ImageReference } from '../registry/reference.js';
import { scopeCandidates } from './scope-syntax.js';
import type { Policy, ScopePolicy } from './types.js';

export interface ScopeMatch {
  /** The matched scope, or `default`. */
  scope: string;
  policy: ScopePolicy;
  /** Every scope tried, in order, ending with `default`: explains why the match beat the others. */
  candidates: string[];
}

export function resolveScope(policy: Policy, ref: ImageReference): ScopeMatch {
  const candidates = scopeCandidates(ref);
  for (const c of candidates) {
    const p = policy.scopes[c];
    if (p !== undefined) return { scope: c, policy: p, candidates: [...candidates, 'default'] };
  }
  return { scope: 'default', policy: policy.default, candidates: [...candidates, 'default'] };
}
