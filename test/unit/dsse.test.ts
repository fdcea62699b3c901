import assert from 'node:assert/strict';
import { createPublicKey, verify as cryptoVerify, sign as cryptoSign } from 'node:crypto';
import { isSignetError } from '../../src/errors.js';
import {
  DSSE_ENVELOPE_MEDIA_TYPE,
  INTOTO_PAYLOAD_TYPE,
  checkEnvelope,
  decodeDsseBase64,
  dsseHashFor,
  parseEnvelope,
  preAuthEncoding,
  serializeEnvelope,
  signEnvelope,
  type UntrustedEnvelope,
} from '../../src/formats/dsse.js';
import { trustedKeyFromKeyObject } from '../../src/keys/node-key.js';
import type { KeyAlgorithm, TrustedKey } from '../../src/keys/types.js';
import { makeTestKey, type TestKey } from '../helpers/keys.js';

/** Whether any signature of the envelope verifies with the key (what dsse.verifyEnvelope was, test-only). */
const verifies = async (envelope: Parameters<typeof checkEnvelope>[0], key: Parameters<typeof checkEnvelope>[1]): Promise<boolean> =>
  (await checkEnvelope(envelope, key)).verified;

function trusted(key: TestKey, name = 'test'): TrustedKey {
  return trustedKeyFromKeyObject(name, `memory:${name}`, createPublicKey(key.publicPem));
}

/** The PAE written out by hand from the DSSE protocol, independently of preAuthEncoding. */
function handPae(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from('DSSEv1 ' + Buffer.byteLength(type, 'utf8') + ' ' + type + ' ' + body.length + ' ', 'utf8'), body]);
}

const PAYLOAD = Buffer.from(
  JSON.stringify({
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'x', digest: { sha256: 'ab'.repeat(32) } }],
    predicateType: 'p',
    predicate: {},
  }),
);

function malformed(text: string, re: RegExp): void {
  assert.throws(
    () => parseEnvelope(Buffer.from(text)),
    (err: unknown) => {
      assert.ok(isSignetError(err, 'SIGNATURE_MALFORMED'), `expected SIGNATURE_MALFORMED, got ${String(err)}`);
      assert.match(err.message, re);
      return true;
    },
  );
}

describe('DSSE', () => {
  it('media types', () => {
    assert.equal(DSSE_ENVELOPE_MEDIA_TYPE, 'application/vnd.dsse.envelope.v1+json');
    assert.equal(INTOTO_PAYLOAD_TYPE, 'application/vnd.in-toto+json');
  });

  describe('pre-authentication encoding', () => {
    it("matches the spec's example byte for byte", () => {
      const pae = preAuthEncoding('http://example.com/HelloWorld', Buffer.from('hello world'));
      assert.ok(pae.equals(Buffer.from('DSSEv1 29 http://example.com/HelloWorld 11 hello world', 'ascii')), pae.toString());
      assert.equal(pae.toString('hex'), '44535345763120323920687474703a2f2f6578616d706c652e636f6d2f48656c6c6f576f726c642031312068656c6c6f20776f726c64');
    });

    it('counts bytes, not characters, and takes the body verbatim', () => {
      assert.ok(preAuthEncoding('text', Buffer.alloc(0)).equals(Buffer.from('DSSEv1 4 text 0 ')));
      assert.ok(preAuthEncoding('é', Buffer.from('a b\n\u0000', 'utf8')).equals(Buffer.from('DSSEv1 2 é 5 a b\n\u0000', 'utf8')));
      const body = Buffer.from([0xff, 0x00, 0x20, 0x0a]);
      assert.ok(preAuthEncoding(INTOTO_PAYLOAD_TYPE, body).equals(handPae(INTOTO_PAYLOAD_TYPE, body)));
      assert.ok(preAuthEncoding('t', Buffer.alloc(1234)).subarray(0, 16).equals(Buffer.from('DSSEv1 1 t 1234 ')));
    });
  });

  describe('sign and verify', () => {
    const algorithms: KeyAlgorithm[] = ['ecdsa-p256', 'ecdsa-p384', 'ed25519', 'rsa'];
    const keys = new Map<KeyAlgorithm, TestKey>();
    before(function () {
      this.timeout(30000);
      for (const a of algorithms) keys.set(a, makeTestKey(a));
    });

    for (const algorithm of algorithms) {
      describe(algorithm, () => {
        it('round-trips through bytes and verifies', async () => {
          const key = keys.get(algorithm)!;
          const envelope = await signEnvelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, key.signer);
          assert.deepEqual(Object.keys(envelope), ['payloadType', 'payload', 'signatures']);
          assert.equal(envelope.payload, PAYLOAD.toString('base64'));
          assert.equal(envelope.signatures.length, 1);
          assert.equal(envelope.signatures[0]!.keyid, '', 'cosign writes an empty keyid for key-based signatures');
          const parsed = parseEnvelope(serializeEnvelope(envelope));
          assert.ok(parsed.untrustedPayload.equals(PAYLOAD));
          assert.equal(await verifies(parsed, trusted(key)), true);
          const check = await checkEnvelope(parsed, trusted(key));
          assert.equal(check.signatureIndex, 0);
          if (algorithm !== 'ed25519') assert.equal(check.hash, dsseHashFor(algorithm));
        });

        it('verifies independently with node:crypto over a PAE built by hand', async () => {
          const key = keys.get(algorithm)!;
          const envelope = JSON.parse(serializeEnvelope(await signEnvelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, key.signer)).toString()) as {
            payloadType: string;
            payload: string;
            signatures: Array<{ sig: string }>;
          };
          const body = Buffer.from(envelope.payload, 'base64');
          const pae = handPae(envelope.payloadType, body);
          const hash = algorithm === 'ed25519' ? null : algorithm === 'ecdsa-p384' ? 'sha384' : 'sha256';
          const sig = Buffer.from(envelope.signatures[0]!.sig, 'base64');
          assert.equal(cryptoVerify(hash, pae, createPublicKey(key.publicPem), sig), true);
          // Not over the payload alone, nor over the base64 text.
          assert.equal(cryptoVerify(hash, body, createPublicKey(key.publicPem), sig), false);
          assert.equal(cryptoVerify(hash, handPae(envelope.payloadType, Buffer.from(envelope.payload)), createPublicKey(key.publicPem), sig), false);
        });

        it('any single flipped byte of payload, payload type or signature fails', async () => {
          const key = keys.get(algorithm)!;
          const tk = trusted(key);
          const good = parseEnvelope(serializeEnvelope(await signEnvelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, key.signer)));
          const sig = good.signatures[0]!.untrustedSig;
          for (let i = 0; i < PAYLOAD.length; i++) {
            const p = Buffer.from(PAYLOAD);
            p[i]! ^= 0x01;
            assert.equal(await verifies({ ...good, untrustedPayload: p }, tk), false, `payload byte ${i}`);
          }
          for (let i = 0; i < sig.length; i++) {
            const s = Buffer.from(sig);
            s[i]! ^= 0x01;
            assert.equal(await verifies({ ...good, signatures: [{ untrustedSig: s }] }, tk), false, `signature byte ${i}`);
          }
          assert.equal(await verifies({ ...good, payloadType: 'application/vnd.in-toto+jsom' }, tk), false);
          assert.equal(await verifies({ ...good, untrustedPayload: Buffer.concat([PAYLOAD, Buffer.from(' ')]) }, tk), false, 'appended byte');
          assert.equal(await verifies({ ...good, signatures: [{ untrustedSig: sig.subarray(0, sig.length - 1) }] }, tk), false, 'truncated signature');
        });
      });
    }

    it('a signature by another key does not verify; any verifying signature of several does', async () => {
      const a = keys.get('ecdsa-p256')!;
      const b = makeTestKey('ecdsa-p256');
      const byA = await signEnvelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, a.signer, 'key-a');
      const byB = await signEnvelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, b.signer, 'key-b');
      assert.equal(await verifies(parseEnvelope(serializeEnvelope(byA)), trusted(b)), false);
      const both = parseEnvelope(JSON.stringify({ ...byA, signatures: [...byA.signatures, ...byB.signatures] }));
      assert.deepEqual(
        both.signatures.map((s) => s.keyid),
        ['key-a', 'key-b'],
      );
      assert.deepEqual(await checkEnvelope(both, trusted(b)), { verified: true, signatureIndex: 1, hash: 'sha256' });
      // The keyid is a hint only: a lying keyid changes nothing.
      const lying = parseEnvelope(JSON.stringify({ ...byA, signatures: [{ keyid: 'key-b', sig: byA.signatures[0]!.sig }] }));
      assert.equal(await verifies(lying, trusted(b)), false);
      assert.equal(await verifies(lying, trusted(a)), true);
    });

    it('P-384: signs over SHA-384, and accepts SHA-256 signatures of cosign ≤ 2.4', async () => {
      const key = keys.get('ecdsa-p384')!;
      assert.equal(dsseHashFor('ecdsa-p384'), 'sha384');
      const legacy = cryptoSign('sha256', preAuthEncoding(INTOTO_PAYLOAD_TYPE, PAYLOAD), key.privateKey);
      const env: UntrustedEnvelope = { payloadType: INTOTO_PAYLOAD_TYPE, untrustedPayload: PAYLOAD, signatures: [{ untrustedSig: legacy }] };
      assert.deepEqual(await checkEnvelope(env, trusted(key)), { verified: true, signatureIndex: 0, hash: 'sha256' });
      const sha1 = cryptoSign('sha1', preAuthEncoding(INTOTO_PAYLOAD_TYPE, PAYLOAD), key.privateKey);
      assert.equal(await verifies({ ...env, signatures: [{ untrustedSig: sha1 }] }, trusted(key)), false, 'other hashes are not tried');
    });
  });

  describe('strict parsing', () => {
    const sig = Buffer.from('signature bytes').toString('base64');
    const ok = { payloadType: INTOTO_PAYLOAD_TYPE, payload: PAYLOAD.toString('base64'), signatures: [{ keyid: '', sig }] };
    const withOk = (patch: Record<string, unknown>) => JSON.stringify({ ...ok, ...patch });

    it('accepts a well-formed envelope, keyid optional, URL-safe base64 and no padding', () => {
      const e = parseEnvelope(withOk({ signatures: [{ sig }] }));
      assert.equal(e.signatures[0]!.keyid, undefined);
      const bytes = Buffer.from([0xfb, 0xff, 0xfe, 0x01]);
      assert.ok(parseEnvelope(withOk({ payload: bytes.toString('base64url') })).untrustedPayload.equals(bytes));
      assert.ok(decodeDsseBase64('+//+AQ==', 'x').equals(bytes));
      assert.ok(decodeDsseBase64('-__-AQ', 'x').equals(bytes));
    });

    it('not JSON', () => malformed('{"payloadType":', /not valid JSON/));
    it('an array', () => malformed('[]', /not a JSON object/));
    it('duplicate keys', () =>
      malformed(`{"payloadType":"a","payloadType":"${INTOTO_PAYLOAD_TYPE}","payload":"","signatures":[{"sig":"${sig}"}]}`, /duplicate key/));
    it('duplicate keys in a signature', () => malformed(`{"payloadType":"a","payload":"","signatures":[{"sig":"${sig}","sig":"${sig}"}]}`, /duplicate key/));
    it('an unknown field', () => malformed(withOk({ extra: 1 }), /unknown field "extra"/));
    it('an unknown signature field', () => malformed(withOk({ signatures: [{ sig, cert: 'x' }] }), /signature 0: unknown field "cert"/));
    it('payloadType missing', () => malformed(JSON.stringify({ payload: ok.payload, signatures: ok.signatures }), /missing "payloadType"/));
    it('payloadType a number', () => malformed(withOk({ payloadType: 1 }), /payloadType is not a non-empty string/));
    it('payload a number', () => malformed(withOk({ payload: 1 }), /payload is not a string/));
    it('signatures an object', () => malformed(withOk({ signatures: {} }), /signatures is not an array/));
    it('no signatures', () => malformed(withOk({ signatures: [] }), /has no signatures/));
    it('too many signatures', () => malformed(withOk({ signatures: Array.from({ length: 65 }, () => ({ sig })) }), /65 signatures, more than 64/));
    it('a signature not an object', () => malformed(withOk({ signatures: ['x'] }), /signature 0 is not an object/));
    it('sig empty', () => malformed(withOk({ signatures: [{ sig: '' }] }), /sig is not a non-empty string/));
    it('keyid a number', () => malformed(withOk({ signatures: [{ sig, keyid: 7 }] }), /keyid is not a string/));
    it('payload with junk characters', () => malformed(withOk({ payload: 'aGVsbG8@' }), /payload is not valid base64/));
    it('payload with whitespace', () => malformed(withOk({ payload: 'aGVs bG8=' }), /payload is not valid base64/));
    it('payload mixing alphabets', () => malformed(withOk({ payload: '+_8=' }), /payload is not valid base64/));
    it('payload of impossible length', () => malformed(withOk({ payload: 'aGVsb' }), /payload is not valid base64/));
    it('payload with wrong padding', () => malformed(withOk({ payload: 'aGk==' }), /payload is not valid base64/));
    it('payload not canonical', () => malformed(withOk({ payload: 'aGl=' }), /payload is not canonical base64/));
    it('sig not base64', () => malformed(withOk({ signatures: [{ sig: 'not base64!' }] }), /signature 0 sig is not valid base64/));
    it('larger than the cap', () => {
      assert.throws(
        () => parseEnvelope(Buffer.from(withOk({})), 100),
        (err: unknown) => isSignetError(err, 'SIGNATURE_MALFORMED') && /larger than 100 bytes/.test(err.message),
      );
    });
  });
});
