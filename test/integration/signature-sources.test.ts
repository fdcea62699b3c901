/**
 * Where signatures come from: OCI image layouts for air-gapped nodes (per-scope signatureSources), and
 * OCI 1.1 referrers through the registry API and through the referrers tag fallback.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { OciLayoutStore } from '../../src/registry/oci-layout.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { ROOT, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { pushImage, pushOciLayout } from '../helpers/images.js';
import { pushReferrer } from '../../src/signing/referrer.js';
import { makeTestKey } from '../helpers/keys.js';
import { saveLayout } from '../helpers/layout.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { startReferrersApi } from '../helpers/referrers-api.js';
import { runVerifier } from '../helpers/verifier.js';
import { buildImageBundle, pushBundleReferrer } from '../../src/signing/bundle-sign.js';
import { Pkcs11Signer } from '../../src/keys/pkcs11/signer.js';
import { closeAllModules } from '../../src/keys/pkcs11/module.js';
import { createToken, softhsmConf } from '../helpers/softhsm.js';
import { createFakeSigstore } from '../helpers/sigstore-fake.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('signature sources', function () {
  this.timeout(90_000);
  let registry: RegistryHandle;
  let client: RegistryClient;
  let host: string;
  before(async () => {
    registry = await startRegistry();
    host = registry.host;
    client = new RegistryClient({ insecureRegistries: [host], retries: 0 });
  });
  after(async () => registry?.stop());

  describe('an OCI image layout on an air-gapped node', () => {
    let daemon: DaemonHandle;
    let layout: string;
    let img: { mediaType: string; digest: string; size: number };
    const key = makeTestKey();

    before(async () => {
      const repo = { registry: host, repository: 'airgap/app' };
      const pushed = await pushImage(client, repo, 'v1');
      img = { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size };
      const sigTag = `${pushed.digest.replace(':', '-')}.sig`;
      await signImageCosign(client, repo, pushed.digest, key.signer, { dockerReference: `${host}/airgap/app` });
      layout = mkdtempSync(join(tmpdir(), 'signet-layout-'));
      await saveLayout(client, repo, layout, ['v1', sigTag]);
      // The registry the node pulls from has the image but not the signature (it travelled on disk).
      const sig = await client.getManifest(repo, sigTag);
      await fetch(`http://${host}/v2/airgap/app/manifests/${sig.digest}`, { method: 'DELETE' });
      assert.equal(await client.tryGetManifest(repo, sigTag), undefined);

      // These tests change the signatures on disk between verifications of one image: no verdict cache.
      daemon = await startDaemon({ insecureRegistries: [host], extraConfig: 'cacheTTL: 0s\nnegativeCacheTTL: 0s' });
      key.writePublic(join(daemon.dir, 'k.pub'));
      daemon.writePolicy('policy.yaml', {
        apiVersion: 'signet/v1',
        keys: { release: { file: join(daemon.dir, 'k.pub') } },
        scopes: {
          [`${host}/airgap/app:v1`]: { action: 'verify', signatures: { keys: ['release'] }, signatureSources: [{ ociLayout: layout }] },
          [`${host}/airgap/app:both`]: { action: 'verify', signatures: { keys: ['release'] }, signatureSources: ['registry', { ociLayout: layout }] },
          [`${host}/airgap`]: { action: 'verify', signatures: { keys: ['release'] } },
        },
      });
      await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
    });
    after(async () => daemon?.stop());

    const verify = (tag: string) => runVerifier({ socket: daemon.socket, name: `${host}/airgap/app:${tag}`, descriptor: img });

    it('accepts with the signature read from the layout (layout only, and registry then layout)', async () => {
      const r = await verify('v1');
      assert.equal(r.code, 0, r.stdout);
      assert.match(r.stdout, /signed by release/);
      const line = daemon.audit().at(-1)!;
      assert.match(String((line['signatures'] as Array<Record<string, unknown>>)[0]!['source']), new RegExp(`^oci-layout:${layout} `));
      const both = await verify('both');
      assert.equal(both.code, 0, both.stdout);
    });

    it('rejects when only the registry is consulted (no signature there)', async () => {
      const r = await verify('latest');
      assert.equal(r.code, 1);
      assert.match(r.stdout, /no signatures found/);
    });

    it('rejects a layout whose payload blob was altered on disk', async () => {
      const store = new OciLayoutStore(layout);
      const sigManifest = await store.tryGetManifest({ registry: host, repository: 'airgap/app' }, `${img.digest.replace(':', '-')}.sig`);
      const payloadDigest = (JSON.parse(sigManifest!.bytes.toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
      const path = join(layout, 'blobs', 'sha256', payloadDigest.slice(7));
      const original = readFileSync(path);
      writeFileSync(path, Buffer.from(original.toString().replace('airgap', 'airgaX')));
      try {
        const r = await verify('v1');
        assert.equal(r.code, 1);
        assert.match(r.stdout, /does not match its digest/);
      } finally {
        writeFileSync(path, original);
      }
    });

    it('refuses a layout path that is not absolute, in the policy', async () => {
      const before = daemon.log().length;
      daemon.writePolicy('extra.yaml', {
        apiVersion: 'signet/v1',
        scopes: { [`${host}/other`]: { action: 'verify', signatures: { keys: ['release'] }, signatureSources: [{ ociLayout: 'relative/dir' }] } },
      });
      await waitFor(() => /must be an absolute path/.test(daemon.log().slice(before)), 'the problem to be reported');
      daemon.writePolicy('extra.yaml', { apiVersion: 'signet/v1' });
    });
  });

  describe('OCI 1.1 referrers', () => {
    const ARTIFACT = 'application/vnd.example.signature+json';
    let subject: { digest: string; size: number; mediaType: string };
    const referrerDigests: string[] = [];

    before(async () => {
      const repo = { registry: host, repository: 'refs/app' };
      const pushed = await pushImage(client, repo, 'v1');
      subject = { digest: pushed.digest, size: pushed.size, mediaType: pushed.mediaType };
      const empty = Buffer.from('{}');
      await client.pushBlob(repo, empty);
      const entries = [];
      for (const [i, type] of [ARTIFACT, 'application/vnd.other+json', ARTIFACT].entries()) {
        const layer = Buffer.from(`{"n":${i}}`);
        await client.pushBlob(repo, layer);
        const manifest = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            artifactType: type,
            config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 },
            layers: [{ mediaType: 'application/json', digest: sha256(layer), size: layer.length }],
            subject,
          }),
        );
        const digest = await client.pushManifest(repo, sha256(manifest), manifest, 'application/vnd.oci.image.manifest.v1+json');
        if (type === ARTIFACT) referrerDigests.push(digest);
        entries.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: manifest.length, artifactType: type });
      }
      // docker-registry 2.8 has no referrers API: clients maintain the referrers tag schema (sha256-<hex>).
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries }));
      await client.pushManifest(repo, pushed.digest.replace(':', '-'), index, 'application/vnd.oci.image.index.v1+json');
    });

    it('falls back to the referrers tag when the registry does not serve the API, filtering by artifactType', async () => {
      const refs = await client.referrers({ registry: host, repository: 'refs/app' }, subject.digest, { artifactType: ARTIFACT, limit: 10 });
      assert.deepEqual(refs.map((r) => r.digest).sort(), [...referrerDigests].sort());
      const all = await client.referrers({ registry: host, repository: 'refs/app' }, subject.digest, { limit: 10 });
      assert.equal(all.length, 3);
      const limited = await client.referrers({ registry: host, repository: 'refs/app' }, subject.digest, { limit: 1 });
      assert.equal(limited.length, 1);
      assert.deepEqual(await client.referrers({ registry: host, repository: 'refs/app' }, `sha256:${'0'.repeat(64)}`, { limit: 10 }), []);
    });

    it('uses the referrers API with Link pagination, filtering client-side when the registry did not', async () => {
      const api = await startReferrersApi(host, 1);
      const apiHost = api.host;
      try {
        const viaApi = new RegistryClient({ insecureRegistries: [apiHost], retries: 0 });
        const refs = await viaApi.referrers({ registry: apiHost, repository: 'refs/app' }, subject.digest, { artifactType: ARTIFACT, limit: 10 });
        assert.deepEqual(refs.map((r) => r.digest).sort(), [...referrerDigests].sort());
        assert.equal((await viaApi.referrers({ registry: apiHost, repository: 'refs/app' }, subject.digest, { limit: 10 })).length, 3);
        assert.ok(api.served >= 3, 'one page per referrer');
      } finally {
        await api.stop();
      }
    });

    it('finds referrers in an OCI layout through their subject', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'signet-layout-refs-'));
      await saveLayout(client, { registry: host, repository: 'refs/app' }, dir, ['v1', ...referrerDigests]);
      const store = new OciLayoutStore(dir);
      const refs = await store.referrers({ registry: host, repository: 'refs/app' }, subject.digest, { artifactType: ARTIFACT, limit: 10 });
      assert.deepEqual(refs.map((r) => r.digest).sort(), [...referrerDigests].sort());
      assert.ok(readdirSync(join(dir, 'blobs', 'sha256')).length >= 4);
    });
  });

  describe('sigstore bundles as OCI 1.1 referrers, signed with an HSM key', () => {
    it('accepts through the containerd contract when the policy takes bundles, refuses when it takes cosign only', async () => {
      const token = createToken('bundles');
      token.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'v3', '--id', '03']);
      const signer = await Pkcs11Signer.open(`${token.uri};object=v3`, { pin: token.pin });
      const repo = { registry: host, repository: 'v3/app' };
      const pushed = await pushImage(client, repo, 'v1');
      const bundle = await buildImageBundle(`${host}/v3/app`, pushed.digest, signer);
      await pushBundleReferrer(client, repo, { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size }, bundle);
      closeAllModules();
      const daemon = await startDaemon({
        insecureRegistries: [host],
        env: { SOFTHSM2_CONF: softhsmConf() },
        policy: {
          apiVersion: 'signet/v1',
          keys: { v3: { pkcs11: `${token.uri};object=v3;type=public`, verifyOn: 'token' } },
          scopes: {
            [`${host}/v3/app:v1`]: { action: 'verify', signatures: { keys: ['v3'] }, formats: ['sigstore-bundle'] },
            [`${host}/v3/app:cosign-only`]: { action: 'verify', signatures: { keys: ['v3'] }, formats: ['cosign'] },
          },
        },
      });
      try {
        await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
        const descriptor = { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size };
        const ok = await runVerifier({ socket: daemon.socket, name: `${host}/v3/app:v1`, descriptor });
        assert.equal(ok.code, 0, ok.stdout);
        const line = daemon.audit().at(-1)!;
        assert.deepEqual(
          (line['signatures'] as Array<Record<string, unknown>>).map((x) => [x['format'], x['key'], x['valid']]),
          [['sigstore-bundle', 'v3', true]],
        );
        const refused = await runVerifier({ socket: daemon.socket, name: `${host}/v3/app:cosign-only`, descriptor });
        assert.equal(refused.code, 1);
        assert.match(refused.stdout, /no signatures found/);
      } finally {
        await daemon.stop();
      }
    });
  });

  describe('Notation signatures made by the real notation signer, as OCI 1.1 referrers', () => {
    it('accepts the alpine image with its JWS or COSE signature against the trust store, and refuses other trust or identities', async () => {
      const repo = { registry: host, repository: 'notary/alpine' };
      const img = await pushOciLayout(client, repo, join(ROOT, 'test/fixtures/notation/alpine-oci-layout'), 'v2');
      const descriptor = { mediaType: img.mediaType, digest: img.digest, size: img.size };
      await pushReferrer(
        client,
        repo,
        descriptor,
        'application/vnd.cncf.notary.signature',
        'application/jose+json',
        readFileSync(join(ROOT, 'test/fixtures/notation/jws_signature.sig')),
      );
      const coseRepo = { registry: host, repository: 'notary/alpine-cose' };
      await pushOciLayout(client, coseRepo, join(ROOT, 'test/fixtures/notation/alpine-oci-layout'), 'v2');
      await pushReferrer(
        client,
        coseRepo,
        descriptor,
        'application/vnd.cncf.notary.signature',
        'application/cose',
        readFileSync(join(ROOT, 'test/fixtures/notation/cose_signature.sig')),
      );
      // The same trust anchor as a certificate object on an HSM token.
      const token = createToken('notary-anchors');
      const der = join(mkdtempSync(join(tmpdir(), 'signet-cert-')), 'root.der');
      execFileSync('openssl', ['x509', '-in', join(ROOT, 'test/fixtures/notation/alpine-trust-root.pem'), '-outform', 'DER', '-out', der]);
      token.tool(['--write-object', der, '--type', 'cert', '--label', 'alpine-root', '--id', '0a']);
      const daemon = await startDaemon({ insecureRegistries: [host], env: { SOFTHSM2_CONF: softhsmConf() } });
      try {
        const store = join(ROOT, 'test/fixtures/notation/alpine-trust-root.pem');
        daemon.writePolicy('policy.yaml', {
          apiVersion: 'signet/v1',
          keys: {
            'alpine-ca': { certificates: store, trustedIdentities: ['x509.subject: C=US, ST=WA, O=Notary'] },
            'acme-ca': { certificates: store, trustedIdentities: ['x509.subject: C=US, ST=WA, O=Acme'] },
            'not-a-store': { file: join(daemon.dir, 'k.pub') },
            'hsm-ca': { pkcs11: `${token.uri};object=alpine-root;type=cert` },
          },
          scopes: {
            [`${host}/notary`]: { action: 'verify', signatures: { keys: ['alpine-ca'] } },
            [`${host}/notary/alpine:acme`]: { action: 'verify', signatures: { keys: ['acme-ca'] } },
            [`${host}/notary/alpine:cosign-only`]: { action: 'verify', signatures: { keys: ['alpine-ca'] }, formats: ['cosign'] },
            [`${host}/notary/alpine:hsm`]: { action: 'verify', signatures: { keys: ['hsm-ca'] } },
            [`${host}/notary/alpine:plain-key`]: { action: 'verify', signatures: { keys: ['not-a-store'] } },
          },
        });
        makeTestKey().writePublic(join(daemon.dir, 'k.pub'));
        await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
        const jwsRun = await runVerifier({ socket: daemon.socket, name: `${host}/notary/alpine:v2`, descriptor });
        assert.equal(jwsRun.code, 0, jwsRun.stdout);
        assert.deepEqual(
          (daemon.audit().at(-1)!['signatures'] as Array<Record<string, unknown>>).map((x) => [x['format'], x['key'], x['valid']]),
          [['notation', 'alpine-ca', true]],
        );
        const coseRun = await runVerifier({ socket: daemon.socket, name: `${host}/notary/alpine-cose:v2`, descriptor });
        assert.equal(coseRun.code, 0, coseRun.stdout);
        const acme = await runVerifier({ socket: daemon.socket, name: `${host}/notary/alpine:acme`, descriptor });
        assert.equal(acme.code, 1);
        assert.match(acme.stdout, /trust store "acme-ca": .*matches none of the trusted identities/);
        const hsm = await runVerifier({ socket: daemon.socket, name: `${host}/notary/alpine:hsm`, descriptor });
        assert.equal(hsm.code, 0, hsm.stdout);
        const plain = await runVerifier({ socket: daemon.socket, name: `${host}/notary/alpine:plain-key`, descriptor });
        assert.equal(plain.code, 1);
        assert.match(plain.stdout, /not a certificate trust store/);
        const cosignOnly = await runVerifier({ socket: daemon.socket, name: `${host}/notary/alpine:cosign-only`, descriptor });
        assert.equal(cosignOnly.code, 1);
        assert.match(cosignOnly.stdout, /no signatures found/);
      } finally {
        await daemon.stop();
      }
    });
  });

  describe('keyless sigstore bundles (offline trusted root)', () => {
    it('accepts the required signer identity and refuses another, through the containerd contract', async () => {
      const fake = createFakeSigstore('ci@example.com', 'https://ci.example.com');
      const repo = { registry: host, repository: 'keyless/app' };
      const pushed = await pushImage(client, repo, 'v1');
      const descriptor = { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size };
      await pushReferrer(
        client,
        repo,
        descriptor,
        'application/vnd.dev.sigstore.bundle.v0.3+json',
        'application/vnd.dev.sigstore.bundle.v0.3+json',
        fake.bundleFor(`${host}/keyless/app`, pushed.digest),
      );
      const daemon = await startDaemon({
        insecureRegistries: [host],
        policy: {
          apiVersion: 'signet/v1',
          keys: {
            ci: { sigstore: { trustedRoot: fake.trustedRootPath, issuer: 'https://ci.example.com', subject: 'ci@example.com' } },
            ops: { sigstore: { trustedRoot: fake.trustedRootPath, issuer: 'https://ci.example.com', subjectRegExp: 'ops-.*@example\\.com' } },
          },
          scopes: {
            [`${host}/keyless/app:v1`]: { action: 'verify', signatures: { keys: ['ci'] } },
            [`${host}/keyless/app:ops`]: { action: 'verify', signatures: { keys: ['ops'] } },
          },
        },
      });
      try {
        await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
        const ok = await runVerifier({ socket: daemon.socket, name: `${host}/keyless/app:v1`, descriptor });
        assert.equal(ok.code, 0, ok.stdout);
        const no = await runVerifier({ socket: daemon.socket, name: `${host}/keyless/app:ops`, descriptor });
        assert.equal(no.code, 1);
        assert.match(no.stdout, /key "ops": sigstore certificate subject "ci@example.com" does not match/);
      } finally {
        await daemon.stop();
      }
    });
  });
});
