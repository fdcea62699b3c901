import assert from 'node:assert/strict';
import { formatReference, isDigestTag, isRegistryTag, isValidTag, parseReference, repositoryName } from '../../src/registry/reference.js';

describe('image references are normalised as Docker does', () => {
  const cases: Array<[string, string]> = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['library/nginx:1.27', 'docker.io/library/nginx:1.27'],
    ['bitnami/redis', 'docker.io/bitnami/redis:latest'],
    ['index.docker.io/library/nginx', 'docker.io/library/nginx:latest'],
    ['127.0.0.1:5000/app:v1', '127.0.0.1:5000/app:v1'],
    ['localhost/app', 'localhost/app:latest'],
    [`registry.example.com/a/b@sha256:${'a'.repeat(64)}`, `registry.example.com/a/b@sha256:${'a'.repeat(64)}`],
    [`host:5000/a:t@sha256:${'a'.repeat(64)}`, `host:5000/a:t@sha256:${'a'.repeat(64)}`],
  ];
  for (const [input, want] of cases) it(`${input} → ${want}`, () => assert.equal(formatReference(parseReference(input)), want));

  it('gives the repository name cosign signs', () => assert.equal(repositoryName(parseReference('nginx:1')), 'docker.io/library/nginx'));

  for (const bad of ['', 'UPPER/case', 'a b', 'host/repo@sha256:123', 'repo:tag!', '/leading', 'a//b']) {
    it(`rejects ${JSON.stringify(bad)}`, () =>
      assert.throws(
        () => parseReference(bad),
        (e: { code?: string }) => e.code === 'INVALID_REFERENCE',
      ));
  }
});

describe('tags: the OCI rule, and the tags cosign derives from digests', () => {
  const hex256 = 'a'.repeat(64);
  const hex512 = 'b'.repeat(128);

  it('a tag as people write it is at most 128 characters', () => {
    assert.equal(isValidTag('v1.2.3_rc-1'), true);
    assert.equal(isValidTag('x'.repeat(128)), true);
    assert.equal(isValidTag('x'.repeat(129)), false);
    assert.equal(isValidTag('-x'), false);
    assert.throws(
      () => parseReference(`r.example.com/a:${'x'.repeat(129)}`),
      (e: { code?: string }) => e.code === 'INVALID_REFERENCE',
    );
  });

  it("cosign's tags for sha512 digests (139 characters) and the referrers tag (135) are registry tags", () => {
    for (const suffix of ['.sig', '.att', '.sbom', '']) {
      assert.equal(isRegistryTag(`sha512-${hex512}${suffix}`), true, suffix);
      assert.equal(isDigestTag(`sha512-${hex512}${suffix}`), true, suffix);
      assert.equal(isRegistryTag(`sha256-${hex256}${suffix}`), true, suffix);
    }
    assert.equal(`sha512-${hex512}.sig`.length, 139);
  });

  it('nothing else longer than 128 characters is', () => {
    for (const bad of [
      `sha512-${hex512}.exe`,
      `sha512-${hex512}a.sig`,
      `sha512-${hex512.slice(1)}.sig`,
      `sha384-${'c'.repeat(96)}x${'c'.repeat(40)}`,
      `SHA512-${hex512}.sig`,
      `sha512-${hex512.toUpperCase()}.sig`,
      'x'.repeat(129),
      `sha512-${hex512}.sig/../x`,
    ]) {
      assert.equal(isRegistryTag(bad), false, bad);
    }
    assert.equal(isDigestTag('v1'), false);
  });
});
