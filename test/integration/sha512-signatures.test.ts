/**
 * Images with sha512 digests (issue 11 item 6). cosign names the artifacts of a digest
 * `<algorithm>-<hex>.<suffix>` whatever the algorithm (pkg/oci/remote `normalize`: no truncation), so a
 * sha512 image's signatures live at `sha512-<128 hex>.sig`, 139 characters: longer than the 128 the
 * OCI tag rule allows. signet reads and writes that name too. Debian's docker-registry refuses such
 * tags, so the first test goes through a proxy that stores them (test/helpers/long-tag-proxy.ts) and
 * the second shows what happens on a registry that refuses them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLocalEngine, type LocalEngine } from '../../src/engine/local.js';
import { cosignSignatureTag } from '../../src/formats/cosign.js';
import { RegistryClient } from '../../src/registry/client.js';
import { MEDIA_TYPES } from '../../src/registry/types.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { makeTestKey } from '../helpers/keys.js';
import { startLongTagProxy, type LongTagProxy } from '../helpers/long-tag-proxy.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';

describe("sha512 images: signed and verified under cosign's name for their signatures", function () {
  this.timeout(30_000);
  let registry: RegistryHandle;
  let proxy: LongTagProxy;
  let client: RegistryClient;
  let work: string;
  const release = makeTestKey('ecdsa-p256');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: MEDIA_TYPES.ociEmpty, digest: `sha256:${createHash('sha256').update('{}').digest('hex')}`, size: 2 },
      layers: [],
    }),
  );
  const digest = `sha512:${createHash('sha512').update(manifest).digest('hex')}`;
  const descriptor = { mediaType: MEDIA_TYPES.ociManifest, digest, size: manifest.length };

  const engineFor = async (host: string): Promise<LocalEngine> => {
    const policyDir = join(work, `policy-${host.replace(/[^0-9]/g, '')}`);
    mkdirSync(policyDir, { recursive: true });
    writeFileSync(
      join(policyDir, 'policy.yaml'),
      `apiVersion: signet/v1\nkeys:\n  release: { file: ${release.writePublic(join(work, 'release.pub'))} }\ndefault: { action: reject }\nscopes:\n  ${host}/sha512:\n    action: verify\n    signatures: { keys: [release] }\n`,
    );
    return openLocalEngine({ policyDir, insecureRegistries: [host], timeoutMs: 10_000 });
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'signet-sha512-'));
    registry = await startRegistry();
    proxy = await startLongTagProxy(registry.host);
    client = new RegistryClient({ insecureRegistries: [registry.host, proxy.host], retries: 0 });
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('names the signature tag as cosign does: sha512-<128 hex>.sig, 139 characters', () => {
    assert.equal(cosignSignatureTag(digest), `sha512-${digest.slice(7)}.sig`);
    assert.equal(cosignSignatureTag(digest).length, 139);
  });

  it('signs a sha512 image (signet sign) and verifies it (the engine signetd runs)', async () => {
    const repo = { registry: proxy.host, repository: 'sha512/app' };
    const signed = await signImageCosign(client, repo, digest, release.signer, { dockerReference: `${proxy.host}/sha512/app` });
    assert.equal(signed.signatureTag, `sha512-${digest.slice(7)}.sig`);
    assert.equal(signed.layers, 1);
    assert.ok(proxy.mapped > 0, 'the signature went to the long tag');
    const local = await engineFor(proxy.host);
    try {
      const decision = await local.engine.verify({ name: `${proxy.host}/sha512/app@${digest}`, descriptor });
      assert.equal(decision.ok, true, decision.reason);
      assert.equal(decision.signatures[0]?.source, `${proxy.host}/sha512/app:sha512-${digest.slice(7)}.sig#0`);
      // The same image under another digest of the same length is not covered by that signature.
      const other = `sha512:${createHash('sha512').update('other').digest('hex')}`;
      const refused = await local.engine.verify({ name: `${proxy.host}/sha512/app@${other}`, descriptor: { ...descriptor, digest: other } });
      assert.equal(refused.ok, false);
      assert.match(refused.reason, /no signatures found/);
    } finally {
      await local.close();
    }
  });

  it('on a registry that refuses 139-character tags (distribution 2.8): signing says why, verifying finds no signature', async () => {
    const repo = { registry: registry.host, repository: 'sha512/app' };
    await assert.rejects(signImageCosign(client, repo, digest, release.signer, { dockerReference: `${registry.host}/sha512/app` }), (err: Error) => {
      assert.match(err.message, /sha512-[0-9a-f]{8}.*139 characters.*128/s);
      return true;
    });
    const local = await engineFor(registry.host);
    try {
      const decision = await local.engine.verify({ name: `${registry.host}/sha512/app@${digest}`, descriptor });
      assert.equal(decision.ok, false);
      assert.match(decision.reason, /no signatures found; needs a valid signature by release/);
    } finally {
      await local.close();
    }
  });
});
