/** What the engine answers: the Judgement of the API, plus what the audit line records. */
import type { ErrorCode } from '../errors.js';
import type { FormatName } from '../formats/types.js';

export interface SignatureResult {
  format: FormatName;
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
  decision: 'accept' | 'reject';
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
  policyGeneration: string;
  durationMs: number;
}

export interface VerifyRequest {
  name: string;
  descriptor: { mediaType: string; digest: string; size: number };
}
