/**
 * Registry failures through the whole path (verifier → signetd → registry): missing content,
 * authentication, server errors, hanging and stalling servers. The client's own behaviour is tested in
 * registry-client.test.ts.
 * Every one is a rejection with a reason, never an acceptance and never a crash.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushImage } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { runVerifier } from '../helpers/verifier.js';

const key = makeTestKey();
const policyFor = (dir: string, hosts: string[]) => ({
  apiVersion: 'signet/v1',
  keys: { release: { file: join(dir, 'release.pub') } },
  scopes: Object.fromEntries(hosts.map((h) => [h, { action: 'verify', signatures: { keys: ['release'] } }])),
});

describe('registry failures through the containerd contract', function () {
  this.timeout(60_000);
  let registry: RegistryHandle;
  let locked: RegistryHandle;
  let proxy: FaultProxy;
  let daemon: DaemonHandle;
  let client: RegistryClient;
  const creds = { user: 'ci', password: 's3cret-pw' };

  before(async () => {
    registry = await startRegistry();
    locked = await startRegistry({ htpasswd: creds });
    proxy = await startFaultProxy(registry.host);
    client = new RegistryClient({ insecureRegistries: [registry.host, proxy.host], retries: 0 });
    daemon = await startDaemon({ insecureRegistries: [registry.host, proxy.host, locked.host] });
    key.writePublic(join(daemon.dir, 'release.pub'));
    daemon.writePolicy('policy.yaml', policyFor(daemon.dir, [registry.host, proxy.host, locked.host]));
    await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
  });
  after(async () => {
    await daemon?.stop();
    await proxy?.stop();
    await registry?.stop();
    await locked?.stop();
  });
  afterEach(() => proxy.rules.splice(0));

  async function signed(repo: string) {
    const r = { registry: registry.host, repository: repo };
    const img = await pushImage(client, r, 'v1');
    await signImageCosign(client, r, img.digest, key.signer, { dockerReference: `${proxy.host}/${repo}` });
    return { mediaType: img.mediaType, digest: img.digest, size: img.size };
  }
  const viaProxy = (repo: string, descriptor: { mediaType: string; digest: string; size: number }) =>
    runVerifier({ socket: daemon.socket, name: `${proxy.host}/${repo}:v1`, descriptor });

  it('accepts through the proxy when nothing is injected (the control case)', async () => {
    const d = await signed('control');
    const run = await viaProxy('control', d);
    assert.equal(run.code, 0, run.stdout);
  });

  it('rejects when the signature payload blob is missing (404)', async () => {
    const d = await signed('missing-blob');
    const sig = await client.getManifest({ registry: registry.host, repository: 'missing-blob' }, `${d.digest.replace(':', '-')}.sig`);
    const blob = (JSON.parse(sig.bytes.toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest.slice(7);
    rmSync(join(registry.storageDir, 'docker/registry/v2/blobs/sha256', blob.slice(0, 2), blob), { recursive: true });
    const run = await viaProxy('missing-blob', d);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /registry answered 404/);
  });

  it('rejects with the registry status when the registry answers 500', async () => {
    const d = await signed('five-hundred');
    proxy.rules.push({ path: /\/manifests\/sha256-/, action: { kind: 'status', status: 500 } });
    const run = await viaProxy('five-hundred', d);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /registry answered 500/);
    assert.equal(daemon.audit().at(-1)?.['code'], 'REGISTRY_UNAVAILABLE');
  });

  it('rejects within the registry timeout when the registry hangs', async () => {
    const d = await signed('hang');
    proxy.rules.push({ path: /\/manifests\/sha256-/, action: { kind: 'hang' } });
    const run = await viaProxy('hang', d);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /no complete answer within 2000 ms/);
    assert.ok(run.ms < 5000, `took ${run.ms} ms`);
  });

  it('rejects when the registry stalls in the middle of a body', async () => {
    const d = await signed('stall');
    proxy.rules.push({ path: /\/manifests\/sha256-/, action: { kind: 'stall' } });
    const run = await viaProxy('stall', d);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /no complete answer within/);
  });

  it('rejects with a clear reason when the registry needs credentials signetd does not have (401)', async () => {
    const authed = new RegistryClient({ insecureRegistries: [locked.host], retries: 0, dockerConfigPath: writeDockerConfig(daemon.dir, locked.host, creds) });
    const r = { registry: locked.host, repository: 'private/app' };
    const img = await pushImage(authed, r, 'v1');
    await signImageCosign(authed, r, img.digest, key.signer, { dockerReference: `${locked.host}/private/app` });
    const run = await runVerifier({
      socket: daemon.socket,
      name: `${locked.host}/private/app:v1`,
      descriptor: { mediaType: img.mediaType, digest: img.digest, size: img.size },
    });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /unauthorized \(no credentials configured for this registry\)/);
  });
});

describe('signetd with registry credentials from a Docker config.json', function () {
  this.timeout(60_000);
  it('accepts a signed image from a registry behind Basic authentication', async () => {
    const creds = { user: 'node', password: 'pa55' };
    const locked = await startRegistry({ htpasswd: creds });
    const daemon = await startDaemon({ insecureRegistries: [locked.host], extraConfig: '' });
    try {
      const config = writeDockerConfig(mkdtempSync(join(tmpdir(), 'signet-creds-')), locked.host, creds);
      const authed = new RegistryClient({ insecureRegistries: [locked.host], retries: 0, dockerConfigPath: config });
      const r = { registry: locked.host, repository: 'private/app' };
      const img = await pushImage(authed, r, 'v1');
      await signImageCosign(authed, r, img.digest, key.signer, { dockerReference: `${locked.host}/private/app` });
      // Restart signetd with dockerConfig set.
      await daemon.stop();
      const d2 = await startDaemon({ insecureRegistries: [locked.host], extraConfig: `dockerConfig: ${config}` });
      try {
        key.writePublic(join(d2.dir, 'release.pub'));
        d2.writePolicy('policy.yaml', policyFor(d2.dir, [locked.host]));
        await waitFor(() => d2.log().includes('policy loaded'), 'policy');
        const run = await runVerifier({
          socket: d2.socket,
          name: `${locked.host}/private/app:v1`,
          descriptor: { mediaType: img.mediaType, digest: img.digest, size: img.size },
        });
        assert.equal(run.code, 0, run.stdout);
        assert.ok(!run.stdout.includes(creds.password));
      } finally {
        await d2.stop();
      }
    } finally {
      await daemon.stop();
      await locked.stop();
    }
  });
});

function writeDockerConfig(dir: string, host: string, creds: { user: string; password: string }): string {
  const path = join(dir, 'docker-config.json');
  writeFileSync(path, JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${creds.user}:${creds.password}`).toString('base64') } } }));
  return path;
}
