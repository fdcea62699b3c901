import assert from 'node:assert/strict';
import { ASN1Obj } from '@sigstore/core';
import { createFakeSigstore } from '../helpers/sigstore-fake.js';
import { createPrivateKey, sign as cryptoSign, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, encode, Tag } from 'cbor2';
import {
  dnMatches,
  parseTrustedIdentity,
  verifyNotationSignature,
  type NotationVerifyOptions,
  type NotationVerifyResult,
} from '../../src/formats/notation/index.js';
import { ROOT } from '../helpers/daemon.js';

const FIX = join(ROOT, 'test/fixtures/notation');
const PKI = join(FIX, 'test-pki');
const cert = (file: string) => new X509Certificate(readFileSync(file));
const alpineRoot = cert(join(FIX, 'alpine-trust-root.pem'));
const otherRoot = cert(join(PKI, 'other-root.pem'));
const jws = readFileSync(join(FIX, 'jws_signature.sig'));
const cose = readFileSync(join(FIX, 'cose_signature.sig'));
const alpineIndex = JSON.parse(readFileSync(join(FIX, 'alpine-oci-layout/index.json'), 'utf8')) as {
  manifests: Array<{ mediaType: string; digest: string; size: number }>;
};
const alpine = { mediaType: alpineIndex.manifests[0]!.mediaType, digest: alpineIndex.manifests[0]!.digest, size: alpineIndex.manifests[0]!.size };
const JOSE = 'application/jose+json';
const COSE = 'application/cose';

function assertValid(r: NotationVerifyResult): asserts r is Extract<NotationVerifyResult, { valid: true }> {
  assert.equal(r.valid, true, r.valid ? '' : `${r.code}: ${r.reason}`);
}
function assertRefused(r: NotationVerifyResult, code: string, reason?: RegExp): void {
  assert.equal(r.valid, false, 'verified but should not have');
  if (r.valid) return;
  assert.equal(r.code, code, r.reason);
  if (reason) assert.match(r.reason, reason);
}

const base = (envelope: Buffer, mediaType: string): NotationVerifyOptions => ({
  untrustedEnvelope: envelope,
  envelopeMediaType: mediaType,
  expected: alpine,
  trustStore: [alpineRoot],
});
const FIXTURES: Array<[string, Buffer, string]> = [
  ['JWS', jws, JOSE],
  ['COSE', cose, COSE],
];

/** Indices to change in a region: all of a small one; every Nth plus the first and last few of a large one. */
function sampleOffsets(start: number, length: number, max = 200): number[] {
  const step = Math.max(1, Math.ceil(length / max));
  const out = new Set<number>();
  for (let i = 0; i < length; i += step) out.add(start + i);
  for (let i = 0; i < Math.min(4, length); i++) {
    out.add(start + i);
    out.add(start + length - 1 - i);
  }
  return [...out].sort((a, b) => a - b);
}

describe('Notation signatures made by the real notation signer (alpine fixtures)', () => {
  for (const [name, envelope, mediaType] of FIXTURES) {
    describe(name, () => {
      it('verifies against the alpine manifest descriptor with alpine-trust-root.pem trusted', async () => {
        const r = await verifyNotationSignature({ ...base(envelope, mediaType), trustedIdentities: ['x509.subject: C=US, ST=WA, O=Notary'] });
        assertValid(r);
        assert.equal(r.signingScheme, 'notary.x509');
        assert.equal(r.signer.subject, 'C=US, ST=WA, L=Seattle, O=Notary, CN=alpine');
        assert.match(r.signer.fingerprint, /^sha256:[0-9a-f]{64}$/);
        assert.equal(r.trustAnchor.fingerprint, r.signer.fingerprint);
        assert.equal(r.signingAgent, 'Notation/1.0.0');
        assert.ok(r.signingTime.getUTCFullYear() === 2023);
      });
      it('verifies with "*" and with no identity rule', async () => {
        assertValid(await verifyNotationSignature({ ...base(envelope, mediaType), trustedIdentities: ['*'] }));
        assertValid(await verifyNotationSignature(base(envelope, mediaType)));
      });
      it('is refused with an empty trust store or another one', async () => {
        assertRefused(await verifyNotationSignature({ ...base(envelope, mediaType), trustStore: [] }), 'CERTIFICATE_UNTRUSTED');
        assertRefused(
          await verifyNotationSignature({ ...base(envelope, mediaType), trustStore: [otherRoot] }),
          'CERTIFICATE_UNTRUSTED',
          /not in \(or issued by\) the trust store/,
        );
      });
      it('is refused for another digest, media type or size', async () => {
        assertRefused(
          await verifyNotationSignature({ ...base(envelope, mediaType), expected: { ...alpine, digest: `sha256:${'0'.repeat(64)}` } }),
          'DIGEST_MISMATCH',
        );
        assertRefused(
          await verifyNotationSignature({ ...base(envelope, mediaType), expected: { ...alpine, mediaType: 'application/vnd.oci.image.index.v1+json' } }),
          'DIGEST_MISMATCH',
        );
        assertRefused(await verifyNotationSignature({ ...base(envelope, mediaType), expected: { ...alpine, size: 482 } }), 'DIGEST_MISMATCH');
      });
      it('is refused for a trusted identity the certificate does not match', async () => {
        for (const identity of [
          'x509.subject: C=US, ST=WA, O=Wabbit',
          'x509.subject: C=US, ST=WA, O=Notary, CN=other',
          'x509.subject: C=US, ST=OR, O=Notary',
        ]) {
          assertRefused(await verifyNotationSignature({ ...base(envelope, mediaType), trustedIdentities: [identity] }), 'IDENTITY_MISMATCH');
        }
        assertRefused(await verifyNotationSignature({ ...base(envelope, mediaType), trustedIdentities: [] }), 'IDENTITY_MISMATCH');
        assertValid(
          await verifyNotationSignature({
            ...base(envelope, mediaType),
            trustedIdentities: ['x509.subject: C=US, ST=WA, O=Wabbit', 'x509.subject: CN=alpine, O=Notary, L=Seattle, ST=WA, C=US'],
          }),
        );
      });
      it('is refused when the policy requires the signingAuthority scheme', async () => {
        assertRefused(
          await verifyNotationSignature({ ...base(envelope, mediaType), signingScheme: 'notary.x509.signingAuthority' }),
          'SIGNATURE_INVALID',
          /signing scheme/,
        );
      });
      it('notary.x509 without a timestamp: the chain must be valid now (refused once the certificate has expired)', async () => {
        assertValid(await verifyNotationSignature({ ...base(envelope, mediaType), now: new Date('2123-08-29T13:49:00Z') }));
        assertRefused(
          await verifyNotationSignature({ ...base(envelope, mediaType), now: new Date('2123-08-29T13:51:00Z') }),
          'CERTIFICATE_INVALID',
          /not valid at the verification time/,
        );
      });
      it('is refused under the wrong envelope media type', async () => {
        assertRefused(await verifyNotationSignature(base(envelope, mediaType === JOSE ? COSE : JOSE)), 'SIGNATURE_MALFORMED');
        assertRefused(await verifyNotationSignature(base(envelope, 'application/json')), 'SIGNATURE_MALFORMED', /media type/);
      });
    });
  }

  describe('every single changed byte of payload, signature or certificate is refused', () => {
    type Jws = { payload: string; protected: string; header: { x5c: string[] }; signature: string };
    const doc = JSON.parse(jws.toString('utf8')) as Jws;
    const regions: Array<[string, () => Buffer, (b: Buffer) => Buffer]> = [
      ['protected header', () => Buffer.from(doc.protected, 'base64url'), (b) => Buffer.from(JSON.stringify({ ...doc, protected: b.toString('base64url') }))],
      ['payload', () => Buffer.from(doc.payload, 'base64url'), (b) => Buffer.from(JSON.stringify({ ...doc, payload: b.toString('base64url') }))],
      ['signature', () => Buffer.from(doc.signature, 'base64url'), (b) => Buffer.from(JSON.stringify({ ...doc, signature: b.toString('base64url') }))],
      [
        'certificate',
        () => Buffer.from(doc.header.x5c[0]!, 'base64'),
        (b) => Buffer.from(JSON.stringify({ ...doc, header: { ...doc.header, x5c: [b.toString('base64')] } })),
      ],
    ];
    it('JWS: the unchanged re-serialised envelope still verifies (the loop below tests the change, not the re-encoding)', async () => {
      assertValid(await verifyNotationSignature(base(Buffer.from(JSON.stringify(doc)), JOSE)));
    });
    for (const [region, bytes, rebuild] of regions) {
      it(`JWS: ${region}`, async () => {
        const original = bytes();
        for (const i of sampleOffsets(0, original.length)) {
          const changed = Buffer.from(original);
          changed[i] = changed[i]! ^ 0x01;
          const r = await verifyNotationSignature(base(rebuild(changed), JOSE));
          assert.equal(r.valid, false, `${region} byte ${i} changed and it still verified`);
        }
      });
    }

    const sign1 = (decode(cose, { preferMap: true }) as Tag).contents as [Uint8Array, Map<unknown, unknown>, Uint8Array, Uint8Array];
    const certDer = (sign1[1].get(33) as Uint8Array[])[0]!;
    const locate = (part: Uint8Array): [number, number] => {
      const at = cose.indexOf(Buffer.from(part));
      assert.ok(at > 0 && cose.indexOf(Buffer.from(part), at + 1) === -1);
      return [at, part.length];
    };
    const coseRegions: Array<[string, [number, number]]> = [
      ['protected header', locate(sign1[0])],
      ['payload', locate(sign1[2])],
      ['signature', locate(sign1[3])],
      ['certificate', locate(certDer)],
    ];
    for (const [region, [start, length]] of coseRegions) {
      it(`COSE: ${region} (bytes changed in place in the CBOR)`, async () => {
        for (const i of sampleOffsets(start, length)) {
          const changed = Buffer.from(cose);
          changed[i] = changed[i]! ^ 0x01;
          const r = await verifyNotationSignature(base(changed, COSE));
          assert.equal(r.valid, false, `${region} byte ${i - start} changed and it still verified`);
        }
      });
    }
  });
});

// ------------------------------------------------------------------ envelopes signed in the test

const leafKey = createPrivateKey(readFileSync(join(PKI, 'leaf.pkcs8.pem')));
const testRoot = cert(join(PKI, 'root.pem'));
const testLeaf = cert(join(PKI, 'leaf.pem'));
const tlsLeaf = cert(join(PKI, 'leaf-tls.pem'));
const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'ab'.repeat(32)}`, size: 1234 };
const PAYLOAD = Buffer.from(JSON.stringify({ targetArtifact: target }));
const signingTime = '2026-11-25T12:00:00Z';

interface Build {
  protectedHeader?: Record<string, unknown>;
  unprotected?: Record<string, unknown>;
  payload?: Buffer;
  chain?: X509Certificate[];
  key?: KeyObject;
}

function buildJws(b: Build = {}): Buffer {
  const hdr = b.protectedHeader ?? {
    alg: 'ES256',
    crit: ['io.cncf.notary.signingScheme'],
    cty: 'application/vnd.cncf.notary.payload.v1+json',
    'io.cncf.notary.signingScheme': 'notary.x509',
    'io.cncf.notary.signingTime': signingTime,
  };
  const p = Buffer.from(JSON.stringify(hdr)).toString('base64url');
  const payload = (b.payload ?? PAYLOAD).toString('base64url');
  const sig = cryptoSign('sha256', Buffer.from(`${p}.${payload}`), { key: b.key ?? leafKey, dsaEncoding: 'ieee-p1363' });
  const header = b.unprotected ?? { x5c: (b.chain ?? [testLeaf, testRoot]).map((c) => c.raw.toString('base64')) };
  return Buffer.from(JSON.stringify({ payload, protected: p, header, signature: sig.toString('base64url') }));
}

function buildCose(b: { protectedMap?: Map<unknown, unknown>; chain?: X509Certificate[] } = {}): Buffer {
  const hdr =
    b.protectedMap ??
    new Map<unknown, unknown>([
      [1, -7],
      [2, ['io.cncf.notary.signingScheme']],
      [3, 'application/vnd.cncf.notary.payload.v1+json'],
      ['io.cncf.notary.signingScheme', 'notary.x509'],
      ['io.cncf.notary.signingTime', new Tag(1, Math.floor(Date.parse(signingTime) / 1000))],
    ]);
  const protectedBytes = encode(hdr);
  const payload = new Uint8Array(PAYLOAD);
  const toSign = encode(['Signature1', protectedBytes, new Uint8Array(0), payload]);
  const sig = cryptoSign('sha256', toSign, { key: leafKey, dsaEncoding: 'ieee-p1363' });
  const unprotected = new Map<unknown, unknown>([[33, (b.chain ?? [testLeaf, testRoot]).map((c) => new Uint8Array(c.raw))]]);
  return Buffer.from(encode(new Tag(18, [protectedBytes, unprotected, payload, new Uint8Array(sig)])));
}

const opts = (envelope: Buffer, mediaType = JOSE, extra: Partial<NotationVerifyOptions> = {}): NotationVerifyOptions => ({
  untrustedEnvelope: envelope,
  envelopeMediaType: mediaType,
  expected: target,
  trustStore: [testRoot],
  now: new Date('2027-01-01T00:00:00Z'),
  ...extra,
});
const hdr = (extra: Record<string, unknown>, crit: string[] = ['io.cncf.notary.signingScheme']) => ({
  alg: 'ES256',
  crit,
  cty: 'application/vnd.cncf.notary.payload.v1+json',
  'io.cncf.notary.signingScheme': 'notary.x509',
  'io.cncf.notary.signingTime': signingTime,
  ...extra,
});

describe('Notation envelopes signed here (two-level chain, ECDSA P-256)', () => {
  it('JWS and COSE ES256 (raw r||s) with a leaf → root chain verify; the identity matches order-insensitively', async () => {
    const identities = ['x509.subject: O=Signet Test, OU=Release, ST=WA, C=US'];
    const j = await verifyNotationSignature(opts(buildJws(), JOSE, { trustedIdentities: identities }));
    assertValid(j);
    assert.equal(j.trustAnchor.subject, 'C=US, ST=WA, O=Signet Test, CN=Signet Test Root');
    assertValid(await verifyNotationSignature(opts(buildCose(), COSE, { trustedIdentities: identities })));
  });
  it('a chain without its root verifies when the trust store holds the issuer', async () => {
    assertValid(await verifyNotationSignature(opts(buildJws({ chain: [testLeaf] }))));
    assertValid(await verifyNotationSignature(opts(buildCose({ chain: [testLeaf] }), COSE)));
  });
  it('a chain in the wrong order or with a foreign certificate is refused', async () => {
    assertRefused(await verifyNotationSignature(opts(buildJws({ chain: [testRoot, testLeaf] }))), 'SIGNATURE_INVALID');
    assertRefused(await verifyNotationSignature(opts(buildJws({ chain: [testLeaf, otherRoot] }))), 'CERTIFICATE_INVALID', /not issued by/);
  });
  it('a leaf without the codeSigning EKU is refused', async () => {
    assertRefused(await verifyNotationSignature(opts(buildJws({ chain: [tlsLeaf, testRoot] }))), 'CERTIFICATE_INVALID', /codeSigning/);
  });
  it('a signing time outside the leaf validity is refused', async () => {
    assertRefused(
      await verifyNotationSignature(opts(buildJws({ protectedHeader: hdr({ 'io.cncf.notary.signingTime': '2001-01-01T00:00:00Z' }) }))),
      'CERTIFICATE_INVALID',
      /signing time/,
    );
  });
  it('expiry: accepted before, refused after; it must be critical', async () => {
    const expiring = buildJws({
      protectedHeader: hdr({ 'io.cncf.notary.expiry': '2027-06-01T00:00:00Z' }, ['io.cncf.notary.signingScheme', 'io.cncf.notary.expiry']),
    });
    const ok = await verifyNotationSignature(opts(expiring));
    assertValid(ok);
    assert.equal(ok.expiry?.toISOString(), '2027-06-01T00:00:00.000Z');
    assertRefused(await verifyNotationSignature(opts(expiring, JOSE, { now: new Date('2027-06-02T00:00:00Z') })), 'SIGNATURE_EXPIRED');
    const notCritical = buildJws({ protectedHeader: hdr({ 'io.cncf.notary.expiry': '2027-06-01T00:00:00Z' }) });
    assertRefused(await verifyNotationSignature(opts(notCritical)), 'SIGNATURE_MALFORMED', /io\.cncf\.notary\.expiry.*not listed in "crit"/);
  });
  it('signingAuthority: the chain is checked at the authentic signing time', async () => {
    const authority = (time: string) =>
      buildJws({
        protectedHeader: {
          alg: 'ES256',
          crit: ['io.cncf.notary.signingScheme', 'io.cncf.notary.authenticSigningTime'],
          cty: 'application/vnd.cncf.notary.payload.v1+json',
          'io.cncf.notary.signingScheme': 'notary.x509.signingAuthority',
          'io.cncf.notary.authenticSigningTime': time,
        },
      });
    const r = await verifyNotationSignature(
      opts(authority(signingTime), JOSE, { signingScheme: 'notary.x509.signingAuthority', now: new Date('2200-01-01T00:00:00Z') }),
    );
    assertValid(r);
    assert.equal(r.signingScheme, 'notary.x509.signingAuthority');
    assertRefused(await verifyNotationSignature(opts(authority('2001-01-01T00:00:00Z'))), 'CERTIFICATE_INVALID');
    assertRefused(await verifyNotationSignature(opts(authority(signingTime), JOSE, { signingScheme: 'notary.x509' })), 'SIGNATURE_INVALID', /signing scheme/);
  });
  it('an algorithm that does not match the key is refused', async () => {
    assertRefused(await verifyNotationSignature(opts(buildJws({ protectedHeader: hdr({ alg: 'ES384' }) }))), 'SIGNATURE_INVALID', /ES384.*ES256/);
    assertRefused(await verifyNotationSignature(opts(buildJws({ protectedHeader: hdr({ alg: 'RS256' }) }))), 'SIGNATURE_MALFORMED', /not allowed/);
  });
  it('the unprotected header (not signed) is read as notation-go reads it: unknown fields ignored, names case-insensitive', async () => {
    const chain = [testLeaf, testRoot].map((c) => c.raw.toString('base64'));
    assertValid(await verifyNotationSignature(opts(buildJws({ unprotected: { x5c: chain, kid: 'x', 'com.example.note': { a: 1 } } }))));
    assertValid(await verifyNotationSignature(opts(buildJws({ unprotected: { X5C: chain, 'IO.CNCF.NOTARY.SIGNINGAGENT': 'notation-go/1.3.0' } }))));
  });
  it('an RFC 3161 countersignature by a trusted timestamp authority: the chain must be valid at its time, not now', async () => {
    const fake = createFakeSigstore();
    const tsa = [
      {
        certChain: [new X509Certificate(readFileSync(join(fake.dir, 'tsa.pem'))), new X509Certificate(readFileSync(join(fake.dir, 'tsa-root.pem')))],
        source: 'test',
      },
    ];
    const env = JSON.parse(buildJws().toString()) as { signature: string; header: Record<string, unknown> };
    // The countersignature is over the signature value; it sits in the unprotected header (not signed).
    const token = (data: Buffer) => ASN1Obj.parseBuffer(fake.timestamp(data) as Buffer<ArrayBuffer>).subs[1]!.toDER();
    const stamped = (t: Buffer) =>
      Buffer.from(JSON.stringify({ ...env, header: { ...env.header, 'io.cncf.notary.timestampSignature': t.toString('base64') } }));
    const good = stamped(token(Buffer.from(env.signature, 'base64url')));
    const later = new Date('2200-01-01T00:00:00Z'); // the leaf (valid until 2126) has long expired
    assertRefused(await verifyNotationSignature(opts(good, JOSE, { now: later })), 'CERTIFICATE_INVALID', /verification time/);
    const r = await verifyNotationSignature(opts(good, JOSE, { now: later, timestampAuthorities: tsa }));
    assertValid(r);
    // Over other bytes, or altered, or by an authority the key does not name: refused.
    assertRefused(
      await verifyNotationSignature(opts(stamped(token(Buffer.from('other'))), JOSE, { now: later, timestampAuthorities: tsa })),
      'SIGNATURE_INVALID',
      /countersignature does not verify/,
    );
    const raw = token(Buffer.from(env.signature, 'base64url'));
    raw[raw.length - 5] = raw[raw.length - 5]! ^ 1;
    assert.equal((await verifyNotationSignature(opts(stamped(raw), JOSE, { now: later, timestampAuthorities: tsa }))).valid, false);
    const otherTsa = createFakeSigstore();
    const foreign = [
      {
        certChain: [new X509Certificate(readFileSync(join(otherTsa.dir, 'tsa.pem'))), new X509Certificate(readFileSync(join(otherTsa.dir, 'tsa-root.pem')))],
        source: 'other',
      },
    ];
    assert.equal((await verifyNotationSignature(opts(good, JOSE, { now: later, timestampAuthorities: foreign }))).valid, false);
  });

  it('a payload with unknown fields or a targetArtifact with extra fields is refused', async () => {
    const extra = Buffer.from(JSON.stringify({ targetArtifact: target, other: 1 }));
    assertRefused(await verifyNotationSignature(opts(buildJws({ payload: extra }))), 'SIGNATURE_MALFORMED', /unknown field "other"/);
    const urls = Buffer.from(JSON.stringify({ targetArtifact: { ...target, urls: ['x'] } }));
    assertRefused(await verifyNotationSignature(opts(buildJws({ payload: urls }))), 'SIGNATURE_MALFORMED', /unknown field "urls"/);
    const annotated = Buffer.from(JSON.stringify({ targetArtifact: { ...target, annotations: { 'io.wabbit-networks.buildId': '123' } } }));
    const r = await verifyNotationSignature(opts(buildJws({ payload: annotated })));
    assertValid(r);
    assert.deepEqual(r.annotations, { 'io.wabbit-networks.buildId': '123' });
  });
});

describe('malformed Notation envelopes are refused with SIGNATURE_MALFORMED and a clear reason', () => {
  const cases: Array<[string, Buffer, string, RegExp]> = [
    ['not JSON', Buffer.from('not json'), JOSE, /not valid JSON/],
    ['not CBOR', Buffer.from([0xff, 0x00]), COSE, /not valid CBOR/],
    ['CBOR but not a COSE_Sign1', Buffer.from(encode([1, 2, 3])), COSE, /tag 18/],
    ['a JSON array', Buffer.from('[]'), JOSE, /not a JSON object/],
    ['general JWS serialisation', Buffer.from(JSON.stringify({ payload: '', signatures: [] })), JOSE, /general serialisation/],
    ['duplicate key', Buffer.from('{"payload":"","payload":"","protected":"","header":{},"signature":""}'), JOSE, /duplicate key/],
    ['no x5c', buildJws({ unprotected: {} }), JOSE, /missing "x5c"/],
    [
      'x5c named twice in the unprotected header',
      buildJws({ unprotected: { x5c: [testLeaf.raw.toString('base64')], X5C: [testLeaf.raw.toString('base64')] } }),
      JOSE,
      /names "x5c" 2 times/,
    ],
    ['no crit', buildJws({ protectedHeader: { ...hdr({}), crit: undefined } }), JOSE, /"crit"/],
    [
      'unknown critical header',
      buildJws({ protectedHeader: hdr({ 'com.example.policy': 'x' }, ['io.cncf.notary.signingScheme', 'com.example.policy']) }),
      JOSE,
      /critical header "com\.example\.policy" is not understood/,
    ],
    [
      'signing scheme not critical',
      buildJws({ protectedHeader: hdr({}, ['io.cncf.notary.expiry']) }),
      JOSE,
      /not in the protected header|not understood|not listed/,
    ],
    ['no signing scheme', buildJws({ protectedHeader: hdr({ 'io.cncf.notary.signingScheme': undefined }) }), JOSE, /signingScheme/],
    ['unknown signing scheme', buildJws({ protectedHeader: hdr({ 'io.cncf.notary.signingScheme': 'notary.v0' }) }), JOSE, /signing scheme "notary\.v0"/],
    ['no signing time', buildJws({ protectedHeader: hdr({ 'io.cncf.notary.signingTime': undefined }) }), JOSE, /without "io\.cncf\.notary\.signingTime"/],
    ['a bad signing time', buildJws({ protectedHeader: hdr({ 'io.cncf.notary.signingTime': 'yesterday' }) }), JOSE, /RFC 3339/],
    ['wrong content type', buildJws({ protectedHeader: hdr({ cty: 'application/json' }) }), JOSE, /content type/],
    ['x5c not a certificate', buildJws({ unprotected: { x5c: ['AAAA'] } }), JOSE, /not a DER X\.509 certificate/],
    [
      'verification plugin',
      buildJws({
        protectedHeader: hdr({ 'io.cncf.notary.verificationPlugin': 'acme' }, ['io.cncf.notary.signingScheme', 'io.cncf.notary.verificationPlugin']),
      }),
      JOSE,
      /plugin/,
    ],
    [
      'COSE unknown critical label',
      buildCose({
        protectedMap: new Map<unknown, unknown>([
          [1, -7],
          [2, ['io.cncf.notary.signingScheme', 99]],
          [3, 'application/vnd.cncf.notary.payload.v1+json'],
          [99, 1],
          ['io.cncf.notary.signingScheme', 'notary.x509'],
          ['io.cncf.notary.signingTime', new Tag(1, 1790000000)],
        ]),
      }),
      COSE,
      /critical header "99" is not understood/,
    ],
    [
      'COSE alg not allowed',
      buildCose({
        protectedMap: new Map<unknown, unknown>([
          [1, -257],
          [2, ['io.cncf.notary.signingScheme']],
        ]),
      }),
      COSE,
      /algorithm -257 is not allowed/,
    ],
  ];
  for (const [name, envelope, mediaType, reason] of cases) {
    it(name, async () => {
      const r = await verifyNotationSignature(opts(envelope, mediaType));
      if (name === 'verification plugin') return assertRefused(r, 'SIGNATURE_INVALID', reason);
      assertRefused(r, 'SIGNATURE_MALFORMED', reason);
    });
  }
});

describe('x509.subject trusted identities', () => {
  it('parses escapes and requires C, ST and O', () => {
    const dn = parseTrustedIdentity('x509.subject: C=US, ST=WA, O=Acme\\, Inc., CN=\\ padded\\ ');
    assert.deepEqual(dn.entries, [
      ['C', 'US'],
      ['ST', 'WA'],
      ['O', 'Acme, Inc.'],
      ['CN', ' padded '],
    ]);
    assert.throws(() => parseTrustedIdentity('x509.subject: C=US, O=Acme'), /must name C, ST and O/);
    assert.throws(() => parseTrustedIdentity('x509.subject: C=US, ST=WA, O=Acme, O=Other'), /twice/);
    assert.throws(() => parseTrustedIdentity('C=US, ST=WA, O=Acme'), /x509\.subject:/);
    assert.ok(
      dnMatches(parseTrustedIdentity('x509.subject: O=Acme, C=US, ST=WA'), {
        entries: [
          ['C', 'US'],
          ['ST', 'WA'],
          ['L', 'Seattle'],
          ['O', 'Acme'],
        ],
      }),
    );
    assert.ok(
      !dnMatches(parseTrustedIdentity('x509.subject: O=acme, C=US, ST=WA'), {
        entries: [
          ['C', 'US'],
          ['ST', 'WA'],
          ['O', 'Acme'],
        ],
      }),
    );
  });
});
