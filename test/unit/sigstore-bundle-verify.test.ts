import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifySigstoreBundle, type SigstoreBundleVerifyOptions, type SigstoreBundleVerifyResult } from '../../src/formats/sigstore-bundle.js';
import { preAuthEncoding } from '../../src/formats/dsse.js';
import { trustedKeyFromKeyObject } from '../../src/keys/node-key.js';
import { ROOT } from '../helpers/daemon.js';

const FIX = join(ROOT, 'test/fixtures/sigstore/bundle-verify');
const artifact = readFileSync(join(FIX, 'a.txt'));
const A_TXT = `sha256:${createHash('sha256').update(artifact).digest('hex')}`;
const trustedRoot = JSON.parse(readFileSync(join(FIX, 'trusted_root.json'), 'utf8')) as unknown;
const bundleOf = (name: string) => readFileSync(join(FIX, name, 'bundle.sigstore.json'));
const keyOf = (name: string) => trustedKeyFromKeyObject(name, `file:${name}/key.pub`, createPublicKey(readFileSync(join(FIX, name, 'key.pub'))));
const happy = bundleOf('managed-key-happy-path');
const happyKey = keyOf('managed-key-happy-path');

function assertValid(r: SigstoreBundleVerifyResult): asserts r is Extract<SigstoreBundleVerifyResult, { valid: true }> {
  assert.equal(r.valid, true, r.valid ? '' : `${r.code}: ${r.reason}`);
}
function assertRefused(r: SigstoreBundleVerifyResult, code?: string, reason?: RegExp): void {
  assert.equal(r.valid, false, 'verified but should not have');
  if (r.valid) return;
  if (code) assert.equal(r.code, code, r.reason);
  if (reason) assert.match(r.reason, reason);
}
const keyed = (bundle: Buffer, extra: Partial<SigstoreBundleVerifyOptions> = {}): SigstoreBundleVerifyOptions => ({
  untrustedBundle: bundle,
  expectedDigest: A_TXT,
  key: happyKey,
  artifact,
  ...extra,
});

type Doc = {
  mediaType: string;
  verificationMaterial: { tlogEntries: Array<{ canonicalizedBody: string }>; timestampVerificationData?: unknown };
  messageSignature: { messageDigest: { digest: string }; signature: string };
};
const happyDoc = () => JSON.parse(happy.toString('utf8')) as Doc;
const json = (doc: unknown) => Buffer.from(JSON.stringify(doc));

describe('sigstore bundles made by the real sigstore signers (conformance fixtures), verified with @sigstore/verify', () => {
  it("managed-key-happy-path verifies with its key over a.txt (a.txt's sha256 is the signed digest)", async () => {
    const r = await verifySigstoreBundle(keyed(happy));
    assertValid(r);
    assert.equal(r.content, 'messageSignature');
    assert.equal(r.signedDigest, A_TXT);
    assert.equal(r.signer.keyName, 'managed-key-happy-path');
    assert.deepEqual(r.evidence, { verified: false, tlogEntries: 1, timestamps: 1 });
  });
  it('with the public-good trusted root, its Rekor entry and RFC 3161 timestamp are verified too (offline)', async () => {
    const r = await verifySigstoreBundle(keyed(happy, { trustedRoot }));
    assertValid(r);
    assert.equal(r.evidence.verified, true);
  });
  it('is refused for another digest, or another artifact', async () => {
    assertRefused(await verifySigstoreBundle(keyed(happy, { expectedDigest: `sha256:${'0'.repeat(64)}` })), 'DIGEST_MISMATCH');
    assertRefused(await verifySigstoreBundle(keyed(happy, { artifact: Buffer.concat([artifact, Buffer.from('x')]) })), 'SIGNATURE_INVALID');
    assertRefused(
      await verifySigstoreBundle(keyed(happy, { artifact: undefined } as unknown as Partial<SigstoreBundleVerifyOptions>)),
      'INVALID_ARGUMENT',
      /artifact itself/,
    );
  });
  it('managed-key-wrong-key_fail: its key.pub is not the signing key (not even a usable key); another key is refused', async () => {
    assert.throws(() => keyOf('managed-key-wrong-key_fail'));
    const other = trustedKeyFromKeyObject('other', 'test', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    assertRefused(
      await verifySigstoreBundle(keyed(bundleOf('managed-key-wrong-key_fail'), { key: other })),
      'SIGNATURE_INVALID',
      /does not verify with key "other"/,
    );
    assertRefused(await verifySigstoreBundle(keyed(bundleOf('managed-key-wrong-key_fail'), { key: other, trustedRoot })), 'SIGNATURE_INVALID');
  });
  it('dsse-invalid-sig_fail is refused keyless (by @sigstore/verify) and with a key (it is keyless)', async () => {
    const r = await verifySigstoreBundle({
      untrustedBundle: bundleOf('dsse-invalid-sig_fail'),
      expectedDigest: A_TXT,
      trustedRoot,
      identity: { issuer: 'https://github.com/login/oauth' },
    });
    assertRefused(r, 'SIGNATURE_INVALID', /signature/);
    assertRefused(await verifySigstoreBundle(keyed(bundleOf('dsse-invalid-sig_fail'))), 'SIGNATURE_INVALID', /keyless/);
  });
  it('a key-signed bundle is refused when the policy is keyless', async () => {
    assertRefused(
      await verifySigstoreBundle({ untrustedBundle: happy, expectedDigest: A_TXT, artifact, trustedRoot, identity: { issuer: 'x' } }),
      'SIGNATURE_INVALID',
      /signed with a key/,
    );
  });
  it('evidence: a bundle stripped of its tlog entry and timestamp verifies with the key alone, but not against a trusted root (unless the thresholds are 0)', async () => {
    const doc = happyDoc();
    doc.verificationMaterial.tlogEntries = [];
    delete doc.verificationMaterial.timestampVerificationData;
    for (const mediaType of ['application/vnd.dev.sigstore.bundle.v0.3+json', 'application/vnd.dev.sigstore.bundle+json;version=0.2']) {
      const bare = json({ ...doc, mediaType });
      const alone = await verifySigstoreBundle(keyed(bare));
      assertValid(alone);
      assert.deepEqual(alone.evidence, { verified: false, tlogEntries: 0, timestamps: 0 });
      assertRefused(await verifySigstoreBundle(keyed(bare, { trustedRoot })), 'SIGNATURE_INVALID', /TIMESTAMP_ERROR/);
      assertValid(await verifySigstoreBundle(keyed(bare, { trustedRoot, evidence: { tlogThreshold: 0, timestampThreshold: 0 } })));
    }
  });

  describe('single changed bytes are refused', () => {
    it('every byte of the signature', async () => {
      const doc = happyDoc();
      const sig = Buffer.from(doc.messageSignature.signature, 'base64');
      for (let i = 0; i < sig.length; i++) {
        const changed = Buffer.from(sig);
        changed[i] = changed[i]! ^ 0x01;
        const r = await verifySigstoreBundle(keyed(json({ ...doc, messageSignature: { ...doc.messageSignature, signature: changed.toString('base64') } })));
        assert.equal(r.valid, false, `signature byte ${i} changed and it still verified`);
      }
    });
    it('every byte of the signed payload (the artifact) and of the message digest', async () => {
      for (let i = 0; i < artifact.length; i++) {
        const changed = Buffer.from(artifact);
        changed[i] = changed[i]! ^ 0x01;
        assert.equal((await verifySigstoreBundle(keyed(happy, { artifact: changed }))).valid, false, `artifact byte ${i}`);
      }
      const doc = happyDoc();
      const md = Buffer.from(doc.messageSignature.messageDigest.digest, 'base64');
      for (let i = 0; i < md.length; i++) {
        const changed = Buffer.from(md);
        changed[i] = changed[i]! ^ 0x01;
        const bundle = json({
          ...doc,
          messageSignature: { ...doc.messageSignature, messageDigest: { ...doc.messageSignature.messageDigest, digest: changed.toString('base64') } },
        });
        assert.equal((await verifySigstoreBundle(keyed(bundle))).valid, false, `message digest byte ${i}`);
      }
    });
    it('sampled bytes of the tlog entry body, with the trusted root', async () => {
      const doc = happyDoc();
      const body = Buffer.from(doc.verificationMaterial.tlogEntries[0]!.canonicalizedBody, 'base64');
      const step = Math.ceil(body.length / 60);
      for (let i = 0; i < body.length; i += step) {
        const changed = Buffer.from(body);
        changed[i] = changed[i]! ^ 0x01;
        const d = happyDoc();
        d.verificationMaterial.tlogEntries[0]!.canonicalizedBody = changed.toString('base64');
        assert.equal((await verifySigstoreBundle(keyed(json(d), { trustedRoot }))).valid, false, `tlog body byte ${i}`);
      }
    });
  });
});

describe('cosign v3 image signatures: DSSE bundles carrying a cosign/sign/v1 statement (signed here)', () => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = trustedKeyFromKeyObject('release', 'test', pair.publicKey);
  const image = `sha256:${createHash('sha256').update('an image manifest').digest('hex')}`;
  const statement = (digest: string, predicateType = 'https://sigstore.dev/cosign/sign/v1') =>
    Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name: 'registry.example/app', digest: { sha256: digest.slice(7) } }],
        predicateType,
        predicate: {},
      }),
    );
  const bundle = (payload: Buffer, sig?: Buffer) =>
    json({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { publicKey: { hint: 'ignored' }, tlogEntries: [] },
      dsseEnvelope: {
        payload: payload.toString('base64'),
        payloadType: 'application/vnd.in-toto+json',
        signatures: [
          { sig: (sig ?? cryptoSign('sha256', preAuthEncoding('application/vnd.in-toto+json', payload), pair.privateKey)).toString('base64'), keyid: '' },
        ],
      },
    });
  const opts = (b: Buffer, extra: Partial<SigstoreBundleVerifyOptions> = {}): SigstoreBundleVerifyOptions => ({
    untrustedBundle: b,
    expectedDigest: image,
    key,
    ...extra,
  });

  it('verifies for the image digest and names the signed repository', async () => {
    const r = await verifySigstoreBundle(opts(bundle(statement(image))));
    assertValid(r);
    assert.equal(r.content, 'dsseEnvelope');
    assert.deepEqual(r.subjectNames, ['registry.example/app']);
  });
  it('is refused for another image, another predicate type, or another key', async () => {
    assertRefused(await verifySigstoreBundle(opts(bundle(statement(image)), { expectedDigest: A_TXT })), 'DIGEST_MISMATCH');
    assertRefused(await verifySigstoreBundle(opts(bundle(statement(image, 'https://slsa.dev/provenance/v1')))), 'SIGNATURE_MALFORMED', /predicate type/);
    const other = trustedKeyFromKeyObject('other', 'test', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    assertRefused(await verifySigstoreBundle(opts(bundle(statement(image)), { key: other })), 'SIGNATURE_INVALID');
  });
  it('is refused after any single byte of the statement or the signature changes', async () => {
    const payload = statement(image);
    const sig = cryptoSign('sha256', preAuthEncoding('application/vnd.in-toto+json', payload), pair.privateKey);
    for (let i = 0; i < payload.length; i++) {
      const changed = Buffer.from(payload);
      changed[i] = changed[i]! ^ 0x01;
      assert.equal((await verifySigstoreBundle(opts(bundle(changed, sig)))).valid, false, `payload byte ${i}`);
    }
    for (let i = 0; i < sig.length; i++) {
      const changed = Buffer.from(sig);
      changed[i] = changed[i]! ^ 0x01;
      assert.equal((await verifySigstoreBundle(opts(bundle(payload, changed)))).valid, false, `signature byte ${i}`);
    }
  });
});

describe('malformed sigstore bundles and bad arguments', () => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['not JSON', Buffer.from('nope'), /not valid JSON/],
    ['an array', Buffer.from('[]'), /not a JSON object/],
    ['another media type', json({ ...happyDoc(), mediaType: 'application/json' }), /media type/],
    ['duplicate key', Buffer.from(happy.toString('utf8').replace('{', '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",')), /duplicate key/],
    ['no content', json({ mediaType: happyDoc().mediaType, verificationMaterial: happyDoc().verificationMaterial }), /invalid/],
  ];
  for (const [name, b, reason] of cases) {
    it(name, async () => assertRefused(await verifySigstoreBundle(keyed(b)), 'SIGNATURE_MALFORMED', reason));
  }
  it('needs a key, or a trusted root and an identity; a sha256 digest', async () => {
    assertRefused(await verifySigstoreBundle({ untrustedBundle: happy, expectedDigest: A_TXT, trustedRoot }), 'INVALID_ARGUMENT');
    assertRefused(await verifySigstoreBundle(keyed(happy, { expectedDigest: 'sha512:00' })), 'INVALID_ARGUMENT');
  });
});
