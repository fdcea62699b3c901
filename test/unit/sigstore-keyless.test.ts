import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { sigstoreBundleFormat } from '../../src/formats/bundle.js';
import { SigstoreKeyProvider } from '../../src/keys/sigstore-provider.js';
import { createFakeSigstore } from '../helpers/sigstore-fake.js';
import { makeTestKey } from '../helpers/keys.js';
import { trustedKeyFromKeyObject } from '../../src/keys/node-key.js';
import { createPublicKey } from 'node:crypto';

describe('keyless sigstore bundles against an offline trusted root', function () {
  this.timeout(30_000);
  const fake = createFakeSigstore('release@example.com', 'https://accounts.example.com');
  const other = createFakeSigstore('release@example.com', 'https://accounts.example.com');
  const provider = new SigstoreKeyProvider();
  const digest = `sha256:${createHash('sha256').update('manifest').digest('hex')}`;
  const subject = { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 8 };
  const sig = (b: Buffer) => ({ format: 'sigstore-bundle' as const, source: 'test', untrustedPayload: b, untrustedSignature: Buffer.alloc(0) });
  const key = (extra: Record<string, string> = {}) =>
    provider.load('ci', { sigstore: { trustedRoot: fake.trustedRootPath, issuer: fake.issuer, subject: fake.identity, ...extra } });

  it('accepts a bundle whose certificate chains to the trusted root, with a valid log entry and the required identity', async () => {
    const r = await sigstoreBundleFormat.verify(sig(fake.bundleFor('registry.example.com/app', digest)), await key(), subject);
    assert.equal(r.valid, true, r.valid ? '' : r.reason);
    assert.equal(r.valid && r.signedIdentity, 'registry.example.com/app');
  });

  it('applies subjectRegExp', async () => {
    const k = await provider.load('ci', { sigstore: { trustedRoot: fake.trustedRootPath, issuer: fake.issuer, subjectRegExp: '.*@example\\.com' } });
    assert.equal((await sigstoreBundleFormat.verify(sig(fake.bundleFor('r.io/a', digest)), k, subject)).valid, true);
    const strict = await provider.load('ci', { sigstore: { trustedRoot: fake.trustedRootPath, issuer: fake.issuer, subjectRegExp: 'ops@example\\.com' } });
    const r = await sigstoreBundleFormat.verify(sig(fake.bundleFor('r.io/a', digest)), strict, subject);
    assert.equal(!r.valid && r.code, 'IDENTITY_MISMATCH');
  });

  it('refuses another subject or issuer', async () => {
    const a = await sigstoreBundleFormat.verify(sig(fake.bundleFor('r.io/a', digest)), await key({ subject: 'someone@example.com' }), subject);
    assert.equal(a.valid, false);
    const b = await sigstoreBundleFormat.verify(sig(fake.bundleFor('r.io/a', digest)), await key({ issuer: 'https://evil.example.com' }), subject);
    assert.equal(b.valid, false);
  });

  it('refuses a certificate from another CA, a broken inclusion promise, and another digest', async () => {
    const foreign = await sigstoreBundleFormat.verify(sig(other.bundleFor('r.io/a', digest)), await key(), subject);
    assert.equal(foreign.valid, false);
    const set = await sigstoreBundleFormat.verify(sig(fake.bundleFor('r.io/a', digest, { tamperSet: true })), await key(), subject);
    assert.equal(set.valid, false);
    assert.match(!set.valid ? set.reason : '', /inclusion promise|TLOG/);
    const d = await sigstoreBundleFormat.verify(sig(fake.bundleFor('r.io/a', `sha256:${'2'.repeat(64)}`)), await key(), subject);
    assert.equal(!d.valid && d.code, 'DIGEST_MISMATCH');
  });

  it('a chain where a v0.3 bundle carries one certificate, or an inclusion proof without checkpoint: a clear refusal', async () => {
    const good = JSON.parse(fake.bundleFor('r.io/a', digest).toString()) as {
      verificationMaterial: { certificate?: unknown; x509CertificateChain?: unknown; tlogEntries: Array<{ inclusionProof: { checkpoint?: unknown } }> };
    };
    const root = JSON.parse(readFileSync(fake.trustedRootPath, 'utf8')) as { certificateAuthorities: Array<{ certChain: { certificates: unknown[] } }> };
    const chained = structuredClone(good);
    chained.verificationMaterial.x509CertificateChain = {
      certificates: [chained.verificationMaterial.certificate, root.certificateAuthorities[0]!.certChain.certificates[0]],
    };
    delete chained.verificationMaterial.certificate;
    const a = await sigstoreBundleFormat.verify(sig(Buffer.from(JSON.stringify(chained))), await key(), subject);
    assert.equal(!a.valid && a.code, 'SIGNATURE_MALFORMED');
    assert.match(!a.valid ? a.reason : '', /carries the signing certificate alone .* not a certificate chain/);
    const noCheckpoint = structuredClone(good);
    delete noCheckpoint.verificationMaterial.tlogEntries[0]!.inclusionProof.checkpoint;
    const b = await sigstoreBundleFormat.verify(sig(Buffer.from(JSON.stringify(noCheckpoint))), await key(), subject);
    assert.equal(!b.valid && b.code, 'SIGNATURE_MALFORMED');
    assert.match(!b.valid ? b.reason : '', /inclusion proof has no checkpoint/);
  });

  it('keeps keyless and key-based trust apart', async () => {
    const pem = trustedKeyFromKeyObject('pem', 'test', createPublicKey(makeTestKey().publicPem));
    const r = await sigstoreBundleFormat.verify(sig(fake.bundleFor('r.io/a', digest)), pem, subject);
    assert.match(!r.valid ? r.reason : '', /sigstore bundle is keyless \(certificate\); the policy expects a signature by key "pem"/);
  });

  it('refuses an unusable trusted root with a clear error', async () => {
    await assert.rejects(
      provider.load('bad', { sigstore: { trustedRoot: '/nonexistent/root.json', issuer: 'x' } }),
      (e: { code?: string }) => e.code === 'KEY_NOT_FOUND',
    );
    await assert.rejects(
      provider.load('bad', { sigstore: { trustedRoot: fake.trustedRootPath, issuer: 'x', subjectRegExp: '(' } }),
      /not a regular expression/,
    );
  });
});
