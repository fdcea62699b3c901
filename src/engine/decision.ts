/** What the engine answers: the Judgement of the API, plus what the audit line records. */
import type { ErrorCode } from '../errors.js';
import type { FormatName } from '../formats/types.js';

export interface SignatureResult {
  /** The signature format, or `in-toto` for an attestation (DSSE envelope of an in-toto statement). */
  format: FormatName | 'in-toto';
  /** Where the signature was found. */
  source: string;
  /** The key that verified it, or the keys tried (comma-separated) when none did. */
  key: string;
  valid: boolean;
  reason: string;
  code?: ErrorCode;
}

export interface Decision {
  ok: boolean;
  /** `warn`: refused by a scope in warn mode, allowed anyway. */
  decision: 'accept' | 'reject' | 'warn';
  reason: string;
  /** Stable code of a rejection. */
  code?: ErrorCode;
  /** The name as requested. */
  name: string;
  /** The normalised image reference, or the raw name when it did not parse. */
  image: string;
  digest: string;
  mediaType: string;
  /** The scope that matched, `default`, or '' when no policy applied. */
  scope: string;
  signatures: SignatureResult[];
  /** Things to act on soon (a key nearing the end of its window). */
  warnings: string[];
  policyGeneration: string;
  durationMs: number;
  /** Answered from signetd's verdict cache (the audit line and the Judgement say so). */
  cached?: boolean;
  /** RFC 3339: the earliest instant this verdict could change under the same policy and keys, when known (an attestation's maxAge). */
  validUntil?: string;
}

export interface VerifyRequest {
  name: string;
  descriptor: { mediaType: string; digest: string; size: number };
}
