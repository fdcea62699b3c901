/**
 * Sigstore bundles with Rekor v2 entries (hashedrekord/dsse 0.0.2, an inclusion proof to a signed
 * checkpoint, no integrated time, the time from an RFC 3161 timestamp), made by the fake Fulcio CA,
 * Rekor v2 log and timestamp authority of test/helpers/sigstore-fake.ts: keyless, and key-based with a
 * PEM key and an HSM key (SoftHSM2). Each verifies, and each is refused, with a clear reason, after a
 * single changed byte of what the log, the checkpoint or the timestamp vouch for. Also: a v0.1/v0.2
 * bundle whose certificate chain includes the root.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ASN1Obj } from '@sigstore/core';
import { sigstoreBundleFormat } from '../../src/formats/bundle.js';
import { verifySigstoreBundle, type SigstoreBundleVerifyOptions, type SigstoreBundleVerifyResult } from '../../src/formats/sigstore-bundle.js';
import { trustedKeyFromKeyObject } from '../../src/keys/node-key.js';
import { closeAllModules } from '../../src/keys/pkcs11/module.js';
import { Pkcs11KeyProvider } from '../../src/keys/pkcs11/provider.js';
import { Pkcs11Signer } from '../../src/keys/pkcs11/signer.js';
import { SigstoreKeyProvider } from '../../src/keys/sigstore-provider.js';
import { logKeysOfTrustedRoot } from '../../src/keys/tlog.js';
import type { Signer, TrustedKey } from '../../src/keys/types.js';
import { makeTestKey } from '../helpers/keys.js';
import { createFakeRekorV2 } from '../helpers/rekor-v2-fake.js';
import { createFakeSigstore } from '../helpers/sigstore-fake.js';
import { createToken, SOFTHSM_MODULE } from '../helpers/softhsm.js';

type Entry = {
  canonicalizedBody: string;
  inclusionProof: { rootHash: string; treeSize: string; hashes: string[]; checkpoint: { envelope: string } };
};
type Doc = {
  mediaType: string;
  verificationMaterial: {
    certificate?: { rawBytes: string };
    x509CertificateChain?: { certificates: Array<{ rawBytes: string }> };
    tlogEntries: Entry[];
    timestampVerificationData?: { rfc3161Timestamps: Array<{ signedTimestamp: string }> };
  };
  dsseEnvelope?: { signatures: Array<{ sig: string }> };
  messageSignature?: { signature: string };
};
const parse = (b: Buffer) => JSON.parse(b.toString('utf8')) as Doc;
const json = (doc: unknown) => Buffer.from(JSON.stringify(doc));
const flip = (b: Buffer, i: number) => {
  const c = Buffer.from(b);
  c[i] = c[i]! ^ 0x01;
  return c;
};

function assertValid(r: SigstoreBundleVerifyResult): asserts r is Extract<SigstoreBundleVerifyResult, { valid: true }> {
  assert.equal(r.valid, true, r.valid ? '' : `${r.code}: ${r.reason}`);
}
/** Refused with a stated reason: never the catch-all for errors nothing here anticipated. */
function assertRefused(r: SigstoreBundleVerifyResult, what: string, code?: string | RegExp, reason?: RegExp): void {
  assert.equal(r.valid, false, `${what}: verified but should not have`);
  if (r.valid) return;
  assert.doesNotMatch(r.reason, /^sigstore bundle could not be verified/, `${what}: ${r.reason}`);
  if (typeof code === 'string') assert.equal(r.code, code, `${what}: ${r.reason}`);
  else if (code) assert.match(r.code, code, `${what}: ${r.reason}`);
  if (reason) assert.match(r.reason, reason, what);
}

describe('sigstore bundles with Rekor v2 entries', function () {
  this.timeout(120_000);
  const fake = createFakeSigstore('release@example.com', 'https://token.actions.example.com');
  const other = createFakeSigstore('release@example.com', 'https://token.actions.example.com');
  const trustedRoot = JSON.parse(readFileSync(fake.trustedRootPath, 'utf8')) as {
    tlogs: Array<{ baseUrl: string; publicKey: { validFor: { start: string } } }>;
  };
  const identity = { issuer: fake.issuer, subject: fake.identity };
  const digest = `sha256:${createHash('sha256').update('an image manifest').digest('hex')}`;
  const repository = 'registry.example/app';
  const artifact = Buffer.from('a release artifact\n');
  const artifactDigest = `sha256:${createHash('sha256').update(artifact).digest('hex')}`;
  const dsse = { dsse: { repository, digest } };
  const message = { message: { artifact } };
  const keyless = (bundle: Buffer, extra: Partial<SigstoreBundleVerifyOptions> = {}): Promise<SigstoreBundleVerifyResult> =>
    verifySigstoreBundle({ untrustedBundle: bundle, expectedDigest: digest, trustedRoot, identity, ...extra });
  const pem = makeTestKey();
  const pemKey = trustedKeyFromKeyObject('release', 'test', createPublicKey(pem.publicPem));
  const keyed = (bundle: Buffer, key: TrustedKey = pemKey, extra: Partial<SigstoreBundleVerifyOptions> = {}) =>
    verifySigstoreBundle({ untrustedBundle: bundle, expectedDigest: digest, key, trustedRoot, ...extra });

  let dsseBundle: Buffer;
  before(async () => {
    dsseBundle = await fake.rekorV2Bundle({ content: dsse });
  });

  describe('verify', () => {
    it('keyless, DSSE with a hashedrekord 0.0.2 entry over the pre-authentication encoding (as rekor-tiles logs DSSE now)', async () => {
      const r = await keyless(dsseBundle);
      assertValid(r);
      assert.equal(r.content, 'dsseEnvelope');
      assert.deepEqual(r.subjectNames, [repository]);
      assert.deepEqual(r.evidence, { verified: true, tlogEntries: 1, timestamps: 1 });
      assert.equal(r.signer.subject, fake.identity);
    });
    it('keyless, DSSE with a dsse 0.0.2 entry', async () => {
      assertValid(await keyless(await fake.rekorV2Bundle({ content: dsse, entryKind: 'dsse' })));
    });
    it('keyless, a message signature with a hashedrekord 0.0.2 entry', async () => {
      const r = await keyless(await fake.rekorV2Bundle({ content: message }), { expectedDigest: artifactDigest, artifact });
      assertValid(r);
      assert.equal(r.content, 'messageSignature');
    });
    it('key-based with a PEM key, DSSE and message signature', async () => {
      assertValid(await keyed(await fake.rekorV2Bundle({ content: dsse, signer: pem.signer })));
      assertValid(await keyed(await fake.rekorV2Bundle({ content: dsse, signer: pem.signer, entryKind: 'dsse' })));
      const r = await keyed(await fake.rekorV2Bundle({ content: message, signer: pem.signer }), pemKey, { expectedDigest: artifactDigest, artifact });
      assertValid(r);
      assert.equal(r.evidence.verified, true);
    });
    it('key-based with an HSM key (SoftHSM2): signed on the token, verified with the token key', async () => {
      const token = createToken('rekor-v2');
      const provider = new Pkcs11KeyProvider({ defaultModule: SOFTHSM_MODULE });
      let signer: Signer | undefined;
      try {
        token.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'release', '--id', '01']);
        signer = await Pkcs11Signer.open(`${token.uri};object=release`, { pin: token.pin });
        const key = await provider.load('hsm', { pkcs11: `${token.uri};object=release;type=public` });
        assertValid(await keyed(await fake.rekorV2Bundle({ content: dsse, signer }), key));
        const bundle = await fake.rekorV2Bundle({ content: message, signer });
        assertValid(await keyed(bundle, key, { expectedDigest: artifactDigest, artifact }));
        assertRefused(await keyed(bundle, pemKey, { expectedDigest: artifactDigest, artifact }), 'another key', 'SIGNATURE_INVALID');
      } finally {
        await signer?.close?.();
        await provider.close();
        closeAllModules();
        token.delete();
      }
    });
    it('through the format: a sigstore key (keyless), and a key with tlog: required and a trustedRoot', async () => {
      const subject = { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1 };
      const sig = (b: Buffer) => ({ format: 'sigstore-bundle' as const, source: 'test', untrustedPayload: b, untrustedSignature: Buffer.alloc(0) });
      const sigstoreKey = await new SigstoreKeyProvider().load('ci', {
        sigstore: { trustedRoot: fake.trustedRootPath, issuer: fake.issuer, subject: fake.identity },
      });
      const a = await sigstoreBundleFormat.verify(sig(dsseBundle), sigstoreKey, subject);
      assert.equal(a.valid, true, a.valid ? '' : a.reason);
      const logged = await fake.rekorV2Bundle({ content: dsse, signer: pem.signer });
      const tlogKey = { ...pemKey, tlog: { logKeys: logKeysOfTrustedRoot(trustedRoot, 'test'), source: 'test', trustedRoot } };
      const b = await sigstoreBundleFormat.verify(sig(logged), tlogKey, subject);
      assert.equal(b.valid, true, b.valid ? '' : b.reason);
      assert.deepEqual(b.valid && b.annotations?.['evidence'], { verified: true, tlogEntries: 1, timestamps: 1 });
      // The same key without tlog: required checks the signature alone; with it, a broken checkpoint refuses.
      const broken = parse(logged);
      broken.verificationMaterial.tlogEntries[0]!.inclusionProof.checkpoint.envelope =
        broken.verificationMaterial.tlogEntries[0]!.inclusionProof.checkpoint.envelope.replace(/\n7\n/, '\n8\n');
      assert.equal((await sigstoreBundleFormat.verify(sig(json(broken)), pemKey, subject)).valid, true);
      const c = await sigstoreBundleFormat.verify(sig(json(broken)), tlogKey, subject);
      assert.equal(c.valid, false);
      // A rekorKey names the log's key but neither its origin nor a timestamp authority: the refusal says so.
      const rekorKeyOnly = { ...pemKey, tlog: { logKeys: logKeysOfTrustedRoot(trustedRoot, 'test'), source: 'rekorKey' } };
      const d = await sigstoreBundleFormat.verify(sig(logged), rekorKeyOnly, subject);
      assert.equal(d.valid, false);
      assert.equal(!d.valid && d.code, 'SIGNATURE_INVALID');
      assert.match(!d.valid ? d.reason : '', /needs a trusted root naming its log with a baseUrl .* and a timestamp authority/);
      assert.match(!d.valid ? d.reason : '', /does not name its log and names no timestamp authority: a rekorKey alone cannot vouch for a Rekor v2 entry/);
      assert.doesNotMatch(!d.valid ? d.reason : '', /of the trusted root/);
    });
  });

  describe('refused after a single changed byte', () => {
    it('of the signature (every byte)', async () => {
      const doc = parse(dsseBundle);
      const sig = Buffer.from(doc.dsseEnvelope!.signatures[0]!.sig, 'base64');
      for (let i = 0; i < sig.length; i++) {
        const d = parse(dsseBundle);
        d.dsseEnvelope!.signatures[0]!.sig = flip(sig, i).toString('base64');
        assertRefused(await keyless(json(d)), `signature byte ${i}`, 'SIGNATURE_INVALID');
      }
    });
    it('of the entry body (every byte)', async () => {
      const body = Buffer.from(parse(dsseBundle).verificationMaterial.tlogEntries[0]!.canonicalizedBody, 'base64');
      for (let i = 0; i < body.length; i++) {
        const d = parse(dsseBundle);
        d.verificationMaterial.tlogEntries[0]!.canonicalizedBody = flip(body, i).toString('base64');
        assertRefused(await keyless(json(d)), `body byte ${i}`, /^SIGNATURE_(INVALID|MALFORMED)$/);
      }
    });
    it('of the checkpoint: its note and its signature line (every character)', async () => {
      const envelope = parse(dsseBundle).verificationMaterial.tlogEntries[0]!.inclusionProof.checkpoint.envelope;
      for (let i = 0; i < envelope.length; i++) {
        const d = parse(dsseBundle);
        d.verificationMaterial.tlogEntries[0]!.inclusionProof.checkpoint.envelope =
          envelope.slice(0, i) + String.fromCharCode(envelope.charCodeAt(i) ^ 0x01) + envelope.slice(i + 1);
        assertRefused(await keyless(json(d)), `checkpoint character ${i}`, /^SIGNATURE_(INVALID|MALFORMED)$/);
      }
      // Every byte of the signature itself (the key hint and the Ed25519 signature).
      const [note, line] = envelope.split('\n\n') as [string, string];
      const [dash, name, encoded] = line.trimEnd().split(' ') as [string, string, string];
      const sig = Buffer.from(encoded, 'base64');
      for (let i = 0; i < sig.length; i++) {
        const d = parse(dsseBundle);
        d.verificationMaterial.tlogEntries[0]!.inclusionProof.checkpoint.envelope = `${note}\n\n${dash} ${name} ${flip(sig, i).toString('base64')}\n`;
        assertRefused(await keyless(json(d)), `checkpoint signature byte ${i}`, 'SIGNATURE_INVALID', /not signed by the log/);
      }
    });
    it('of the inclusion proof: its hashes, root hash and tree size', async () => {
      const proof = parse(dsseBundle).verificationMaterial.tlogEntries[0]!.inclusionProof;
      assert.ok(proof.hashes.length >= 3, 'the entry is one leaf among others');
      for (let h = 0; h < proof.hashes.length; h++) {
        const hash = Buffer.from(proof.hashes[h]!, 'base64');
        for (let i = 0; i < hash.length; i++) {
          const d = parse(dsseBundle);
          d.verificationMaterial.tlogEntries[0]!.inclusionProof.hashes[h] = flip(hash, i).toString('base64');
          assertRefused(await keyless(json(d)), `proof hash ${h} byte ${i}`, 'SIGNATURE_INVALID', /TLOG_INCLUSION_PROOF_ERROR/);
        }
      }
      const root = Buffer.from(proof.rootHash, 'base64');
      for (let i = 0; i < root.length; i++) {
        const d = parse(dsseBundle);
        d.verificationMaterial.tlogEntries[0]!.inclusionProof.rootHash = flip(root, i).toString('base64');
        assertRefused(await keyless(json(d)), `root hash byte ${i}`, 'SIGNATURE_INVALID', /not the tree of its inclusion proof/);
      }
      const d = parse(dsseBundle);
      d.verificationMaterial.tlogEntries[0]!.inclusionProof.treeSize = '8';
      assertRefused(await keyless(json(d)), 'tree size', 'SIGNATURE_INVALID', /not the tree of its inclusion proof/);
    });
    it('of the RFC 3161 timestamp (every byte, but for a status of granted becoming granted with modifications)', async () => {
      const token = Buffer.from(parse(dsseBundle).verificationMaterial.timestampVerificationData!.rfc3161Timestamps[0]!.signedTimestamp, 'base64');
      // TimeStampResp { status { INTEGER 0 }, ... }: 0 → 1 is "granted with modifications", which RFC 3161 allows and sigstore-go accepts.
      const status = ASN1Obj.parseBuffer(token as Buffer<ArrayBuffer>).subs[0]!.subs[0]!;
      assert.equal(status.toInteger(), 0n);
      const statusAt = token.indexOf(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])) + 4;
      assert.ok(statusAt > 0);
      const survived: number[] = [];
      for (let i = 0; i < token.length; i++) {
        if (i === statusAt) continue;
        const d = parse(dsseBundle);
        d.verificationMaterial.timestampVerificationData!.rfc3161Timestamps[0]!.signedTimestamp = flip(token, i).toString('base64');
        const r = await keyless(json(d));
        if (r.valid) survived.push(i);
        else assertRefused(r, `timestamp byte ${i}`, /^(SIGNATURE_INVALID|SIGNATURE_MALFORMED|CERTIFICATE_INVALID)$/);
      }
      assert.deepEqual(survived, [], 'timestamp bytes changed and still verified');
    });
  });

  describe('refused with a clear reason', () => {
    it('an entry by a log the trusted root does not name, or a checkpoint not signed by its key', async () => {
      const foreign = createFakeRekorV2(fake.rekorV2.origin);
      assertRefused(
        await keyless(await fake.rekorV2Bundle({ content: dsse, log: foreign })),
        'foreign log',
        'SIGNATURE_INVALID',
        /not a log of the trusted root/,
      );
      assertRefused(
        await keyless(await fake.rekorV2Bundle({ content: dsse, checkpointSigner: foreign })),
        'foreign checkpoint key',
        'SIGNATURE_INVALID',
        /checkpoint is not signed by the log "log2026-1\.rekor\.signet\.test"/,
      );
    });
    it('an entry that logs another certificate or key than the signer (@sigstore/verify 3.1 compares only digest and signature)', async () => {
      for (const entryKind of ['hashedrekord', 'dsse'] as const) {
        assertRefused(
          await keyless(await fake.rekorV2Bundle({ content: dsse, entryKind, loggedKeyPem: other.leafPem })),
          `${entryKind}, keyless`,
          'SIGNATURE_INVALID',
          /logs another certificate than the bundle's/,
        );
        assertRefused(
          await keyed(await fake.rekorV2Bundle({ content: dsse, entryKind, signer: pem.signer, loggedKeyPem: makeTestKey().publicPem })),
          `${entryKind}, key-based`,
          'SIGNATURE_INVALID',
          /logs another public key than the policy's/,
        );
      }
    });
    it('a checkpoint for another origin', async () => {
      assertRefused(
        await keyless(await fake.rekorV2Bundle({ content: dsse, checkpointOrigin: 'log2026-2.rekor.signet.test' })),
        'origin',
        'SIGNATURE_INVALID',
        /checkpoint is for the log "log2026-2\.rekor\.signet\.test", not "log2026-1\.rekor\.signet\.test"/,
      );
    });
    it('a timestamp outside the certificate validity (a ten-minute certificate that expired ten days ago)', async () => {
      assertRefused(
        await keyless(await fake.rekorV2Bundle({ content: dsse, signer: 'expired-certificate' })),
        'expired',
        'CERTIFICATE_INVALID',
        /CERTIFICATE_ERROR/,
      );
    });
    it('no timestamp: Rekor v2 gives no integrated time', async () => {
      const bare = await fake.rekorV2Bundle({ content: dsse, timestamp: false });
      assertRefused(await keyless(bare), 'keyless', 'SIGNATURE_INVALID', /no time evidence: its Rekor v2 entries carry no integrated time/);
      assertRefused(
        await keyed(await fake.rekorV2Bundle({ content: dsse, signer: pem.signer, timestamp: false })),
        'key-based',
        'SIGNATURE_INVALID',
        /no time evidence/,
      );
    });
    it("a timestamp outside the log key's validity", async () => {
      const later = structuredClone(trustedRoot);
      later.tlogs[1]!.publicKey.validFor.start = new Date(Date.now() + 86_400_000).toISOString();
      assertRefused(
        await keyless(dsseBundle, { trustedRoot: later }),
        'log key not yet valid',
        'SIGNATURE_INVALID',
        /log "log2026-1\.rekor\.signet\.test" was not valid/,
      );
    });
    it('a trusted root whose v2 log has no baseUrl (its checkpoint origin cannot be checked)', async () => {
      const nameless = structuredClone(trustedRoot);
      nameless.tlogs[1]!.baseUrl = '';
      assertRefused(await keyless(dsseBundle, { trustedRoot: nameless }), 'no baseUrl', 'SIGNATURE_INVALID', /no baseUrl/);
    });
    it('a certificate from a CA the trusted root does not name', async () => {
      const otherCa = {
        ...trustedRoot,
        certificateAuthorities: (JSON.parse(readFileSync(other.trustedRootPath, 'utf8')) as { certificateAuthorities: unknown }).certificateAuthorities,
      };
      assertValid(
        await keyless(await other.rekorV2Bundle({ content: dsse, log: fake.rekorV2 }), {
          trustedRoot: {
            ...otherCa,
            timestampAuthorities: (JSON.parse(readFileSync(other.trustedRootPath, 'utf8')) as { timestampAuthorities: unknown }).timestampAuthorities,
          },
        }),
      );
      assertRefused(await keyless(dsseBundle, { trustedRoot: otherCa }), 'other CA', 'CERTIFICATE_INVALID', /CERTIFICATE_ERROR/);
    });
    it('malformed checkpoints and numbers: SIGNATURE_MALFORMED, never an internal error', async () => {
      const envelope = parse(dsseBundle).verificationMaterial.tlogEntries[0]!.inclusionProof.checkpoint.envelope;
      const cases: Array<[string, (e: Entry) => void, RegExp]> = [
        ['no blank line', (e) => (e.inclusionProof.checkpoint.envelope = envelope.replace('\n\n', '\n')), /no blank line/],
        ['size not a number', (e) => (e.inclusionProof.checkpoint.envelope = envelope.replace('\n7\n', '\nseven\n')), /tree size "seven" is not a decimal/],
        [
          'a name that is a pattern',
          (e) => (e.inclusionProof.checkpoint.envelope = envelope.replace(/\u2014 \S+ /, '\u2014 ( ')),
          /signature name "\(" is not a key name/,
        ],
        ['no signature', (e) => (e.inclusionProof.checkpoint.envelope = envelope.split('\n\n')[0]! + '\n\n'), /has no signature lines/],
        ['tree size not a number', (e) => (e.inclusionProof.treeSize = '7x'), /not a decimal number/],
        ['body not JSON', (e) => (e.canonicalizedBody = Buffer.from('{"kind":').toString('base64')), /body is not valid JSON/],
      ];
      for (const [what, change, reason] of cases) {
        const d = parse(dsseBundle);
        change(d.verificationMaterial.tlogEntries[0]!);
        assertRefused(await keyless(json(d)), what, 'SIGNATURE_MALFORMED', reason);
      }
    });
  });
});

describe('v0.1/v0.2 bundles whose certificate chain includes the root', function () {
  this.timeout(60_000);
  const fake = createFakeSigstore('release@example.com', 'https://accounts.example.com');
  const trustedRoot = JSON.parse(readFileSync(fake.trustedRootPath, 'utf8')) as {
    certificateAuthorities: Array<{ certChain: { certificates: Array<{ rawBytes: string }> } }>;
  };
  const digest = `sha256:${createHash('sha256').update('manifest').digest('hex')}`;
  const asV02 = (certificates: Array<{ rawBytes: string }>) => {
    const doc = parse(fake.bundleFor('r.io/a', digest));
    doc.mediaType = 'application/vnd.dev.sigstore.bundle+json;version=0.2';
    doc.verificationMaterial.x509CertificateChain = { certificates };
    delete doc.verificationMaterial.certificate;
    return json(doc);
  };
  const verify = (bundle: Buffer) =>
    verifySigstoreBundle({ untrustedBundle: bundle, expectedDigest: digest, trustedRoot, identity: { issuer: fake.issuer, subject: fake.identity } });
  const leaf = () => parse(fake.bundleFor('r.io/a', digest)).verificationMaterial.certificate!;
  const root = () => trustedRoot.certificateAuthorities[0]!.certChain.certificates[0]!;

  it('the leaf alone verifies; with the root after it (or the root alone) it is refused, clearly', async () => {
    assertValid(await verify(asV02([leaf()])));
    assertRefused(
      await verify(asV02([leaf(), root()])),
      'leaf and root',
      'SIGNATURE_MALFORMED',
      /certificate chain includes a root certificate \(certificate 1, self-signed/,
    );
    assertRefused(await verify(asV02([root()])), 'root alone', 'SIGNATURE_MALFORMED', /includes a root certificate \(certificate 0/);
  });
  it('a chain certificate that is not DER is refused as malformed', async () => {
    assertRefused(
      await verify(asV02([leaf(), { rawBytes: Buffer.from('not a certificate').toString('base64') }])),
      'garbage',
      'SIGNATURE_MALFORMED',
      /certificate 1 is not a DER/,
    );
  });
});
