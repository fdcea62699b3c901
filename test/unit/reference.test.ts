import assert from 'node:assert/strict';
import { formatReference, parseReference, repositoryName } from '../../src/registry/reference.js';

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
    it(`rejects ${JSON.stringify(bad)}`, () => assert.throws(() => parseReference(bad), (e: { code?: string }) => e.code === 'INVALID_REFERENCE'));
  }
});
