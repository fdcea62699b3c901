import assert from 'node:assert/strict';
import { buildPolicy, PolicyLoadError } from '../../src/policy/load.js';
import { checkIdentity } from '../../src/policy/identity.js';
import { resolveScope } from '../../src/policy/scope.js';
import { scopeSyntaxError } from '../../src/policy/scope-syntax.js';
import { parseReference } from '../../src/registry/reference.js';

const load = (...texts: string[]) => buildPolicy(texts.map((text, i) => ({ path: `/etc/signet/policy.d/${i}.yaml`, text })));
const problems = (...texts: string[]): PolicyLoadError => {
  try {
    load(...texts);
  } catch (err) {
    if (err instanceof PolicyLoadError) return err;
    throw err;
  }
  throw new Error('expected the policy to be refused');
};

const EXAMPLE = `apiVersion: signet/v1
keys:
  release: { file: /etc/signet/keys/release.pub }
default: { action: reject }
scopes:
  registry.example.com/prod:
    action: verify
    signatures: { keys: [release], threshold: 1, identity: { type: matchRepository } }
  docker.io/library: { action: accept }
`;

describe('policy loading', () => {
  it('loads the documented example with defaults filled in', () => {
    const p = load(EXAMPLE);
    assert.equal(p.scopes['registry.example.com/prod']!.action, 'verify');
    assert.deepEqual(p.scopes['registry.example.com/prod']!.signatures, [{ keys: ['release'], threshold: 1, identity: { type: 'matchRepository' } }]);
    assert.equal(p.scopes['docker.io/library']!.mode, 'enforce');
    assert.match(p.generation, /^sha256:[a-f0-9]{64}$/);
    assert.equal(p.keys['release']!.revoked, false);
  });

  it('reads JSON too, and the generation depends on content, not formatting or order', () => {
    const json = JSON.stringify({ apiVersion: 'signet/v1', scopes: { 'docker.io/library': { action: 'accept' } }, default: { action: 'reject' }, keys: { release: { file: '/etc/signet/keys/release.pub' } } });
    const a = load(json);
    const b = load(`apiVersion: signet/v1\nkeys: { release: { file: /etc/signet/keys/release.pub } }\ndefault: { action: reject }\nscopes:\n  docker.io/library:\n    action: accept\n`);
    assert.equal(a.generation, b.generation);
    assert.notEqual(a.generation, load(EXAMPLE).generation);
  });

  it('merges files, and refuses a key, scope or default defined twice, naming both files', () => {
    const merged = load('apiVersion: signet/v1\nkeys: { a: { file: /k/a.pub } }\n', 'apiVersion: signet/v1\nscopes:\n  example.com/x: { action: verify, signatures: { keys: [a] } }\n');
    assert.deepEqual(Object.keys(merged.scopes), ['example.com/x']);
    const dupKey = problems('apiVersion: signet/v1\nkeys: { a: { file: /k/a.pub } }\n', 'apiVersion: signet/v1\nkeys:\n  a: { file: /k/b.pub }\n');
    assert.match(dupKey.message, /\/etc\/signet\/policy\.d\/1\.yaml:3:\d+: key "a" is already defined in \/etc\/signet\/policy\.d\/0\.yaml:2/);
    const dupScope = problems('apiVersion: signet/v1\nscopes: { example.com: { action: accept } }\n', 'apiVersion: signet/v1\nscopes:\n  example.com: { action: reject }\n');
    assert.match(dupScope.message, /1\.yaml:3:\d+: scope "example.com" is already defined in .*0\.yaml:2/);
    const dupDefault = problems('apiVersion: signet/v1\ndefault: { action: accept }\n', 'apiVersion: signet/v1\ndefault: { action: reject }\n');
    assert.match(dupDefault.message, /1\.yaml:2:\d+: "default" is already defined/);
  });

  const located: Array<[string, string, RegExp]> = [
    ['an unknown key referenced', 'apiVersion: signet/v1\nscopes:\n  example.com/a:\n    action: verify\n    signatures: { keys: [nobody] }\n', /0\.yaml:5:\d+: key "nobody" is not defined/],
    ['a threshold larger than the key list', 'apiVersion: signet/v1\nkeys: { a: { file: /k/a.pub } }\nscopes:\n  example.com/a:\n    action: verify\n    signatures:\n      keys: [a]\n      threshold: 2\n', /0\.yaml:8:\d+: threshold 2 is larger than the 1 key/],
    ['an invalid scope', 'apiVersion: signet/v1\nscopes:\n  nginx: { action: accept }\n', /0\.yaml:3:3: "nginx" does not start with a registry host/],
    ['a scope with a scheme', 'apiVersion: signet/v1\nscopes:\n  https://example.com/a: { action: accept }\n', /0\.yaml:3:\d+: .*without a scheme/],
    ['notAfter before notBefore', 'apiVersion: signet/v1\nkeys:\n  a:\n    file: /k/a.pub\n    notBefore: 2026-06-01T00:00:00Z\n    notAfter: 2026-01-01T00:00:00Z\n', /0\.yaml:6:\d+: notAfter .* is not after notBefore/],
    ['a misspelt field', 'apiVersion: signet/v1\nscopes:\n  example.com/a:\n    action: accept\n    mdoe: warn\n', /0\.yaml:5:5: unknown field "mdoe"/],
    ['a missing signatures for verify', 'apiVersion: signet/v1\nscopes:\n  example.com/a:\n    action: verify\n', /0\.yaml:4:\d+: action "verify" needs "signatures"/],
    ['a bad action', 'apiVersion: signet/v1\ndefault:\n  action: allow\n', /0\.yaml:3:\d+: "action" must be one of "verify", "accept", "reject"/],
    ['a relative key path', 'apiVersion: signet/v1\nkeys:\n  a: { file: keys/a.pub }\n', /0\.yaml:3:\d+: key file "keys\/a.pub" must be an absolute path/],
    ['a key with both file and pkcs11', 'apiVersion: signet/v1\nkeys:\n  a: { file: /k/a.pub, pkcs11: "pkcs11:token=t" }\n', /0\.yaml:3:\d+: a key needs exactly one of "file", "pkcs11", "certificates" or "sigstore"/],
    ['a duplicate YAML key', 'apiVersion: signet/v1\nscopes:\n  example.com: { action: accept }\n  example.com: { action: reject }\n', /0\.yaml:4:\d+: duplicate key "example.com"/],
    ['a wrong apiVersion', 'apiVersion: signet/v2\n', /0\.yaml:1:\d+: "apiVersion" must be "signet\/v1"/],
    ['a bad duration', 'apiVersion: signet/v1\nkeys:\n  a: { file: /k/a.pub, expiryWarning: 2 weeks }\n', /0\.yaml:3:\d+: "expiryWarning" must be a duration/],
    ['a bad time', 'apiVersion: signet/v1\nkeys:\n  a: { file: /k/a.pub, notAfter: tomorrow }\n', /0\.yaml:3:\d+: notAfter "tomorrow" is not an RFC 3339 time/],
    ['an empty file', '', /0\.yaml:1: the file is empty/],
  ];
  for (const [what, text, re] of located) {
    it(`refuses ${what}, with file, line and what to change`, () => assert.match(problems(text).message, re));
  }

  it('collects every problem, not just the first', () => {
    const err = problems('apiVersion: signet/v1\nscopes:\n  nginx: { action: accept }\n  example.com/a:\n    action: verify\n    signatures: { keys: [ghost] }\n');
    assert.equal(err.problems.length, 2);
  });
});

describe('scope resolution (most specific wins)', () => {
  const p = load(`apiVersion: signet/v1
default: { action: reject }
scopes:
  "*.example.com": { action: accept }
  "*.sub.example.com": { action: reject }
  registry.example.com: { action: accept }
  registry.example.com/team: { action: reject }
  registry.example.com/team/app: { action: accept }
  registry.example.com/team/app:v1: { action: reject }
  "registry.example.com/team/app@sha256:${'a'.repeat(64)}": { action: accept }
  docker.io/library: { action: accept }
  localhost:5000: { action: accept }
`);
  const cases: Array<[string, string]> = [
    [`registry.example.com/team/app@sha256:${'a'.repeat(64)}`, `registry.example.com/team/app@sha256:${'a'.repeat(64)}`],
    ['registry.example.com/team/app:v1', 'registry.example.com/team/app:v1'],
    ['registry.example.com/team/app:v2', 'registry.example.com/team/app'],
    ['registry.example.com/team/other', 'registry.example.com/team'],
    ['registry.example.com/team/app/sub', 'registry.example.com/team/app'],
    ['registry.example.com/solo', 'registry.example.com'],
    ['mirror.example.com/x', '*.example.com'],
    ['a.sub.example.com/x', '*.sub.example.com'],
    ['mirror.example.com:8443/x', '*.example.com'],
    ['example.com/x', 'default'],
    ['nginx', 'docker.io/library'],
    ['library/nginx:1.27', 'docker.io/library'],
    ['bitnami/redis', 'default'],
    ['localhost:5000/app', 'localhost:5000'],
  ];
  for (const [image, scope] of cases) it(`${image} → ${scope}`, () => assert.equal(resolveScope(p, parseReference(image)).scope, scope));

  it('explains the order it tried', () => {
    assert.deepEqual(resolveScope(p, parseReference('registry.example.com/team/x:v3')).candidates, [
      'registry.example.com/team/x:v3', 'registry.example.com/team/x', 'registry.example.com/team', 'registry.example.com', '*.example.com', '*.com', 'default',
    ]);
  });

  for (const [scope, ok] of [['example.com', true], ['example.com:5000/a/b', true], ['*.example.com', true], ['*.com:5', false], ['Example.com/a', false], ['example.com/a/', false], ['example.com/A', false], [`example.com/a@sha256:${'b'.repeat(64)}`, true], ['example.com/a:t@sha256:x', false]] as const) {
    it(`scope syntax ${scope}: ${ok ? 'valid' : 'invalid'}`, () => assert.equal(scopeSyntaxError(scope) === undefined, ok));
  }
});

describe('identity rules', () => {
  const img = (s: string) => parseReference(s);
  const cases: Array<[string, Parameters<typeof checkIdentity>[0], string, string, boolean]> = [
    ['matchRepository same repo', { type: 'matchRepository' }, 'r.io/a/b:1', 'r.io/a/b', true],
    ['matchRepository other repo', { type: 'matchRepository' }, 'r.io/a/b:1', 'r.io/a/c', false],
    ['matchRepository Docker Hub normalisation', { type: 'matchRepository' }, 'nginx:1', 'docker.io/library/nginx', true],
    ['matchExact same tag', { type: 'matchExact' }, 'r.io/a:1', 'r.io/a:1', true],
    ['matchExact other tag', { type: 'matchExact' }, 'r.io/a:1', 'r.io/a:2', false],
    ['matchExact by digest', { type: 'matchExact' }, `r.io/a@sha256:${'c'.repeat(64)}`, 'r.io/a:1', false],
    ['matchRepoDigestOrExact by digest', { type: 'matchRepoDigestOrExact' }, `r.io/a@sha256:${'c'.repeat(64)}`, 'r.io/a', true],
    ['matchRepoDigestOrExact by tag', { type: 'matchRepoDigestOrExact' }, 'r.io/a:1', 'r.io/a', false],
    ['exactReference', { type: 'exactReference', dockerReference: 'r.io/golden:1' }, 'r.io/whatever:9', 'r.io/golden:1', true],
    ['exactReference mismatch', { type: 'exactReference', dockerReference: 'r.io/golden:1' }, 'r.io/golden:1', 'r.io/golden:2', false],
    ['exactRepository', { type: 'exactRepository', dockerRepository: 'r.io/golden' }, 'r.io/x:1', 'r.io/golden', true],
    ['remapIdentity mirror', { type: 'remapIdentity', prefix: 'mirror.local/hub', signedPrefix: 'docker.io/library' }, `mirror.local/hub/nginx@sha256:${'d'.repeat(64)}`, 'docker.io/library/nginx', true],
    ['remapIdentity not at a boundary', { type: 'remapIdentity', prefix: 'mirror.local/hub', signedPrefix: 'docker.io/library' }, `mirror.local/hubx/nginx@sha256:${'d'.repeat(64)}`, 'docker.io/library/nginx', false],
    ['a signed identity that does not parse', { type: 'matchRepository' }, 'r.io/a', 'NOT A REF', false],
  ];
  for (const [what, rule, image, signed, ok] of cases) {
    it(what, () => {
      const r = checkIdentity(rule, img(image), signed);
      assert.equal(r.ok, ok, r.ok ? 'matched' : r.reason);
    });
  }
});
