/**
 * signetd's verdict cache, request coalescing, content cache and metrics, end to end: the real signetd
 * (compiled, as systemd starts it) against an in-process registry that records every request, asked
 * over its gRPC socket; metrics read from its /metrics endpoint on a unix socket.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, verifierServiceClient } from '../../src/daemon/grpc-server.js';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { SIGNET, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { startHostileRegistry, type HostileRegistry } from '../helpers/hostile-registry.js';
import { pushImage } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { metricsText, metricSample } from '../helpers/metrics.js';

type Image = { name: string; descriptor: { mediaType: string; digest: string; size: number } };

describe('signetd: verdict cache, coalescing, content cache, metrics', function () {
  this.timeout(60_000);
  const key = makeTestKey();
  let registry: HostileRegistry;
  let a: Image;
  let b: Image;
  let d: DaemonHandle;
  let Client: grpc.ServiceClientConstructor;
  let client: grpc.Client & Record<string, (...args: unknown[]) => void>;
  let metricsDir: string;
  const metricsSocket = (): string => join(metricsDir, 'metrics.sock');

  const ask = (image: Image): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) =>
      client['VerifyImage']!(
        { name: image.name, descriptor: image.descriptor },
        new grpc.Metadata(),
        { deadline: Date.now() + 8000 },
        (err: grpc.ServiceError | null, res: Record<string, unknown>) => (err ? reject(err) : resolve(res)),
      ),
    );

  const policy = (extra: Record<string, unknown> = {}) => ({
    apiVersion: 'signet/v1',
    keys: { release: { file: join(d.dir, 'release.pub'), notAfter: '2099-01-01T00:00:00Z' } },
    scopes: { [registry.host]: { action: 'verify', formats: ['cosign'], signatures: { keys: ['release'] } } },
    ...extra,
  });

  before(async () => {
    registry = await startHostileRegistry();
    const rc = new RegistryClient({ insecureRegistries: [registry.host] });
    const push = async (repository: string): Promise<Image> => {
      const repo = { registry: registry.host, repository };
      const pushed = await pushImage(rc, repo, 'v1');
      await signImageCosign(rc, repo, pushed.digest, key.signer, { dockerReference: `${registry.host}/${repository}` });
      return { name: `${registry.host}/${repository}:v1`, descriptor: { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size } };
    };
    a = await push('cache/a');
    b = await push('cache/b');
    metricsDir = mkdtempSync(join(tmpdir(), 'signet-metrics-'));
    d = await startDaemon({ insecureRegistries: [registry.host], extraConfig: `metrics: { listen: ${metricsSocket()} }` });
    key.writePublic(join(d.dir, 'release.pub'));
    d.writePolicy('policy.yaml', policy());
    await waitFor(() => d.log().includes('policy loaded'), 'policy');
    Client = verifierServiceClient(loadProtos());
    client = new Client(`unix://${d.socket}`, grpc.credentials.createInsecure()) as unknown as typeof client;
  });

  after(async () => {
    client?.close();
    await d?.stop();
    await registry?.stop();
    rmSync(metricsDir, { recursive: true, force: true });
  });

  it('50 simultaneous requests for an uncached image make the registry requests of one decision; the next answer is cached', async () => {
    registry.reset();
    const first = await ask(b);
    assert.equal(first['ok'], true, String(first['reason']));
    const one = registry.seen.length;
    assert.ok(one > 0);
    registry.reset();
    const answers = await Promise.all(Array.from({ length: 50 }, () => ask(a)));
    assert.ok(
      answers.every((x) => x['ok'] === true),
      JSON.stringify(answers.find((x) => x['ok'] !== true)),
    );
    assert.equal(registry.seen.length, one, `50 requests made ${registry.seen.length} registry requests; one decision makes ${one}`);
    assert.ok(
      answers.every((x) => x['cached'] === false),
      'shared, not from memory',
    );
    registry.reset();
    const again = await ask(a);
    assert.equal(again['cached'], true);
    assert.equal(again['ok'], true);
    assert.equal(registry.seen.length, 0, 'no registry request for a cached verdict');
    // The audit line says so, and names the node.
    await waitFor(() => d.audit().length === 52, 'every decision audited');
    const last = d.audit().at(-1)!;
    assert.equal(last['cached'], true);
    assert.equal(last['host'], hostname());
    assert.equal(d.audit()[0]!['cached'], false);
  });

  it('serves the metrics: decisions by cached, coalesced requests, registry requests by host and status, keys, policy, audit', async () => {
    const text = await metricsText(metricsSocket());
    const scope = registry.host;
    assert.equal(
      metricSample(text, `signet_decisions_total{event="decision",decision="accept",code="",scope="${scope}",mode="enforce",cached="true"}`),
      1,
      text,
    );
    assert.equal(metricSample(text, `signet_decisions_total{event="decision",decision="accept",code="",scope="${scope}",mode="enforce",cached="false"}`), 51);
    assert.equal(metricSample(text, 'signet_verdict_cache_coalesced_total'), 49);
    assert.equal(metricSample(text, 'signet_verdict_cache_hits_total'), 1);
    assert.equal(metricSample(text, 'signet_verdict_cache_misses_total'), 2);
    assert.equal(metricSample(text, 'signet_verdict_cache_entries'), 2);
    assert.ok((metricSample(text, `signet_registry_requests_total{host="${registry.host}",method="GET",status="200"}`) ?? 0) > 0);
    assert.equal(metricSample(text, 'signet_key_loaded{key="release"}'), 1);
    const expiry = metricSample(text, 'signet_key_expiry_seconds{key="release"}')!;
    assert.ok(Math.abs(expiry - (Date.parse('2099-01-01T00:00:00Z') - Date.now()) / 1000) < 600, String(expiry));
    assert.equal(metricSample(text, 'signet_policy_loaded'), 1);
    assert.match(text, /^signet_policy_generation_info\{generation="sha256:[0-9a-f]{64}"\} 1$/m);
    assert.equal(metricSample(text, 'signet_policy_reloads_total{result="success"}'), 1);
    assert.equal(metricSample(text, 'signet_audit_write_failures_total'), 0);
    assert.equal(metricSample(text, 'signet_audit_records_total'), 52);
    assert.match(text, /^signet_decision_duration_seconds_bucket\{le="0.001",event="decision",cached="true"\} 1$/m);
    assert.match(text, /^process_resident_memory_bytes \d+/m);
    // signet status says the same.
    const status = spawnSync(process.execPath, [SIGNET, 'status', '--socket', d.socket], { encoding: 'utf8' }).stdout;
    assert.match(
      status,
      /^cache +2\/10000 verdicts, 1 hits, 2 verifications, 49 requests joined one under way \(2% of 52 answered from memory\); dropped 1 times \(policy or key changes\); acceptances 300 s, refusals 10 s at most$/m,
      status,
    );
    assert.match(status, /^metrics +GET \/metrics on unix socket .*metrics\.sock$/m);
  });

  it('a policy change drops the cache (a digest denied since is refused at once); the content cache leaves only tag lookups', async () => {
    d.writePolicy('policy.yaml', policy({ deny: { digests: [a.descriptor.digest] } }));
    await waitFor(() => d.log().split('policy loaded').length === 3, 'the new policy');
    const denied = await ask(a);
    assert.equal(denied['ok'], false);
    assert.equal(denied['code'], 'DIGEST_DENIED');
    assert.equal(denied['cached'], false);
    registry.reset();
    const fresh = await ask(b);
    assert.equal(fresh['ok'], true, String(fresh['reason']));
    assert.equal(fresh['cached'], false);
    assert.ok(registry.seen.length > 0);
    const byDigest = registry.seen.filter((r) => /\/blobs\/|\/manifests\/sha(256|512):/.test(r.path));
    assert.deepEqual(byDigest, [], 'manifests and blobs by digest came from the content cache');
    const text = await metricsText(metricsSocket());
    assert.equal(metricSample(text, 'signet_policy_reloads_total{result="success"}'), 2);
    assert.equal(metricSample(text, 'signet_verdict_cache_clears_total'), 2);
    assert.ok((metricSample(text, 'signet_content_cache_hits_total') ?? 0) > 0);
  });
});
