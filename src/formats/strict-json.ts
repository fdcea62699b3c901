/**
 * Strict JSON for signed payloads: syntax per RFC 8259 (JSON.parse), plus the rules JSON.parse does
 * not enforce — no duplicate object keys (two parsers could disagree on which one wins), a size cap and
 * a nesting cap. Both are checked in one iterative pass over the text: nothing here recurses on
 * untrusted structure (a recursive parser overflows its stack on a few thousand `[`, and V8 can abort
 * the whole process on a later regular expression compiled near the stack limit), and neither does
 * anything downstream, since no value deeper than MAX_JSON_DEPTH gets out.
 */
import { SignetError, type ErrorCode } from '../errors.js';

/** Deepest nesting of arrays and objects accepted; signed documents are a few levels deep. */
export const MAX_JSON_DEPTH = 256;

export function parseStrictJson(untrustedText: string, what: string, code: ErrorCode = 'SIGNATURE_MALFORMED', maxBytes = 1 << 20): unknown {
  if (Buffer.byteLength(untrustedText) > maxBytes) throw new SignetError(code, `${what} is larger than ${maxBytes} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(untrustedText);
  } catch (err) {
    throw new SignetError(code, `${what} is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  checkStructure(untrustedText, what, code);
  return value;
}

/**
 * One pass over text JSON.parse accepted: fails on nesting deeper than MAX_JSON_DEPTH or a key repeated
 * in one object (keys compared after unescaping, as JSON.parse compares them: `"a"` and `"\u0061"` are
 * the same key).
 */
function checkStructure(text: string, what: string, code: ErrorCode): void {
  // One frame per open array or object: the keys seen (objects), and whether the next string is a key.
  const stack: Array<{ keys: Set<string> | undefined; expectKey: boolean }> = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined && top.expectKey) {
        const key = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i);
        if (top.keys.has(key)) throw new SignetError(code, `${what} has a duplicate key ${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key)}`);
        top.keys.add(key);
        top.expectKey = false;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= MAX_JSON_DEPTH) throw new SignetError(code, `${what} is nested deeper than ${MAX_JSON_DEPTH} levels`);
      stack.push({ keys: c === 0x7b ? new Set() : undefined, expectKey: c === 0x7b });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined) top.expectKey = true;
    }
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Fail unless `obj` has exactly the `required` keys, plus any of `optional`. */
export function requireExactKeys(
  obj: Record<string, unknown>,
  required: string[],
  optional: string[],
  where: string,
  code: ErrorCode = 'SIGNATURE_MALFORMED',
): void {
  for (const key of required) {
    if (!(key in obj)) throw new SignetError(code, `${where}: missing "${key}"`);
  }
  for (const key of Object.keys(obj)) {
    if (!required.includes(key) && !optional.includes(key)) throw new SignetError(code, `${where}: unknown field "${key}"`);
  }
}
