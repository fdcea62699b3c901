/**
 * Fuzzing strict JSON, the parser under every signed document (cosign manifests and payloads, DSSE,
 * in-toto, Notation JWS, sigstore bundles, referrer manifests): typed errors only, duplicate keys found
 * exactly when an independent parser finds them, nesting bounded — and no input, however deep, may
 * take the process down (a recursive duplicate-key check once did: a second deeply nested document
 * made V8 abort with "RegExpCompiler Allocation failed").
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseDocument } from 'yaml';
import { SignetError } from '../../src/errors.js';
import { MAX_JSON_DEPTH, parseStrictJson } from '../../src/formats/strict-json.js';
import { ROOT } from '../helpers/daemon.js';
import { anyBytes, params, typedOutcome } from '../helpers/fuzz.js';

/** JSON text with keys from a small alphabet (so that repeats happen), escaped or not, nested a little. */
const jsonWithRepeats: fc.Arbitrary<string> = fc.letrec<{ value: string; object: string; array: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('1', 'null', '"s"', 'true', '"a\\"b"', '"x,\\"a\\":1"'),
    tie('object'),
    tie('array'),
  ),
  object: fc
    .array(fc.tuple(fc.constantFrom('a', 'b', 'c', '\\u0061', 'a\\u0000', '__proto__', 'constructor'), tie('value')), { maxLength: 4 })
    .map((entries) => `{${entries.map(([k, v]) => `"${k}":${v}`).join(',')}}`),
  array: fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(' , ')}]`),
})).object;

/** An independent answer for "does some object repeat a key": walk the parsed value with a reviver-free recursive scan of yaml's view. */
function yamlSaysDuplicate(text: string): boolean {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  return doc.errors.some((e) => e.code === 'DUPLICATE_KEY');
}

describe('fuzz: strict JSON', function () {
  this.timeout(30_000);

  it('finds a repeated key exactly when an independent parser does (escapes compared decoded)', () => {
    fc.assert(
      fc.property(jsonWithRepeats, (text) => {
        const r = typedOutcome(() => parseStrictJson(text, 'doc'), [SignetError], text);
        const dup = yamlSaysDuplicate(text);
        if (dup) assert.ok(!r.ok && /duplicate key/.test(r.error.message), `missed a duplicate in ${text}`);
        else assert.ok(r.ok, `refused ${text}: ${r.ok ? '' : r.error.message}`);
      }),
      params(500),
    );
  });

  it('any bytes: typed errors or a value equal to JSON.parse, never deeper than the bound', () => {
    const deep = fc
      .tuple(fc.integer({ min: 1, max: 3000 }), fc.constantFrom('[', '{"a":'))
      .map(([d, open]) => `${open.repeat(d)}1${(open === '[' ? ']' : '}').repeat(d)}`);
    fc.assert(
      fc.property(
        fc.oneof(
          anyBytes.map((b) => b.toString('utf8')),
          deep,
          fc.json({ maxDepth: 6 }),
        ),
        (text) => {
          const r = typedOutcome(() => parseStrictJson(text, 'doc', 'SIGNATURE_MALFORMED', 1 << 20), [SignetError], text);
          if (!r.ok) return;
          assert.deepEqual(r.value, JSON.parse(text));
          let depth = 0;
          let max = 0;
          for (const c of JSON.stringify(r.value) ?? '') {
            if (c === '[' || c === '{') max = Math.max(max, ++depth);
            else if (c === ']' || c === '}') depth--;
          }
          assert.ok(max <= MAX_JSON_DEPTH);
        },
      ),
      params(400),
    );
  });

  it('deeply nested documents, one after another, never abort the process', () => {
    // In a child: V8's abort cannot be caught, so the test watches the exit status.
    const script = `
      const { parseStrictJson } = await import(${JSON.stringify(join(ROOT, 'dist/src/formats/strict-json.js'))});
      for (const d of [1000, 1000, 5000, 20000, 1000000]) {
        for (const open of ['[', '{"a":']) {
          try { parseStrictJson(open.repeat(d) + '1' + (open === '[' ? ']' : '}').repeat(d), 'doc', 'SIGNATURE_MALFORMED', 64 << 20); } catch (e) { if (e.name !== 'SignetError') throw e; }
        }
      }
      console.log('survived');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(
      r.status,
      0,
      `exit ${r.status} ${r.signal ?? ''}: ${r.stderr
        .split('\n')
        .filter((l) => /FATAL|Error/.test(l))
        .slice(0, 3)
        .join(' | ')}`,
    );
    assert.match(r.stdout, /survived/);
  });
});
