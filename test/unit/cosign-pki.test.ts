/**
 * Private PKI: a `certificates` key (roots, optional intermediates, identity rules on the leaf's SANs)
 * verifies cosign signatures that carry a certificate, as `cosign sign --certificate` writes them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cosignFormat } from '../../src/formats/cosign.js';
import type { UntrustedSignature } from '../../src/formats/types.js';
import { certificatesKeyStore } from '../../src/keys/certificates.js';
import type { KeySpec } from '../../src/keys/provider.js';
import { validatePolicyFile } from '../../src/policy/schema.js';
import { buildPolicy } from '../../src/policy/load.js';
import { createTestPki } from '../helpers/pki.js';
import type { CosignKeylessLayer } from '../helpers/sigstore-fake.js';

describe('cosign signatures with certificates of a private PKI (certificates keys)', function () {
  this.timeout(60_000);
  const pki = createTestPki();
  const otherPki = createTestPki();
  const leaf = pki.leaf('release');
  const digest = `sha256:${createHash('sha256').update('manifest').digest('hex')}`;
  const subject = { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 8 };
  const REF = 'registry.acme.example/app';
  const provider = certificatesKeyStore.provider({});
  const key = (extra: KeySpec = {}) => provider.load('acme', { certificates: pki.rootPath, intermediates: pki.intermediatePath, ...extra });
  const asSig = (l: CosignKeylessLayer): UntrustedSignature => ({
    format: 'cosign',
    source: 'test',
    untrustedPayload: l.payload,
    untrustedSignature: l.signature,
    untrustedAnnotations: l.annotations,
  });
  const verify = async (l: CosignKeylessLayer, k?: Awaited<ReturnType<typeof key>>, now?: Date) =>
    cosignFormat.verify(asSig(l), k ?? (await key()), subject, now ? { now } : {});
  const good = pki.cosignSigFor(leaf, REF, digest);

  it('verifies: the leaf chains to the roots through the intermediates file, and the identity rules match', async () => {
    const r = await verify(
      good,
      await key({ subjectEmail: 'release@acme.example', subjectHostname: 'CI.acme.example', subjectURI: 'https://ci.acme.example/release' }),
    );
    assert.equal(r.valid, true, r.valid ? '' : r.reason);
    assert.equal(r.valid && r.signedIdentity, REF);
    assert.deepEqual(r.valid && r.annotations['signer'], { subject: 'release@acme.example' });
  });

  it('takes the intermediates from the chain annotation (trusting only the roots)', async () => {
    const roots = await provider.load('acme', { certificates: pki.rootPath });
    assert.equal((await verify(pki.cosignSigFor(leaf, REF, digest, { chain: true }), roots)).valid, true);
    const r = await verify(good, roots);
    assert.equal(!r.valid && r.code, 'CERTIFICATE_INVALID');
    assert.match(!r.valid ? r.reason : '', /does not chain to a certificate of the trust store/);
  });

  it('refuses another identity, with IDENTITY_MISMATCH', async () => {
    for (const rule of [{ subjectEmail: 'ops@acme.example' }, { subjectHostname: 'evil.example' }, { subjectURI: 'https://ci.acme.example/other' }]) {
      const r = await verify(good, await key(rule));
      assert.equal(!r.valid && r.code, 'IDENTITY_MISMATCH', JSON.stringify(rule));
    }
  });

  it('refuses a certificate of another PKI, even with its own chain annotation', async () => {
    const foreign = otherPki.leaf('release');
    const r = await verify(otherPki.cosignSigFor(foreign, REF, digest, { chain: true }));
    assert.equal(!r.valid && r.code, 'CERTIFICATE_INVALID');
  });

  it('checks the chain at the signing time', async () => {
    const later = new Date(Date.now() + 60 * 86_400_000);
    const r = await verify(good, undefined, later);
    assert.equal(!r.valid && r.code, 'CERTIFICATE_INVALID');
    assert.match(!r.valid ? r.reason : '', /not valid at the signing time/);
  });

  it('refuses a leaf that is not for code signing', async () => {
    const tls = pki.leaf('tls', { eku: 'serverAuth' });
    const r = await verify(pki.cosignSigFor(tls, REF, digest));
    assert.equal(!r.valid && r.code, 'CERTIFICATE_INVALID');
  });

  it('refuses after a byte of the payload, the signature or the certificate changes', async () => {
    const p = Buffer.from(good.payload);
    p[30] = p[30]! ^ 1;
    assert.equal((await verify({ ...good, payload: p })).valid, false);
    const s = Buffer.from(good.signature);
    s[10] = s[10]! ^ 1;
    assert.equal((await verify({ ...good, signature: s })).valid, false);
    const cert = good.annotations['dev.sigstore.cosign/certificate']!;
    const i = cert.indexOf('\n') + 100;
    const changed = cert.slice(0, i) + (cert[i] === 'A' ? 'B' : 'A') + cert.slice(i + 1);
    assert.equal((await verify({ ...good, annotations: { ...good.annotations, 'dev.sigstore.cosign/certificate': changed } })).valid, false);
  });

  it('refuses another digest after authenticity', async () => {
    const r = await verify(pki.cosignSigFor(leaf, REF, `sha256:${'3'.repeat(64)}`));
    assert.equal(!r.valid && r.code, 'DIGEST_MISMATCH');
  });

  it('the policy takes intermediates and identity rules on certificates keys only, with absolute paths', () => {
    const base = {
      apiVersion: 'signet/v1',
      keys: { acme: { certificates: '/etc/signet/acme-root.pem', intermediates: '/etc/signet/acme-int.pem', subjectEmail: 'release@acme.example' } },
    };
    assert.deepEqual(validatePolicyFile(base), []);
    const p = buildPolicy([{ path: '/p/a.yaml', text: JSON.stringify(base) }]);
    assert.equal(p.keys['acme']!.intermediates, '/etc/signet/acme-int.pem');
    assert.equal(p.keys['acme']!.subjectEmail, 'release@acme.example');
    const wrong = validatePolicyFile({ apiVersion: 'signet/v1', keys: { k: { file: '/k.pub', subjectEmail: 'a@b' } } });
    assert.match(wrong.map((x) => x.message).join('\n'), /"subjectEmail" applies to certificates keys only/);
    assert.throws(
      () =>
        buildPolicy([
          { path: '/p/a.yaml', text: JSON.stringify({ apiVersion: 'signet/v1', keys: { acme: { certificates: '/r.pem', intermediates: 'rel.pem' } } }) },
        ]),
      /must be an absolute path/,
    );
  });
});
