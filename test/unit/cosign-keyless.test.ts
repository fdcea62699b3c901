/**
 * Cosign v2 keyless `.sig` signatures (certificate, chain and Rekor record annotations) verified with a
 * `sigstore` key, against a spec-following fake Fulcio CA and Rekor log (test/helpers/sigstore-fake.ts):
 * the valid one verifies; any single changed byte of payload, signature, certificate, chain or SET,
 * another issuer or subject, an untrusted CA or a log time outside the certificate's validity refuse.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { cosignFormat } from '../../src/formats/cosign.js';
import { cosignLayerToBundle } from '../../src/formats/cosign-keyless.js';
import type { UntrustedSignature } from '../../src/formats/types.js';
import { SigstoreKeyProvider } from '../../src/keys/sigstore-provider.js';
import { createFakeSigstore, type CosignKeylessLayer } from '../helpers/sigstore-fake.js';

describe('cosign keyless .sig signatures against a sigstore key', function () {
  this.timeout(60_000);
  const fake = createFakeSigstore('release@example.com', 'https://accounts.example.com');
  const other = createFakeSigstore('release@example.com', 'https://accounts.example.com');
  const provider = new SigstoreKeyProvider();
  const digest = `sha256:${createHash('sha256').update('manifest').digest('hex')}`;
  const subject = { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 8 };
  const REF = 'registry.example.com/app';
  const key = (extra: Record<string, string> = {}) =>
    provider.load('ci', { sigstore: { trustedRoot: fake.trustedRootPath, issuer: fake.issuer, subject: fake.identity, ...extra } });
  const asSig = (l: CosignKeylessLayer): UntrustedSignature => ({
    format: 'cosign',
    source: 'test',
    untrustedPayload: l.payload,
    untrustedSignature: l.signature,
    untrustedAnnotations: l.annotations,
  });
  const verify = async (l: CosignKeylessLayer, k?: Awaited<ReturnType<typeof key>>) => cosignFormat.verify(asSig(l), k ?? (await key()), subject);
  const good = fake.cosignSigFor(REF, digest);
  const flip = (b: Buffer, i: number) => {
    const c = Buffer.from(b);
    c[i] = c[i]! ^ 0x01;
    return c;
  };
  /** A copy of a text with the character at i replaced by another one of the same class (base64 stays base64). */
  const changeChar = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);

  it('verifies: certificate chains to the trusted root at the log time, SET by the log key, identity matches', async () => {
    const r = await verify(good);
    assert.equal(r.valid, true, r.valid ? '' : r.reason);
    assert.equal(r.valid && r.signedIdentity, REF);
    assert.deepEqual(r.valid && r.annotations['signer'], { issuer: fake.issuer, subject: fake.identity });
    const re = await verify(
      good,
      await provider.load('ci', { sigstore: { trustedRoot: fake.trustedRootPath, issuer: fake.issuer, subjectRegExp: '.+@example\\.com' } }),
    );
    assert.equal(re.valid, true);
  });

  it('maps onto a message-signature bundle with a hashedrekord entry and an inclusion promise', () => {
    const { bundle } = cosignLayerToBundle(good.payload, good.signature, good.annotations);
    const b = JSON.parse(bundle.toString()) as { verificationMaterial: { tlogEntries: Array<Record<string, unknown>> }; messageSignature: unknown };
    const entry = b.verificationMaterial.tlogEntries[0]!;
    assert.deepEqual(entry['kindVersion'], { kind: 'hashedrekord', version: '0.0.1' });
    assert.ok(entry['inclusionPromise']);
    assert.equal(entry['inclusionProof'], undefined);
    assert.ok(b.messageSignature);
  });

  it('refuses after any single byte of the payload or the signature changes', async () => {
    for (const i of [0, 10, good.payload.length / 2, good.payload.length - 2].map(Math.floor)) {
      const r = await verify({ ...good, payload: flip(good.payload, i) });
      assert.equal(r.valid, false, `payload byte ${i}`);
    }
    for (const i of [8, good.signature.length - 1]) {
      const r = await verify({ ...good, signature: flip(good.signature, i) });
      assert.equal(r.valid, false, `signature byte ${i}`);
    }
  });

  it('refuses after a byte of the certificate, the chain or the SET changes', async () => {
    const cert = good.annotations['dev.sigstore.cosign/certificate']!;
    const body = cert.indexOf('\n') + 1;
    for (const i of [body + 40, body + 200, cert.length - 80]) {
      const r = await verify({ ...good, annotations: { ...good.annotations, 'dev.sigstore.cosign/certificate': changeChar(cert, i) } });
      assert.equal(r.valid, false, `certificate character ${i}`);
    }
    const chain = good.annotations['dev.sigstore.cosign/chain']!;
    const r2 = await verify({ ...good, annotations: { ...good.annotations, 'dev.sigstore.cosign/chain': changeChar(chain, chain.indexOf('\n') + 60) } });
    assert.equal(r2.valid, false, 'chain');
    const foreignChain = await verify({ ...good, annotations: { ...good.annotations, 'dev.sigstore.cosign/chain': other.caPem } });
    assert.equal(!foreignChain.valid && foreignChain.code, 'CERTIFICATE_INVALID');
    const record = JSON.parse(good.annotations['dev.sigstore.cosign/bundle']!) as {
      SignedEntryTimestamp: string;
      Payload: { body: string; integratedTime: number; logIndex: number; logID: string };
    };
    const set = Buffer.from(record.SignedEntryTimestamp, 'base64');
    for (const variant of [
      { ...record, SignedEntryTimestamp: flip(set, set.length - 3).toString('base64') },
      { ...record, Payload: { ...record.Payload, integratedTime: record.Payload.integratedTime + 1 } },
      { ...record, Payload: { ...record.Payload, logIndex: record.Payload.logIndex + 1 } },
      { ...record, Payload: { ...record.Payload, body: flip(Buffer.from(record.Payload.body, 'base64'), 30).toString('base64') } },
    ]) {
      const r = await verify({ ...good, annotations: { ...good.annotations, 'dev.sigstore.cosign/bundle': JSON.stringify(variant) } });
      assert.equal(r.valid, false, JSON.stringify(variant).slice(0, 80));
    }
  });

  it('accepts base64 wrapped with newlines in the record, as Go decodes it', async () => {
    const record = JSON.parse(good.annotations['dev.sigstore.cosign/bundle']!) as { SignedEntryTimestamp: string; Payload: { body: string } };
    const wrap = (s: string) => s.replace(/(.{64})/g, '$1\n');
    const wrapped = { ...record, SignedEntryTimestamp: wrap(record.SignedEntryTimestamp), Payload: { ...record.Payload, body: wrap(record.Payload.body) } };
    const r = await verify({ ...good, annotations: { ...good.annotations, 'dev.sigstore.cosign/bundle': JSON.stringify(wrapped) } });
    assert.equal(r.valid, true, r.valid ? '' : r.reason);
  });

  it("an RFC 3161 timestamp annotation (cosign --timestamp-server-url) verifies with the trusted root's timestamp authority; altered, it refuses", async () => {
    const stamped = fake.cosignSigFor(REF, digest, { timestamp: true });
    const r = await verify(stamped);
    assert.equal(r.valid, true, r.valid ? '' : r.reason);
    const ts = JSON.parse(stamped.annotations['dev.sigstore.cosign/timestamp']!) as { SignedRFC3161Timestamp: string };
    const raw = Buffer.from(ts.SignedRFC3161Timestamp, 'base64');
    for (const i of [100, 140, Math.floor(raw.length / 2), raw.length - 10]) {
      const altered = {
        ...stamped,
        annotations: { ...stamped.annotations, 'dev.sigstore.cosign/timestamp': JSON.stringify({ SignedRFC3161Timestamp: flip(raw, i).toString('base64') }) },
      };
      assert.equal((await verify(altered)).valid, false, `timestamp byte ${i}`);
    }
    // A timestamp of other bytes (another signature) does not vouch for this one.
    const other = {
      ...stamped,
      annotations: {
        ...stamped.annotations,
        'dev.sigstore.cosign/timestamp': JSON.stringify({ SignedRFC3161Timestamp: fake.timestamp(Buffer.from('other')).toString('base64') }),
      },
    };
    assert.equal((await verify(other)).valid, false);
  });

  it('a timestamp annotation read as a bundle timestamp is: by another authority or not DER, it is refused naming the annotation', async () => {
    const stamped = fake.cosignSigFor(REF, digest, { timestamp: true });
    const withTimestamp = (der: Buffer) => ({
      ...stamped,
      annotations: { ...stamped.annotations, 'dev.sigstore.cosign/timestamp': JSON.stringify({ SignedRFC3161Timestamp: der.toString('base64') }) },
    });
    const foreign = await verify(withTimestamp(other.timestamp(stamped.signature)));
    assert.equal(!foreign.valid && foreign.code, 'CERTIFICATE_INVALID');
    assert.match(
      !foreign.valid ? foreign.reason : '',
      /dev\.sigstore\.cosign\/timestamp: embedded certificate 0 is not a timestamp-authority certificate of the trusted root/,
    );
    const raw = Buffer.from(
      (JSON.parse(stamped.annotations['dev.sigstore.cosign/timestamp']!) as { SignedRFC3161Timestamp: string }).SignedRFC3161Timestamp,
      'base64',
    );
    const trailing = await verify(withTimestamp(Buffer.concat([raw, Buffer.from([0])])));
    assert.equal(!trailing.valid && trailing.code, 'SIGNATURE_MALFORMED');
    assert.match(!trailing.valid ? trailing.reason : '', /dev\.sigstore\.cosign\/timestamp cannot be read: the response is not DER/);
  });

  it('refuses a Rekor entry that logged another certificate', async () => {
    const r = await verify(fake.cosignSigFor(REF, digest, { bodyCertificatePem: other.leafPem }));
    assert.equal(r.valid, false);
    assert.match(!r.valid ? r.reason : '', /does not hold the signature's certificate/);
  });

  it('refuses the wrong issuer or subject, with IDENTITY_MISMATCH', async () => {
    const a = await verify(good, await key({ subject: 'someone@example.com' }));
    assert.equal(!a.valid && a.code, 'IDENTITY_MISMATCH');
    const b = await verify(good, await key({ issuer: 'https://evil.example.com' }));
    assert.equal(!b.valid && b.code, 'IDENTITY_MISMATCH');
  });

  it('refuses a certificate from a CA the trusted root does not name', async () => {
    const r = await verify(other.cosignSigFor(REF, digest));
    assert.equal(r.valid, false);
    // Without the chain annotation (it is optional), the chain to the trusted root's CAs still fails.
    const { 'dev.sigstore.cosign/chain': _chain, ...noChain } = other.cosignSigFor(REF, digest).annotations;
    const n = await verify({ ...other.cosignSigFor(REF, digest), annotations: noChain });
    assert.equal(n.valid, false);
    assert.match(!n.valid ? n.reason : '', /CERTIFICATE_ERROR|certificate chain/);
  });

  it('accepts a certificate that has long expired when the log time is inside its validity', async () => {
    const expired = fake.cosignSigFor(REF, digest, { expiredCertificate: true });
    assert.ok(Date.parse(new X509Certificate(expired.annotations['dev.sigstore.cosign/certificate']!).validTo) < Date.now() - 86_400_000);
    const r = await verify(expired);
    assert.equal(r.valid, true, r.valid ? '' : r.reason);
  });

  it('refuses a log time outside the certificate validity', async () => {
    const notBefore = Date.parse(new X509Certificate(fake.leafPem).validFrom) / 1000;
    const r = await verify(fake.cosignSigFor(REF, digest, { integratedTime: Math.floor(notBefore) - 3600 }));
    assert.equal(r.valid, false);
    assert.match(!r.valid ? r.reason : '', /certificate|CERTIFICATE/);
  });

  it('refuses another digest (after authenticity), and a signature without certificate or record', async () => {
    const d = await verify(fake.cosignSigFor(REF, `sha256:${'2'.repeat(64)}`));
    assert.equal(!d.valid && d.code, 'DIGEST_MISMATCH');
    const { 'dev.sigstore.cosign/bundle': _b, ...noRecord } = good.annotations;
    const n = await verify({ ...good, annotations: noRecord });
    assert.equal(!n.valid && n.code, 'SIGNATURE_MALFORMED');
    assert.match(!n.valid ? n.reason : '', /no dev.sigstore.cosign\/bundle annotation/);
    const { 'dev.sigstore.cosign/certificate': _c, ...noCert } = good.annotations;
    const c = await verify({ ...good, annotations: noCert });
    assert.equal(!c.valid && c.code, 'SIGNATURE_MALFORMED');
  });
});
