/**
 * The registry client bounds the requests it has in flight to one host, and a request's timeout starts
 * when it is sent, not while it waits for its turn (a burst queues in the client instead of timing out
 * in the registry's accept queue).
 */
import assert from 'node:assert/strict';
import { SignetError } from '../../src/errors.js';
import { RegistryClient } from '../../src/registry/client.js';
import { startHostileRegistry, type HostileRegistry } from '../helpers/hostile-registry.js';
import { pushImage, type PushedImage } from '../helpers/images.js';

describe('registry client: concurrency per host', function () {
  this.timeout(30_000);
  let registry: HostileRegistry;
  let image: PushedImage;
  const repo = () => ({ registry: registry.host, repository: 'burst/app' });

  before(async () => {
    registry = await startHostileRegistry();
    image = await pushImage(new RegistryClient({ insecureRegistries: [registry.host] }), repo(), 'v1');
  });
  after(() => registry?.stop());
  afterEach(() => registry.reset());

  it('keeps at most concurrencyPerHost requests in flight, and each gets its full timeout once sent', async () => {
    const client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0, requestTimeoutMs: 600, concurrencyPerHost: 4 });
    registry.on(/\/manifests\/sha256:/, { kind: 'delay', ms: 150 });
    const started = Date.now();
    const results = await Promise.allSettled(Array.from({ length: 32 }, () => client.getManifest(repo(), image.digest)));
    const failures = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    assert.deepEqual(failures, [], 'every request succeeds although the burst takes longer than one request timeout');
    assert.ok(Date.now() - started > 600, 'the burst as a whole outlasts the per-request timeout');
    assert.ok(registry.peakInFlight <= 4, `${registry.peakInFlight} requests in flight at once`);
  });

  it('bounds a burst by default (16 per host)', async () => {
    const client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    registry.on(/\/manifests\/sha256:/, { kind: 'delay', ms: 50 });
    await Promise.all(Array.from({ length: 100 }, () => client.getManifest(repo(), image.digest)));
    assert.ok(registry.peakInFlight <= 16, `${registry.peakInFlight} requests in flight at once`);
    assert.ok(registry.peakInFlight >= 2, 'requests do run in parallel');
  });

  it("a request waiting for its turn gives up when its caller's deadline passes", async () => {
    const client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0, requestTimeoutMs: 1500, concurrencyPerHost: 1 });
    registry.on(/\/manifests\/v1$/, { kind: 'hang' });
    const blocker = client.getManifest(repo(), 'v1').catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await assert.rejects(
      client.getManifest(repo(), image.digest, { signal: AbortSignal.timeout(300) }),
      (e: SignetError) => e.code === 'REGISTRY_TIMEOUT' && /waiting for one of the 1 connections/.test(e.message),
    );
    assert.ok(Date.now() - started < 2000, `gave up after ${Date.now() - started} ms`);
    assert.equal(registry.seen.filter((s) => s.path.includes(image.digest)).length, 0, 'the waiting request was never sent');
    await blocker;
  });

  it('other hosts are not held up by a busy one', async () => {
    const other = await startHostileRegistry();
    try {
      await pushImage(new RegistryClient({ insecureRegistries: [other.host] }), { registry: other.host, repository: 'burst/app' }, 'v1');
      const client = new RegistryClient({ insecureRegistries: [registry.host, other.host], retries: 0, requestTimeoutMs: 1500, concurrencyPerHost: 1 });
      registry.on(/\/manifests\/v1$/, { kind: 'hang' });
      const blocker = client.getManifest(repo(), 'v1').catch((e: unknown) => e);
      const m = await client.getManifest({ registry: other.host, repository: 'burst/app' }, 'v1', { signal: AbortSignal.timeout(2000) });
      assert.ok(m.bytes.length > 0);
      registry.reset();
      await blocker;
    } finally {
      await other.stop();
    }
  });
});
