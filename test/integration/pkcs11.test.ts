/**
 * Keys on a real SoftHSM2 token: generation, verification in both modes against an independent signer
 * (pkcs11-tool), signing on the token checked independently, concurrency, failures and recovery.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyRing } from '../../src/keys/keyring.js';
import { Pkcs11KeyProvider } from '../../src/keys/pkcs11/provider.js';
import { Pkcs11Signer } from '../../src/keys/pkcs11/signer.js';
import { closeAllModules } from '../../src/keys/pkcs11/module.js';
import type { TrustedKey } from '../../src/keys/types.js';
import { SIGNET } from '../helpers/daemon.js';
import { createToken, SOFTHSM_MODULE, softhsmConf, type TestToken } from '../helpers/softhsm.js';

const work = mkdtempSync(join(tmpdir(), 'signet-pkcs11-'));

function signet(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [SIGNET, ...args], { env: { ...process.env, SOFTHSM2_CONF: softhsmConf(), ...env }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** pkcs11-tool signs on the token: an implementation independent of ours. */
function independentSign(token: TestToken, label: string, mechanism: string, data: Buffer): Buffer {
  const input = join(work, `in-${label}`);
  const output = join(work, `sig-${label}`);
  // SoftHSM offers CKM_ECDSA only (no hash-and-sign ECDSA): pkcs11-tool signs the SHA-256 digest.
  writeFileSync(input, mechanism === 'ECDSA' ? createHash('sha256').update(data).digest() : data);
  token.tool([
    '--sign',
    '--label',
    label,
    '-m',
    mechanism,
    '--input-file',
    input,
    '--output-file',
    output,
    ...(mechanism.startsWith('ECDSA') ? ['--signature-format', 'openssl'] : []),
  ]);
  return readFileSync(output);
}

const ALGORITHMS = [
  { gen: 'ec-p256', mech: 'ECDSA', name: 'ecdsa-p256' },
  { gen: 'ec-p384', mech: 'ECDSA', name: 'ecdsa-p384' },
  { gen: 'rsa-3072', mech: 'SHA256-RSA-PKCS', name: 'rsa' },
  { gen: 'ed25519', mech: 'EDDSA', name: 'ed25519' },
] as const;

describe('PKCS#11 keys on SoftHSM2', function () {
  this.timeout(120_000);
  const provider = new Pkcs11KeyProvider({ defaultModule: SOFTHSM_MODULE });
  after(async () => {
    await provider.close();
    closeAllModules();
  });

  for (const alg of ALGORITHMS) {
    describe(alg.gen, () => {
      let token: TestToken;
      let node: TrustedKey;
      let onToken: TrustedKey;
      const label = `k-${alg.gen}`;
      before(async () => {
        token = createToken(alg.gen);
        const gen = signet(['keys', 'generate', '--key', token.uri, '--label', label, '--algorithm', alg.gen], { SIGNET_PKCS11_PIN: token.pin });
        assert.equal(gen.code, 0, gen.stderr);
        assert.match(gen.stdout, new RegExp(`policy URI  pkcs11:token=${token.label};object=${label};id=`));
        const uri = `${token.uri};object=${label};type=public`;
        node = await provider.load('k', { pkcs11: uri });
        onToken = await provider.load('k', { pkcs11: uri, verifyOn: 'token' });
        assert.equal(node.algorithm, alg.name);
        assert.equal(onToken.fingerprint, node.fingerprint);
      });

      it('verifies, in both modes, a signature made by an independent signer (pkcs11-tool), and refuses a changed one', async () => {
        const data = Buffer.from(`payload for ${alg.gen}`);
        const sig = independentSign(token, label, alg.mech, data);
        for (const key of [node, onToken]) {
          assert.equal(await key.verify(data, sig, 'sha256'), true, `${key.location} refused a valid signature`);
          assert.equal(await key.verify(Buffer.from(`${data}!`), sig, 'sha256'), false);
          const bad = Buffer.from(sig);
          bad[bad.length - 5] = bad[bad.length - 5]! ^ 0x01;
          assert.equal(await key.verify(data, bad, 'sha256'), false);
        }
      });

      it('signs on the token; the exported public key (PEM) verifies it with node:crypto', async () => {
        const signer = await Pkcs11Signer.open(`${token.uri};object=${label}`, { pin: token.pin });
        const data = Buffer.from('signed on the token');
        const sig = await signer.sign(data, 'sha256');
        const exported = signet(['keys', 'export', '--key', `${token.uri};object=${label};type=public`]);
        assert.equal(exported.code, 0, exported.stderr);
        assert.equal(cryptoVerify(alg.name === 'ed25519' ? null : 'sha256', data, createPublicKey(exported.stdout), sig), true);
        assert.equal(signer.fingerprint, node.fingerprint);
        assert.equal(await onToken.verify(data, sig, 'sha256'), true);
      });

      // OpenSC 0.23 (Debian 12) cannot read P-384 public keys ("cannot create EVP_PKEY", also for keys it made
      // itself); for P-384 the signature test above and the import test below are the independent checks.
      (alg.gen === 'ec-p384' ? it.skip : it)('exports the public key byte-identical to pkcs11-tool', () => {
        const out = token.tool(['--read-object', '--type', 'pubkey', '--label', label]);
        // pkcs11-tool writes DER SubjectPublicKeyInfo, except for EdDSA keys, which it writes as PEM.
        const openssl =
          out.subarray(0, 10).toString() === '-----BEGIN'
            ? out.toString()
            : spawnSync('openssl', ['pkey', '-pubin', '-inform', 'DER', '-outform', 'PEM'], { input: out, encoding: 'utf8' }).stdout;
        const ours = signet(['keys', 'export', '--key', `${token.uri};object=${label};type=public`]).stdout;
        assert.ok(openssl.startsWith('-----BEGIN PUBLIC KEY-----'));
        assert.equal(ours, openssl);
      });
    });
  }

  describe('many verifications at once', () => {
    it('keeps hundreds in flight in both modes without a crash, and all agree', async () => {
      const token = createToken('load');
      assert.equal(signet(['keys', 'generate', '--key', token.uri, '--label', 'busy'], { SIGNET_PKCS11_PIN: token.pin }).code, 0);
      const uri = `${token.uri};object=busy;type=public`;
      const node = await provider.load('busy', { pkcs11: uri });
      const onToken = await provider.load('busy', { pkcs11: uri, verifyOn: 'token' });
      const signer = await Pkcs11Signer.open(`${token.uri};object=busy`, { pin: token.pin });
      const data = Buffer.from('concurrent');
      const sig = await signer.sign(data, 'sha256');
      const results = await Promise.all(
        Array.from({ length: 400 }, (_, i) => (i % 2 ? onToken : node).verify(i % 3 ? data : Buffer.from('other'), sig, 'sha256')),
      );
      results.forEach((ok, i) => assert.equal(ok, i % 3 !== 0, `verification ${i}`));
    });
  });

  describe('failures name the key and never the PIN', () => {
    let token: TestToken;
    before(() => {
      token = createToken('fail');
      token.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'dup', '--id', '01']);
      token.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'dup', '--id', '02']);
    });

    it('a URI that matches no object', async () => {
      await assert.rejects(
        provider.load('missing', { pkcs11: `${token.uri};object=nope` }),
        (e: Error & { code?: string }) => e.code === 'KEY_NOT_FOUND' && e.message.includes('key "missing"') && e.message.includes('object=nope'),
      );
    });
    it('a URI with a wrong token label', async () => {
      await assert.rejects(
        provider.load('lost', { pkcs11: 'pkcs11:token=no-such-token;object=x' }),
        (e: Error & { code?: string }) => e.code === 'KEY_NOT_FOUND' && e.message.includes('token=no-such-token'),
      );
    });
    it('a URI that matches two objects', async () => {
      await assert.rejects(
        provider.load('twins', { pkcs11: `${token.uri};object=dup;type=public` }),
        (e: Error & { code?: string }) => e.code === 'KEY_AMBIGUOUS' && e.message.includes('key "twins"'),
      );
    });
    it('a wrong PIN, which is then not retried', async () => {
      const uri = `${token.uri};object=dup;id=%01?pin-value=000000`;
      const isPinError = (e: Error & { code?: string }) => e.code === 'PIN_INCORRECT' && !e.message.includes('000000');
      await assert.rejects(Pkcs11Signer.open(uri), isPinError);
      await assert.rejects(Pkcs11Signer.open(uri), (e: Error & { code?: string }) => isPinError(e) && /not trying it again/.test(e.message));
      // The right PIN still works: the token was not locked by a retry loop.
      const ok = await Pkcs11Signer.open(`${token.uri};object=dup;id=%01`, { pin: token.pin });
      assert.equal(ok.algorithm, 'ecdsa-p256');
    });
    it('signet keys with a wrong PIN: one line, non-zero exit, no PIN', () => {
      const r = signet(['keys', 'generate', '--key', token.uri, '--label', 'x'], { SIGNET_PKCS11_PIN: '55555555' });
      assert.notEqual(r.code, 0);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.match(r.stderr, /PIN_INCORRECT/);
      assert.ok(!r.stderr.includes('55555555'));
    });
    it('signet keys with bad usage: one line, exit 2', () => {
      const r = signet(['keys', 'generate', '--key', token.uri, '--label', 'x', '--algorithm', 'dsa']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--algorithm must be one of/);
    });
  });

  describe('import and list', () => {
    it('imports a PEM public key as a public-key object that list shows with its URI', async () => {
      const token = createToken('anchors');
      const { publicKey } = await import('node:crypto').then((c) => c.generateKeyPairSync('ec', { namedCurve: 'P-384' }));
      const pem = join(work, 'anchor.pem');
      writeFileSync(pem, publicKey.export({ type: 'spki', format: 'pem' }));
      const imp = signet(['keys', 'import', '--key', token.uri, '--file', pem, '--label', 'release-2026', '--id', 'a1b2'], { SIGNET_PKCS11_PIN: token.pin });
      assert.equal(imp.code, 0, imp.stderr);
      const list = signet(['keys', 'list', '--key', token.uri, '--output', 'json']);
      const objects = JSON.parse(list.stdout) as Array<Record<string, string>>;
      assert.deepEqual(
        objects.map((o) => [o['label'], o['id'], o['type'], o['algorithm']]),
        [['release-2026', 'a1b2', 'public', 'ecdsa-p384']],
      );
      const key = await provider.load('anchor', { pkcs11: objects[0]!['uri']! });
      assert.equal(key.fingerprint, objects[0]!['fingerprint']);
      const exported = signet(['keys', 'export', '--key', objects[0]!['uri']!]);
      assert.equal(exported.stdout, publicKey.export({ type: 'spki', format: 'pem' }).toString());
    });
  });

  describe('a key or token that goes away', () => {
    it('is noticed at the next refresh and recovered at a later one', async () => {
      const token = createToken('vanish');
      token.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'anchor', '--id', '07']);
      const der = token.tool(['--read-object', '--type', 'pubkey', '--label', 'anchor']);
      const pemPath = join(work, 'vanish.pem');
      writeFileSync(pemPath, createPublicKey({ key: der, format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }));
      const ring = new KeyRing([new Pkcs11KeyProvider({ defaultModule: SOFTHSM_MODULE })]);
      await ring.load({ anchor: { pkcs11: `${token.uri};object=anchor;type=public` } });
      assert.ok(ring.get('anchor').key);

      token.tool(['--delete-object', '--type', 'pubkey', '--label', 'anchor']);
      await ring.refresh();
      const gone = ring.get('anchor');
      assert.equal(gone.error?.code, 'KEY_NOT_FOUND');
      assert.match(ring.status()[0]!.lastError!, /key "anchor"/);

      assert.equal(
        signet(['keys', 'import', '--key', token.uri, '--file', pemPath, '--label', 'anchor', '--id', '07'], { SIGNET_PKCS11_PIN: token.pin }).code,
        0,
      );
      await ring.refresh();
      assert.ok(ring.get('anchor').key, 'the key is back');

      token.delete();
      await ring.refresh();
      assert.equal(ring.get('anchor').error?.code, 'KEY_NOT_FOUND');

      // The token comes back (same label), with the anchor imported again.
      const again = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', token.label, '--so-pin', token.soPin, '--pin', token.pin], {
        env: { ...process.env, SOFTHSM2_CONF: softhsmConf() },
      });
      assert.equal(again.status, 0);
      assert.equal(signet(['keys', 'import', '--key', token.uri, '--file', pemPath, '--label', 'anchor'], { SIGNET_PKCS11_PIN: token.pin }).code, 0);
      await ring.refresh();
      assert.ok(ring.get('anchor').key, 'recovered without a restart');
      await ring.close();
    });
  });

  describe('a missing key does not disturb the others', () => {
    it('refreshes that find one key missing leave on-token verifications of another key on the same module untouched', async () => {
      const token = createToken('neighbours');
      token.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'present', '--id', '01']);
      const ring = new KeyRing([new Pkcs11KeyProvider({ defaultModule: SOFTHSM_MODULE })]);
      await ring.load({
        present: { pkcs11: `${token.uri};object=present;type=public`, verifyOn: 'token' },
        missing: { pkcs11: `${token.uri};object=never-created;type=public` },
      });
      assert.equal(ring.get('missing').error?.code, 'KEY_NOT_FOUND');
      const signer = await Pkcs11Signer.open(`${token.uri};object=present`, { pin: token.pin });
      const data = Buffer.from('in flight');
      const sig = await signer.sign(data, 'sha256');
      const key = ring.get('present').key!;
      const verifications = Promise.all(Array.from({ length: 300 }, () => key.verify(data, sig, 'sha256')));
      await Promise.all([ring.refresh(), ring.refresh(), ring.refresh()]);
      assert.deepEqual([...new Set(await verifications)], [true]);
      assert.ok(ring.get('present').key);
      await ring.close();
    });
  });
});
