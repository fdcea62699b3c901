/**
 * Untrusted text (image names from containerd, reasons quoting registry answers, config values) on
 * its way to a terminal or a text log: control characters, including ESC and the C1 range, and
 * Unicode line/bidi controls become visible escapes so nothing can move the cursor, recolour,
 * hide text or forge a line.
 */
export function printable(untrusted: string): string {
  return untrusted.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
