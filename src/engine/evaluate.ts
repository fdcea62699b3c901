/**
 * The pure part of a decision: given the signatures found and the keys, which requirements hold.
 * No I/O here except through TrustedKey.verify (which may be an HSM call).
 */
import { SignetError, type ErrorCode } from '../errors.js';
import { formatNamed } from '../formats/index.js';
import type { ExpectedSubject, SignatureCheck, UntrustedSignature } from '../formats/types.js';
import type { KeySet } from '../keys/keyring.js';
import { checkIdentity } from '../policy/identity.js';
import type { KeyDefinition, SignatureRequirement } from '../policy/types.js';
import type { ImageReference } from '../registry/reference.js';
import type { SignatureResult } from './decision.js';
import { keyUsability } from '../policy/key-window.js';
import { isUnreadable, type DiscoveredSignature } from './sources.js';

/**
 * How telling a failure is: a signature a trusted key made for the wrong thing says more than "not our
 * key". The one ranking of the engine: signature and attestation requirements both pick their most
 * telling failure with it (an attestation a trusted key made about this digest that fails its checks
 * ranks with a signature for the wrong identity: both are the key holder's own statement, refused).
 */
const FAILURE_RANK: Partial<Record<ErrorCode, number>> = {
  ATTESTATION_REJECTED: 9,
  IDENTITY_MISMATCH: 9,
  DIGEST_MISMATCH: 8,
  KEY_REVOKED: 7,
  KEY_EXPIRED: 7,
  KEY_NOT_YET_VALID: 7,
  SIGNATURE_MALFORMED: 5,
  SIGNATURE_INVALID: 4,
  KEY_UNAVAILABLE: 3,
  PKCS11_ERROR: 3,
  PIN_INCORRECT: 3,
  KEY_NOT_FOUND: 2,
};

/** 0 for no code, 1 for a code not ranked above, else its rank: higher is more telling. */
export const failureRank = (code: ErrorCode | undefined): number => (code === undefined ? 0 : (FAILURE_RANK[code] ?? 1));

/**
 * The most telling code among `failures`; `fallback` (SIGNATURE_NOT_FOUND, ATTESTATION_NOT_FOUND) unless
 * one ranks above it (a code not in the ranking does not). The first of equal rank wins.
 */
export function mostTellingCode(failures: ReadonlyArray<{ code?: ErrorCode }>, fallback: ErrorCode): ErrorCode {
  let code = fallback;
  let best = failureRank(fallback);
  for (const f of failures) {
    if (failureRank(f.code) > best) {
      best = failureRank(f.code);
      code = f.code!;
    }
  }
  return code;
}

export interface EvaluationContext {
  image: ImageReference;
  digest: string;
  /** The descriptor containerd resolved (envelope formats compare all of it). */
  subject: ExpectedSubject;
  /** The keys of the same policy generation as keyDefinitions. */
  keys: KeySet;
  keyDefinitions: Record<string, KeyDefinition>;
  now: Date;
  /** The decision's deadline: once it has passed, no key is asked again (the check throws its reason). */
  signal?: AbortSignal;
  /**
   * Checks already made in this decision, per signature and key: a signature held against the
   * requirements twice (an early look at what the first source found, then everything) or by several
   * requirements naming one key is verified once.
   */
  checked?: WeakMap<UntrustedSignature, Map<string, Promise<SignatureCheck>>>;
}

export interface RequirementOutcome {
  satisfied: boolean;
  /** Distinct keys with a valid signature. */
  validKeys: string[];
  results: SignatureResult[];
  /** The most telling failure code, when not satisfied. */
  code?: ErrorCode;
  reason: string;
  warnings: string[];
}

/** Authenticity and integrity of one signature with one key (identity is the caller's business). */
function checkAuthentic(sig: UntrustedSignature, keyName: string, ctx: EvaluationContext): Promise<SignatureCheck> {
  if (ctx.checked === undefined) return checkAuthenticOnce(sig, keyName, ctx);
  let byKey = ctx.checked.get(sig);
  if (byKey === undefined) ctx.checked.set(sig, (byKey = new Map()));
  let check = byKey.get(keyName);
  if (check === undefined) byKey.set(keyName, (check = checkAuthenticOnce(sig, keyName, ctx)));
  return check;
}

async function checkAuthenticOnce(sig: UntrustedSignature, keyName: string, ctx: EvaluationContext): Promise<SignatureCheck> {
  ctx.signal?.throwIfAborted();
  const lookup = ctx.keys.get(keyName);
  if (lookup.error) return { valid: false, code: lookup.error.code, reason: `key "${keyName}" cannot be used: ${lookup.error.message}` };
  try {
    // The formats of the list (formats/index.ts); a signature in another format is reported, never counted.
    const format = formatNamed(sig.format);
    if (format === undefined) return { valid: false, code: 'SIGNATURE_MALFORMED', reason: `${sig.format} signatures cannot be verified by this build` };
    const trustedIdentities = ctx.keyDefinitions[keyName]?.trustedIdentities;
    return await format.verify(sig, lookup.key, ctx.subject, { ...(trustedIdentities ? { trustedIdentities } : {}), now: ctx.now });
  } catch (err) {
    // The key itself failed (token removed, module error): refuse, and let the next refresh recover it.
    const error = err instanceof SignetError ? err : new SignetError('KEY_UNAVAILABLE', `key "${keyName}": ${(err as Error).message}`);
    ctx.keys.markFailed(keyName, error);
    return { valid: false, code: error.code, reason: `key "${keyName}" failed: ${error.message}` };
  }
}

export async function evaluateRequirement(
  requirement: SignatureRequirement,
  signatures: DiscoveredSignature[],
  ctx: EvaluationContext,
): Promise<RequirementOutcome> {
  const validKeys = new Set<string>();
  const results: SignatureResult[] = [];
  const warnings = new Set<string>();
  for (const sig of signatures) {
    if (isUnreadable(sig)) {
      results.push({ format: sig.format, source: sig.source, key: '', valid: false, reason: sig.error.message, code: sig.error.code });
      continue;
    }
    let best: SignatureResult | undefined;
    for (const keyName of requirement.keys) {
      const base = { format: sig.format, source: sig.source, key: keyName };
      const check = await checkAuthentic(sig, keyName, ctx);
      let result: SignatureResult;
      if (!check.valid) {
        result = { ...base, valid: false, reason: check.reason, code: check.code };
      } else {
        const usable = keyUsability(keyName, ctx.keyDefinitions[keyName], ctx.now);
        // Formats that bind to the digest only (Notation) carry no identity to check.
        const identity = check.signedIdentity === undefined ? ({ ok: true } as const) : checkIdentity(requirement.identity, ctx.image, check.signedIdentity);
        if (!usable.usable) result = { ...base, valid: false, reason: `signature by key "${keyName}" does not count: ${usable.reason}`, code: usable.code };
        else if (!identity.ok) result = { ...base, valid: false, reason: `signature by key "${keyName}": ${identity.reason}`, code: 'IDENTITY_MISMATCH' };
        else {
          if (usable.warning) warnings.add(usable.warning);
          result = {
            ...base,
            valid: true,
            reason: `valid ${sig.format} signature by key "${keyName}"${check.signedIdentity ? ` for ${check.signedIdentity}` : ''}`,
          };
        }
      }
      if (result.valid) {
        best = result;
        validKeys.add(keyName);
        break;
      }
      if (best === undefined || failureRank(result.code) > failureRank(best.code)) best = result;
    }
    results.push(best ?? { format: sig.format, source: sig.source, key: '', valid: false, reason: 'no keys to check against', code: 'KEY_NOT_FOUND' });
  }

  const satisfied = validKeys.size >= requirement.threshold;
  if (satisfied) return { satisfied, validKeys: [...validKeys], results, reason: `signed by ${[...validKeys].join(', ')}`, warnings: [...warnings] };
  const failures = results.filter((r) => !r.valid);
  const code = mostTellingCode(failures, 'SIGNATURE_NOT_FOUND');
  const keyList = requirement.keys.join(', ');
  const need =
    requirement.threshold === 1
      ? `a valid signature by ${requirement.keys.length > 1 ? `one of ${keyList}` : keyList}`
      : `valid signatures by ${requirement.threshold} of ${keyList}`;
  let reason: string;
  if (signatures.length === 0) {
    reason = `no signatures found; needs ${need}`;
  } else {
    const detail = [...new Set(failures.map((f) => f.reason))].slice(0, 3).join('; ');
    const have = validKeys.size > 0 ? ` (only ${[...validKeys].join(', ')} valid)` : '';
    reason = `needs ${need}${have}; ${signatures.length} signature(s) found${detail ? `: ${detail}` : ''}`;
  }
  return { satisfied, validKeys: [...validKeys], results, code, reason, warnings: [...warnings] };
}

const NOT_SIGNED_BY_KEY: ErrorCode[] = ['SIGNATURE_INVALID', 'SIGNATURE_MALFORMED', 'DIGEST_MISMATCH'];

/**
 * The keys among `rejectKeys` that made a valid signature for this digest (identity does not matter),
 * and those that could not be checked at all (the caller fails closed on them).
 */
export async function signedByRejectedKeys(
  rejectKeys: string[],
  signatures: DiscoveredSignature[],
  ctx: EvaluationContext,
): Promise<{ hits: string[]; unchecked: string[] }> {
  const hits = new Set<string>();
  const unchecked = new Set<string>();
  for (const sig of signatures) {
    if (isUnreadable(sig)) continue;
    for (const keyName of rejectKeys) {
      if (hits.has(keyName)) continue;
      const check = await checkAuthentic(sig, keyName, ctx);
      if (check.valid) hits.add(keyName);
      else if (!NOT_SIGNED_BY_KEY.includes(check.code)) unchecked.add(keyName);
    }
  }
  return { hits: [...hits], unchecked: [...unchecked] };
}
