import assert from 'node:assert/strict';
import fc from 'fast-check';
import { printable as verifierPrintable } from '../../src/verifier/printable.js';
import { LIMITS, printable, printableJson } from '../../src/util/printable.js';
import { RAW_CONTROL } from '../helpers/raw-control.js';

describe('printable(): untrusted text made safe and bounded for terminals and logs', () => {
  it("is one implementation: the verifier's, re-exported by util", () => {
    assert.equal(printable, verifierPrintable);
  });

  it('escapes C0, DEL, C1, line separators, bidi overrides and lone surrogates visibly', () => {
    const forged = 'rejected\x1b[2K\r\x1b[32mOK: image accepted\x1b[0m\x07\n\x7f\x9b31m\u2028\u202eevil\u2066\u200f\ud800';
    const out = printable(forged);
    assert.doesNotMatch(out, RAW_CONTROL);
    assert.equal(out, 'rejected\\x1b[2K\\r\\x1b[32mOK: image accepted\\x1b[0m\\x07\\n\\x7f\\x9b31m\\u{2028}\\u{202e}evil\\u{2066}\\u{200f}\\u{d800}');
  });

  it('leaves ordinary text, including non-Latin letters and emoji, alone', () => {
    const text = 'registry.example.com/prod/app:1.4 — ключ «release» 署名 🔑 \\x1b (already escaped)';
    assert.equal(printable(text), text);
    assert.equal(printable(text, 1000), text);
  });

  it('cuts in the middle to at most maxLength, saying how much was cut, keeping the start and the end', () => {
    const name = `registry.example.com/${'a'.repeat(1 << 20)}:tag`;
    const reason = `rejected ${name}: no signatures found`;
    const out = printable(reason, LIMITS.reason);
    assert.ok(out.length <= LIMITS.reason, `${out.length}`);
    assert.match(out, /^rejected registry\.example\.com\/a+…\[\d+ characters cut\]…a+:tag: no signatures found$/);
    const cut = Number(/\[(\d+) characters cut\]/.exec(out)![1]);
    assert.equal(out.length - `…[${cut} characters cut]…`.length + cut, reason.length, 'the count is what was left out');
  });

  it('bounds the escaped length, never splitting an escape or a surrogate pair', () => {
    const out = printable('\x1b'.repeat(10_000), 100);
    assert.ok(out.length <= 100);
    assert.match(out, /^(\\x1b)+…\[\d+ characters cut\]…(\\x1b)+$/);
    const emoji = printable('🔑'.repeat(5000), 200);
    assert.ok(emoji.length <= 200);
    assert.doesNotMatch(emoji, RAW_CONTROL, 'no half of a surrogate pair');
    assert.equal(printable('abcdefghij'.repeat(3), 10), 'abcdefghi…');
  });

  it('costs little on a huge input', () => {
    const huge = 'x\x1b'.repeat(8 << 20);
    const started = performance.now();
    for (let i = 0; i < 20; i++) printable(huge, LIMITS.name);
    assert.ok(performance.now() - started < 500, 'only the kept part is escaped');
  });

  it('property: never a raw control character, never longer than maxLength, short safe text unchanged', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 3000 }), fc.integer({ min: 1, max: 2000 }), (s, max) => {
        const out = printable(s, max);
        assert.doesNotMatch(out, RAW_CONTROL);
        assert.ok(out.length <= max);
        if (!RAW_CONTROL.test(s) && s.length <= max) assert.equal(out, s);
      }),
      { numRuns: 500 },
    );
  });
});

describe('printableJson(): JSON output with nothing raw for a terminal, same value', () => {
  it('escapes DEL, C1 and bidi controls as \\u escapes, and the value reads back unchanged', () => {
    const value = { reason: 'a\x1b[31mb\x9b\x7f\u202e\u2028c', n: 1 };
    const text = printableJson(value, 2);
    assert.doesNotMatch(text.replace(/\n/g, ''), RAW_CONTROL, "only the layout's own newlines");
    assert.deepEqual(JSON.parse(text), value);
  });
});
