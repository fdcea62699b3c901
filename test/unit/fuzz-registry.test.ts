/**
 * Fuzzing what the registry client reads from registries: image indexes and referrers answers,
 * WWW-Authenticate challenges, token answers, Retry-After, image references — and, end to end against
 * an in-process registry serving generated bodies and headers, manifests, referrers listings and tag
 * lists. Typed errors only, no hang, and nothing comes back that breaks the client's promises (a
 * manifest fetched by digest has that digest; listings are bounded and well-formed).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { SignetError } from '../../src/errors.js';
import { parseChallenges, parseTokenResponse } from '../../src/registry/auth.js';
import { parseIndexManifests, RegistryClient, retryDelayMs } from '../../src/registry/client.js';
import { formatReference, isDigest, isRegistryTag, parseReference } from '../../src/registry/reference.js';
import { startHostileRegistry, type HostileRegistry } from '../helpers/hostile-registry.js';
import { anyBytes, jsonTextTricks, mutateBytes, mutateJson, params, typedOutcome, typedOutcomeAsync } from '../helpers/fuzz.js';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const index = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sha('a'),
      size: 500,
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
    },
    { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha('b'), size: 700, artifactType: 'application/vnd.cncf.notary.signature' },
  ],
};
const indexBytes = Buffer.from(JSON.stringify(index));

describe('fuzz: registry answers', function () {
  this.timeout(60_000);

  it('parseIndexManifests: typed errors or well-formed descriptors', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          anyBytes,
          mutateBytes(indexBytes),
          mutateJson(index).map((d) => Buffer.from(JSON.stringify(d) ?? 'null')),
          jsonTextTricks(indexBytes.toString()).map((t) => Buffer.from(t)),
        ),
        (bytes) => {
          const r = typedOutcome(() => parseIndexManifests(bytes, 'listing'), [SignetError], bytes);
          if (r.ok) for (const d of r.value) assert.ok(isDigest(d.digest) && typeof d.mediaType === 'string' && typeof d.size === 'number');
        },
      ),
      params(500),
    );
  });

  it('parseChallenges: typed errors, or Basic/Bearer challenges with string parameters', () => {
    const valid = 'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"';
    const header = fc.oneof(
      fc.string({ maxLength: 200 }),
      mutateBytes(Buffer.from(valid)).map((b) => b.toString('latin1')),
      fc
        .array(fc.constantFrom('Bearer ', 'Basic ', 'realm=', '"', '\\', ',', ' ', '=', 'a', 'Negotiate abc==', 'scope="x"', '\t'), { maxLength: 30 })
        .map((a) => a.join('')),
      fc.integer({ min: 1, max: 20_000 }).map((n) => `Bearer ${'a=b,'.repeat(n)}`),
    );
    fc.assert(
      fc.property(header, (h) => {
        const r = typedOutcome(() => parseChallenges(h), [SignetError], h);
        if (r.ok)
          for (const c of r.value) {
            assert.ok(c.scheme === 'basic' || c.scheme === 'bearer');
            for (const v of Object.values(c.params)) assert.equal(typeof v, 'string');
          }
      }),
      params(800),
    );
  });

  it('parseTokenResponse: typed errors or a non-empty token and a number', () => {
    const sample = JSON.stringify({ token: 'eyJhbGciOi.x.y', access_token: 'eyJhbGciOi.x.y', expires_in: 300, issued_at: '2026-01-01T00:00:00Z' });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          mutateJson(JSON.parse(sample)).map((d) => JSON.stringify(d) ?? 'null'),
          fc.json(),
        ),
        (text) => {
          const r = typedOutcome(() => parseTokenResponse(text, 'https://auth.example.com'), [SignetError], text);
          if (r.ok) {
            assert.ok(typeof r.value.token === 'string' && r.value.token.length > 0);
            assert.equal(typeof r.value.expiresIn, 'number');
          }
        },
      ),
      params(500),
    );
  });

  it('retryDelayMs: any Retry-After gives a wait from 0 to 5 s', () => {
    fc.assert(
      fc.property(
        fc.nat(20),
        fc.oneof(
          fc.constant(null),
          fc.string({ maxLength: 40 }),
          fc.integer().map(String),
          fc.date({ noInvalidDate: false }).map((d) => (Number.isNaN(d.getTime()) ? 'Invalid Date' : d.toUTCString())),
          fc.constantFrom('1e308', '-1', 'NaN', 'Infinity', '99999999999999999999'),
        ),
        (attempt, header) => {
          const r = typedOutcome(() => retryDelayMs(attempt, header), [], header);
          assert.ok(r.ok && Number.isFinite(r.value) && r.value >= 0 && r.value <= 5000, `${String(r.ok && r.value)} for ${header}`);
        },
      ),
      params(800),
    );
  });

  it('parseReference: typed errors, or a normalised reference that parses back to itself', () => {
    const parts = fc.constantFrom(
      'docker.io',
      'localhost',
      'localhost:5000',
      '127.0.0.1:5000',
      '[::1]:5000',
      'a.b',
      'library',
      'nginx',
      'a/b/c',
      'UPPER',
      'x__y',
      'a--b',
      '',
      ':',
      '@',
      '/',
      'sha256:',
      `sha256:${'a'.repeat(64)}`,
      `sha512:${'b'.repeat(128)}`,
      'latest',
      '1.0',
      '-x',
      '.',
      '..',
    );
    const ref = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.array(fc.tuple(parts, fc.constantFrom('/', ':', '@', '')), { maxLength: 6 }).map((a) => a.map(([p, sep]) => `${p}${sep}`).join('')),
      fc.array(parts, { maxLength: 6 }).map((a) => a.join('/')),
    );
    fc.assert(
      fc.property(ref, (text) => {
        const r = typedOutcome(() => parseReference(text), [SignetError], text);
        if (!r.ok) return;
        const again = parseReference(formatReference(r.value));
        assert.deepEqual({ ...again }, { ...r.value });
      }),
      params(1000),
    );
  });

  describe('end to end against generated answers', () => {
    let registry: HostileRegistry;
    let client: RegistryClient;
    const repo = () => ({ registry: registry.host, repository: 'fuzz/app' });
    before(async () => {
      registry = await startHostileRegistry();
      client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0, requestTimeoutMs: 2000 });
    });
    after(() => registry?.stop());
    afterEach(() => registry.reset());

    const statusCode = fc.constantFrom(200, 200, 200, 200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 429, 500, 503);
    const headerValue = fc.oneof(
      fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
      fc.constantFrom(
        'application/json',
        'application/vnd.oci.image.index.v1+json',
        'application/vnd.oci.image.manifest.v1+json',
        sha('x'),
        '</v2/fuzz/app/referrers/x?n=1>; rel="next"',
        '</v2/other/repo/tags/list>; rel="next"',
        '<http://evil.example/v2/fuzz/app/tags/list?n=1>; rel=next',
        'artifactType',
        '1',
        'Bearer realm="http://127.0.0.1:1/token"',
      ),
    );
    const headers = fc.dictionary(
      fc.constantFrom('content-type', 'docker-content-digest', 'link', 'oci-filters-applied', 'retry-after', 'www-authenticate', 'location', 'x-other'),
      headerValue,
      { maxKeys: 4 },
    );
    const body = fc.oneof(
      anyBytes,
      mutateBytes(indexBytes),
      mutateJson(index).map((d) => Buffer.from(JSON.stringify(d) ?? 'null')),
      mutateJson({ name: 'fuzz/app', tags: ['v1', 'v2'] }).map((d) => Buffer.from(JSON.stringify(d) ?? 'null')),
    );
    const answer = fc.record({ status: statusCode, headers, body });

    it('getManifest by digest: typed errors, or bytes with exactly that digest', async () => {
      await fc.assert(
        fc.asyncProperty(answer, fc.boolean(), async (a, matching) => {
          registry.reset();
          const digest = matching && a.status === 200 ? sha(a.body) : sha('the manifest asked for');
          registry.on(/\/manifests\//, { kind: 'body', status: a.status, body: a.body, headers: { ...a.headers } }, { times: 1 });
          const r = await typedOutcomeAsync(() => client.getManifest(repo(), digest), [SignetError], a);
          if (r.ok) {
            assert.equal(sha(r.value.bytes), digest, 'bytes match the digest asked for');
            assert.equal(r.value.digest, digest);
          }
        }),
        params(400),
      );
    });

    it('referrers: typed errors, or at most `limit` distinct well-formed descriptors', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(answer, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 5 }), async (answers, limit) => {
          registry.reset();
          for (const a of answers) registry.on(/\/referrers\//, { kind: 'body', status: a.status, body: a.body, headers: { ...a.headers } }, { times: 1 });
          registry.on(/\/manifests\/sha256-/, { kind: 'status', status: 404, code: 'MANIFEST_UNKNOWN' });
          const r = await typedOutcomeAsync(() => client.referrers(repo(), sha('subject'), { limit }), [SignetError], answers);
          if (r.ok) {
            assert.ok(r.value.length <= limit);
            assert.equal(new Set(r.value.map((d) => d.digest)).size, r.value.length);
            for (const d of r.value) assert.ok(isDigest(d.digest));
          }
        }),
        params(400),
      );
    });

    it('listTags: typed errors, or at most maxTags distinct tags', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(answer, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 50 }), async (answers, maxTags) => {
          registry.reset();
          for (const a of answers) registry.on(/\/tags\/list/, { kind: 'body', status: a.status, body: a.body, headers: { ...a.headers } }, { times: 1 });
          const r = await typedOutcomeAsync(() => client.listTags(repo(), { maxTags }), [SignetError], answers);
          if (r.ok) {
            assert.ok(r.value.length <= maxTags);
            assert.equal(new Set(r.value).size, r.value.length);
            for (const t of r.value) assert.ok(isRegistryTag(t), t);
          }
        }),
        params(400),
      );
    });
  });
});
