/**
 * The earliest instant a verdict could change with the same policy and the same keys: after it, the
 * same question may get another answer, so a cached verdict must not outlive it. Pure.
 *
 * - every key the scope names (signature groups, attestation requirements, rejectIfSignedBy): its
 *   `notBefore` and `notAfter`, and the start of its expiry warning (the decision's warnings change);
 * - the trust-store certificates of those keys (Notation): their notBefore and notAfter;
 * - the attestations the decision counted: `validUntil` the engine set (scan finished + maxAge).
 *
 * Not visible here yet: a Notation signing certificate's own expiry and a signature's
 * `io.cncf.notary.expiry` (the format module does not report them); the TTL bounds those.
 */
import type { Decision } from '../engine/decision.js';
import type { KeySet } from '../keys/keyring.js';
import { resolveScope } from '../policy/scope.js';
import type { Policy } from '../policy/types.js';
import { parseReference } from '../registry/reference.js';

/** Epoch ms; Infinity when nothing known ends the verdict. */
export function verdictLifetime(decision: Decision, policy: Policy, keys: KeySet, now: number): number {
  let until = Infinity;
  const consider = (t: number | undefined): void => {
    if (t !== undefined && Number.isFinite(t) && t > now && t < until) until = t;
  };
  if (decision.validUntil !== undefined) consider(Date.parse(decision.validUntil));
  let scopePolicy;
  try {
    scopePolicy = resolveScope(policy, parseReference(decision.name)).policy;
  } catch {
    return now; // a name the policy cannot speak about: nothing to keep
  }
  const names = new Set<string>([
    ...scopePolicy.signatures.flatMap((g) => g.keys),
    ...scopePolicy.attestations.flatMap((a) => a.keys),
    ...scopePolicy.rejectIfSignedBy,
  ]);
  for (const name of names) {
    const def = policy.keys[name];
    if (def === undefined) continue;
    consider(def.notBefore?.getTime());
    consider(def.notAfter?.getTime());
    if (def.notAfter !== undefined) consider(def.notAfter.getTime() - def.expiryWarningMs);
    for (const cert of keys.get(name).key?.certificates ?? []) {
      consider(Date.parse(cert.validFrom));
      consider(Date.parse(cert.validTo));
    }
  }
  return until;
}
