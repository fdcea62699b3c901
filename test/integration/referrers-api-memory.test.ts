/**
 * A registry without the OCI 1.1 referrers API (Debian's docker-registry answers 404) is read through
 * the referrers tag schema directly for a while after its first 404: one round trip less per uncached
 * decision. A registry that serves the API (a front that answers it) is asked every time.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryClient, type ExchangeInfo } from '../../src/registry/client.js';
import { pushReferrer } from '../../src/signing/referrer.js';
import { pushImage } from '../helpers/images.js';
import { startReferrersApi, type ReferrersApi } from '../helpers/referrers-api.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';

describe('referrers API memory', function () {
  this.timeout(60_000);
  let registry: RegistryHandle;
  let api: ReferrersApi;
  let subject: { mediaType: string; digest: string; size: number };
  const repo = () => ({ registry: registry.host, repository: 'memory/app' });

  before(async () => {
    registry = await startRegistry();
    api = await startReferrersApi(registry.host);
    const pusher = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    const pushed = await pushImage(pusher, repo(), 'v1');
    subject = { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size };
    await pushReferrer(pusher, repo(), subject, 'application/example', 'application/example.layer', Buffer.from('hello'));
  });
  after(async () => {
    await api?.stop();
    await registry?.stop();
  });

  function counting(host: string, recheckMs?: number): { client: RegistryClient; exchanges: ExchangeInfo[] } {
    const exchanges: ExchangeInfo[] = [];
    const client = new RegistryClient({
      insecureRegistries: [host],
      retries: 0,
      onExchange: (e) => exchanges.push(e),
      ...(recheckMs !== undefined ? { referrersApiRecheckMs: recheckMs } : {}),
    });
    return { client, exchanges };
  }

  it('after a 404 from the API, reads the tag schema directly (one request instead of two), with the same answer', async () => {
    const { client, exchanges } = counting(registry.host);
    const first = await client.referrers(repo(), subject.digest, { limit: 10 });
    assert.deepEqual(
      exchanges.map((e) => e.status),
      [404, 200],
      'the API answered 404, then the tag schema',
    );
    exchanges.length = 0;
    const second = await client.referrers(repo(), subject.digest, { limit: 10 });
    assert.deepEqual(
      exchanges.map((e) => e.status),
      [200],
      'the tag schema only',
    );
    assert.equal(first.length, 1);
    assert.deepEqual(second, first);
  });

  it('asks the API again once the memory has passed, and every time when it is 0', async () => {
    const brief = counting(registry.host, 50);
    await brief.client.referrers(repo(), subject.digest, { limit: 10 });
    await sleep(120);
    brief.exchanges.length = 0;
    await brief.client.referrers(repo(), subject.digest, { limit: 10 });
    assert.deepEqual(
      brief.exchanges.map((e) => e.status),
      [404, 200],
    );

    const never = counting(registry.host, 0);
    await never.client.referrers(repo(), subject.digest, { limit: 10 });
    never.exchanges.length = 0;
    await never.client.referrers(repo(), subject.digest, { limit: 10 });
    assert.deepEqual(
      never.exchanges.map((e) => e.status),
      [404, 200],
    );
  });

  it('a registry that serves the API is asked through it every time', async () => {
    const { client, exchanges } = counting(api.host);
    const before = api.served;
    const viaApi = { registry: api.host, repository: 'memory/app' };
    assert.equal((await client.referrers(viaApi, subject.digest, { limit: 10 })).length, 1);
    assert.equal((await client.referrers(viaApi, subject.digest, { limit: 10 })).length, 1);
    assert.equal(api.served - before, 2);
    assert.ok(exchanges.every((e) => e.status === 200));
  });

  it('remembers per host: another registry without the API is still asked first', async () => {
    const other = await startRegistry();
    try {
      const { client, exchanges } = counting(`${registry.host}`);
      await client.referrers(repo(), subject.digest, { limit: 10 });
      const pusher = new RegistryClient({ insecureRegistries: [other.host], retries: 0 });
      const pushed = await pushImage(pusher, { registry: other.host, repository: 'memory/app' }, 'v1');
      const both = new RegistryClient({ insecureRegistries: [registry.host, other.host], retries: 0, onExchange: (e) => exchanges.push(e) });
      await both.referrers(repo(), subject.digest, { limit: 10 });
      exchanges.length = 0;
      await both.referrers({ registry: other.host, repository: 'memory/app' }, pushed.digest, { limit: 10 });
      assert.deepEqual(
        exchanges.map((e) => `${e.host} ${e.status}`),
        [`${other.host} 404`, `${other.host} 404`],
        'the API first, then the (absent) tag',
      );
    } finally {
      await other.stop();
    }
  });
});
