import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import { sigstoreBundleFormat } from '../../src/formats/bundle.js';
import { trustedKeyFromKeyObject } from '../../src/keys/node-key.js';
import { buildImageBundle } from '../../src/signing/bundle-sign.js';
import { makeTestKey } from '../helpers/keys.js';

describe('image signatures as sigstore bundles (cosign v3 shape)', () => {
  const signer = makeTestKey('ecdsa-p256');
  const key = trustedKeyFromKeyObject('release', 'test', createPublicKey(signer.publicPem));
  const digest = `sha256:${createHash('sha256').update('an image manifest').digest('hex')}`;
  const subject = { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 17 };
  const sig = (payload: Buffer) => ({ format: 'sigstore-bundle' as const, source: 'test', untrustedPayload: payload, untrustedSignature: Buffer.alloc(0) });

  it('verifies with the signing key and names the signed repository', async () => {
    const r = await sigstoreBundleFormat.verify(sig(await buildImageBundle('registry.example.com/app', digest, signer.signer)), key, subject);
    assert.equal(r.valid, true, r.valid ? '' : r.reason);
    assert.equal(r.valid && r.signedIdentity, 'registry.example.com/app');
  });
  it('refuses it for another digest, with another key, and when malformed', async () => {
    const b = await buildImageBundle('registry.example.com/app', digest, signer.signer);
    const other = await sigstoreBundleFormat.verify(sig(b), key, { ...subject, digest: `sha256:${'0'.repeat(64)}` });
    assert.equal(!other.valid && other.code, 'DIGEST_MISMATCH');
    const stranger = trustedKeyFromKeyObject('stranger', 'test', createPublicKey(makeTestKey().publicPem));
    assert.equal(!(await sigstoreBundleFormat.verify(sig(b), stranger, subject)).valid && 'refused', 'refused');
    for (const bad of ['{', '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}', '[]']) {
      const r = await sigstoreBundleFormat.verify(sig(Buffer.from(bad)), key, subject);
      assert.equal(!r.valid && r.code, 'SIGNATURE_MALFORMED');
    }
  });
  it('refuses it after any single byte of the statement or signature changes', async () => {
    const doc = JSON.parse((await buildImageBundle('registry.example.com/app', digest, signer.signer)).toString()) as {
      dsseEnvelope: { payload: string; signatures: Array<{ sig: string }> };
    };
    for (const field of ['payload', 'sig'] as const) {
      const original = field === 'payload' ? doc.dsseEnvelope.payload : doc.dsseEnvelope.signatures[0]!.sig;
      const bytes = Buffer.from(original, 'base64');
      for (let i = 0; i < bytes.length; i += field === 'payload' ? 7 : 1) {
        const changed = Buffer.from(bytes);
        changed[i] = changed[i]! ^ 0x01;
        const copy = JSON.parse(JSON.stringify(doc)) as typeof doc;
        if (field === 'payload') copy.dsseEnvelope.payload = changed.toString('base64');
        else copy.dsseEnvelope.signatures[0]!.sig = changed.toString('base64');
        const r = await sigstoreBundleFormat.verify(sig(Buffer.from(JSON.stringify(copy))), key, subject);
        assert.equal(r.valid, false, `${field} byte ${i} flipped still verified`);
      }
    }
  });
});
