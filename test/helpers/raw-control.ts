/** Anything a terminal acts on: C0, DEL, C1, line separators, bidi controls, lone surrogates. */
export const RAW_CONTROL =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;

/** Where `text` has a raw control character, for assertion messages; undefined when it has none. */
export function rawControlAt(text: string): string | undefined {
  const m = RAW_CONTROL.exec(text);
  return m === null
    ? undefined
    : `U+${m[0].charCodeAt(0).toString(16).padStart(4, '0')} at ${m.index}: ${JSON.stringify(text.slice(Math.max(0, m.index - 40), m.index + 40))}`;
}
