/**
 * A fleet by simulation: 20 real signetd processes poll one docker-registry for their policy
 * (`policySource`, 2 s interval). A policy pushed once reaches every node within two intervals (each
 * node's own verification time, from its Status), one signed by another key or not signed reaches none, and an
 * unchanged reference costs each node one HEAD per interval and nothing else (each node's metrics).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, verifierServiceClient } from '../../src/daemon/grpc-server.js';
import { buildPolicyArtifact } from '../../src/policy-source/artifact.js';
import { RegistryClient } from '../../src/registry/client.js';
import { MEDIA_TYPES } from '../../src/registry/types.js';
import { SIGNET, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { makeTestKey } from '../helpers/keys.js';
import { freePort, startRegistry, type RegistryHandle } from '../helpers/registry.js';

const NODES = 20;
const INTERVAL_MS = 2000;

function metricsText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

function total(text: string, name: string, ...match: string[]): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && match.every((m) => l.includes(m)))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('policySource: a fleet of 20 nodes polling one registry', function () {
  this.timeout(240_000);
  let registry: RegistryHandle;
  let work: string;
  const fleet = makeTestKey();
  const other = makeTestKey();
  let ref: string;
  const nodes: Array<{ d: DaemonHandle; port: number; client: grpc.Client & Record<string, (...a: unknown[]) => void> }> = [];

  const push = (accepted: string, keyFile: string): string => {
    const dir = join(work, `p-${accepted}-${Date.now()}`);
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'policy.yaml'),
      `apiVersion: signet/v1\ndefault: { action: reject }\nscopes:\n  ${registry.host}/${accepted}: { action: accept }\n`,
    );
    const r = spawnSync(process.execPath, [SIGNET, 'policy', 'push', dir, ref, '--key', keyFile, '--insecure-registry', registry.host], {
      encoding: 'utf8',
      env: { ...process.env, DOCKER_CONFIG: '/nonexistent' },
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const sourceStatus = (n: (typeof nodes)[number]): Promise<Record<string, any>> =>
    new Promise((resolve, reject) =>
      n.client['Status']!({}, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: Record<string, any>) =>
        err ? reject(err) : resolve(res['policySource'] as Record<string, any>),
      ),
    );

  before(async () => {
    registry = await startRegistry();
    work = mkdtempSync(join(tmpdir(), 'signet-fleet-'));
    writeFileSync(join(work, 'fleet.key'), fleet.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(work, 'other.key'), other.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const pub = fleet.writePublic(join(work, 'fleet.pub'));
    ref = `${registry.host}/security/node-policy:prod`;
    push('first', join(work, 'fleet.key'));
    const Client = verifierServiceClient(loadProtos());
    // A few at a time (two cores): each start is awaited, and kept at once so that after() stops it.
    for (let i = 0; i < NODES; i += 4) {
      await Promise.all(
        Array.from({ length: Math.min(4, NODES - i) }, async (_, j) => {
          const port = await freePort();
          const d = await startDaemon({
            insecureRegistries: [registry.host],
            extraConfig: [
              `policySource: { ref: "${ref}", keys: { fleet: { file: ${pub} } }, interval: ${INTERVAL_MS / 1000}s, cacheDir: ${join(work, `cache-${i + j}`)} }`,
              `metrics: { listen: "127.0.0.1:${port}" }`,
              'logLevel: info',
            ].join('\n'),
          });
          nodes.push({ d, port, client: new Client(`unix://${d.socket}`, grpc.credentials.createInsecure()) as unknown as (typeof nodes)[number]['client'] });
        }),
      );
    }
  });
  after(async () => {
    for (const n of nodes) n.client.close();
    await Promise.all(nodes.map((n) => n.d.stop()));
    await registry?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('a policy pushed once is enforced by every node within two intervals', async () => {
    const pushedAt = Date.now();
    const digest = push('second', join(work, 'fleet.key'));
    await waitFor(
      async () => (await Promise.all(nodes.map(sourceStatus))).every((s) => s['digest'] === digest),
      'every node on the new policy',
      4 * INTERVAL_MS,
    );
    const lags = (await Promise.all(nodes.map(sourceStatus))).map((s) => Date.parse(s['verifiedAt']) - pushedAt);
    assert.ok(Math.max(...lags) <= 2 * INTERVAL_MS, `slowest node: ${Math.max(...lags)} ms after the push (lags ${lags.join(', ')})`);
  });

  it('a policy signed by another key, or not signed, is enforced by none', async () => {
    const before = (await sourceStatus(nodes[0]!))['digest'] as string;
    const refusedEverywhere = async (bad: string, rejected: number): Promise<void> => {
      await waitFor(
        async () => (await Promise.all(nodes.map(sourceStatus))).every((s) => s['remoteDigest'] === bad && s['lastError'] !== ''),
        'every node refusing it',
        4 * INTERVAL_MS,
      );
      await new Promise((r) => setTimeout(r, INTERVAL_MS));
      for (const s of await Promise.all(nodes.map(sourceStatus))) {
        assert.equal(s['digest'], before);
        assert.match(s['lastError'], /refused/);
        assert.equal(s['rejected'], rejected, 'verified once, not once per interval');
      }
    };
    await refusedEverywhere(push('evil', join(work, 'other.key')), 1);
    // Unsigned: the artifact pushed and tagged, no signature.
    const unsigned = buildPolicyArtifact([{ name: 'policy.yaml', bytes: Buffer.from('apiVersion: signet/v1\ndefault: { action: accept }\n') }]);
    const client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    const repo = { registry: registry.host, repository: 'security/node-policy' };
    await client.pushBlob(repo, unsigned.config);
    await client.pushBlob(repo, unsigned.layer);
    await client.pushManifest(repo, 'prod', unsigned.manifest, MEDIA_TYPES.ociManifest);
    await refusedEverywhere(unsigned.digest, 2);
  });

  it('an unchanged reference costs each node one HEAD per interval and nothing else', async () => {
    const good = push('third', join(work, 'fleet.key'));
    await waitFor(
      async () => (await Promise.all(nodes.map(sourceStatus))).every((s) => s['digest'] === good),
      'every node on the third policy',
      4 * INTERVAL_MS,
    );
    const before = await Promise.all(nodes.map((n) => metricsText(n.port)));
    const windowMs = 3 * INTERVAL_MS;
    await new Promise((r) => setTimeout(r, windowMs));
    const after = await Promise.all(nodes.map((n) => metricsText(n.port)));
    nodes.forEach((_, i) => {
      const heads = total(after[i]!, 'signet_registry_requests_total', 'method="HEAD"') - total(before[i]!, 'signet_registry_requests_total', 'method="HEAD"');
      const others = total(after[i]!, 'signet_registry_requests_total') - total(before[i]!, 'signet_registry_requests_total') - heads;
      assert.ok(heads >= 2 && heads <= 4, `node ${i}: ${heads} HEAD requests in ${windowMs} ms`);
      assert.equal(others, 0, `node ${i}: requests other than HEAD`);
    });
  });
});
