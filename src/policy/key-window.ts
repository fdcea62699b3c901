/** Key lifecycle, a policy rule: revocation and validity windows decide whether a key's signatures count today. Pure; used by the engine, explain and Status. */
import type { ErrorCode } from '../errors.js';
import type { KeyDefinition } from './types.js';

export type KeyUsability = { usable: true; warning?: string } | { usable: false; code: ErrorCode; reason: string };

export function keyUsability(name: string, def: KeyDefinition | undefined, now: Date): KeyUsability {
  if (def === undefined) return { usable: false, code: 'KEY_NOT_FOUND', reason: `key "${name}" is not defined in the policy` };
  if (def.revoked) return { usable: false, code: 'KEY_REVOKED', reason: `key "${name}" is revoked` };
  if (def.notBefore && now < def.notBefore)
    return { usable: false, code: 'KEY_NOT_YET_VALID', reason: `key "${name}" is not valid before ${def.notBefore.toISOString()}` };
  if (def.notAfter && now >= def.notAfter) return { usable: false, code: 'KEY_EXPIRED', reason: `key "${name}" expired on ${def.notAfter.toISOString()}` };
  if (def.notAfter && def.notAfter.getTime() - now.getTime() <= def.expiryWarningMs) {
    const days = Math.max(0, Math.floor((def.notAfter.getTime() - now.getTime()) / 86_400_000));
    return { usable: true, warning: `key "${name}" expires on ${def.notAfter.toISOString()} (in ${days} day${days === 1 ? '' : 's'})` };
  }
  return { usable: true };
}
