/**
 * The containerd contract with an HSM trust anchor: verifier → signetd → docker-registry, the policy
 * naming a SoftHSM2 key by PKCS#11 URI, the image signed on the token.
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closeAllModules } from '../../src/keys/pkcs11/module.js';
import { Pkcs11Signer } from '../../src/keys/pkcs11/signer.js';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { spawnSync } from 'node:child_process';
import { SIGNET, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { pushImage } from '../helpers/images.js';
import { createToken, SOFTHSM_MODULE, softhsmConf, type TestToken } from '../helpers/softhsm.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { runVerifier } from '../helpers/verifier.js';

describe('containerd contract with a key held in a PKCS#11 token', function () {
  this.timeout(90_000);
  let registry: RegistryHandle;
  let daemon: DaemonHandle;
  let token: TestToken;
  let client: RegistryClient;
  let image: { mediaType: string; digest: string; size: number };
  let anchorPem: string;

  before(async () => {
    registry = await startRegistry();
    client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    token = createToken('node-trust');
    token.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'release-2026', '--id', '2026']);
    const signer = await Pkcs11Signer.open(`${token.uri};object=release-2026`, { pin: token.pin });
    anchorPem = signer.publicKeyPem();
    const repo = { registry: registry.host, repository: 'prod/hsm-app' };
    const img = await pushImage(client, repo, 'v1');
    await signImageCosign(client, repo, img.digest, signer, { dockerReference: `${registry.host}/prod/hsm-app` });
    image = { mediaType: img.mediaType, digest: img.digest, size: img.size };
    closeAllModules();
    daemon = await startDaemon({
      insecureRegistries: [registry.host],
      env: { SOFTHSM2_CONF: softhsmConf() },
      extraConfig: `pkcs11: { module: ${SOFTHSM_MODULE} }\nkeyRefreshInterval: 500ms`,
      policy: {
        apiVersion: 'signet/v1',
        keys: {
          cached: { pkcs11: `${token.uri};object=release-2026;type=public` },
          ontoken: { pkcs11: `${token.uri};object=release-2026;type=public`, verifyOn: 'token' },
        },
        scopes: {
          [`${registry.host}/prod`]: { action: 'verify', signatures: { keys: ['cached'] } },
          [`${registry.host}/prod/hsm-app:token`]: { action: 'verify', signatures: { keys: ['ontoken'] } },
        },
      },
    });
    await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
    await client.pushManifest(
      { registry: registry.host, repository: 'prod/hsm-app' },
      'token',
      (await client.getManifest({ registry: registry.host, repository: 'prod/hsm-app' }, image.digest)).bytes,
      image.mediaType,
    );
  });
  after(async () => {
    await daemon?.stop();
    await registry?.stop();
  });

  const verify = (tag: string) => runVerifier({ socket: daemon.socket, name: `${registry.host}/prod/hsm-app:${tag}`, descriptor: image });

  it('accepts an image signed on the token, with the key cached in signetd and with C_Verify on the token', async () => {
    const cached = await verify('v1');
    assert.equal(cached.code, 0, cached.stdout);
    assert.match(cached.stdout, /signed by cached/);
    const onToken = await verify('token');
    assert.equal(onToken.code, 0, onToken.stdout);
    assert.match(onToken.stdout, /signed by ontoken/);
  });

  it('shows each key in Status: where it lives, algorithm, fingerprint, last refresh', () => {
    const r = spawnSync(process.execPath, [SIGNET, 'status', '--socket', daemon.socket, '--output', 'json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const keys = (JSON.parse(r.stdout) as { keys: Array<Record<string, string>> }).keys;
    const cached = keys.find((k) => k['name'] === 'cached')!;
    assert.equal(cached['location'], `${token.uri};object=release-2026;type=public`);
    assert.equal(cached['algorithm'], 'ecdsa-p256');
    assert.match(cached['fingerprint']!, /^sha256:[a-f0-9]{64}$/);
    assert.ok(!Number.isNaN(Date.parse(cached['lastRefresh']!)));
    assert.equal(cached['lastError'], '');
  });

  it('refuses, naming the key, once the key is deleted from the token; recovers by itself when it is back', async () => {
    token.tool(['--delete-object', '--type', 'pubkey', '--label', 'release-2026']);
    await waitFor(async () => (await verify('v1')).code === 1, 'the refresh to notice the deleted key', 5000);
    const refused = await verify('v1');
    assert.match(refused.stdout, /key "cached" cannot be used: .*KEY_NOT_FOUND|key "cached" cannot be used/);
    assert.match(refused.stdout, /release-2026/);
    const pemPath = join(daemon.dir, 'anchor.pem');
    writeFileSync(pemPath, createPublicKey(anchorPem).export({ type: 'spki', format: 'pem' }));
    token.tool(['--write-object', pemPath, '--type', 'pubkey', '--label', 'release-2026', '--id', '2026']);
    await waitFor(async () => (await verify('v1')).code === 0, 'the refresh to find the key again', 5000);
    assert.match(daemon.log(), /key available again/);
  });
});
