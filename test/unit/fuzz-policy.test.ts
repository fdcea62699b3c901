/**
 * Fuzzing the policy loader's parse functions (policy files are text an operator, a ConfigMap or
 * configuration management writes; a broken or hostile one must be refused with a located reason):
 * typed errors only, no hang, and a policy that loads is coherent — every key a requirement names is
 * defined, thresholds are reachable, and nothing refused by the schema slips through as an acceptance.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { SignetError } from '../../src/errors.js';
import { buildPolicy, PolicyLoadError } from '../../src/policy/load.js';
import type { Policy, ScopePolicy } from '../../src/policy/types.js';
import { jsonTextTricks, mutateJson, params, typedOutcome } from '../helpers/fuzz.js';

const DIR = '/etc/signet/policy.d';
const policy = {
  apiVersion: 'signet/v1',
  mode: 'enforce',
  keys: {
    release: { file: '/etc/signet/keys/release.pub', notAfter: '2030-01-01T00:00:00Z' },
    security: { file: '/etc/signet/keys/security.pub' },
    hsm: { pkcs11: 'pkcs11:token=node;object=k;type=public', verifyOn: 'token' },
  },
  default: { action: 'reject' },
  deny: { digests: [`sha256:${'d'.repeat(64)}`] },
  scopes: {
    'registry.example.com/prod': {
      action: 'verify',
      signatures: [{ keys: ['release', 'hsm'], threshold: 1, identity: { type: 'matchRepository' } }, { keys: ['security'] }],
      rejectIfSignedBy: ['security'],
      formats: ['cosign', 'notation'],
    },
    '*.example.org': { action: 'verify', mode: 'warn', signatures: { keys: ['release'] } },
    'docker.io/library': { action: 'accept' },
  },
};
const yamlText = stringify(policy);
const jsonText = JSON.stringify(policy, null, 2);

/** YAML fragments that stress a YAML parser: anchors, aliases, tags, flow and block mixes, odd scalars. */
const yamlish = fc
  .array(
    fc.constantFrom(
      'apiVersion: signet/v1\n',
      'keys:\n',
      '  a: &x { file: /k }\n',
      '  b: *x\n',
      'scopes: { ',
      '}',
      '[',
      ']',
      '- ',
      '  ',
      '!!binary aGk=',
      '!!js/function "x"',
      '? ',
      ': ',
      '&a ',
      '*a ',
      '"\\u0000"',
      "'",
      '#c\n',
      '---\n',
      '...\n',
      '|\n  x\n',
      '>-\n',
      '\t',
      'default: { action: accept }\n',
      '<<: *x\n',
      '~',
      'null',
      '0x10',
      '1e999',
      '.nan',
    ),
    { maxLength: 40 },
  )
  .map((a) => a.join(''));

/** A billion-laughs document: each anchor refers to the previous one ten times. */
const aliasBomb = fc.integer({ min: 2, max: 9 }).map((levels) => {
  const lines = ['apiVersion: signet/v1', 'x0: &a0 [lol]'];
  for (let i = 1; i <= levels; i++) lines.push(`x${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`);
  return `${lines.join('\n')}\n`;
});

const deep = fc
  .tuple(fc.integer({ min: 1, max: 200_000 }), fc.constantFrom('[', '{a: ', '- '))
  .map(
    ([d, open]) =>
      `apiVersion: signet/v1\nkeys: ${open === '- ' ? `\n${Array.from({ length: Math.min(d, 2000) }, (_, i) => `${' '.repeat(i)}- `).join('\n')}x` : `${open.repeat(d)}1${(open === '[' ? ']' : '}').repeat(d)}`}\n`,
  );

function coherent(p: Policy): void {
  const scopes: ScopePolicy[] = [p.default, ...Object.values(p.scopes)];
  for (const s of scopes) {
    assert.ok(['verify', 'accept', 'reject'].includes(s.action));
    assert.ok(['enforce', 'warn'].includes(s.mode));
    if (s.action === 'verify') assert.ok(s.signatures.length + s.attestations.length > 0, 'verify needs something to verify');
    for (const r of s.signatures) {
      assert.ok(r.keys.length > 0 && r.threshold >= 1 && r.threshold <= r.keys.length, `threshold ${r.threshold} of ${r.keys.length}`);
      for (const k of r.keys) assert.ok(Object.hasOwn(p.keys, k), `requirement names undefined key ${k}`);
    }
    for (const k of s.rejectIfSignedBy) assert.ok(Object.hasOwn(p.keys, k), `rejectIfSignedBy names undefined key ${k}`);
  }
  assert.match(p.generation, /^sha256:[0-9a-f]{64}$/);
}

const allowed = [PolicyLoadError, SignetError];

/**
 * A generated document as YAML. The yaml library's writer recurses per level and runs out of stack on
 * the generator's 2,000-deep arrays (a seed found it); JSON is YAML too, and JSON.stringify copes.
 */
function asYaml(doc: unknown): string {
  try {
    return `${stringify(doc) ?? ''}`;
  } catch (err) {
    if (err instanceof RangeError) return JSON.stringify(doc) ?? 'null';
    throw err;
  }
}

describe('fuzz: policy files', function () {
  this.timeout(60_000);

  it('the sample loads (the control)', () => {
    coherent(buildPolicy([{ path: `${DIR}/p.yaml`, text: yamlText }]));
    coherent(buildPolicy([{ path: `${DIR}/p.json`, text: jsonText }]));
  });

  it('any damage to a valid policy, as YAML or JSON: refused with typed problems, or a coherent policy', () => {
    const damaged = mutateJson(policy).chain((doc) => fc.constantFrom(asYaml(doc), JSON.stringify(doc) ?? 'null'));
    fc.assert(
      fc.property(damaged, (text) => {
        const r = typedOutcome(() => buildPolicy([{ path: `${DIR}/p.yaml`, text }]), allowed, text);
        if (r.ok) coherent(r.value);
        else assert.ok((r.error as PolicyLoadError).message.length < 64 * 1024, 'bounded problems');
      }),
      params(400),
    );
  });

  it('YAML oddities, text damage, alias bombs and deep nesting: typed errors or a coherent policy, never a hang', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 300 }),
      yamlish,
      aliasBomb,
      deep,
      jsonTextTricks(jsonText),
      fc.constantFrom(yamlText.replace('release', 'release\u0000'), `${yamlText}\n${yamlText}`, yamlText.replace(/: /g, ':'), '\ufeff' + yamlText),
    );
    fc.assert(
      fc.property(text, (t) => {
        const r = typedOutcome(() => buildPolicy([{ path: `${DIR}/p.yaml`, text: t }]), allowed, t);
        if (r.ok) coherent(r.value);
      }),
      params(300),
    );
  });

  it('several files: typed errors or a coherent merge, whatever is split where', () => {
    const pieces = fc.array(
      fc.tuple(
        fc.constantFrom('a.yaml', 'b.yml', 'c.json', 'd.yaml'),
        mutateJson(policy).map((d) => JSON.stringify(d) ?? 'null'),
      ),
      { minLength: 1, maxLength: 3 },
    );
    fc.assert(
      fc.property(pieces, (files) => {
        const r = typedOutcome(() => buildPolicy(files.map(([name, text], i) => ({ path: `${DIR}/${i}-${name}`, text }))), allowed, files);
        if (r.ok) coherent(r.value);
      }),
      params(200),
    );
  });
});
