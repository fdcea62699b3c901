/**
 * The shared RFC 3161 reader (src/formats/rfc3161/token.ts), on a token from sigstore's own timestamp
 * authority (a sigstore bundle fixture) and tokens from the fake authority (openssl ts): what it gives
 * each format, and that every structure RFC 3161 / RFC 5652 do not allow is refused with a SignetError
 * saying what — SIGNATURE_MALFORMED, or SIGNATURE_INVALID for what cannot be verified — never another throw.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ASN1Obj } from '@sigstore/core';
import fc from 'fast-check';
import { SignetError } from '../../src/errors.js';
import { readTimestampResponse, readTimestampToken, type TimestampToken } from '../../src/formats/rfc3161/token.js';
import { ROOT } from '../helpers/daemon.js';
import { anyBytes, mutateBytes, params, typedOutcome } from '../helpers/fuzz.js';
import { createFakeSigstore } from '../helpers/sigstore-fake.js';

const FIX = join(ROOT, 'test/fixtures/sigstore/bundle-verify/managed-key-happy-path/bundle.sigstore.json');
const sigstoreResponse = Buffer.from(
  (JSON.parse(readFileSync(FIX, 'utf8')) as { verificationMaterial: { timestampVerificationData: { rfc3161Timestamps: Array<{ signedTimestamp: string }> } } })
    .verificationMaterial.timestampVerificationData.rfc3161Timestamps[0]!.signedTimestamp,
  'base64',
);

// DER building blocks, to make the structures a broken or hostile authority could send.
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
};
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const bytes: number[] = [40 * a + b];
  for (const n of rest) {
    const chunk: number[] = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}
const int = (n: number) => tlv(0x02, Buffer.from([n]));
const algId = (dotted: string) => tlv(0x30, oid(dotted), Buffer.from([0x05, 0x00]));
const children = (der: Buffer) => ASN1Obj.parseBuffer(der as Buffer<ArrayBuffer>).subs.map((s) => s.toDER());

/** `der` with the element at `path` (child indexes, into OCTET STRINGs that hold DER too) replaced by `fn`'s bytes (none: removed). */
function edit(der: Buffer, path: number[], fn: (old: Buffer) => Buffer): Buffer {
  if (path.length === 0) return fn(der);
  const [at, ...rest] = path as [number, ...number[]];
  const subs = children(der);
  assert.ok(at < subs.length, `no child ${at}`);
  subs[at] = edit(subs[at]!, rest, fn);
  return tlv(der[0]!, ...subs);
}
const set = (bytes: Buffer) => () => bytes;
const remove = () => Buffer.alloc(0);

// Paths in a ContentInfo (the token alone).
const SD = [1, 0];
const TST = [...SD, 2, 1, 0, 0];
/** SignerInfo: the one element of signerInfos, SignedData's last field. */
const signerInfoPath = (token: Buffer) => [...SD, children(children(children(token)[1]!)[0]!).length - 1, 0];
const tokenOf = (response: Buffer) => children(response)[1]!;
const respond = (token: Buffer, status = int(0)) => tlv(0x30, tlv(0x30, status), token);

function refused(fn: () => unknown, code: string, reason: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SignetError, `not a SignetError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, reason);
    return;
  }
  assert.fail('read without complaint');
}

describe('the RFC 3161 token reader shared by sigstore bundles, cosign and Notation', function () {
  this.timeout(120_000);
  const fake = createFakeSigstore();
  const data = Buffer.from('the signature value');
  // Made when mocha loads this file, which can be minutes before the tests run in the whole suite.
  const madeAt = Date.now();
  const fakeResponse = fake.timestamp(data);
  const fakeToken = tokenOf(fakeResponse);
  const tsaDer = new X509Certificate(readFileSync(join(fake.dir, 'tsa.pem'))).raw;
  const SI = signerInfoPath(fakeToken);
  const readToken = (token: Buffer) => readTimestampToken(token, 'the test token');

  it("reads sigstore's timestamp authority's response: imprint, time, signer, certificates, signing-certificate attribute", () => {
    const t = readTimestampResponse(sigstoreResponse, 'the fixture');
    assert.equal(t.version, 1n);
    assert.equal(t.imprint.algorithm, 'sha256');
    assert.equal(t.imprint.hashedMessage.length, 32);
    assert.ok(t.genTime.getTime() > Date.UTC(2023, 0, 1) && t.genTime.getTime() < Date.now());
    assert.deepEqual(t.genTime, t.timestamp.signingTime);
    assert.ok(t.signer.issuer.equals(t.timestamp.signerIssuer) && t.signer.serialNumber.equals(t.timestamp.signerSerialNumber));
    assert.equal(t.signingCertificate.kind, 'present');
  });

  it('reads the fake authority (openssl ts) as the formats need it, the response and the token alone alike', () => {
    const check = (t: TimestampToken) => {
      assert.equal(t.policy, '1.2.3.4.1');
      assert.equal(t.accuracyMs, 1000);
      assert.ok(t.imprint.hashedMessage.equals(createHash('sha256').update(data).digest()));
      assert.ok(Math.abs(t.genTime.getTime() - madeAt) < 120_000, `genTime ${t.genTime.toISOString()}`);
      assert.equal(t.digestAlgorithm, 'sha256');
      assert.equal(t.signatureAlgorithm.startsWith('1.2.840.10045.4.3.'), true);
      assert.equal(t.certificates.length, 1);
      assert.ok(t.certificates[0]!.equals(tsaDer));
      const ess = t.signingCertificate;
      assert.ok(ess.kind === 'present' && ess.version === 2 && ess.hash === 'sha256' && ess.certHash.equals(createHash('sha256').update(tsaDer).digest()));
    };
    check(readTimestampResponse(fakeResponse, 'the response'));
    check(readToken(fakeToken));
  });

  it('a response: DER only, a granted status (or granted with modifications), a token', () => {
    refused(() => readTimestampResponse(Buffer.concat([fakeResponse, Buffer.from([0])]), 'r'), 'SIGNATURE_MALFORMED', /not DER/);
    readTimestampResponse(respond(fakeToken, int(1)), 'r');
    refused(() => readTimestampResponse(respond(fakeToken, int(2)), 'r'), 'SIGNATURE_MALFORMED', /status is 2, not granted/);
    refused(() => readTimestampResponse(tlv(0x30, tlv(0x30, int(0))), 'r'), 'SIGNATURE_MALFORMED', /with a token/);
    refused(() => readTimestampResponse(Buffer.from('not a response'), 'r'), 'SIGNATURE_MALFORMED', /^r cannot be read/);
    // A non-minimal length is BER, not DER.
    const long = Buffer.concat([Buffer.from([0x30, 0x82]), Buffer.from([0, 3]), Buffer.from([0x02, 0x01, 0x00])]);
    refused(() => readTimestampResponse(long, 'r'), 'SIGNATURE_MALFORMED', /not DER/);
  });

  const cases: Array<[string, (t: Buffer) => Buffer, string, RegExp]> = [
    ['another content type', (t) => edit(t, [0], set(oid('1.2.840.113549.1.7.1'))), 'SIGNATURE_MALFORMED', /not SignedData/],
    ['SignedData version 1', (t) => edit(t, [...SD, 0], set(int(1))), 'SIGNATURE_MALFORMED', /SignedData version is not 3/],
    ['a SHA-1 digest algorithm', (t) => edit(t, [...SD, 1, 0], set(algId('1.3.14.3.2.26'))), 'SIGNATURE_INVALID', /SHA-256, SHA-384 and SHA-512/],
    ['digest algorithms not listing the signer’s', (t) => edit(t, [...SD, 1, 0], set(algId('2.16.840.1.101.3.4.2.2'))), 'SIGNATURE_MALFORMED', /does not list/],
    ['content that is not a TSTInfo', (t) => edit(t, [...SD, 2, 0], set(oid('1.2.840.113549.1.7.1'))), 'SIGNATURE_MALFORMED', /not a TSTInfo/],
    [
      'a TSTInfo with bytes after it',
      (t) => edit(t, [...SD, 2, 1, 0], (o) => tlv(0x04, ...children(o), Buffer.from([0x05, 0x00]))),
      'SIGNATURE_MALFORMED',
      /TSTInfo is not DER/,
    ],
    ['a TSTInfo version that is not an INTEGER', (t) => edit(t, [...TST, 0], set(tlv(0x04, Buffer.from([1])))), 'SIGNATURE_MALFORMED', /TSTInfo version/],
    ['a policy that is not an OID', (t) => edit(t, [...TST, 1], set(int(1))), 'SIGNATURE_MALFORMED', /TSTInfo policy/],
    [
      'a SHA-1 message imprint',
      (t) => edit(t, [...TST, 2, 0], set(algId('1.3.14.3.2.26'))),
      'SIGNATURE_INVALID',
      /message imprint algorithm .* SHA-256, SHA-384 and SHA-512/,
    ],
    [
      'an imprint shorter than its digest',
      (t) => edit(t, [...TST, 2, 1], (o) => tlv(0x04, o.subarray(2, o.length - 1))),
      'SIGNATURE_MALFORMED',
      /not a sha256 digest/,
    ],
    [
      'an imprint algorithm with parameters',
      (t) => edit(t, [...TST, 2, 0], set(tlv(0x30, oid('2.16.840.1.101.3.4.2.1'), int(0)))),
      'SIGNATURE_MALFORMED',
      /parameters/,
    ],
    ['no serial number', (t) => edit(t, [...TST, 3], remove), 'SIGNATURE_MALFORMED', /TSTInfo/],
    ['genTime as UTCTime', (t) => edit(t, [...TST, 4], set(tlv(0x17, Buffer.from('260101000000Z')))), 'SIGNATURE_MALFORMED', /genTime/],
    ['genTime with an offset', (t) => edit(t, [...TST, 4], set(tlv(0x18, Buffer.from('20260101000000+0100')))), 'SIGNATURE_MALFORMED', /YYYYMMDDhhmmss/],
    ['genTime on the 13th month', (t) => edit(t, [...TST, 4], set(tlv(0x18, Buffer.from('20261301000000Z')))), 'SIGNATURE_MALFORMED', /calendar time/],
    ['accuracy millis before seconds', (t) => edit(t, [...TST, 5], set(tlv(0x30, tlv(0x80, Buffer.from([5])), int(1)))), 'SIGNATURE_MALFORMED', /accuracy/],
    ['accuracy of the wrong type', (t) => edit(t, [...TST, 5], set(tlv(0x30, tlv(0x04, Buffer.from([5]))))), 'SIGNATURE_MALFORMED', /accuracy/],
    ['fields after genTime out of order', (t) => edit(t, [...TST, 5], (o) => Buffer.concat([int(7), o])), 'SIGNATURE_MALFORMED', /in that order/],
    ['CRLs', (t) => edit(t, [...SD, 3], (o) => Buffer.concat([o, tlv(0xa1)])), 'SIGNATURE_MALFORMED', /CRLs/],
    ['an embedded certificate that is not a SEQUENCE', (t) => edit(t, [...SD, 3, 0], set(tlv(0x04, Buffer.from('x')))), 'SIGNATURE_MALFORMED', /certificate 0/],
    ['two signers', (t) => edit(t, SI.slice(0, -1), (o) => tlv(0x31, ...children(o), ...children(o))), 'SIGNATURE_MALFORMED', /exactly one signer/],
    [
      'a signer named by subject key identifier',
      (t) => edit(edit(t, [...SI, 0], set(int(3))), [...SI, 1], set(tlv(0x80, Buffer.alloc(20, 1)))),
      'SIGNATURE_INVALID',
      /subject key identifier/,
    ],
    ['SignerInfo version 2', (t) => edit(t, [...SI, 0], set(int(2))), 'SIGNATURE_MALFORMED', /neither 1 nor 3/],
    [
      'no message digest attribute',
      (t) => edit(t, [...SI, 3], (o) => tlv(0xa0, ...children(o).filter((a) => !children(a)[0]!.equals(oid('1.2.840.113549.1.9.4'))))),
      'SIGNATURE_MALFORMED',
      /message digest/,
    ],
    ['an attribute twice', (t) => edit(t, [...SI, 3], (o) => tlv(0xa0, ...children(o), children(o)[0]!)), 'SIGNATURE_MALFORMED', /appears twice/],
    [
      'an attribute without values',
      (t) => edit(t, [...SI, 3, 0], (o) => tlv(0x30, children(o)[0]!, tlv(0x31))),
      'SIGNATURE_MALFORMED',
      /type and a set of values/,
    ],
    ['MD5 with RSA', (t) => edit(t, [...SI, 4], set(algId('1.2.840.113549.1.2.5'))), 'SIGNATURE_INVALID', /not an algorithm a timestamp authority signs with/],
    [
      'RSA with SHA-384',
      (t) =>
        edit(
          edit(edit(t, [...SD, 1, 0], set(algId('2.16.840.1.101.3.4.2.2'))), [...SI, 2], set(algId('2.16.840.1.101.3.4.2.2'))),
          [...SI, 4],
          set(algId('1.2.840.113549.1.1.12')),
        ),
      'SIGNATURE_INVALID',
      /SHA-256 only/,
    ],
    ['a signature that is not an OCTET STRING', (t) => edit(t, [...SI, 5], set(tlv(0x03, Buffer.from([0, 1])))), 'SIGNATURE_MALFORMED', /signature/],
    [
      'unsigned attributes of the wrong tag',
      (t) => edit(t, SI, (o) => tlv(0x30, ...children(o), tlv(0xa2))),
      'SIGNATURE_MALFORMED',
      /fields a timestamp token has not/,
    ],
  ];
  for (const [name, change, code, reason] of cases) {
    it(`refuses ${name}`, () => {
      const token = change(fakeToken);
      refused(() => readToken(token), code, reason);
      refused(() => readTimestampResponse(respond(token), 'the test response'), code, reason);
    });
  }

  it('an unchanged re-encoding reads (the cases above change only what they name)', () => {
    assert.ok(edit(fakeToken, [...SI, 0], (o) => o).equals(fakeToken));
    readToken(edit(fakeToken, TST, (o) => o));
  });

  it('the signing-certificate attribute: absent or malformed is reported, for the formats that need it to refuse', () => {
    const ess = (t: Buffer) => readToken(t).signingCertificate;
    const isEss = (a: Buffer) => ['1.2.840.113549.1.9.16.2.47', '1.2.840.113549.1.9.16.2.12'].some((o) => children(a)[0]!.equals(oid(o)));
    assert.equal(ess(edit(fakeToken, [...SI, 3], (o) => tlv(0xa0, ...children(o).filter((a) => !isEss(a))))).kind, 'absent');
    const broken = edit(fakeToken, [...SI, 3], (o) => tlv(0xa0, ...children(o).map((a) => (isEss(a) ? tlv(0x30, children(a)[0]!, tlv(0x31, int(1))) : a))));
    const m = ess(broken);
    assert.ok(m.kind === 'malformed' && /SigningCertificate/.test(m.why), JSON.stringify(m));
  });

  it('fuzz: any bytes, or a changed real or fake token, read or refused with a SignetError, quickly', () => {
    const samples = [sigstoreResponse, fakeResponse];
    fc.assert(
      fc.property(fc.oneof(anyBytes, ...samples.map(mutateBytes)), (bytes) => {
        const r = typedOutcome(() => readTimestampResponse(bytes, 'fuzz'), [SignetError], bytes);
        if (!r.ok) assert.ok(['SIGNATURE_MALFORMED', 'SIGNATURE_INVALID'].includes((r.error as SignetError).code), r.error.message);
      }),
      params(1500),
    );
    fc.assert(
      fc.property(fc.oneof(anyBytes, mutateBytes(fakeToken), mutateBytes(tokenOf(sigstoreResponse))), (bytes) => {
        const r = typedOutcome(() => readTimestampToken(bytes, 'fuzz'), [SignetError], bytes);
        // What reads is what @sigstore/verify will read: its accessors must not throw either.
        if (r.ok) void [r.value.timestamp.signingTime, r.value.timestamp.signerIssuer, r.value.timestamp.tstInfo.messageImprintHashAlgorithm];
      }),
      params(1500),
    );
  });
});
