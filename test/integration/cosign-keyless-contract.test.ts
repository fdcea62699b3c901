/**
 * Cosign v2 keyless `.sig` signatures through the containerd contract: a real docker-registry holding
 * the `.sig` manifest as cosign lays it out (simple-signing layer, signature, certificate, chain and
 * Rekor record annotations, made with the fake Fulcio CA and Rekor log of test/helpers/sigstore-fake.ts),
 * a real signetd with a `sigstore` key, and the verifier spawned as containerd runs it.
 */
import assert from 'node:assert/strict';
import { RegistryClient } from '../../src/registry/client.js';
import { cosignSignatureTag, COSIGN_SIMPLESIGNING_MEDIA_TYPE } from '../../src/formats/cosign.js';
import { appendArtifactLayer } from '../../src/signing/artifact-manifest.js';
import { startDaemon, waitFor } from '../helpers/daemon.js';
import { pushImage } from '../helpers/images.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { createTestPki } from '../helpers/pki.js';
import { createFakeRekor } from '../helpers/rekor-fake.js';
import { makeTestKey } from '../helpers/keys.js';
import { buildSimpleSigningPayload } from '../../src/formats/cosign.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFakeSigstore, type CosignKeylessLayer } from '../helpers/sigstore-fake.js';
import { runVerifier } from '../helpers/verifier.js';

describe('cosign .sig with certificates (keyless, private PKI) and transparency-log requirements through the containerd contract', function () {
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

  const pushSig = (repo: { registry: string; repository: string }, digest: string, layer: CosignKeylessLayer) =>
    appendArtifactLayer(client, repo, cosignSignatureTag(digest), layer.payload, {
      mediaType: COSIGN_SIMPLESIGNING_MEDIA_TYPE,
      annotations: layer.annotations,
    });

  it('accepts the required signer identity; refuses another identity, a tampered record and an untrusted CA', async () => {
    const fake = createFakeSigstore('release@example.com', 'https://token.actions.example.com');
    const other = createFakeSigstore('release@example.com', 'https://token.actions.example.com');
    const repo = { registry: host, repository: 'keyless/sig' };
    const good = await pushImage(client, repo, 'good');
    const tampered = await pushImage(client, repo, 'tampered', { architecture: 'arm64', os: 'linux' });
    const foreign = await pushImage(client, repo, 'foreign', { architecture: 's390x', os: 'linux' });
    // With an RFC 3161 timestamp from the trusted root's timestamp authority, as cosign --timestamp-server-url adds.
    await pushSig(repo, good.digest, fake.cosignSigFor(`${host}/keyless/sig`, good.digest, { timestamp: true }));
    const t = fake.cosignSigFor(`${host}/keyless/sig`, tampered.digest);
    const record = JSON.parse(t.annotations['dev.sigstore.cosign/bundle']!) as { Payload: { integratedTime: number } };
    record.Payload.integratedTime += 1;
    await pushSig(repo, tampered.digest, { ...t, annotations: { ...t.annotations, 'dev.sigstore.cosign/bundle': JSON.stringify(record) } });
    await pushSig(repo, foreign.digest, other.cosignSigFor(`${host}/keyless/sig`, foreign.digest));
    const daemon = await startDaemon({
      insecureRegistries: [host],
      policy: {
        apiVersion: 'signet/v1',
        keys: {
          release: { sigstore: { trustedRoot: fake.trustedRootPath, issuer: fake.issuer, subject: 'release@example.com' } },
          ops: { sigstore: { trustedRoot: fake.trustedRootPath, issuer: fake.issuer, subjectRegExp: 'ops-.*@example\\.com' } },
        },
        scopes: {
          [`${host}/keyless/sig`]: { action: 'verify', signatures: { keys: ['release'] } },
          [`${host}/keyless/sig:ops`]: { action: 'verify', signatures: { keys: ['ops'] } },
        },
      },
    });
    try {
      await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
      const d = (p: typeof good) => ({ mediaType: p.mediaType, digest: p.digest, size: p.size });
      const ok = await runVerifier({ socket: daemon.socket, name: `${host}/keyless/sig:good`, descriptor: d(good) });
      assert.equal(ok.code, 0, ok.stdout);
      assert.match(ok.stdout, /signed by release/);
      const ops = await runVerifier({ socket: daemon.socket, name: `${host}/keyless/sig:ops`, descriptor: d(good) });
      assert.equal(ops.code, 1, ops.stdout);
      assert.match(ops.stdout, /does not match/);
      const bad = await runVerifier({ socket: daemon.socket, name: `${host}/keyless/sig:tampered`, descriptor: d(tampered) });
      assert.equal(bad.code, 1, bad.stdout);
      assert.match(bad.stdout, /inclusion promise/);
      const untrusted = await runVerifier({ socket: daemon.socket, name: `${host}/keyless/sig:foreign`, descriptor: d(foreign) });
      assert.equal(untrusted.code, 1, untrusted.stdout);
      assert.match(untrusted.stdout, /not a CA certificate of the trusted root|certificate chain/);
    } finally {
      await daemon.stop();
    }
  });

  it('private PKI: a certificates key with intermediates and subjectEmail accepts its signer and refuses others', async () => {
    const pki = createTestPki();
    const other = createTestPki();
    const repo = { registry: host, repository: 'pki/sig' };
    const good = await pushImage(client, repo, 'good');
    const ops = await pushImage(client, repo, 'ops', { architecture: 'arm64', os: 'linux' });
    const foreign = await pushImage(client, repo, 'foreign', { architecture: 's390x', os: 'linux' });
    await pushSig(repo, good.digest, pki.cosignSigFor(pki.leaf('release'), `${host}/pki/sig`, good.digest));
    await pushSig(repo, ops.digest, pki.cosignSigFor(pki.leaf('ops', { san: 'email:ops@acme.example' }), `${host}/pki/sig`, ops.digest));
    await pushSig(repo, foreign.digest, other.cosignSigFor(other.leaf('release'), `${host}/pki/sig`, foreign.digest, { chain: true }));
    const daemon = await startDaemon({
      insecureRegistries: [host],
      policy: {
        apiVersion: 'signet/v1',
        keys: { acme: { certificates: pki.rootPath, intermediates: pki.intermediatePath, subjectEmail: 'release@acme.example' } },
        scopes: { [`${host}/pki/sig`]: { action: 'verify', signatures: { keys: ['acme'] } } },
      },
    });
    try {
      await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
      const d = (p: typeof good) => ({ mediaType: p.mediaType, digest: p.digest, size: p.size });
      const ok = await runVerifier({ socket: daemon.socket, name: `${host}/pki/sig:good`, descriptor: d(good) });
      assert.equal(ok.code, 0, ok.stdout);
      const wrongSigner = await runVerifier({ socket: daemon.socket, name: `${host}/pki/sig:ops`, descriptor: d(ops) });
      assert.equal(wrongSigner.code, 1, wrongSigner.stdout);
      assert.match(wrongSigner.stdout, /do not include "release@acme.example"/);
      const untrusted = await runVerifier({ socket: daemon.socket, name: `${host}/pki/sig:foreign`, descriptor: d(foreign) });
      assert.equal(untrusted.code, 1, untrusted.stdout);
      assert.match(untrusted.stdout, /does not chain to a certificate of the trust store/);
    } finally {
      await daemon.stop();
    }
  });

  it('tlog: required: a key-based signature counts with its Rekor record; without it, or tampered, it is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signet-tlog-contract-'));
    const signer = makeTestKey();
    const rekor = createFakeRekor();
    const repo = { registry: host, repository: 'tlog/sig' };
    const images = {
      logged: await pushImage(client, repo, 'logged'),
      unlogged: await pushImage(client, repo, 'unlogged', { architecture: 'arm64', os: 'linux' }),
      tampered: await pushImage(client, repo, 'tampered', { architecture: 's390x', os: 'linux' }),
    };
    for (const [name, img] of Object.entries(images)) {
      const payload = buildSimpleSigningPayload(`${host}/tlog/sig`, img.digest);
      const signature = Buffer.from(await signer.signer.sign(payload, 'sha256'));
      let record = rekor.recordFor(payload, signature, signer.publicPem);
      if (name === 'tampered') record = record.replace(/"logIndex":42/, '"logIndex":43');
      const annotations: Record<string, string> = {
        'dev.cosignproject.cosign/signature': signature.toString('base64'),
        ...(name !== 'unlogged' ? { 'dev.sigstore.cosign/bundle': record } : {}),
      };
      await pushSig(repo, img.digest, { payload, signature, annotations });
    }
    const daemon = await startDaemon({
      insecureRegistries: [host],
      policy: {
        apiVersion: 'signet/v1',
        keys: { release: { file: signer.writePublic(join(dir, 'release.pub')), tlog: 'required', rekorKey: rekor.writeKey(dir) } },
        scopes: { [`${host}/tlog/sig`]: { action: 'verify', signatures: { keys: ['release'] } } },
      },
    });
    try {
      await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
      const run = (tag: keyof typeof images) =>
        runVerifier({
          socket: daemon.socket,
          name: `${host}/tlog/sig:${tag}`,
          descriptor: { mediaType: images[tag].mediaType, digest: images[tag].digest, size: images[tag].size },
        });
      const ok = await run('logged');
      assert.equal(ok.code, 0, ok.stdout);
      const unlogged = await run('unlogged');
      assert.equal(unlogged.code, 1, unlogged.stdout);
      assert.match(unlogged.stdout, /tlog: required/);
      const tampered = await run('tampered');
      assert.equal(tampered.code, 1, tampered.stdout);
      assert.match(tampered.stdout, /signed entry timestamp does not verify/);
    } finally {
      await daemon.stop();
    }
  });
});
