/**
 * `tlog: required` on a key: its cosign signatures count only with a Rekor record (cosign's
 * `dev.sigstore.cosign/bundle` annotation) for this payload, signature and key, whose signed entry
 * timestamp verifies with the policy's log key (a rekorKey file or a trusted root's logs).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSimpleSigningPayload, cosignFormat } from '../../src/formats/cosign.js';
import type { UntrustedSignature } from '../../src/formats/types.js';
import { KeyRing } from '../../src/keys/keyring.js';
import type { KeySpec } from '../../src/keys/provider.js';
import { validatePolicyFile } from '../../src/policy/schema.js';
import { makeTestKey } from '../helpers/keys.js';
import { createFakeRekor } from '../helpers/rekor-fake.js';
import { createFakeSigstore } from '../helpers/sigstore-fake.js';

describe('tlog: required for key-based cosign signatures', function () {
  this.timeout(30_000);
  const dir = mkdtempSync(join(tmpdir(), 'signet-tlog-'));
  const signer = makeTestKey();
  const pub = signer.writePublic(join(dir, 'release.pub'));
  const rekor = createFakeRekor();
  const otherRekor = createFakeRekor();
  const rekorKey = rekor.writeKey(dir);
  const digest = `sha256:${createHash('sha256').update('manifest').digest('hex')}`;
  const subject = { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 8 };
  const payload = buildSimpleSigningPayload('registry.example.com/app', digest);
  let signature: Buffer;
  before(async () => {
    signature = Buffer.from(await signer.signer.sign(payload, 'sha256'));
  });
  const load = async (spec: KeySpec) => {
    const set = await new KeyRing().load({ release: spec });
    const l = set.get('release');
    if (l.error) throw l.error;
    return l.key;
  };
  const sig = (annotations: Record<string, string>, p = payload, s = signature): UntrustedSignature => ({
    format: 'cosign',
    source: 'test',
    untrustedPayload: p,
    untrustedSignature: s,
    untrustedAnnotations: annotations,
  });
  const record = () => ({ 'dev.sigstore.cosign/bundle': rekor.recordFor(payload, signature, signer.publicPem) });

  it('accepts a signature with a record the log key vouches for; without tlog the record is not needed', async () => {
    const key = await load({ file: pub, tlog: 'required', rekorKey });
    const r = await cosignFormat.verify(sig(record()), key, subject);
    assert.equal(r.valid, true, r.valid ? '' : r.reason);
    const plain = await load({ file: pub });
    assert.equal((await cosignFormat.verify(sig({}), plain, subject)).valid, true);
  });

  it('takes the log keys from a trusted root', async () => {
    const key = await load({ file: pub, tlog: 'required', trustedRoot: rekor.writeTrustedRoot(mkdtempSync(join(tmpdir(), 'signet-tlog-root-'))) });
    assert.equal((await cosignFormat.verify(sig(record()), key, subject)).valid, true);
  });

  it('refuses a trusted root whose log key has no validity start', async () => {
    const root = rekor.writeTrustedRoot(mkdtempSync(join(tmpdir(), 'signet-tlog-nostart-')), null);
    const set = await new KeyRing().load({ release: { file: pub, tlog: 'required', trustedRoot: root } });
    assert.equal(set.get('release').error?.code, 'KEY_INVALID');
    assert.match(set.get('release').error?.message ?? '', /no validity start/);
    // The same for a sigstore (keyless) key's trusted root.
    const fulcio = JSON.parse(readFileSync(createFakeSigstore().trustedRootPath, 'utf8')) as { tlogs: Array<{ publicKey: { validFor?: unknown } }> };
    delete fulcio.tlogs[0]!.publicKey.validFor;
    const keylessRoot = join(mkdtempSync(join(tmpdir(), 'signet-tlog-keyless-')), 'trusted_root.json');
    writeFileSync(keylessRoot, JSON.stringify(fulcio));
    const keyless = await new KeyRing().load({ ci: { sigstore: { trustedRoot: keylessRoot, issuer: 'https://issuer.example', subject: 'ci@example.com' } } });
    assert.equal(keyless.get('ci').error?.code, 'KEY_INVALID');
    assert.match(keyless.get('ci').error?.message ?? '', /no validity start/);
  });

  it('refuses a missing, tampered or foreign record', async () => {
    const key = await load({ file: pub, tlog: 'required', rekorKey });
    const missing = await cosignFormat.verify(sig({}), key, subject);
    assert.equal(!missing.valid && missing.code, 'SIGNATURE_INVALID');
    assert.match(!missing.valid ? missing.reason : '', /tlog: required/);
    const rec = JSON.parse(record()['dev.sigstore.cosign/bundle']) as { SignedEntryTimestamp: string; Payload: { integratedTime: number; body: string } };
    const variants = [
      { ...rec, Payload: { ...rec.Payload, integratedTime: rec.Payload.integratedTime + 1 } },
      { ...rec, SignedEntryTimestamp: Buffer.from(rec.SignedEntryTimestamp, 'base64').reverse().toString('base64') },
    ];
    for (const v of variants) {
      const r = await cosignFormat.verify(sig({ 'dev.sigstore.cosign/bundle': JSON.stringify(v) }), key, subject);
      assert.equal(r.valid, false);
    }
    const foreign = await cosignFormat.verify(sig({ 'dev.sigstore.cosign/bundle': otherRekor.recordFor(payload, signature, signer.publicPem) }), key, subject);
    assert.match(!foreign.valid ? foreign.reason : '', /not a log of rekorKey/);
  });

  it('refuses a record of another signature, payload or key', async () => {
    const key = await load({ file: pub, tlog: 'required', rekorKey });
    const otherSig = Buffer.from(await signer.signer.sign(payload, 'sha256'));
    const a = await cosignFormat.verify(sig({ 'dev.sigstore.cosign/bundle': rekor.recordFor(payload, otherSig, signer.publicPem) }), key, subject);
    assert.match(!a.valid ? a.reason : '', /another signature/);
    const b = await cosignFormat.verify(
      sig({ 'dev.sigstore.cosign/bundle': rekor.recordFor(Buffer.concat([payload, Buffer.from(' ')]), signature, signer.publicPem) }),
      key,
      subject,
    );
    assert.match(!b.valid ? b.reason : '', /another payload/);
    const c = await cosignFormat.verify(sig({ 'dev.sigstore.cosign/bundle': rekor.recordFor(payload, signature, makeTestKey().publicPem) }), key, subject);
    assert.match(!c.valid ? c.reason : '', /another signing key/);
  });

  it('the schema: rekorKey/trustedRoot only with tlog, and tlog needs one of them', () => {
    assert.deepEqual(validatePolicyFile({ apiVersion: 'signet/v1', keys: { k: { file: '/k.pub', tlog: 'required', rekorKey: '/rekor.pub' } } }), []);
    const none = validatePolicyFile({ apiVersion: 'signet/v1', keys: { k: { file: '/k.pub', tlog: 'required' } } });
    assert.match(none.map((p) => p.message).join('\n'), /needs the log's key/);
    const stray = validatePolicyFile({ apiVersion: 'signet/v1', keys: { k: { file: '/k.pub', rekorKey: '/rekor.pub' } } });
    assert.match(stray.map((p) => p.message).join('\n'), /applies only with "tlog: required"/);
  });
});
