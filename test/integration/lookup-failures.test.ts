/**
 * A signature lookup that fails refuses the image only when what it might have found could change the
 * decision: a referrers endpoint answering 500 does not refuse an image whose cosign signature already
 * meets the requirements (a warning says what could not be read), but it does refuse when
 * rejectIfSignedBy applies (a signature by a refused key could be there) and when the requirements
 * are not met with what could be read.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushImage } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { runVerifier } from '../helpers/verifier.js';

describe('failed signature lookups refuse only when they could change the decision', function () {
  this.timeout(30_000);
  let registry: RegistryHandle;
  let proxy: FaultProxy;
  let daemon: DaemonHandle;
  let client: RegistryClient;
  const release = makeTestKey();
  const leaked = makeTestKey();

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.host);
    client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    daemon = await startDaemon({ insecureRegistries: [proxy.host] });
    release.writePublic(join(daemon.dir, 'release.pub'));
    leaked.writePublic(join(daemon.dir, 'leaked.pub'));
    const h = proxy.host;
    daemon.writePolicy('policy.yaml', {
      apiVersion: 'signet/v1',
      keys: { release: { file: join(daemon.dir, 'release.pub') }, leaked: { file: join(daemon.dir, 'leaked.pub') } },
      scopes: {
        [`${h}/plain`]: { action: 'verify', signatures: { keys: ['release'] } },
        [`${h}/guarded`]: { action: 'verify', signatures: { keys: ['release'] }, rejectIfSignedBy: ['leaked'] },
      },
    });
    await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
    // The referrers API (and so every referrers-based format) answers 500.
    proxy.rules.push({ path: /\/referrers\//, action: { kind: 'status', status: 500 } });
  });
  after(async () => {
    await daemon?.stop();
    await proxy?.stop();
    await registry?.stop();
  });

  async function image(repo: string, signed: boolean) {
    const r = { registry: registry.host, repository: repo };
    const img = await pushImage(client, r, 'v1');
    if (signed) await signImageCosign(client, r, img.digest, release.signer, { dockerReference: `${proxy.host}/${repo}` });
    return { mediaType: img.mediaType, digest: img.digest, size: img.size };
  }
  const decide = (repo: string, descriptor: { mediaType: string; digest: string; size: number }) =>
    runVerifier({ socket: daemon.socket, name: `${proxy.host}/${repo}:v1`, descriptor });
  const line = async (digest: string) => {
    await waitFor(() => daemon.audit().some((l) => l['digest'] === digest), 'the audit line');
    return daemon.audit().find((l) => l['digest'] === digest)!;
  };

  it('accepts an image whose cosign signature meets the requirements, with a warning naming the failed lookup', async () => {
    const d = await image('plain/signed', true);
    const run = await decide('plain/signed', d);
    assert.equal(run.code, 0, run.stdout);
    assert.ok(proxy.count(/\/referrers\//) > 0, 'the referrers API was asked (and failed)');
    const l = await line(d.digest);
    assert.equal(l['decision'], 'accept');
    assert.match(JSON.stringify(l['warnings']), /cannot look up signatures in the .*500.*the requirements were met without it/);
  });

  it('refuses when rejectIfSignedBy applies: a signature by the refused key could be in what was not read', async () => {
    const d = await image('guarded/signed', true);
    const run = await decide('guarded/signed', d);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stdout, /cannot rule out a signature by leaked \(rejectIfSignedBy\)/);
    assert.equal((await line(d.digest))['code'], 'REGISTRY_UNAVAILABLE');
  });

  it('refuses with the lookup failure when the requirements are not met with what could be read', async () => {
    const d = await image('plain/unsigned', false);
    const run = await decide('plain/unsigned', d);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stdout, /500.*with what could be read: no signatures found/);
    assert.equal((await line(d.digest))['code'], 'REGISTRY_UNAVAILABLE');
  });
});
