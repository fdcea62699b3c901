/**
 * Every format through the containerd contract at once: one image signed as cosign, as a sigstore
 * bundle and with Notation, counted across formats for a threshold; referrers through the referrers
 * API; an air-gapped node with no registry reachable; a flood of referrers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { buildImageBundle, pushBundleReferrer } from '../../src/signing/bundle-sign.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { pushReferrer } from '../../src/signing/referrer.js';
import { ROOT, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { pushImage, pushOciLayout } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { saveLayout } from '../helpers/layout.js';
import { startReferrersApi, type ReferrersApi } from '../helpers/referrers-api.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { runVerifier } from '../helpers/verifier.js';

const NOTATION = 'application/vnd.cncf.notary.signature';

describe('all formats through the containerd contract', function () {
  this.timeout(120_000);
  let registry: RegistryHandle;
  let api: ReferrersApi;
  let client: RegistryClient;
  let daemon: DaemonHandle;
  const cosignKey = makeTestKey();
  const bundleKey = makeTestKey('ed25519');
  const layout = mkdtempSync(join(tmpdir(), 'signet-airgap-'));
  let alpine: { mediaType: string; digest: string; size: number };

  before(async () => {
    registry = await startRegistry();
    api = await startReferrersApi(registry.host);
    client = new RegistryClient({ insecureRegistries: [registry.host, api.host], retries: 0 });
    // The alpine image and its real Notation JWS signature, plus a cosign signature and a sigstore bundle.
    const repo = { registry: registry.host, repository: 'multi/alpine' };
    const img = await pushOciLayout(client, repo, join(ROOT, 'test/fixtures/notation/alpine-oci-layout'), 'v2');
    alpine = { mediaType: img.mediaType, digest: img.digest, size: img.size };
    await pushReferrer(client, repo, alpine, NOTATION, 'application/jose+json', readFileSync(join(ROOT, 'test/fixtures/notation/jws_signature.sig')));
    await signImageCosign(client, repo, alpine.digest, cosignKey.signer, { dockerReference: `${api.host}/multi/alpine` });
    await pushBundleReferrer(client, repo, alpine, await buildImageBundle(`${api.host}/multi/alpine`, alpine.digest, bundleKey.signer));
    // For the air-gapped node: the image's cosign signature saved to a layout.
    await saveLayout(client, repo, layout, ['v2', `${alpine.digest.replace(':', '-')}.sig`]);

    daemon = await startDaemon({ insecureRegistries: [registry.host, api.host, '127.0.0.1:9'] });
    cosignKey.writePublic(join(daemon.dir, 'cosign.pub'));
    bundleKey.writePublic(join(daemon.dir, 'bundle.pub'));
    const three = ['cosign-key', 'bundle-key', 'alpine-ca'];
    daemon.writePolicy('policy.yaml', {
      apiVersion: 'signet/v1',
      keys: {
        'cosign-key': { file: join(daemon.dir, 'cosign.pub') },
        'bundle-key': { file: join(daemon.dir, 'bundle.pub') },
        'alpine-ca': { certificates: join(ROOT, 'test/fixtures/notation/alpine-trust-root.pem') },
      },
      scopes: {
        [`${api.host}/multi/alpine:v2`]: { action: 'verify', signatures: { keys: three, threshold: 3 } },
        [`${api.host}/multi/alpine:two-formats`]: { action: 'verify', signatures: { keys: three, threshold: 3 }, formats: ['cosign', 'notation'] },
        // The signatures name the image as pulled through the API front; these scopes say so.
        [`${registry.host}/multi/alpine:v2`]: {
          action: 'verify',
          signatures: { keys: three, threshold: 3, identity: { type: 'exactRepository', dockerRepository: `${api.host}/multi/alpine` } },
        },
        '127.0.0.1:9/multi': {
          action: 'verify',
          signatures: { keys: ['cosign-key'], identity: { type: 'exactRepository', dockerRepository: `${api.host}/multi/alpine` } },
          signatureSources: [{ ociLayout: layout }],
        },
        [`${registry.host}/flood`]: { action: 'verify', signatures: { keys: ['alpine-ca'] } },
      },
    });
    await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
  });
  after(async () => {
    await daemon?.stop();
    await api?.stop();
    await registry?.stop();
  });

  it('counts keys across the three formats for a 3-of-3 threshold, with referrers read through the referrers API', async () => {
    const before = api.served;
    const r = await runVerifier({ socket: daemon.socket, name: `${api.host}/multi/alpine:v2`, descriptor: alpine });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /signed by (?=.*cosign-key)(?=.*bundle-key)(?=.*alpine-ca)/);
    const formats = (daemon.audit().at(-1)!['signatures'] as Array<Record<string, unknown>>)
      .filter((s) => s['valid'])
      .map((s) => s['format'])
      .sort();
    assert.deepEqual(formats, ['cosign', 'notation', 'sigstore-bundle']);
    assert.ok(api.served > before, 'the referrers API was used');
  });

  it('refuses when the scope counts two formats only (2 of 3)', async () => {
    const r = await runVerifier({ socket: daemon.socket, name: `${api.host}/multi/alpine:two-formats`, descriptor: alpine });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /needs valid signatures by 3 of cosign-key, bundle-key, alpine-ca \(only (cosign-key, alpine-ca|alpine-ca, cosign-key) valid\)/);
  });

  it('reads referrers through the tag fallback when the registry has no referrers API', async () => {
    const r = await runVerifier({ socket: daemon.socket, name: `${registry.host}/multi/alpine:v2`, descriptor: alpine });
    assert.equal(r.code, 0, r.stdout);
  });

  it('enforces on an air-gapped node: signatures from an OCI layout, no registry reachable', async () => {
    const r = await runVerifier({ socket: daemon.socket, name: `127.0.0.1:9/multi/alpine:v2`, descriptor: alpine });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /signed by cosign-key/);
  });

  /** The referrers tag, written directly: far larger than anything signet itself would push. */
  const putIndex = async (repository: string, digest: string, bytes: Buffer) =>
    (
      await fetch(`http://${registry.host}/v2/${repository}/manifests/${digest.replace(':', '-')}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
        body: new Uint8Array(bytes),
      })
    ).status;

  it('bounds a flood of referrers in time and memory', async () => {
    const repo = { registry: registry.host, repository: 'flood/app' };
    const img = await pushImage(client, repo, 'v1');
    const fake = (i: number) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${i.toString(16).padStart(64, '0')}`,
      size: 500,
      artifactType: NOTATION,
    });
    // 20 000 listed referrers (an index of about 3.3 MB, near the registry's own 4 MiB manifest limit,
    // and within signet's 4 MiB cap): only maxSignatures of them are fetched.
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: Array.from({ length: 20_000 }, (_, i) => fake(i)) }),
    );
    await putIndex(repo.repository, img.digest, index);
    const r = await runVerifier({
      socket: daemon.socket,
      name: `${registry.host}/flood/app:v1`,
      descriptor: { mediaType: img.mediaType, digest: img.digest, size: img.size },
    });
    assert.equal(r.code, 1);
    assert.ok(r.ms < 6000, `took ${r.ms} ms`);
    const line = daemon.audit().at(-1)!;
    assert.ok((line['signatures'] as unknown[]).length <= 32, 'at most maxSignatures examined');
  });
});
