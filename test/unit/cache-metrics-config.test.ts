/**
 * The configuration of the caches and the metrics endpoint, and the endpoint itself over TCP.
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { DEFAULT_CONFIG, parseConfig, parseSize } from '../../src/daemon/config.js';
import { Metrics, type MetricsSource } from '../../src/metrics/metrics.js';
import { MetricsServer, parseListen } from '../../src/metrics/server.js';

const source: MetricsSource = {
  policy: () => ({ loaded: true, generation: 'sha256:abc' }),
  keys: () => [
    { name: 'release', loaded: true, revoked: false, notAfter: new Date(1_000_000) },
    { name: 'old', loaded: false, revoked: true },
  ],
  verdictCache: () => ({ entries: 3, maxEntries: 10, hits: 7, misses: 2, coalesced: 1, cleared: 0 }),
  contentCache: () => ({ entries: 1, bytes: 100, maxBytes: 1000, hits: 4, misses: 1 }),
  audit: () => ({ written: 9, failures: 2, writable: false }),
  admission: () => ({ inFlight: 0, queued: 0, refusedQueueFull: 1, refusedQueueTimeout: 0 }),
  containerd: () => undefined,
  nri: () => ({ socket: '/var/run/nri/nri.sock', connected: true, decided: 5, refused: 1, timedOut: 0, cached: 3 }),
};

describe('cache and metrics configuration', () => {
  it('defaults: cacheTTL 5m, negativeCacheTTL 10s, 10,000 entries, 64 MiB of content, metrics off', () => {
    const c = parseConfig('', 'signetd.yaml');
    assert.deepEqual(
      [c.cacheTtlMs, c.negativeCacheTtlMs, c.cacheEntries, c.contentCacheBytes, c.metrics],
      [300_000, 10_000, 10_000, 64 * 1024 * 1024, undefined],
    );
    assert.equal(DEFAULT_CONFIG.cacheTtlMs, 300_000);
  });

  it('reads every key, and metrics: alone listens on 127.0.0.1:9464', () => {
    const c = parseConfig('cacheTTL: 1m\nnegativeCacheTTL: 2s\ncacheEntries: 50\ncontentCacheSize: 8MiB\nmetrics: { listen: /run/signet/metrics.sock }\n', 'f');
    assert.deepEqual(
      [c.cacheTtlMs, c.negativeCacheTtlMs, c.cacheEntries, c.contentCacheBytes, c.metrics],
      [60_000, 2000, 50, 8 * 1024 * 1024, { listen: '/run/signet/metrics.sock' }],
    );
    assert.deepEqual(parseConfig('metrics:\n', 'f').metrics, { listen: '127.0.0.1:9464' });
    assert.deepEqual(parseConfig('metrics: { listen: "[::1]:9464" }\n', 'f').metrics, { listen: '[::1]:9464' });
  });

  it('refuses what it cannot use, naming the key', () => {
    assert.throws(() => parseConfig('metrics: { listen: 9464 }\n', 'f'), /metrics: listen must be host:port/);
    assert.throws(() => parseConfig('metrics: { listen: "localhost:99999" }\n', 'f'), /metrics: listen must be host:port/);
    assert.throws(() => parseConfig('metrics: { port: 1 }\n', 'f'), /metrics: unknown setting "port"/);
    assert.throws(() => parseConfig('cacheEntries: 0\n', 'f'), /cacheEntries: must be an integer/);
    assert.throws(() => parseConfig('contentCacheSize: 1TB\n', 'f'), /contentCacheSize: must be a size/);
    assert.throws(() => parseConfig('cacheTTL: 1m\nnegativeCacheTTL: 2m\n', 'f'), /negativeCacheTTL: must not be longer than cacheTTL/);
    assert.equal(parseSize('512KiB'), 512 * 1024);
    assert.equal(parseSize(0), 0);
    assert.deepEqual(parseListen('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  });
});

describe('metrics endpoint', () => {
  it('serves /metrics over TCP in the Prometheus text format, and nothing else', async () => {
    const metrics = new Metrics(source, { now: () => 0, processMetrics: false });
    metrics.decision('create', { decision: 'reject', code: 'SIGNATURE_NOT_FOUND', scope: 'reg/prod', cached: true }, 'enforce', 0.0002);
    metrics.registryExchange({ host: 'reg:5000', method: 'GET', status: 0, error: 'REGISTRY_TIMEOUT', seconds: 2 });
    const s = new MetricsServer(metrics, `127.0.0.1:${await freePort()}`);
    const at = await s.start();
    try {
      const fetch = (path: string) =>
        new Promise<{ status: number; type: string; body: string }>((resolve, reject) =>
          get(`http://${at}${path}`, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
          }).on('error', reject),
        );
      const { status, type, body } = await fetch('/metrics');
      assert.equal(status, 200);
      assert.match(type, /^text\/plain; version=0\.0\.4/);
      for (const line of [
        'signet_decisions_total{event="create",decision="reject",code="SIGNATURE_NOT_FOUND",scope="reg/prod",mode="enforce",cached="true"} 1',
        'signet_registry_requests_total{host="reg:5000",method="GET",status="REGISTRY_TIMEOUT"} 1',
        'signet_key_expiry_seconds{key="release"} 1000',
        'signet_key_loaded{key="old"} 0',
        'signet_key_revoked{key="old"} 1',
        'signet_verdict_cache_hits_total 7',
        'signet_content_cache_bytes 100',
        'signet_audit_write_failures_total 2',
        'signet_audit_writable 0',
        'signet_nri_registered{socket="/var/run/nri/nri.sock"} 1',
        'signet_nri_images_cached_total 3',
        'signet_admission_refused_total{reason="queue-full"} 1',
        'signet_policy_generation_info{generation="sha256:abc"} 1',
      ]) {
        assert.ok(body.split('\n').includes(line), `${line}\n${body}`);
      }
      assert.ok(!/^signet_containerd_connected/m.test(body), 'no containerd watch, no containerd sample');
      assert.equal((await fetch('/')).status, 404);
    } finally {
      await s.stop();
    }
  });
});

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
