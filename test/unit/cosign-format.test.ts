import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicKey } from 'node:crypto';
import {
  appendSignatureLayer,
  buildSimpleSigningPayload,
  cosignFormat,
  cosignSignatureTag,
  decodeBase64Strict,
  parseSignatureManifest,
  parseSimpleSigningPayload,
  sha256Digest,
} from '../../src/formats/cosign.js';
import { trustedKeyFromKeyObject } from '../../src/keys/node-key.js';
import type { UntrustedSignature } from '../../src/formats/types.js';
import { ROOT } from '../helpers/daemon.js';
import { makeTestKey } from '../helpers/keys.js';

const FIX = join(ROOT, 'test/fixtures/cosign');
const subject = (digest: string) => ({ digest, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', size: 0 });

/** The fixture files are one .sig layer with the blob inlined, behind a 15-byte header. */
function fixtureSignature(file: string): UntrustedSignature {
  const raw = readFileSync(file);
  const doc = JSON.parse(raw.subarray(15).toString('utf8')) as { payload: string; annotations: Record<string, string> };
  return {
    format: 'cosign',
    source: file,
    untrustedPayload: Buffer.from(doc.payload, 'base64'),
    untrustedSignature: decodeBase64Strict(doc.annotations['dev.cosignproject.cosign/signature']!, 'sig'),
  };
}

const cosignKey = trustedKeyFromKeyObject('cosign', 'file:cosign.pub', createPublicKey(readFileSync(join(FIX, 'cosign.pub'))));
const otherKey = trustedKeyFromKeyObject('other', 'file:cosign2.pub', createPublicKey(readFileSync(join(FIX, 'cosign2.pub'))));

describe('cosign simple signing (signatures made by the real cosign)', () => {
  const valid = fixtureSignature(join(FIX, 'dir-img-cosign-valid/signature-1'));
  const validDigest = sha256Digest(readFileSync(join(FIX, 'dir-img-cosign-valid/manifest.json')));

  it('accepts the valid signature for the digest of its manifest', async () => {
    const check = await cosignFormat.verify(valid, cosignKey, subject(validDigest));
    assert.equal(check.valid, true);
    assert.ok(check.valid && check.signedIdentity === '192.168.64.2:5000/cosign-signed-single-sample');
  });

  it('refuses it for a manifest modified after signing (digest mismatch)', async () => {
    const modified = fixtureSignature(join(FIX, 'dir-img-cosign-modified-manifest/signature-1'));
    const digest = sha256Digest(readFileSync(join(FIX, 'dir-img-cosign-modified-manifest/manifest.json')));
    const check = await cosignFormat.verify(modified, cosignKey, subject(digest));
    assert.equal(check.valid, false);
    assert.equal(!check.valid && check.code, 'DIGEST_MISMATCH');
  });

  it('refuses a signature by an unknown key, and the valid one with another key', async () => {
    const unknown = fixtureSignature(join(FIX, 'unknown-cosign-key.signature'));
    const a = await cosignFormat.verify(unknown, cosignKey, subject(validDigest));
    assert.equal(!a.valid && a.code, 'SIGNATURE_INVALID');
    const b = await cosignFormat.verify(valid, otherKey, subject(validDigest));
    assert.equal(!b.valid && b.code, 'SIGNATURE_INVALID');
  });

  it('refuses the valid signature after any single byte of payload or signature changes', async () => {
    for (const field of ['untrustedPayload', 'untrustedSignature'] as const) {
      const bytes = valid[field];
      for (let i = 0; i < bytes.length; i++) {
        const changed = Buffer.from(bytes);
        changed[i] = changed[i]! ^ 0x01;
        const check = await cosignFormat.verify({ ...valid, [field]: changed }, cosignKey, subject(validDigest));
        assert.equal(check.valid, false, `${field} byte ${i} flipped still verified`);
      }
    }
  });
});

describe('simple-signing payload parsing is strict', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  const good = (): Record<string, unknown> => JSON.parse(buildSimpleSigningPayload('example.com/app', digest).toString()) as Record<string, unknown>;

  it('reads the payload signet and cosign write', () => {
    const claims = parseSimpleSigningPayload(buildSimpleSigningPayload('example.com/app', digest, { build: '42' }));
    assert.deepEqual(claims, { dockerReference: 'example.com/app', manifestDigest: digest, optional: { build: '42' } });
  });

  const bad: Array<[string, string]> = [
    [
      'duplicate keys',
      `{"critical":{"identity":{"docker-reference":"a/b"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature","type":"x"},"optional":null}`,
    ],
    ['unknown critical field', JSON.stringify({ ...good(), critical: { ...(good()['critical'] as object), extra: 1 } })],
    ['unknown top-level field', JSON.stringify({ ...good(), extra: 1 })],
    ['wrong type', JSON.stringify({ ...good(), critical: { ...(good()['critical'] as object), type: 'atomic container signature' } })],
    ['digest not a digest', JSON.stringify({ ...good(), critical: { ...(good()['critical'] as object), image: { 'docker-manifest-digest': 'latest' } } })],
    ['reference not a string', JSON.stringify({ ...good(), critical: { ...(good()['critical'] as object), identity: { 'docker-reference': 7 } } })],
    ['not JSON', '{"critical":'],
    ['an array', '[]'],
  ];
  for (const [what, text] of bad) {
    it(`rejects ${what}`, () => {
      assert.throws(
        () => parseSimpleSigningPayload(Buffer.from(text)),
        (e: { code?: string }) => e.code === 'SIGNATURE_MALFORMED',
      );
    });
  }

  it('rejects junk in base64 instead of skipping it', () => {
    assert.throws(() => decodeBase64Strict('MEUC!IQ==', 'sig'), /not valid base64/);
    assert.equal(decodeBase64Strict('AAEC', 'sig').length, 3);
    // Wrapped with newlines, as Go's decoder (cosign) accepts it; other whitespace is not base64.
    assert.deepEqual(decodeBase64Strict('AA\nEC\r\n', 'sig'), decodeBase64Strict('AAEC', 'sig'));
    assert.throws(() => decodeBase64Strict('AA EC', 'sig'), /not valid base64/);
  });
});

describe('signature manifests', () => {
  it('maps a digest to the cosign tag', () => {
    assert.equal(cosignSignatureTag(`sha256:${'b'.repeat(64)}`), `sha256-${'b'.repeat(64)}.sig`);
    assert.throws(() => cosignSignatureTag('latest'));
  });

  it('appends layers so earlier signatures survive, and parses them back', async () => {
    const key = makeTestKey();
    const payload = buildSimpleSigningPayload('example.com/app', `sha256:${'c'.repeat(64)}`);
    const layer = (sig: Buffer) => ({
      mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      digest: sha256Digest(payload),
      size: payload.length,
      annotations: { 'dev.cosignproject.cosign/signature': sig.toString('base64') },
    });
    const first = appendSignatureLayer(undefined, layer(Buffer.from(await key.signer.sign(payload, 'sha256'))));
    const second = appendSignatureLayer(first.manifest, layer(Buffer.from(await key.signer.sign(payload, 'sha256'))));
    const layers = parseSignatureManifest(second.manifest);
    assert.equal(layers.length, 2);
    assert.notEqual(layers[0]!.untrustedSignatureBase64, layers[1]!.untrustedSignatureBase64);
  });

  it('rejects a manifest with a layer lacking the signature annotation', () => {
    const m = Buffer.from(
      JSON.stringify({ layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: `sha256:${'d'.repeat(64)}`, size: 10 }] }),
    );
    assert.throws(
      () => parseSignatureManifest(m),
      (e: { code?: string }) => e.code === 'SIGNATURE_MALFORMED',
    );
  });
});
