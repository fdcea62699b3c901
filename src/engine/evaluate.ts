/**
 * The pure part of a decision: given the signatures found and the keys, which requirement holds.
 * No I/O here except through TrustedKey.verify (which may be an HSM call).
 */
import { SignetError, type ErrorCode } from '../errors.js';
import { cosignFormat } from '../formats/cosign.js';
import type { FormatName, SignatureFormat } from '../formats/types.js';
import type { KeyRing } from '../keys/keyring.js';
import { checkIdentity } from '../policy/identity.js';
import type { SignatureRequirement } from '../policy/types.js';
import type { ImageReference } from '../registry/reference.js';
import type { SignatureResult } from './decision.js';
import { isUnreadable, type DiscoveredSignature } from './sources.js';

export const FORMATS: Record<FormatName, SignatureFormat> = { cosign: cosignFormat };

/** How telling a failure is: a signature that a trusted key made but for the wrong thing says more than "not our key". */
const FAILURE_RANK: Partial<Record<ErrorCode, number>> = {
  IDENTITY_MISMATCH: 6,
  DIGEST_MISMATCH: 5,
  SIGNATURE_MALFORMED: 4,
  SIGNATURE_INVALID: 3,
  KEY_UNAVAILABLE: 2,
  PKCS11_ERROR: 2,
  PIN_INCORRECT: 2,
  KEY_NOT_FOUND: 1,
};

export interface RequirementOutcome {
  satisfied: boolean;
  /** Distinct keys with a valid signature. */
  validKeys: string[];
  results: SignatureResult[];
  /** The most telling failure code, when not satisfied. */
  code?: ErrorCode;
  reason: string;
}

export async function evaluateRequirement(
  requirement: SignatureRequirement,
  image: ImageReference,
  digest: string,
  signatures: DiscoveredSignature[],
  keys: KeyRing,
): Promise<RequirementOutcome> {
  const validKeys = new Set<string>();
  const results: SignatureResult[] = [];
  for (const sig of signatures) {
    if (isUnreadable(sig)) {
      results.push({ format: sig.format, source: sig.source, key: '', valid: false, reason: sig.error.message, code: sig.error.code });
      continue;
    }
    const format = FORMATS[sig.format];
    let best: SignatureResult | undefined;
    for (const keyName of requirement.keys) {
      const result = await checkWithKey(format, sig, keyName, requirement, image, digest, keys);
      if (result.valid) {
        best = result;
        validKeys.add(keyName);
        break;
      }
      if (best === undefined || (FAILURE_RANK[result.code!] ?? 0) > (FAILURE_RANK[best.code!] ?? 0)) best = result;
    }
    results.push(best ?? { format: sig.format, source: sig.source, key: '', valid: false, reason: 'no keys to check against', code: 'KEY_NOT_FOUND' });
  }

  const satisfied = validKeys.size >= requirement.threshold;
  const keyList = requirement.keys.join(', ');
  if (satisfied) {
    return { satisfied, validKeys: [...validKeys], results, reason: `signed by ${[...validKeys].join(', ')}` };
  }
  const failures = results.filter((r) => !r.valid);
  let code: ErrorCode = 'SIGNATURE_NOT_FOUND';
  for (const f of failures) if ((FAILURE_RANK[f.code!] ?? 0) > (FAILURE_RANK[code] ?? 0)) code = f.code!;
  const need = requirement.threshold === 1 ? `a valid signature by ${requirement.keys.length > 1 ? `one of ${keyList}` : keyList}` : `valid signatures by ${requirement.threshold} of ${keyList}`;
  let reason: string;
  if (signatures.length === 0) {
    reason = `no signatures found; needs ${need}`;
  } else {
    const detail = dedupe(failures.map((f) => f.reason)).slice(0, 3).join('; ');
    const have = validKeys.size > 0 ? ` (only ${[...validKeys].join(', ')} valid)` : '';
    reason = `needs ${need}${have}; ${signatures.length} signature(s) found: ${detail}`;
  }
  return { satisfied, validKeys: [...validKeys], results, code, reason };
}

async function checkWithKey(
  format: SignatureFormat,
  sig: Exclude<DiscoveredSignature, { error: unknown }>,
  keyName: string,
  requirement: SignatureRequirement,
  image: ImageReference,
  digest: string,
  keys: KeyRing,
): Promise<SignatureResult> {
  const base = { format: sig.format, source: sig.source, key: keyName };
  const lookup = keys.get(keyName);
  if (lookup.error) return { ...base, valid: false, reason: `key "${keyName}" cannot be used: ${lookup.error.message}`, code: lookup.error.code };
  let check;
  try {
    check = await format.verify(sig, lookup.key, digest);
  } catch (err) {
    // The key itself failed (token removed, module error): refuse, and let the next refresh recover it.
    const error = err instanceof SignetError ? err : new SignetError('KEY_UNAVAILABLE', `key "${keyName}": ${(err as Error).message}`);
    keys.markFailed(keyName, error);
    return { ...base, valid: false, reason: `key "${keyName}" failed: ${error.message}`, code: error.code };
  }
  if (!check.valid) return { ...base, valid: false, reason: check.reason, code: check.code };
  const identity = checkIdentity(requirement.identity, image, check.signedIdentity);
  if (!identity.ok) return { ...base, valid: false, reason: `signature by key "${keyName}": ${identity.reason}`, code: 'IDENTITY_MISMATCH' };
  return { ...base, valid: true, reason: `valid signature by key "${keyName}" for ${check.signedIdentity}` };
}

function dedupe(items: string[]): string[] {
  return [...new Set(items)];
}
