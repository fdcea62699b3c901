import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sigstoreBundleFormat, verifyBlobBundle } from '../../src/formats/bundle.js';
import { trustedKeyFromKeyObject } from '../../src/keys/node-key.js';
import { publicKeyFromPem } from '../../src/keys/pem.js';
import { buildImageBundle } from '../../src/signing/bundle-sign.js';
import { ROOT } from '../helpers/daemon.js';
import { makeTestKey } from '../helpers/keys.js';

const FIX = join(ROOT, 'test/fixtures/sigstore');
const artifact = readFileSync(join(FIX, 'a.txt'));
const bundleOf = (name: string) => readFileSync(join(FIX, name, 'bundle.sigstore.json'));
const keyOf = (name: string) => trustedKeyFromKeyObject(name, `file:${name}/key.pub`, createPublicKey(readFileSync(join(FIX, name, 'key.pub'))));

describe('sigstore bundles made by the real sigstore signers (conformance fixtures)', () => {
  it('managed-key-happy-path verifies over a.txt with its key', async () => {
    const r = await verifyBlobBundle(bundleOf('managed-key-happy-path'), artifact, keyOf('managed-key-happy-path'));
    assert.equal(r.valid, true, r.valid ? '' : r.reason);
  });
  it('managed-key-wrong-key_fail: its key is not a usable key, so nothing verifies with it', async () => {
    assert.throws(() => publicKeyFromPem(readFileSync(join(FIX, 'managed-key-wrong-key_fail', 'key.pub'), 'utf8'), 'wrong key'), (e: { code?: string }) => e.code === 'KEY_INVALID');
    const stranger = trustedKeyFromKeyObject('stranger', 'test', createPublicKey(makeTestKey().publicPem));
    assert.equal((await verifyBlobBundle(bundleOf('managed-key-wrong-key_fail'), artifact, stranger)).valid, false);
  });
  it('dsse-invalid-sig_fail is refused (a keyless bundle: no trusted root in this build)', async () => {
    const r = await verifyBlobBundle(bundleOf('dsse-invalid-sig_fail'), artifact, keyOf('managed-key-happy-path'));
    assert.equal(r.valid, false);
    assert.match(!r.valid ? r.reason : '', /keyless/);
  });
  it('refuses the happy-path bundle for another blob, or after any byte of the signature changes', async () => {
    const key = keyOf('managed-key-happy-path');
    assert.equal((await verifyBlobBundle(bundleOf('managed-key-happy-path'), Buffer.concat([artifact, Buffer.from('x')]), key)).valid, false);
    const doc = JSON.parse(bundleOf('managed-key-happy-path').toString()) as { messageSignature: { signature: string } };
    const sig = Buffer.from(doc.messageSignature.signature, 'base64');
    for (let i = 0; i < sig.length; i++) {
      const changed = Buffer.from(sig);
      changed[i] ^= 0x01;
      doc.messageSignature.signature = changed.toString('base64');
      const r = await verifyBlobBundle(Buffer.from(JSON.stringify(doc)), artifact, key);
      assert.equal(r.valid, false, `signature byte ${i} flipped still verified`);
    }
  });
});

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
    const doc = JSON.parse((await buildImageBundle('registry.example.com/app', digest, signer.signer)).toString()) as { dsseEnvelope: { payload: string; signatures: Array<{ sig: string }> } };
    for (const field of ['payload', 'sig'] as const) {
      const original = field === 'payload' ? doc.dsseEnvelope.payload : doc.dsseEnvelope.signatures[0]!.sig;
      const bytes = Buffer.from(original, 'base64');
      for (let i = 0; i < bytes.length; i += field === 'payload' ? 7 : 1) {
        const changed = Buffer.from(bytes);
        changed[i] ^= 0x01;
        const copy = JSON.parse(JSON.stringify(doc)) as typeof doc;
        if (field === 'payload') copy.dsseEnvelope.payload = changed.toString('base64');
        else copy.dsseEnvelope.signatures[0]!.sig = changed.toString('base64');
        const r = await sigstoreBundleFormat.verify(sig(Buffer.from(JSON.stringify(copy))), key, subject);
        assert.equal(r.valid, false, `${field} byte ${i} flipped still verified`);
      }
    }
  });
});
