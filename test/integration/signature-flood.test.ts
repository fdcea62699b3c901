/**
 * Signature floods without lockout, end to end (issue 14): the real signetd against Debian's
 * docker-registry, seen through the fault proxy only to count requests. Stale signatures of an old key
 * cannot hide the valid new one behind maxSignatures; 35 identical copies are read and examined once;
 * a flood of unverifiable signatures stays bounded in requests, time and memory. `signet sign` twice
 * (cosign and sigstore-bundle) leaves one signature.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildSimpleSigningPayload,
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SIMPLESIGNING_MEDIA_TYPE,
  cosignSignatureTag,
  sha256Digest,
} from '../../src/formats/cosign.js';
import { RegistryClient, type RepositoryRef } from '../../src/registry/client.js';
import { MEDIA_TYPES } from '../../src/registry/types.js';
import { BUNDLE_ARTIFACT_TYPE, signImageBundle } from '../../src/signing/bundle-sign.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { SIGNET, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { verifyClient, type VerifyClient } from '../helpers/grpc-verify.js';
import { pushImage, type PushedImage } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { isAlive, memoryOf } from '../helpers/proc-stats.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';

describe('signature floods against the real registry, and signing twice', function () {
  this.timeout(120_000);
  const release = makeTestKey();
  const old = makeTestKey();
  let registry: RegistryHandle;
  let proxy: FaultProxy;
  let client: RegistryClient;
  let daemon: DaemonHandle;
  let grpc: VerifyClient;

  const repoOf = (name: string): RepositoryRef => ({ registry: registry.host, repository: `flood/${name}` });
  /** The image as signetd sees it: through the proxy. */
  const ask = (name: string, image: PushedImage) =>
    grpc.verify(`${proxy.host}/flood/${name}:v1`, { mediaType: image.mediaType, digest: image.digest, size: image.size }, 15_000);
  const sign = (name: string, image: PushedImage, key = release, annotations?: Record<string, string>) =>
    signImageCosign(client, repoOf(name), image.digest, key.signer, {
      dockerReference: `${proxy.host}/flood/${name}`,
      ...(annotations ? { annotations } : {}),
    });

  /** A `.sig` manifest of `layers` (descriptors of payload blobs already pushed), pushed as is. */
  async function pushSignatureManifest(name: string, image: PushedImage, layers: object[]): Promise<void> {
    const config = Buffer.from('{}');
    await client.pushBlob(repoOf(name), config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: MEDIA_TYPES.ociConfig, size: 2, digest: sha256Digest(config) },
        layers,
      }),
    );
    await client.pushManifest(repoOf(name), cosignSignatureTag(image.digest), manifest, MEDIA_TYPES.ociManifest);
  }

  /** The simple-signing layers at the image's `.sig` tag. */
  async function sigLayers(name: string, image: PushedImage): Promise<number> {
    const m = await client.getManifest(repoOf(name), cosignSignatureTag(image.digest));
    return (JSON.parse(m.bytes.toString()) as { layers: unknown[] }).layers.length;
  }

  const blobGets = () => proxy.count(/\/blobs\/sha256:/, 'GET');

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.host);
    client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    // No caches: every decision reads the registry, so the proxy's counts are one decision's.
    daemon = await startDaemon({ insecureRegistries: [proxy.host], extraConfig: 'cacheTTL: 0s\nnegativeCacheTTL: 0s\ncontentCacheSize: 0' });
    release.writePublic(join(daemon.dir, 'release.pub'));
    daemon.writePolicy('policy.yaml', {
      apiVersion: 'signet/v1',
      keys: { release: { file: join(daemon.dir, 'release.pub') } },
      scopes: { [`${proxy.host}/flood`]: { action: 'verify', formats: ['cosign'], signatures: { keys: ['release'] } } },
    });
    await waitFor(() => daemon.log().includes('policy loaded'), 'policy', 10_000);
    grpc = verifyClient(daemon.socket);
  });
  after(async () => {
    grpc?.close();
    await daemon?.stop();
    await proxy?.stop();
    await registry?.stop();
  });

  it('34 stale signatures of an old key, then the valid new one, maxSignatures 32: accepted', async () => {
    const image = await pushImage(client, repoOf('stale'), 'v1');
    for (let i = 0; i < 34; i++) await sign('stale', image, old, { build: String(i) });
    await sign('stale', image);
    assert.equal(await sigLayers('stale', image), 35);
    const answer = await ask('stale', image);
    assert.equal(answer.ok, true, answer.reason);
    assert.equal(answer.decision, 'accept');
    const line = daemon.audit().at(-1)!;
    const signatures = line['signatures'] as Array<Record<string, unknown>>;
    assert.ok(signatures.length <= 32, `${signatures.length} examined`);
    assert.ok(
      signatures.some((s) => s['valid'] === true && s['key'] === 'release'),
      JSON.stringify(signatures[0]),
    );
  });

  it('35 identical copies of one signature and nothing else: one payload read, one signature examined', async () => {
    const image = await pushImage(client, repoOf('copies'), 'v1');
    const payload = buildSimpleSigningPayload(`${proxy.host}/flood/copies`, image.digest);
    await client.pushBlob(repoOf('copies'), payload);
    const signature = Buffer.from(await old.signer.sign(payload, 'sha256')).toString('base64');
    const layer = {
      mediaType: COSIGN_SIMPLESIGNING_MEDIA_TYPE,
      digest: sha256Digest(payload),
      size: payload.length,
      annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signature },
    };
    await pushSignatureManifest(
      'copies',
      image,
      Array.from({ length: 35 }, () => layer),
    );
    assert.equal(await sigLayers('copies', image), 35);
    proxy.reset();
    const answer = await ask('copies', image);
    assert.equal(answer.ok, false);
    assert.equal(answer.code, 'SIGNATURE_INVALID', answer.reason);
    assert.match(answer.reason, /1 signature\(s\) found/);
    assert.equal(blobGets(), 1, proxy.seen.join('\n'));
    assert.equal((daemon.audit().at(-1)!['signatures'] as unknown[]).length, 1);
  });

  it('a flood of 256 unverifiable signatures: refused, at most 4 x maxSignatures payloads read, quickly, memory bounded', async () => {
    const image = await pushImage(client, repoOf('hostile'), 'v1');
    const layers: object[] = [];
    for (let i = 0; i < 256; i++) {
      const payload = buildSimpleSigningPayload(`${proxy.host}/flood/hostile`, image.digest, { junk: randomBytes(8).toString('hex') });
      await client.pushBlob(repoOf('hostile'), payload);
      layers.push({
        mediaType: COSIGN_SIMPLESIGNING_MEDIA_TYPE,
        digest: sha256Digest(payload),
        size: payload.length,
        annotations: { [COSIGN_SIGNATURE_ANNOTATION]: randomBytes(72).toString('base64') },
      });
    }
    await pushSignatureManifest('hostile', image, layers);
    const before = memoryOf(daemon.proc.pid!).rssMiB;
    proxy.reset();
    const started = Date.now();
    const answer = await ask('hostile', image);
    const ms = Date.now() - started;
    assert.equal(answer.ok, false);
    assert.equal(answer.code, 'SIGNATURE_INVALID', answer.reason);
    assert.match(answer.reason, /32 signature\(s\) found/);
    assert.equal(blobGets(), 128, 'the candidates read: 4 x maxSignatures, not the 256 layers');
    assert.match(String(daemon.audit().at(-1)!['warnings']), /224 more signature\(s\) found and not examined \(maxSignatures 32;/);
    assert.ok(ms < 3000, `decided in ${ms} ms`);
    const after = memoryOf(daemon.proc.pid!).rssMiB;
    assert.ok(after - before < 64, `RSS ${before} → ${after} MiB`);
    assert.ok(isAlive(daemon.proc.pid!));
    // Three more at once: still bounded.
    const again = await Promise.all([1, 2, 3].map(() => ask('hostile', image)));
    assert.ok(again.every((a) => a.code === 'SIGNATURE_INVALID'));
    assert.ok(memoryOf(daemon.proc.pid!).rssMiB - before < 64);
  });

  it('signing twice with the same key leaves one signature (cosign, and through signet sign); another key or other annotations add one', async () => {
    const image = await pushImage(client, repoOf('twice'), 'v1');
    const first = await sign('twice', image);
    assert.equal(first.added, true);
    const second = await sign('twice', image);
    assert.equal(second.added, false);
    assert.equal(second.signatureManifestDigest, first.signatureManifestDigest, 'the manifest was not pushed again');
    assert.equal(await sigLayers('twice', image), 1);
    assert.equal((await sign('twice', image, old)).added, true);
    assert.equal((await sign('twice', image, release, { build: '2' })).added, true);
    assert.equal(await sigLayers('twice', image), 3);
    const answer = await ask('twice', image);
    assert.equal(answer.ok, true, answer.reason);
    // The CLI says so and exits 0.
    const keyFile = join(daemon.dir, 'release.key');
    writeFileSync(keyFile, release.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const cli = (output: string[] = []) =>
      spawnSync(process.execPath, [SIGNET, 'sign', '--key', keyFile, '--insecure-registry', registry.host, `${registry.host}/flood/twice:v1`, ...output], {
        encoding: 'utf8',
      });
    const viaCli = cli();
    assert.equal(viaCli.status, 0, viaCli.stderr);
    assert.doesNotMatch(viaCli.stdout, /unchanged/, 'the CLI names the registry host, not the proxy: another docker-reference, a new signature');
    const again = cli(['--output', 'json']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { signature: { added: boolean } }).signature.added, false);
    const text = cli();
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^unchanged +this key had already signed this digest/m);
    assert.equal(await sigLayers('twice', image), 4);
  });

  it('signing twice with the same key leaves one sigstore bundle referrer', async () => {
    const image = await pushImage(client, repoOf('bundle-twice'), 'v1');
    const subject = { mediaType: image.mediaType, digest: image.digest, size: image.size };
    const first = await signImageBundle(client, repoOf('bundle-twice'), subject, `${registry.host}/flood/bundle-twice`, release.signer);
    const second = await signImageBundle(client, repoOf('bundle-twice'), subject, `${registry.host}/flood/bundle-twice`, release.signer);
    assert.deepEqual([first.added, second.added], [true, false]);
    assert.equal(second.referrer, first.referrer);
    const other = await signImageBundle(client, repoOf('bundle-twice'), subject, `${registry.host}/flood/bundle-twice`, old.signer);
    assert.equal(other.added, true);
    const referrers = await client.referrers(repoOf('bundle-twice'), image.digest, { artifactType: BUNDLE_ARTIFACT_TYPE, limit: 10 });
    assert.equal(referrers.length, 2);
  });
});
