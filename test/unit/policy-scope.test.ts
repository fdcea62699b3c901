/**
 * Scope resolution, containers-policy.json(5) order: exact reference, repository, parent namespaces,
 * host[:port], *.domain wildcards (most specific first), default.
 */
import assert from 'node:assert/strict';
import { buildPolicy } from '../../src/policy/load.js';
import { resolveScope } from '../../src/policy/scope.js';
import type { Action, Policy } from '../../src/policy/types.js';
import { parseReference } from '../../src/registry/reference.js';

const D = `sha256:${'a'.repeat(64)}`;
const policyOf = (scopes: string[], def: Action = 'reject'): Policy =>
  buildPolicy([
    {
      path: '/p/policy.yaml',
      text: `apiVersion: signet/v1\ndefault: { action: ${def} }\nscopes:\n${scopes.map((s) => `  "${s}": { action: accept }\n`).join('')}${scopes.length === 0 ? '  {}\n' : ''}`,
    },
  ]);
const resolve = (scopes: string[], image: string) => resolveScope(policyOf(scopes), parseReference(image)).scope;

describe('policy-scope: most specific wins', () => {
  // One image, every level of the ladder present; take the winner away and the next one must win.
  const image = `reg.sub.example.com/a/b/app:v1@${D}`;
  const ladder = [
    `reg.sub.example.com/a/b/app@${D}`,
    'reg.sub.example.com/a/b/app:v1',
    'reg.sub.example.com/a/b/app',
    'reg.sub.example.com/a/b',
    'reg.sub.example.com/a',
    'reg.sub.example.com',
    '*.sub.example.com',
    '*.example.com',
  ];
  for (let i = 0; i <= ladder.length; i++) {
    const present = ladder.slice(i);
    const expected = ladder[i] ?? 'default';
    it(`${expected} wins over ${present.slice(1).join(', ') || 'nothing else'}${i < ladder.length ? ' and default' : ''}`, () => {
      // The order in the file must not matter: give the scopes least specific first.
      assert.equal(resolve([...present].reverse(), image), expected);
    });
  }

  it('lists the candidates in the order tried, ending with default', () => {
    const m = resolveScope(policyOf([]), parseReference(image));
    assert.deepEqual(m.candidates, [...ladder, '*.com', 'default']);
    assert.equal(m.scope, 'default');
    assert.equal(m.policy.action, 'reject');
  });

  it('returns the matched scope policy itself', () => {
    const p = policyOf(['reg.example.com/a']);
    const m = resolveScope(p, parseReference('reg.example.com/a/x:1'));
    assert.equal(m.scope, 'reg.example.com/a');
    assert.equal(m.policy, p.scopes['reg.example.com/a']);
    assert.equal(m.policy.action, 'accept');
    assert.equal(resolveScope(p, parseReference('quay.io/x')).policy, p.default);
  });
});

describe('policy-scope: exact references, namespaces, boundaries', () => {
  const cases: Array<[string, string[], string]> = [
    ['a tag scope does not cover another tag', ['r.example.com/app:v1'], 'r.example.com/app:v2'],
    ['a tag scope does not cover a digest pull', ['r.example.com/app:v1'], `r.example.com/app@${D}`],
    ['a digest scope does not cover a tag pull', [`r.example.com/app@${D}`], 'r.example.com/app:v1'],
    ['a digest scope does not cover another digest', [`r.example.com/app@${D}`], `r.example.com/app@sha256:${'b'.repeat(64)}`],
    ['a namespace covers only whole path components', ['r.example.com/team'], 'r.example.com/teamx/app'],
    ['a repository does not cover its name as a prefix', ['r.example.com/app'], 'r.example.com/application'],
    ['a child scope does not cover its parent', ['r.example.com/a/b'], 'r.example.com/a'],
    ['a host does not cover another host', ['r.example.com'], 'q.example.com/app'],
  ];
  for (const [what, scopes, image] of cases) it(`${what}: ${image} → default`, () => assert.equal(resolve(scopes, image), 'default'));

  it('an untagged pull is :latest, so a :latest scope covers it', () => {
    assert.equal(resolve(['r.example.com/app:latest'], 'r.example.com/app'), 'r.example.com/app:latest');
  });

  it('a digest pull matches the repository scope', () => {
    assert.equal(resolve(['r.example.com/app'], `r.example.com/app@${D}`), 'r.example.com/app');
  });
});

describe('policy-scope: ports and wildcards', () => {
  const cases: Array<[string, string[], string, string]> = [
    ['a host scope with a port covers that port', ['r.example.com:5000'], 'r.example.com:5000/app', 'r.example.com:5000'],
    ['a host scope without a port does not cover another port', ['r.example.com'], 'r.example.com:5000/app', 'default'],
    ['a host scope with a port does not cover the default port', ['r.example.com:5000'], 'r.example.com/app', 'default'],
    ['a host:port scope does not cover another port', ['r.example.com:5000'], 'r.example.com:5001/app', 'default'],
    ['a repository scope with a port', ['r.example.com:5000/team'], 'r.example.com:5000/team/app', 'r.example.com:5000/team'],
    ['a wildcard ignores the port', ['*.example.com'], 'r.example.com:5000/app', '*.example.com'],
    ['a wildcard covers deeper subdomains', ['*.example.com'], 'a.b.example.com/app', '*.example.com'],
    ['a wildcard does not cover the bare domain', ['*.example.com'], 'example.com/app', 'default'],
    ['a wildcard does not cover a look-alike domain', ['*.example.com'], 'r.badexample.com/app', 'default'],
    ['the more specific wildcard wins', ['*.example.com', '*.sub.example.com'], 'r.sub.example.com/app', '*.sub.example.com'],
    ['a host beats a wildcard', ['*.example.com', 'r.example.com'], 'r.example.com/app', 'r.example.com'],
    ['localhost with a port', ['localhost:5000'], 'localhost:5000/app', 'localhost:5000'],
    ['an IP registry with a port', ['127.0.0.1:5000'], '127.0.0.1:5000/app', '127.0.0.1:5000'],
  ];
  for (const [what, scopes, image, expected] of cases) it(`${what}: ${image} → ${expected}`, () => assert.equal(resolve(scopes, image), expected));

  it('IP literals get no wildcard candidates', () => {
    assert.deepEqual(resolveScope(policyOf([]), parseReference('10.0.0.1:5000/app:v1')).candidates, [
      '10.0.0.1:5000/app:v1',
      '10.0.0.1:5000/app',
      '10.0.0.1:5000',
      'default',
    ]);
  });
});

describe('policy-scope: Docker Hub normalisation', () => {
  const hub = ['docker.io/library', 'docker.io'];
  const cases: Array<[string, string]> = [
    ['nginx', 'docker.io/library'],
    ['nginx:1.27', 'docker.io/library'],
    ['library/nginx:1.27', 'docker.io/library'],
    ['docker.io/nginx', 'docker.io/library'],
    ['index.docker.io/library/nginx', 'docker.io/library'],
    ['registry-1.docker.io/library/nginx', 'docker.io/library'],
    [`nginx@${D}`, 'docker.io/library'],
    ['bitnami/redis', 'docker.io'],
  ];
  for (const [image, expected] of cases) it(`${image} → ${expected}`, () => assert.equal(resolve(hub, image), expected));

  it('nginx is tried as docker.io/library/nginx:latest first', () => {
    assert.deepEqual(resolveScope(policyOf([]), parseReference('nginx')).candidates.slice(0, 4), [
      'docker.io/library/nginx:latest',
      'docker.io/library/nginx',
      'docker.io/library',
      'docker.io',
    ]);
  });

  it('a scope on the short form is refused at load time, so it can never silently not match', () => {
    assert.throws(() => policyOf(['library/nginx']), /does not start with a registry host/);
  });
});
