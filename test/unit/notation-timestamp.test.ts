/**
 * Notation RFC 3161 countersignatures against the Notary Project specification's "Validate Trusted
 * Timestamp": the signing chain must cover the timestamp's whole time range (genTime ± accuracy), the
 * message imprint is over the signature value with SHA-2, the authority's certificate has the timeStamping
 * extended key usage alone and critical, its chain leads to an authority the key trusts (a
 * `tsaCertificates` chain or a trusted root's `timestampAuthorities`), and no byte of the token can change.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, encode, Tag } from 'cbor2';
import { verifyNotationSignature, type NotationVerifyOptions, type NotationVerifyResult } from '../../src/formats/notation/index.js';
import { loadTsaTrustedRoot } from '../../src/keys/timestamp-authorities.js';
import type { TimestampAuthority } from '../../src/keys/types.js';
import { KEY_FILE_FIELDS } from '../../src/policy/key-files.js';
import { policySchemaText, validatePolicyFile } from '../../src/policy/schema.js';
import { createNotationCa, createTestTsa, resignToken, signNotationCose, signNotationJws, type NotationLeaf } from '../helpers/notation-signer.js';
import { createFakeSigstore } from '../helpers/sigstore-fake.js';

const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'cd'.repeat(32)}`, size: 4321 };
const JOSE = 'application/jose+json';
const COSE = 'application/cose';
const HOUR = 3_600_000;
const YEAR_LATER = new Date(Date.now() + 365 * 86_400_000);

function assertValid(r: NotationVerifyResult): void {
  assert.equal(r.valid, true, r.valid ? '' : `${r.code}: ${r.reason}`);
}
function assertRefused(r: NotationVerifyResult, code: string, reason?: RegExp): void {
  assert.equal(r.valid, false, 'verified but should not have');
  if (r.valid) return;
  assert.equal(r.code, code, r.reason);
  if (reason) assert.match(r.reason, reason);
}

describe('Notation RFC 3161 countersignatures (Notary Project "Validate Trusted Timestamp")', function () {
  this.timeout(60_000);
  const fake = createFakeSigstore();
  const ca = createNotationCa();
  const tsa = createTestTsa(fake);
  const fromFile: TimestampAuthority[] = [{ certChain: tsa.chain, source: 'tsaCertificates test' }];
  let fromRoot: TimestampAuthority[];
  // Valid for an hour either side of now: the timestamps (made now) fall inside; a year later it has expired.
  const leaf = ca.leaf('current', new Date(Date.now() - HOUR), new Date(Date.now() + HOUR));
  before(async () => {
    fromRoot = await loadTsaTrustedRoot('k', fake.trustedRootPath);
  });

  const formats: Array<[string, typeof signNotationJws, string]> = [
    ['JWS', signNotationJws, JOSE],
    ['COSE', signNotationCose, COSE],
  ];
  const envelope = (sign: typeof signNotationJws, l: NotationLeaf, stamp?: (sig: Buffer) => Buffer, signingTime = new Date()) =>
    sign({ leaf: l, chain: [ca.rootDer], target, signingTime, ...(stamp ? { timestamp: stamp } : {}) });
  const verify = (env: Buffer, mediaType: string, authorities?: readonly TimestampAuthority[], now = YEAR_LATER) => {
    const o: NotationVerifyOptions = {
      untrustedEnvelope: env,
      envelopeMediaType: mediaType,
      expected: target,
      trustStore: [new X509Certificate(ca.rootPem)],
      now,
    };
    return verifyNotationSignature(authorities ? { ...o, timestampAuthorities: authorities } : o);
  };

  for (const [name, sign, mediaType] of formats) {
    describe(name, () => {
      it('an expired certificate verifies when a trusted timestamp falls inside its validity (tsaCertificates or a trusted root)', async () => {
        const env = envelope(sign, leaf, (s) => tsa.stamp(s));
        assertValid(await verify(env, mediaType, fromFile));
        assertValid(await verify(env, mediaType, fromRoot));
      });
      it('without authorities to check it with, the timestamp is not trusted: the expired certificate is refused', async () => {
        const env = envelope(sign, leaf, (s) => tsa.stamp(s));
        assertRefused(await verify(env, mediaType), 'CERTIFICATE_INVALID', /verification time/);
        assertRefused(await verify(envelope(sign, leaf), mediaType, fromFile), 'CERTIFICATE_INVALID', /verification time/);
      });
      it('a timestamp outside the validity is refused: after expiry, before the start', async () => {
        const expired = ca.leaf(`expired-${name}`, new Date(Date.now() - 3 * HOUR), new Date(Date.now() - 2 * HOUR));
        const late = envelope(sign, expired, (s) => tsa.stamp(s), new Date(Date.now() - 2.5 * HOUR));
        assertRefused(await verify(late, mediaType, fromFile), 'CERTIFICATE_INVALID', /not valid at the RFC 3161 timestamp/);
        const future = ca.leaf(`future-${name}`, new Date(Date.now() + HOUR), new Date(Date.now() + 2 * HOUR));
        const early = envelope(sign, future, (s) => tsa.stamp(s), new Date(Date.now() + 1.5 * HOUR));
        assertRefused(await verify(early, mediaType, fromRoot), 'CERTIFICATE_INVALID', /not valid at the RFC 3161 timestamp/);
      });
      it('a timestamp by an authority the key does not trust is refused', async () => {
        const other = createTestTsa(createFakeSigstore());
        const env = envelope(sign, leaf, (s) => other.stamp(s));
        assertRefused(await verify(env, mediaType, fromFile), 'SIGNATURE_INVALID', /does not verify with the timestamp authorities/);
        assertRefused(await verify(env, mediaType, fromRoot), 'SIGNATURE_INVALID', /does not verify with the timestamp authorities/);
      });
      it('a timestamp over other bytes (not the signature value) is refused', async () => {
        const env = envelope(sign, leaf, () => tsa.stamp(Buffer.from('the payload, not the signature')));
        assertRefused(await verify(env, mediaType, fromFile), 'SIGNATURE_INVALID');
      });
    });
  }

  it('the whole accuracy range must be inside the validity (RFC 3161 2.4.2; genTime ± accuracy)', async () => {
    const young = ca.leaf('young', new Date(Date.now() - 10 * 60_000), new Date(Date.now() + HOUR));
    const sloppy = createTestTsa(fake, 'tsa', { accuracy: 'secs:3600' });
    const precise = createTestTsa(fake, 'tsa', { accuracy: 'secs:1' });
    assertRefused(
      await verify(
        envelope(signNotationJws, young, (s) => sloppy.stamp(s)),
        JOSE,
        fromFile,
      ),
      'CERTIFICATE_INVALID',
      /as early as/,
    );
    assertValid(
      await verify(
        envelope(signNotationJws, young, (s) => precise.stamp(s)),
        JOSE,
        fromFile,
      ),
    );
    // The ETSI baseline policy without an accuracy field means one second.
    const baseline = createTestTsa(fake, 'tsa', { policy: '0.4.0.2023.1.1' });
    assertValid(
      await verify(
        envelope(signNotationJws, young, (s) => baseline.stamp(s)),
        JOSE,
        fromFile,
      ),
    );
  });

  it('the message imprint: SHA-256, SHA-384 and SHA-512 over the signature value; SHA-1 refused', async () => {
    for (const digest of ['sha256', 'sha384', 'sha512'] as const)
      assertValid(
        await verify(
          envelope(signNotationJws, leaf, (s) => tsa.stamp(s, digest)),
          JOSE,
          fromFile,
        ),
      );
    assertRefused(
      await verify(
        envelope(signNotationJws, leaf, (s) => tsa.stamp(s, 'sha1')),
        JOSE,
        fromFile,
      ),
      'SIGNATURE_INVALID',
      /SHA-256, SHA-384 and SHA-512/,
    );
  });

  it("the authority's certificate: extended key usage timeStamping alone, marked critical (RFC 3161 2.3)", async () => {
    for (const [name, eku] of [
      ['tsa-noncritical', 'timeStamping'],
      ['tsa-two-purposes', 'critical,timeStamping,codeSigning'],
      ['tsa-codesigning', 'critical,codeSigning'],
    ] as const) {
      const odd = createTestTsa(fake, name, { eku });
      const authorities = [{ certChain: odd.chain, source: name }];
      assertRefused(
        await verify(
          envelope(signNotationJws, leaf, (s) => odd.stamp(s)),
          JOSE,
          authorities,
        ),
        'SIGNATURE_INVALID',
        /timeStamping alone, marked critical/,
      );
    }
    const proper = createTestTsa(fake, 'tsa-proper', { eku: 'critical,timeStamping' });
    assertValid(
      await verify(
        envelope(signNotationJws, leaf, (s) => proper.stamp(s)),
        JOSE,
        [{ certChain: proper.chain, source: 'proper' }],
      ),
    );
  });

  it("an authority given by its root only (a Notation tsa trust store): the token's certificates lead to it", async () => {
    const roots = [{ certChain: [tsa.chain[1]!], source: 'tsa roots' }];
    assertValid(
      await verify(
        envelope(signNotationJws, leaf, (s) => tsa.stamp(s)),
        JOSE,
        roots,
      ),
    );
    const embeddingRoot = createTestTsa(fake, 'tsa', { embedRoot: true });
    assertValid(
      await verify(
        envelope(signNotationCose, leaf, (s) => embeddingRoot.stamp(s)),
        COSE,
        roots,
      ),
    );
    // Another authority's token (its own certificates embedded) leads to another root: refused.
    const other = createTestTsa(createFakeSigstore());
    assertRefused(
      await verify(
        envelope(signNotationJws, leaf, (s) => other.stamp(s)),
        JOSE,
        roots,
      ),
      'SIGNATURE_INVALID',
      /does not verify with the timestamp authorities/,
    );
    assertRefused(
      await verify(
        envelope(signNotationJws, leaf, (s) => tsa.stamp(s)),
        JOSE,
        [{ certChain: [other.chain[1]!], source: 'other roots' }],
      ),
      'SIGNATURE_INVALID',
      /does not verify with the timestamp authorities/,
    );
  });

  it('an RSA authority (2048 bits, SHA-256) is accepted; one with a 1024-bit key is refused', async () => {
    const rsa = createTestTsa(fake, 'tsa-rsa', { rsaBits: 2048 });
    assertValid(
      await verify(
        envelope(signNotationJws, leaf, (s) => rsa.stamp(s)),
        JOSE,
        [{ certChain: rsa.chain, source: 'rsa' }],
      ),
    );
    const weak = createTestTsa(fake, 'tsa-rsa-weak', { rsaBits: 1024 });
    assertRefused(
      await verify(
        envelope(signNotationJws, leaf, (s) => weak.stamp(s)),
        JOSE,
        [{ certChain: weak.chain, source: 'weak' }],
      ),
      'CERTIFICATE_INVALID',
      /RSA 1024-bit key/,
    );
  });

  it('the signing-certificate attribute: v2 (SHA-256) and v1 (SHA-1) name the certificate that signed; naming another is refused', async () => {
    const v1 = createTestTsa(fake, 'tsa', { essCertIdAlg: 'sha1' });
    assertValid(
      await verify(
        envelope(signNotationJws, leaf, (s) => v1.stamp(s)),
        JOSE,
        fromFile,
      ),
    );
    // Signed (validly) by a second authority whose signing-certificate-v2 attribute names the first one's certificate.
    const second = createTestTsa(fake, 'tsa-second', { eku: 'critical,timeStamping' });
    const authorities = [{ certChain: second.chain, source: 'second' }];
    const honest = envelope(signNotationJws, leaf, (s) => resignToken(tsa.stamp(s), second.signer.der, second.signer.key));
    assertValid(await verify(honest, JOSE, authorities));
    const naming = envelope(signNotationJws, leaf, (s) => resignToken(tsa.stamp(s), second.signer.der, second.signer.key, tsa.signer.der));
    assertRefused(await verify(naming, JOSE, authorities), 'SIGNATURE_INVALID', /signing-certificate attribute does not name/);
  });

  it('a signature without a timestamp verifies while its chain is valid now', async () => {
    assertValid(await verify(envelope(signNotationJws, leaf), JOSE, fromFile, new Date()));
  });

  it('every changed byte of the countersignature is refused (JWS and COSE)', async () => {
    for (const [, sign, mediaType] of formats) {
      let original: Buffer | undefined;
      const env = envelope(sign, leaf, (s) => (original = tsa.stamp(s)));
      assertValid(await verify(withToken(env, mediaType, original!), mediaType, fromFile));
      // Every byte of the JWS one; every third of the COSE one (the same token checks, carried differently).
      for (let i = 0; i < original!.length; i += mediaType === JOSE ? 1 : 3) {
        const changed = Buffer.from(original!);
        changed[i] = changed[i]! ^ 0x01;
        const r = await verify(withToken(env, mediaType, changed), mediaType, fromFile);
        assert.equal(r.valid, false, `${mediaType}: byte ${i} of the countersignature changed and it still verified`);
      }
    }
  });

  it('tsaTrustedRoot: a trusted root without timestamp authorities, or one without a validity start, is refused', async () => {
    const dir = fake.dir;
    writeFileSync(join(dir, 'no-tsa.json'), JSON.stringify({ ...readRoot(fake.trustedRootPath), timestampAuthorities: [] }));
    await assert.rejects(loadTsaTrustedRoot('k', join(dir, 'no-tsa.json')), /names no timestamp authority/);
    const root = readRoot(fake.trustedRootPath) as { timestampAuthorities: Array<Record<string, unknown>> };
    root.timestampAuthorities = root.timestampAuthorities.map((t) => ({ ...t, validFor: {} }));
    writeFileSync(join(dir, 'no-start.json'), JSON.stringify(root));
    await assert.rejects(loadTsaTrustedRoot('k', join(dir, 'no-start.json')), /no validity start/);
    writeFileSync(join(dir, 'not-json.json'), '{');
    await assert.rejects(loadTsaTrustedRoot('k', join(dir, 'not-json.json')), /is not JSON/);
  });

  it('the policy schema names every key field that names a file (the list policy check reads), tsaTrustedRoot included', () => {
    const schema = JSON.parse(policySchemaText()) as { definitions: { key: { properties: Record<string, { type?: string }> } } };
    for (const field of KEY_FILE_FIELDS) assert.equal(schema.definitions.key.properties[field]?.type, 'string', field);
    assert.ok(KEY_FILE_FIELDS.includes('tsaTrustedRoot'));
  });

  it('the policy schema: tsaTrustedRoot on a certificates key only', () => {
    assert.deepEqual(validatePolicyFile({ apiVersion: 'signet/v1', keys: { a: { certificates: '/a.pem', tsaTrustedRoot: '/root.json' } } }), []);
    const problems = validatePolicyFile({ apiVersion: 'signet/v1', keys: { a: { file: '/a.pub', tsaTrustedRoot: '/root.json' } } });
    assert.ok(problems.length > 0);
  });
});

/** The same envelope with another countersignature (the signature itself unchanged: ECDSA signs anew each time). */
function withToken(env: Buffer, mediaType: string, token: Buffer): Buffer {
  if (mediaType === JOSE) {
    const doc = JSON.parse(env.toString()) as { header: Record<string, unknown> };
    doc.header['io.cncf.notary.timestampSignature'] = token.toString('base64');
    return Buffer.from(JSON.stringify(doc));
  }
  // cbor2 encodes a Node Buffer as an object, not a byte string: decode from plain bytes, which stay plain.
  const sign1 = decode(new Uint8Array(env), { preferMap: true }) as Tag;
  (sign1.contents as [unknown, Map<unknown, unknown>])[1].set('io.cncf.notary.timestampSignature', new Uint8Array(token));
  return Buffer.from(encode(sign1));
}

function readRoot(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}
