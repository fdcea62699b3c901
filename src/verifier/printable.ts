/**
 * Untrusted text (image names from containerd, reasons quoting registry answers, config values) on its
 * way to a terminal or a log: the one implementation, dependency-free so that the verifier can load it
 * (src/util/printable.ts re-exports it for everything else).
 *
 * Control characters — C0 (ESC, BEL, CR, LF…), DEL, C1 (U+0080–U+009F, CSI included), the Unicode
 * line and paragraph separators, the bidirectional marks, embeddings, overrides and isolates, and
 * lone surrogates — become visible escapes (`\x1b`, `\n`, `\u{202e}`), so such text can neither move
 * the cursor, recolour, hide what follows, reorder a line nor forge another one.
 *
 * With `maxLength`, the result is at most that many UTF-16 code units: the middle is cut and the cut
 * says how much was left out (`…[1048000 characters cut]…`), so both the start (what it is about) and
 * the end (usually why) of a long reason stay visible. Only the part kept is ever escaped, so a 1 MiB
 * input costs no more than a short one.
 */

const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'gu');
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const code = c.codePointAt(0)!;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
}

function piece(c: string): string {
  return UNSAFE.test(c) ? escapeOne(c) : c;
}

/** `untrusted` with every control character escaped, and cut in the middle to `maxLength` if given. */
export function printable(untrusted: string, maxLength?: number): string {
  const text = typeof untrusted === 'string' ? untrusted : String(untrusted);
  if (maxLength === undefined || text.length <= maxLength) {
    const escaped = text.replace(UNSAFE_ALL, escapeOne);
    if (maxLength === undefined || escaped.length <= maxLength) return escaped;
  }
  return cut(text, Math.max(1, Math.floor(maxLength)));
}

const isHigh = (u: number): boolean => u >= 0xd800 && u <= 0xdbff;
const isLow = (u: number): boolean => u >= 0xdc00 && u <= 0xdfff;

/** The code point (one or two code units) that starts at `i`. */
function forwardChar(text: string, i: number): string {
  return isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1)) ? text.slice(i, i + 2) : text[i]!;
}

/** The code point that ends just before `j`, not reaching below `floor`. */
function backwardChar(text: string, j: number, floor: number): string {
  return j - 2 >= floor && isLow(text.charCodeAt(j - 1)) && isHigh(text.charCodeAt(j - 2)) ? text.slice(j - 2, j) : text[j - 1]!;
}

function cut(text: string, max: number): string {
  // The longest marker this text can need: reserve it, so the result never exceeds `max`.
  const reserve = `…[${text.length} characters cut]…`.length;
  if (max < reserve + 16) {
    // Too short for a head, a tail and a marker: the head and an ellipsis.
    let head = '';
    for (let i = 0; i < text.length;) {
      const c = forwardChar(text, i);
      const p = piece(c);
      if (head.length + p.length > max - 1) break;
      head += p;
      i += c.length;
    }
    return `${head}…`;
  }
  const budget = max - reserve;
  const tailBudget = Math.floor(budget / 3);
  const headBudget = budget - tailBudget;
  let head = '';
  let i = 0;
  while (i < text.length) {
    const c = forwardChar(text, i);
    const p = piece(c);
    if (head.length + p.length > headBudget) break;
    head += p;
    i += c.length;
  }
  const tail: string[] = [];
  let tailLength = 0;
  let j = text.length;
  while (j > i) {
    const c = backwardChar(text, j, i);
    const p = piece(c);
    if (tailLength + p.length > tailBudget) break;
    tail.push(p);
    tailLength += p.length;
    j -= c.length;
  }
  const end = tail.reverse().join('');
  return j === i ? `${head}${end}` : `${head}…[${j - i} characters cut]…${end}`;
}
