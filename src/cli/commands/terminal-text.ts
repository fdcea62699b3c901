/**
 * Text that came from elsewhere (config files, containerd's and signetd's errors, registry names) made
 * safe for a terminal line: C0/C1 control characters (escape sequences, carriage returns, newlines),
 * DEL, and the Unicode line separators and bidirectional overrides become visible escapes (`\x1b`,
 * `\n`, `\u{202e}`), so such text can neither move the cursor, recolour, hide what follows, nor forge
 * another line.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (c) => {
    if (NAMED[c]) return NAMED[c]!;
    const code = c.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}
