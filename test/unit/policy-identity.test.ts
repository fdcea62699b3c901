/** Identity rules: does the untrusted signed docker-reference fit the image being pulled? */
import assert from 'node:assert/strict';
import { checkIdentity } from '../../src/policy/identity.js';
import type { IdentityRule } from '../../src/policy/types.js';
import { parseReference } from '../../src/registry/reference.js';

const D = `sha256:${'a'.repeat(64)}`;
const E = `sha256:${'e'.repeat(64)}`;
const REPO: IdentityRule = { type: 'matchRepository' };
const EXACT: IdentityRule = { type: 'matchExact' };
const check = (rule: IdentityRule, image: string, signed: string) => checkIdentity(rule, parseReference(image), signed);

describe('policy-identity: matchRepository', () => {
  const ok: Array<[string, string]> = [
    ['r.example.com/team/app:v1', 'r.example.com/team/app'],
    ['r.example.com/team/app:v1', 'r.example.com/team/app:v2'],
    [`r.example.com/team/app@${D}`, 'r.example.com/team/app'],
    [`r.example.com/team/app@${D}`, `r.example.com/team/app@${E}`],
    ['r.example.com:5000/app', 'r.example.com:5000/app'],
    ['nginx:1.27', 'docker.io/library/nginx'],
    ['docker.io/library/nginx', 'nginx'],
    ['index.docker.io/library/nginx', 'docker.io/library/nginx:latest'],
  ];
  for (const [image, signed] of ok) it(`image ${image}, signed ${signed}: match`, () => assert.deepEqual(check(REPO, image, signed), { ok: true }));

  const bad: Array<[string, string]> = [
    ['r.example.com/team/app:v1', 'r.example.com/team/other'],
    ['r.example.com/team/app:v1', 'r.example.com/team'],
    ['r.example.com/team/app:v1', 'r.example.com/team/app/sub'],
    ['r.example.com/team/app:v1', 'q.example.com/team/app'],
    ['r.example.com:5000/app', 'r.example.com/app'],
    ['r.example.com/app', 'r.example.com:5000/app'],
    ['ghcr.io/library/nginx', 'nginx'],
  ];
  for (const [image, signed] of bad) it(`image ${image}, signed ${signed}: mismatch`, () => assert.equal(check(REPO, image, signed).ok, false));

  it('says which identity did not match which repository', () => {
    assert.deepEqual(check(REPO, 'a.example.com/b:1', 'x.example.com/y'), {
      ok: false,
      reason: 'signed identity "x.example.com/y" does not match repository "a.example.com/b"',
    });
  });
});

describe('policy-identity: matchExact', () => {
  it('matches the same repository and tag', () => assert.deepEqual(check(EXACT, 'r.example.com/app:v1', 'r.example.com/app:v1'), { ok: true }));
  it('matches after Docker Hub normalisation', () => assert.deepEqual(check(EXACT, 'nginx:1.27', 'docker.io/library/nginx:1.27'), { ok: true }));
  it('matches :latest written out for an untagged pull', () => assert.deepEqual(check(EXACT, 'r.example.com/app', 'r.example.com/app:latest'), { ok: true }));
  it('ignores the image digest when the image has a tag too', () =>
    assert.deepEqual(check(EXACT, `r.example.com/app:v1@${D}`, 'r.example.com/app:v1'), { ok: true }));

  it('refuses another tag, saying what it compared', () => {
    assert.deepEqual(check(EXACT, 'r.example.com/app:v1', 'r.example.com/app:v2'), {
      ok: false,
      reason: 'signed identity "r.example.com/app:v2" does not match "r.example.com/app:v1" exactly',
    });
  });
  it('refuses another repository with the same tag', () => assert.equal(check(EXACT, 'r.example.com/app:v1', 'r.example.com/other:v1').ok, false));

  it('refuses a signed name without a tag: nothing is implied, not even :latest', () => {
    const r = check(EXACT, 'r.example.com/app:latest', 'r.example.com/app');
    assert.equal(r.ok, false);
    assert.match((r as { reason: string }).reason, /has no tag/);
  });

  it('refuses a signed digest reference', () => {
    const r = check(EXACT, 'r.example.com/app:v1', `r.example.com/app@${D}`);
    assert.equal(r.ok, false);
    assert.match((r as { reason: string }).reason, /has no tag/);
  });

  it('cannot match an image pulled by digest only, and says so', () => {
    const r = check(EXACT, `r.example.com/app@${D}`, `r.example.com/app@${D}`);
    assert.equal(r.ok, false);
    assert.match((r as { reason: string }).reason, /pulled by digest only/);
  });
});

describe('policy-identity: untrusted input', () => {
  for (const rule of [REPO, EXACT]) {
    for (const signed of ['', 'NOT A REF', 'R.example.com/App', 'r.example.com/app@sha256:short', 'https://r.example.com/app']) {
      it(`${rule.type}: ${JSON.stringify(signed)} is a mismatch with a reason`, () => {
        const r = check(rule, 'r.example.com/app:v1', signed);
        assert.equal(r.ok, false);
        assert.match((r as { reason: string }).reason, /^signed identity ".*" is not a valid image reference \(.+\)$/);
      });
    }
  }

  it('cuts a very long signed identity short in the reason', () => {
    const r = check(REPO, 'r.example.com/app:v1', `r.example.com/${'x'.repeat(3000)}`);
    assert.equal(r.ok, false);
    assert.ok((r as { reason: string }).reason.length < 400, (r as { reason: string }).reason);
  });
});
