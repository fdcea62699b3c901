/**
 * Signature floods without lockout (issue 14): identical signatures are examined once, signatures a key
 * of the scope can verify are examined first, the pre-check that orders them is bounded and decides
 * nothing. Real signatures (node:crypto keys, the project's encoders, the real Notation fixtures).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { cosignFormat } from '../../src/formats/cosign.js';
import { sigstoreBundleFormat } from '../../src/formats/bundle.js';
import { notationFormat } from '../../src/formats/notation-format.js';
import type { PrecheckKey, UntrustedSignature } from '../../src/formats/types.js';
import {
  inExaminationOrder,
  NOTATION_THUMBPRINTS,
  precheckKeys,
  referrersInExaminationOrder,
  signatureIdentity,
  withoutDuplicates,
} from '../../src/engine/signature-order.js';
import { SignetError } from '../../src/errors.js';
import { ROOT } from '../helpers/daemon.js';
import {
  bundleSignature,
  cosignSignature,
  harness,
  KEYS,
  MemoryKeys,
  MemorySource,
  OTHER_DIGEST,
  REPO,
  scopePolicy,
  trustedKey,
  unreadable,
} from '../helpers/engine.js';

const local = (name: keyof typeof KEYS): PrecheckKey => precheckKeys(new MemoryKeys({ [name]: trustedKey(name, KEYS[name]) }), [name])[0]!;
const copy = (sig: UntrustedSignature, source: string): UntrustedSignature => ({ ...sig, source });

describe('signature floods: identical once, verifiable first', () => {
  describe('identical signatures', () => {
    it('the same bytes found twice (another source, another index) are one signature; anything else that verify reads makes another', async () => {
      const sig = await cosignSignature(KEYS.release);
      assert.equal(signatureIdentity(copy(sig, 'layout#3')), signatureIdentity(sig));
      const annotated = { ...sig, untrustedAnnotations: { 'dev.sigstore.cosign/certificate': 'x' } };
      assert.notEqual(signatureIdentity(annotated), signatureIdentity(sig));
      // Annotation order does not matter; their values do.
      const ab = { ...sig, untrustedAnnotations: { a: '1', b: '2' } };
      const ba = { ...sig, untrustedAnnotations: { b: '2', a: '1' } };
      assert.equal(signatureIdentity(ab), signatureIdentity(ba));
      assert.notEqual(signatureIdentity(ab), signatureIdentity({ ...sig, untrustedAnnotations: { a: '1', b: '3' } }));
      // ECDSA is randomised: the same key over the same payload twice is two signatures.
      assert.notEqual(signatureIdentity(await cosignSignature(KEYS.release)), signatureIdentity(sig));
      const bundle = await bundleSignature(KEYS.release);
      assert.notEqual(signatureIdentity({ ...bundle, envelopeMediaType: 'application/cose' }), signatureIdentity(bundle));
      const broken = unreadable(new SignetError('DIGEST_MISMATCH', 'tampered'));
      assert.equal(withoutDuplicates([sig, copy(sig, 'a'), broken, copy(sig, 'b'), broken]).length, 3, 'unreadable ones are kept');
    });

    it('35 identical copies and nothing else: examined once, and refused with one line', async () => {
      const sig = await cosignSignature(KEYS.stranger);
      const calls: number[] = [];
      const keys = new MemoryKeys({ release: trustedKey('release', KEYS.release, { onVerify: () => calls.push(1) }) });
      const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release'] } });
      const flood = Array.from({ length: 35 }, (_, i) => copy(sig, `${REPO}:sha256-….sig#${i}`));
      const d = await (await harness({ policy, keys, signatures: flood })).decide();
      assert.equal(d.decision, 'reject');
      assert.match(d.reason, /1 signature\(s\) found/);
      assert.equal(d.signatures.length, 1);
      assert.equal(calls.length, 1, 'one verification');
    });
  });

  describe('order', () => {
    it('34 stale signatures (old key) ahead of the one valid new one, maxSignatures 32: accepted', async () => {
      const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release'] } });
      const stale = await Promise.all(Array.from({ length: 34 }, () => cosignSignature(KEYS.leaked)));
      const d = await (await harness({ policy, signatures: [...stale, await cosignSignature(KEYS.release)], maxSignatures: 32 })).decide();
      assert.equal(d.decision, 'accept', d.reason);
      assert.ok(d.signatures.length <= 32);
      assert.deepEqual(d.warnings, [
        `3 more signature(s) found and not examined (maxSignatures 32; those a key of scope ${REPO} can verify were examined first)`,
      ]);
      // The valid one across sources too: a full tag source and a bundle in the referrers.
      const two = [new MemorySource('registry', stale), new MemorySource('referrers', [await bundleSignature(KEYS.release)])];
      assert.equal((await (await harness({ policy, signatures: two, maxSignatures: 32 })).decide()).decision, 'accept');
    });

    it('a signature by a refused key (rejectIfSignedBy) is not crowded out either', async () => {
      const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release'] }, rejectIfSignedBy: ['leaked'] });
      const flood = await Promise.all(Array.from({ length: 8 }, () => cosignSignature(KEYS.stranger)));
      const signatures = [await cosignSignature(KEYS.release), ...flood, await cosignSignature(KEYS.leaked)];
      const d = await (await harness({ policy, signatures, maxSignatures: 4 })).decide();
      assert.equal(d.code, 'SIGNED_BY_REJECTED_KEY', d.reason);
    });

    it('the pre-check only orders: a signature the key made for another digest comes first and is still refused', async () => {
      const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release'] } });
      const wrong = await cosignSignature(KEYS.release, { digest: OTHER_DIGEST });
      const flood = await Promise.all(Array.from({ length: 4 }, () => cosignSignature(KEYS.stranger)));
      const d = await (await harness({ policy, signatures: [...flood, wrong], maxSignatures: 2 })).decide();
      assert.equal(d.decision, 'reject');
      assert.equal(d.code, 'DIGEST_MISMATCH', d.reason);
    });

    it('ranks: verifies, names the key, unknown, unreadable, another key; stable within a rank', async () => {
      const keys = [local('release')];
      const good = await cosignSignature(KEYS.release);
      const other = await cosignSignature(KEYS.stranger);
      const noPrecheck = { ...(await cosignSignature(KEYS.stranger)), format: 'x-unknown' } as unknown as UntrustedSignature;
      const broken = unreadable(new SignetError('BLOB_TOO_LARGE', 'big'));
      const hinted = await bundleSignature(KEYS.release);
      const { verifyInProcess, ...onDevice } = local('release');
      const ordered = await inExaminationOrder([other, broken, noPrecheck, good], keys);
      assert.deepEqual(ordered, [good, noPrecheck, broken, other]);
      // A key verified on a token is never asked by the pre-check: the bundle's key hint still names it.
      assert.equal(await sigstoreBundleFormat.precheck!(hinted, onDevice), 'names-key');
      assert.equal(await cosignFormat.precheck!(good, onDevice), 'unknown');
      assert.equal(await sigstoreBundleFormat.precheck!(hinted, keys[0]!), 'verifies');
      assert.equal(await sigstoreBundleFormat.precheck!(await bundleSignature(KEYS.stranger), keys[0]!), 'other-key');
    });

    it('bounded: past its time budget (or the deadline) the pre-check stops and the rest keep their order', async () => {
      const verified: number[] = [];
      const keys = precheckKeys(new MemoryKeys({ release: trustedKey('release', KEYS.release, { onVerify: () => verified.push(1) }) }), ['release']);
      const sigs = await Promise.all(Array.from({ length: 5 }, () => cosignSignature(KEYS.stranger)));
      const good = await cosignSignature(KEYS.release);
      assert.deepEqual(await inExaminationOrder([...sigs, good], keys, { budgetMs: -1 }), [...sigs, good]);
      assert.equal(verified.length, 0);
      const aborted = AbortSignal.abort();
      assert.deepEqual(await inExaminationOrder([...sigs, good], keys, { signal: aborted }), [...sigs, good]);
      assert.equal(verified.length, 0);
    });

    it('Notation: a chain that names the trust store ranks before one that does not', async () => {
      const FIX = join(ROOT, 'test/fixtures/notation');
      const alpineRoot = new X509Certificate(readFileSync(join(FIX, 'alpine-trust-root.pem')));
      const otherRoot = new X509Certificate(readFileSync(join(FIX, 'test-pki/other-root.pem')));
      const sig = (file: string, mediaType: string): UntrustedSignature => ({
        format: 'notation',
        source: file,
        untrustedPayload: readFileSync(join(FIX, file)),
        untrustedSignature: Buffer.alloc(0),
        envelopeMediaType: mediaType,
      });
      const anchored = (certificates: X509Certificate[]): PrecheckKey => ({
        name: 'n',
        algorithm: 'rsa',
        fingerprint: 'sha256:00',
        certificates,
        keyless: false,
      });
      for (const s of [sig('jws_signature.sig', 'application/jose+json'), sig('cose_signature.sig', 'application/cose')]) {
        assert.equal(await notationFormat.precheck!(s, anchored([alpineRoot])), 'names-key', s.source);
        assert.equal(await notationFormat.precheck!(s, anchored([otherRoot])), 'other-key', s.source);
      }
      assert.equal(
        await notationFormat.precheck!({ ...sig('jws_signature.sig', 'application/jose+json'), untrustedPayload: Buffer.from('{') }, anchored([alpineRoot])),
        'unknown',
      );
    });
  });

  describe('referrers, ranked from the listing', () => {
    const FIX = join(ROOT, 'test/fixtures/notation');
    const alpineRoot = new X509Certificate(readFileSync(join(FIX, 'alpine-trust-root.pem')));
    const otherRoot = new X509Certificate(readFileSync(join(FIX, 'test-pki/other-root.pem')));
    const thumb = (c: X509Certificate) => createHash('sha256').update(c.raw).digest('hex');
    const key: PrecheckKey = { name: 'n', algorithm: 'rsa', fingerprint: 'sha256:00', certificates: [alpineRoot], keyless: false };
    const listed = (name: string, annotations?: Record<string, string>) => ({ digest: name, ...(annotations ? { annotations } : {}) });

    it('Notation referrers whose thumbprints name a trust-store certificate come first, then the newest, then the listing order', () => {
      const stale = Array.from({ length: 40 }, (_, i) =>
        listed(`stale${i}`, { [NOTATION_THUMBPRINTS]: JSON.stringify([thumb(otherRoot)]), 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' }),
      );
      const valid = listed('valid', { [NOTATION_THUMBPRINTS]: JSON.stringify(['00'.repeat(32), thumb(alpineRoot).toUpperCase()]) });
      const undated = listed('undated');
      const newer = listed('newer', { 'org.opencontainers.image.created': '2026-11-01T00:00:00Z' });
      const order = referrersInExaminationOrder([...stale, undated, valid, newer], [key]).map((d) => d.digest);
      assert.deepEqual(order.slice(0, 3), ['valid', 'newer', 'undated']);
      assert.deepEqual(
        order.slice(3),
        stale.map((d) => d.digest),
        'stale ones keep their listing order, last',
      );
    });

    it('hostile annotations (not JSON, huge, not a list, a bad date) only leave a referrer unranked, never throw', () => {
      const odd = [
        listed('a', { [NOTATION_THUMBPRINTS]: '{' }),
        listed('b', { [NOTATION_THUMBPRINTS]: JSON.stringify(['x'.repeat(5000)]) }),
        listed('c', { [NOTATION_THUMBPRINTS]: '{"0":"x"}' }),
        listed('d', { 'org.opencontainers.image.created': 'yesterday' }),
      ];
      assert.deepEqual(
        referrersInExaminationOrder(odd, [key]).map((d) => d.digest),
        ['a', 'b', 'c', 'd'],
      );
      assert.deepEqual(
        referrersInExaminationOrder(odd, []).map((d) => d.digest),
        ['a', 'b', 'c', 'd'],
        'no keys: listing order',
      );
    });
  });
});
