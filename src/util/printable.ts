/**
 * Untrusted text on its way to a terminal or a log. One implementation, in src/verifier/printable.ts
 * (dependency-free, so the verifier executable can load it); re-exported here for everything else.
 */
export { printable } from '../verifier/printable.js';

/** Bounds for untrusted strings at the edges (UTF-16 code units, after escaping). */
export const LIMITS = {
  /** An image name, tag, key name, signature source: a valid reference is well under 600. */
  name: 512,
  /** A reason or an error message. */
  reason: 4096,
  /** One item of a list: a signature's reason, a warning. */
  detail: 1024,
  /** Any other string field of a log line. */
  field: 4096,
  /** Items of a list (warnings, signatures) kept in one audit line or answer. */
  items: 64,
} as const;

/**
 * JSON text in which nothing a terminal interprets appears raw: JSON.stringify already escapes C0 and
 * lone surrogates; DEL, C1, the line separators and the bidi controls become `\uXXXX` escapes too.
 * The value read back is unchanged.
 */
export function printableJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(
    /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
