/**
 * Typed errors with stable codes. Tests assert on `code`; operators grep for it in logs.
 * Messages must never contain secrets (PINs, passphrases, tokens).
 */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_REFERENCE'
  | 'CONFIG_INVALID'
  | 'POLICY_INVALID'
  | 'POLICY_NOT_FOUND'
  | 'POLICY_REJECTED'
  | 'DIGEST_DENIED'
  | 'KEY_REVOKED'
  | 'KEY_EXPIRED'
  | 'KEY_NOT_YET_VALID'
  | 'SIGNED_BY_REJECTED_KEY'
  | 'ATTESTATION_NOT_FOUND'
  | 'ATTESTATION_REJECTED'
  | 'KEY_NOT_FOUND'
  | 'KEY_AMBIGUOUS'
  | 'KEY_INVALID'
  | 'KEY_UNAVAILABLE'
  | 'PIN_INCORRECT'
  /** A token operation needs the user PIN and none was given (pin-source=, pin-value=, SIGNET_PKCS11_PIN). */
  | 'PIN_REQUIRED'
  | 'PKCS11_ERROR'
  | 'SIGNATURE_INVALID'
  | 'SIGNATURE_MALFORMED'
  | 'SIGNATURE_NOT_FOUND'
  | 'SIGNATURE_EXPIRED'
  | 'CERTIFICATE_INVALID'
  | 'CERTIFICATE_UNTRUSTED'
  | 'DIGEST_MISMATCH'
  | 'IDENTITY_MISMATCH'
  | 'REGISTRY_UNAUTHORIZED'
  | 'REGISTRY_DENIED'
  | 'REGISTRY_NOT_FOUND'
  | 'REGISTRY_UNAVAILABLE'
  | 'REGISTRY_TIMEOUT'
  /** A decision's bound passed without a verdict: the engine's (verifyTimeout) while verifying, a slow key or token; NRI's creation deadline. Lookups still under way at the bound are REGISTRY_TIMEOUT. */
  | 'DECISION_TIMEOUT'
  | 'REGISTRY_PROTOCOL'
  | 'BLOB_TOO_LARGE'
  | 'SCAN_REPORT_INVALID'
  | 'SCAN_GATE_FAILED'
  | 'CONTAINERD_UNAVAILABLE'
  | 'CONTAINERD_ERROR'
  | 'IMAGE_UNNAMED'
  | 'AUDIT_UNAVAILABLE'
  | 'INTERNAL';

export class SignetError extends Error {
  readonly code: ErrorCode;
  override readonly cause?: unknown;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message);
    this.name = 'SignetError';
    this.code = code;
    if (options.cause !== undefined) this.cause = options.cause;
  }
}

export function isSignetError(err: unknown, code?: ErrorCode): err is SignetError {
  return err instanceof SignetError && (code === undefined || err.code === code);
}

/** A one-line description of any thrown value, for reasons and logs. */
export function describeError(err: unknown): string {
  if (err instanceof SignetError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Refusals that mean "could not check" (registry or key unavailable, timeouts, no policy, the audit
 * log failing), not "not allowed": never cached as a verdict, never a reason to remove an image.
 */
export const COULD_NOT_CHECK: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'REGISTRY_UNAVAILABLE',
  'REGISTRY_TIMEOUT',
  'DECISION_TIMEOUT',
  'REGISTRY_UNAUTHORIZED',
  'REGISTRY_DENIED',
  'REGISTRY_PROTOCOL',
  'KEY_UNAVAILABLE',
  'PKCS11_ERROR',
  'PIN_INCORRECT',
  'PIN_REQUIRED',
  'POLICY_NOT_FOUND',
  'INTERNAL',
  'CONTAINERD_UNAVAILABLE',
  'CONTAINERD_ERROR',
  'AUDIT_UNAVAILABLE',
]);

/** A refusal whose code says the image could not be checked. */
export function couldNotCheck(decision: { ok: boolean; code?: ErrorCode | undefined }): boolean {
  return !decision.ok && decision.code !== undefined && COULD_NOT_CHECK.has(decision.code);
}
