/**
 * The registry client against Debian's real docker-registry: content round trips, pagination, errors,
 * Basic and Bearer authentication, and failures injected by a proxy in front of the real registry.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient, type RepositoryRef } from '../../src/registry/client.js';
import { MEDIA_TYPES } from '../../src/registry/types.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushImage, pushIndex, pushOciLayout } from '../helpers/images.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

type Err = { code?: string; message: string };
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const failsWith = (code: string, message?: RegExp) => (e: Err) => {
  assert.equal(e.code, code, e.message);
  if (message) assert.match(e.message, message);
  return true;
};
const layersOf = (manifest: Buffer) => (JSON.parse(manifest.toString()) as { layers: Array<{ digest: string; size: number }> }).layers;

function dockerConfig(dir: string, host: string, user: string, password: string): string {
  const path = join(dir, `docker-config-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(path, JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  return path;
}

describe('registry client: content on the real registry', function () {
  this.timeout(30_000);
  let registry: RegistryHandle;
  let client: RegistryClient;
  const repo = (repository = 'client/app'): RepositoryRef => ({ registry: registry.host, repository });

  before(async () => {
    registry = await startRegistry();
    client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
  });
  after(async () => registry?.stop());

  it('fetches a manifest by tag and by digest, the same bytes and digest, and resolves it', async () => {
    const img = await pushImage(client, repo(), 'v1');
    const byTag = await client.getManifest(repo(), 'v1');
    const byDigest = await client.getManifest(repo(), img.digest);
    assert.deepEqual(byTag, { bytes: img.manifestBytes, digest: img.digest, mediaType: MEDIA_TYPES.ociManifest });
    assert.deepEqual(byDigest, byTag);
    assert.equal(byTag.digest, sha256(byTag.bytes));
    assert.deepEqual(await client.resolve(repo(), 'v1'), { mediaType: MEDIA_TYPES.ociManifest, digest: img.digest, size: img.size });
    assert.deepEqual(await client.resolve(repo(), img.digest), { mediaType: MEDIA_TYPES.ociManifest, digest: img.digest, size: img.size });
  });

  it('fetches an image index and each platform manifest it lists', async () => {
    const idx = await pushIndex(client, repo(), 'multi');
    const m = await client.getManifest(repo(), 'multi');
    assert.equal(m.mediaType, MEDIA_TYPES.ociIndex);
    assert.equal(m.digest, idx.digest);
    const listed = (JSON.parse(m.bytes.toString()) as { manifests: Array<{ digest: string; platform: { architecture: string } }> }).manifests;
    assert.deepEqual(
      listed.map((d) => d.platform.architecture),
      ['amd64', 'arm64'],
    );
    for (const [i, d] of listed.entries()) assert.deepEqual((await client.getManifest(repo(), d.digest)).bytes, idx.children[i]!.manifestBytes);
  });

  it('asks for the manifest types given in accept', async () => {
    await pushImage(client, repo(), 'accept');
    // The registry refuses to serve an OCI manifest to a client that accepts only Docker schema 2 lists.
    await assert.rejects(
      client.getManifest(repo(), 'accept', { accept: [MEDIA_TYPES.dockerManifestList] }),
      failsWith('REGISTRY_NOT_FOUND', /accept header does not support OCI manifests/),
    );
    assert.equal((await client.getManifest(repo(), 'accept', { accept: [MEDIA_TYPES.ociManifest] })).mediaType, MEDIA_TYPES.ociManifest);
  });

  it('fetches blobs with their digest checked, and refuses more than the size cap while streaming', async () => {
    const img = await pushImage(client, repo(), 'blobs');
    for (const layer of layersOf(img.manifestBytes)) {
      const bytes = await client.getBlob(repo(), layer.digest);
      assert.equal(sha256(bytes), layer.digest);
      assert.equal(bytes.length, layer.size);
    }
    const layer = layersOf(img.manifestBytes)[0]!;
    await assert.rejects(
      client.getBlob(repo(), layer.digest, { maxBytes: layer.size - 1 }),
      failsWith('BLOB_TOO_LARGE', /fetching blob .*client\/app@sha256:/),
    );
    const small = new RegistryClient({ insecureRegistries: [registry.host], maxBlobBytes: 100 });
    await assert.rejects(small.getBlob(repo(), layer.digest), failsWith('BLOB_TOO_LARGE'));
    const tinyManifests = new RegistryClient({ insecureRegistries: [registry.host], maxManifestBytes: 100 });
    await assert.rejects(tinyManifests.getManifest(repo(), 'blobs'), failsWith('BLOB_TOO_LARGE', /fetching manifest/));
  });

  it('pushes a blob and a manifest and pulls the same bytes back; a second push of the blob is skipped', async () => {
    const bytes = randomBytes(4096);
    const pushed = await client.pushBlob(repo('client/roundtrip'), bytes);
    assert.deepEqual(pushed, { digest: sha256(bytes), size: 4096 });
    assert.deepEqual(await client.getBlob(repo('client/roundtrip'), pushed.digest), bytes);
    assert.deepEqual(await client.pushBlob(repo('client/roundtrip'), bytes), pushed);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: MEDIA_TYPES.ociEmpty, digest: (await client.pushBlob(repo('client/roundtrip'), Buffer.from('{}'))).digest, size: 2 },
        layers: [{ mediaType: 'application/octet-stream', ...pushed }],
      }),
    );
    const digest = await client.pushManifest(repo('client/roundtrip'), 'rt', manifest, MEDIA_TYPES.ociManifest);
    assert.equal(digest, sha256(manifest));
    assert.deepEqual((await client.getManifest(repo('client/roundtrip'), 'rt')).bytes, manifest);
    await assert.rejects(
      client.pushManifest(repo('client/roundtrip'), sha256(Buffer.from('other')), manifest, MEDIA_TYPES.ociManifest),
      failsWith('INVALID_ARGUMENT'),
    );
  });

  it('pushes an OCI image layout as is (the Notation fixture) and pulls it back byte for byte', async () => {
    const layout = '/work/shared/fixtures/notation/alpine-oci-layout';
    const img = await pushOciLayout(client, repo('client/alpine'), layout, 'v2');
    assert.equal(img.digest, 'sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0');
    const m = await client.getManifest(repo('client/alpine'), 'v2');
    assert.equal(m.digest, img.digest);
    const layer = layersOf(m.bytes)[0]!;
    assert.equal((await client.getBlob(repo('client/alpine'), layer.digest)).length, layer.size);
  });

  it('lists every tag across pages of n tags, following Link (pages cut by the proxy: distribution 2.8 ignores n)', async () => {
    const r = repo('client/many');
    const img = await pushImage(client, r, 't00');
    const want = ['t00'];
    for (let i = 1; i < 12; i++) {
      const tag = `t${String(i).padStart(2, '0')}`;
      await client.pushManifest(r, tag, img.manifestBytes, img.mediaType);
      want.push(tag);
    }
    const proxy = await startFaultProxy(registry.host);
    try {
      proxy.rules.push({ path: /\/tags\/list/, action: { kind: 'paginateTags', pageSize: 2 } });
      const viaProxy = new RegistryClient({ insecureRegistries: [proxy.host], retries: 0 });
      const tags = await viaProxy.listTags({ registry: proxy.host, repository: 'client/many' }, { pageSize: 5 });
      assert.deepEqual(tags, want, 'every tag once, in page order');
      assert.deepEqual(proxy.seen, [
        'GET /v2/client/many/tags/list?n=5',
        'GET /v2/client/many/tags/list?n=5&last=t04',
        'GET /v2/client/many/tags/list?n=5&last=t09',
      ]);
      proxy.reset();
      proxy.rules.push({ path: /\/tags\/list/, action: { kind: 'paginateTags', pageSize: 2 } });
      assert.deepEqual(await viaProxy.listTags({ registry: proxy.host, repository: 'client/many' }), want, "the registry's own page size");
      assert.equal(proxy.count(/\/tags\/list/), 6);
    } finally {
      await proxy.stop();
    }
  });

  it('reports a missing tag, digest, blob or repository as REGISTRY_NOT_FOUND with the registry error; tryGetManifest gives undefined', async () => {
    await pushImage(client, repo(), 'present');
    await assert.rejects(
      client.getManifest(repo(), 'nope'),
      failsWith(
        'REGISTRY_NOT_FOUND',
        new RegExp(`^fetching manifest ${registry.host.replace(/\./g, '\\.')}/client/app:nope: registry answered 404 \\(MANIFEST_UNKNOWN: manifest unknown\\)`),
      ),
    );
    await assert.rejects(client.getBlob(repo(), sha256(Buffer.from('absent'))), failsWith('REGISTRY_NOT_FOUND', /BLOB_UNKNOWN/));
    await assert.rejects(client.resolve(repo(), 'nope'), failsWith('REGISTRY_NOT_FOUND', /resolving/));
    assert.equal(await client.tryGetManifest(repo(), 'nope'), undefined);
    assert.equal(await client.tryGetManifest(repo(), sha256(Buffer.from('absent'))), undefined);
    assert.equal(await client.tryGetManifest(repo('no/such/repo'), 'v1'), undefined);
    assert.ok(await client.tryGetManifest(repo(), 'present'));
    assert.deepEqual(await client.listTags(repo('no/such/repo')).catch((e: Err) => e.code), 'REGISTRY_NOT_FOUND');
  });

  it('refuses references and repository names that would change the URL', async () => {
    await assert.rejects(client.getManifest(repo(), '../../other/manifests/v1'), failsWith('INVALID_ARGUMENT'));
    await assert.rejects(client.getManifest(repo('UPPER/case'), 'v1'), failsWith('INVALID_ARGUMENT'));
    await assert.rejects(client.getBlob(repo(), 'sha256:short'), failsWith('INVALID_ARGUMENT'));
  });

  it('reports connection refused as REGISTRY_UNAVAILABLE without retrying, naming the operation', async () => {
    const { freePort } = await import('../helpers/registry.js');
    const port = await freePort();
    const dead = new RegistryClient({ insecureRegistries: [`127.0.0.1:${port}`], retries: 2 });
    const t = Date.now();
    await assert.rejects(
      dead.getManifest({ registry: `127.0.0.1:${port}`, repository: 'x' }, 'v1'),
      failsWith('REGISTRY_UNAVAILABLE', new RegExp(`^fetching manifest 127\\.0\\.0\\.1:${port}/x:v1: connection refused`)),
    );
    assert.ok(Date.now() - t < 150, 'refused is not retried');
  });
});

describe('registry client: failures injected in front of the real registry', function () {
  this.timeout(30_000);
  let registry: RegistryHandle;
  let proxy: FaultProxy;
  let client: RegistryClient;
  let img: Awaited<ReturnType<typeof pushImage>>;
  const viaProxy = (): RepositoryRef => ({ registry: proxy.host, repository: 'fault/app' });

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.host);
    client = new RegistryClient({ insecureRegistries: [registry.host, proxy.host], retries: 2, requestTimeoutMs: 1000 });
    img = await pushImage(client, { registry: registry.host, repository: 'fault/app' }, 'v1');
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
  });
  beforeEach(() => proxy.reset());

  it('forwards untouched when no fault is set (the control case)', async () => {
    assert.equal((await client.getManifest(viaProxy(), 'v1')).digest, img.digest);
    assert.equal(proxy.count(/\/manifests\/v1$/), 1);
  });

  it('retries a 500 twice with backoff, then fails with REGISTRY_UNAVAILABLE', async () => {
    proxy.rules.push({ path: /\/manifests\/v1$/, action: { kind: 'status', status: 500 } });
    const t = Date.now();
    await assert.rejects(
      client.getManifest(viaProxy(), 'v1'),
      failsWith('REGISTRY_UNAVAILABLE', /^fetching manifest 127\.0\.0\.1:\d+\/fault\/app:v1: registry answered 500, 3 attempts \(UNKNOWN: injected 500\)/),
    );
    assert.equal(proxy.count(/\/manifests\/v1$/), 3, 'one try and two retries');
    const took = Date.now() - t;
    assert.ok(took >= 450 && took < 2000, `backoff of about 200 + 400 ms, took ${took} ms`);
  });

  it('does not retry at all with retries: 0', async () => {
    proxy.rules.push({ path: /\/manifests\/v1$/, action: { kind: 'status', status: 503 } });
    const once = new RegistryClient({ insecureRegistries: [proxy.host], retries: 0 });
    await assert.rejects(once.getManifest(viaProxy(), 'v1'), failsWith('REGISTRY_UNAVAILABLE', /registry answered 503/));
    assert.equal(proxy.count(/\/manifests\/v1$/), 1);
  });

  it('waits for Retry-After on a 429, then succeeds', async () => {
    proxy.rules.push({ path: /\/manifests\/v1$/, action: { kind: 'status', status: 429, retryAfter: '1' }, times: 1 });
    const t = Date.now();
    assert.equal((await client.getManifest(viaProxy(), 'v1')).digest, img.digest);
    const took = Date.now() - t;
    assert.ok(took >= 950, `waited ${took} ms for Retry-After: 1`);
    assert.equal(proxy.count(/\/manifests\/v1$/), 2);
  });

  it('does not retry a 4xx other than 429', async () => {
    proxy.rules.push({ path: /\/manifests\/v1$/, action: { kind: 'status', status: 403 } });
    await assert.rejects(client.getManifest(viaProxy(), 'v1'), failsWith('REGISTRY_DENIED', /registry answered 403/));
    assert.equal(proxy.count(/\/manifests\/v1$/), 1);
  });

  it('retries a reset connection, then succeeds', async () => {
    proxy.rules.push({ path: /\/manifests\/v1$/, action: { kind: 'reset' }, times: 1 });
    assert.equal((await client.getManifest(viaProxy(), 'v1')).digest, img.digest);
    assert.equal(proxy.count(/\/manifests\/v1$/), 2);
  });

  it('gives up on connections reset every time with REGISTRY_UNAVAILABLE', async () => {
    proxy.rules.push({ path: /\/manifests\/v1$/, action: { kind: 'reset' } });
    await assert.rejects(client.getManifest(viaProxy(), 'v1'), failsWith('REGISTRY_UNAVAILABLE', /connection reset/));
    assert.equal(proxy.count(/\/manifests\/v1$/), 3);
  });

  it('times out a server that accepts and never answers, within the bound and without retrying', async () => {
    proxy.rules.push({ path: /\/manifests\/v1$/, action: { kind: 'hang' } });
    const t = Date.now();
    await assert.rejects(
      client.getManifest(viaProxy(), 'v1'),
      failsWith('REGISTRY_TIMEOUT', /fetching manifest .*fault\/app:v1: no complete answer within 1000 ms/),
    );
    const took = Date.now() - t;
    assert.ok(took >= 950 && took < 1600, `took ${took} ms`);
    assert.equal(proxy.count(/\/manifests\/v1$/), 1);
  });

  it('times out a server that stalls in the middle of a blob body', async () => {
    const layer = layersOf(img.manifestBytes)[0]!;
    proxy.rules.push({ path: /\/blobs\/sha256:/, action: { kind: 'stall' } });
    const t = Date.now();
    await assert.rejects(client.getBlob(viaProxy(), layer.digest), failsWith('REGISTRY_TIMEOUT', /fetching blob/));
    assert.ok(Date.now() - t < 1600);
  });

  it('times out a server that stalls in the middle of a manifest body', async () => {
    proxy.rules.push({ path: /\/manifests\/v1$/, action: { kind: 'stall' } });
    await assert.rejects(client.getManifest(viaProxy(), 'v1'), failsWith('REGISTRY_TIMEOUT'));
  });

  it("stops at the caller's deadline (AbortSignal) before the request timeout", async () => {
    proxy.rules.push({ path: /\/manifests\/v1$/, action: { kind: 'hang' } });
    const t = Date.now();
    await assert.rejects(client.getManifest(viaProxy(), 'v1', { signal: AbortSignal.timeout(300) }), failsWith('REGISTRY_TIMEOUT', /cancelled/));
    assert.ok(Date.now() - t < 800);
  });

  it('detects corrupted bytes for a manifest asked by digest and for a blob (DIGEST_MISMATCH)', async () => {
    proxy.rules.push({ path: /\/(manifests|blobs)\/sha256:/, action: { kind: 'corrupt' } });
    await assert.rejects(client.getManifest(viaProxy(), img.digest), failsWith('DIGEST_MISMATCH', /fetching manifest/));
    await assert.rejects(client.getBlob(viaProxy(), layersOf(img.manifestBytes)[0]!.digest), failsWith('DIGEST_MISMATCH', /fetching blob/));
  });

  it('detects a tag whose bytes do not match Docker-Content-Digest', async () => {
    const other = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: {}, layers: [] }));
    proxy.rules.push({ path: /\/manifests\/v1$/, action: { kind: 'replace', body: other } });
    await assert.rejects(client.getManifest(viaProxy(), 'v1'), failsWith('DIGEST_MISMATCH', /Docker-Content-Digest/));
  });

  it('refuses a manifest that is not JSON as REGISTRY_PROTOCOL', async () => {
    proxy.rules.push({ path: /\/manifests\/v1$/, action: { kind: 'replace', body: Buffer.from('<html>oops</html>'), dropHeaders: ['docker-content-digest'] } });
    await assert.rejects(
      client.getManifest(viaProxy(), 'v1'),
      failsWith('REGISTRY_PROTOCOL', /fetching manifest .*: the registry served a manifest that is not JSON/),
    );
  });

  it('uploads through a relative upload Location, and refuses a bad one as REGISTRY_PROTOCOL', async () => {
    proxy.rules.push({ method: 'POST', path: /\/blobs\/uploads\/$/, action: { kind: 'location', relative: true } });
    const bytes = randomBytes(100);
    const pushed = await client.pushBlob(viaProxy(), bytes);
    assert.deepEqual(await client.getBlob({ registry: registry.host, repository: 'fault/app' }, pushed.digest), bytes);
    assert.equal(proxy.count(/\/blobs\/uploads\/[0-9a-f-]+\?/, 'PUT'), 1);
    proxy.reset();
    proxy.rules.push({ method: 'POST', path: /\/blobs\/uploads\/$/, action: { kind: 'location', value: 'http://[not-a-host' } });
    await assert.rejects(client.pushBlob(viaProxy(), randomBytes(100)), failsWith('REGISTRY_PROTOCOL', /pushing blob .*: bad upload Location/));
  });

  it('follows a redirect for a blob, as registries redirect to storage', async () => {
    const layer = layersOf(img.manifestBytes)[0]!;
    proxy.rules.push({ path: /\/blobs\/sha256:/, action: { kind: 'redirect' } });
    assert.equal(sha256(await client.getBlob(viaProxy(), layer.digest)), layer.digest);
    assert.equal(proxy.count(/\/blobs\//), 1);
  });
});

describe('registry client: Basic authentication (htpasswd)', function () {
  this.timeout(30_000);
  let registry: RegistryHandle;
  let dir: string;
  const creds = { user: 'ci', password: 'pw-for-basic-auth' };
  const repo = (): RepositoryRef => ({ registry: registry.host, repository: 'private/app' });

  before(async () => {
    registry = await startRegistry({ htpasswd: creds });
    dir = mkdtempSync(join(tmpdir(), 'signet-basic-'));
  });
  after(async () => {
    await registry?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 401 without credentials as REGISTRY_UNAUTHORIZED saying none were found', async () => {
    const anonymous = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    await assert.rejects(
      anonymous.getManifest(repo(), 'v1'),
      failsWith('REGISTRY_UNAUTHORIZED', /fetching manifest .*private\/app:v1: unauthorized \(no credentials configured for this registry\)/),
    );
  });

  it('pushes and pulls with credentials from a config.json', async () => {
    const client = new RegistryClient({
      insecureRegistries: [registry.host],
      retries: 0,
      dockerConfigPath: dockerConfig(dir, registry.host, creds.user, creds.password),
    });
    const img = await pushImage(client, repo(), 'v1');
    assert.equal((await client.getManifest(repo(), 'v1')).digest, img.digest);
    assert.deepEqual(await client.listTags(repo()), ['v1']);
  });

  it('says the credentials were refused when they are wrong, and never shows them', async () => {
    const wrong = new RegistryClient({
      insecureRegistries: [registry.host],
      retries: 0,
      dockerConfigPath: dockerConfig(dir, registry.host, creds.user, 'wrong-password-123'),
    });
    await assert.rejects(wrong.getManifest(repo(), 'v1'), (e: Err) => {
      failsWith('REGISTRY_UNAUTHORIZED', /the configured credentials were refused/)(e);
      assert.ok(!e.message.includes('wrong-password-123') && !e.message.includes(Buffer.from(`${creds.user}:wrong-password-123`).toString('base64')));
      return true;
    });
  });
});

describe('registry client: Bearer token authentication (real registry validating spec tokens)', function () {
  this.timeout(30_000);
  let dir: string;
  let tokens: TokenServer;
  let registry: RegistryHandle;
  const repo = (repository = 'secure/app'): RepositoryRef => ({ registry: registry.host, repository });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'signet-bearer-'));
    tokens = await startTokenServer(dir, { builder: 'builder-pw' });
    registry = await startRegistry({ token: tokens });
  });
  after(async () => {
    await registry?.stop();
    await tokens?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fetches a scoped token with the config.json credentials, uses it, and caches it per scope', async () => {
    const client = new RegistryClient({
      insecureRegistries: [registry.host],
      retries: 0,
      dockerConfigPath: dockerConfig(dir, registry.host, 'builder', 'builder-pw'),
    });
    const img = await pushImage(client, repo(), 'v1');
    assert.deepEqual(tokens.requests, ['builder repository:secure/app:pull,push'], 'one push token for all the pushes');
    assert.equal((await client.getManifest(repo(), 'v1')).digest, img.digest);
    await client.getManifest(repo(), img.digest);
    await client.resolve(repo(), 'v1');
    assert.deepEqual(tokens.requests, ['builder repository:secure/app:pull,push', 'builder repository:secure/app:pull'], 'one pull token for all the pulls');
    await pushImage(client, repo('secure/other'), 'v1');
    assert.equal(tokens.requests.at(-1), 'builder repository:secure/other:pull,push', 'another repository is another scope');
  });

  it('reports refused credentials and anonymous access as REGISTRY_UNAUTHORIZED, without secrets', async () => {
    const anonymous = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    await assert.rejects(anonymous.getManifest(repo(), 'v1'), failsWith('REGISTRY_UNAUTHORIZED', /token service refused anonymous access/));
    const wrong = new RegistryClient({
      insecureRegistries: [registry.host],
      retries: 0,
      dockerConfigPath: dockerConfig(dir, registry.host, 'builder', 'not-the-pw'),
    });
    await assert.rejects(
      wrong.getManifest(repo(), 'v1'),
      (e: Err) => e.code === 'REGISTRY_UNAUTHORIZED' && /refused the configured credentials/.test(e.message) && !e.message.includes('not-the-pw'),
    );
  });
});
