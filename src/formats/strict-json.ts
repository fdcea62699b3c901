/**
 * Strict JSON for signed payloads: syntax per RFC 8259 (JSON.parse), plus the rules JSON.parse does
 * not enforce — no duplicate object keys (two parsers could disagree on which one wins) and a size cap.
 * Duplicate detection uses the yaml package's parser, which reads any JSON text and reports repeated keys.
 */
import { parseDocument } from 'yaml';
import { SignetError, type ErrorCode } from '../errors.js';

export function parseStrictJson(untrustedText: string, what: string, code: ErrorCode = 'SIGNATURE_MALFORMED', maxBytes = 1 << 20): unknown {
  if (Buffer.byteLength(untrustedText) > maxBytes) throw new SignetError(code, `${what} is larger than ${maxBytes} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(untrustedText);
  } catch (err) {
    throw new SignetError(code, `${what} is not valid JSON: ${(err as Error).message}`);
  }
  const doc = parseDocument(untrustedText, { uniqueKeys: true, prettyErrors: false });
  const dup = doc.errors.find((e) => e.code === 'DUPLICATE_KEY');
  if (dup !== undefined) throw new SignetError(code, `${what} has a duplicate key: ${dup.message.split('\n')[0]}`);
  if (doc.errors.length > 0) throw new SignetError(code, `${what} is not strict JSON: ${doc.errors[0]!.message.split('\n')[0]}`);
  return value;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Fail unless `obj` has exactly the `required` keys, plus any of `optional`. */
export function requireExactKeys(obj: Record<string, unknown>, required: string[], optional: string[], where: string, code: ErrorCode = 'SIGNATURE_MALFORMED'): void {
  for (const key of required) {
    if (!(key in obj)) throw new SignetError(code, `${where}: missing "${key}"`);
  }
  for (const key of Object.keys(obj)) {
    if (!required.includes(key) && !optional.includes(key)) throw new SignetError(code, `${where}: unknown field "${key}"`);
  }
}
