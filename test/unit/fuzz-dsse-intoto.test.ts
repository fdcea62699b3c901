/**
 * Fuzzing DSSE envelopes and in-toto statements (attestations read from registries): typed errors
 * only, no hang, and an envelope verifies only if it still carries exactly the payload type and payload
 * bytes the key signed.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import fc from 'fast-check';
import { SignetError } from '../../src/errors.js';
import {
  INTOTO_PAYLOAD_TYPE,
  parseEnvelope,
  serializeEnvelope,
  signEnvelope,
  checkEnvelope,
  decodeDsseBase64,
  preAuthEncoding,
} from '../../src/formats/dsse.js';
import { buildStatement, parseStatement, serializeStatement, statementCoversDigest, subjectForDigest, INTOTO_STATEMENT_V01 } from '../../src/formats/intoto.js';
import { trustedKeyFromKeyObject } from '../../src/keys/node-key.js';
import { isDigest } from '../../src/registry/reference.js';
import { anyBytes, jsonTextTricks, mutateBytes, mutateJson, params, typedOutcome, typedOutcomeAsync } from '../helpers/fuzz.js';
import { makeTestKey } from '../helpers/keys.js';

/** Whether any signature of the envelope verifies with the key (what dsse.verifyEnvelope was, test-only). */
const verifies = async (envelope: Parameters<typeof checkEnvelope>[0], key: Parameters<typeof checkEnvelope>[1]): Promise<boolean> =>
  (await checkEnvelope(envelope, key)).verified;

const digest = `sha256:${createHash('sha256').update('image').digest('hex')}`;
const statement = buildStatement([subjectForDigest('registry.example/app', digest)], 'https://cosign.sigstore.dev/attestation/vuln/v1', {
  scanner: { uri: 'pkg:github/aquasecurity/trivy', version: '0.50.0' },
  metadata: { scanFinishedOn: '2026-01-01T00:00:00Z' },
});
const statementBytes = serializeStatement(statement);

describe('fuzz: DSSE and in-toto', function () {
  this.timeout(30_000);
  let envelopeBytes: Buffer;
  let key: ReturnType<typeof trustedKeyFromKeyObject>;

  before(async () => {
    const k = makeTestKey();
    key = trustedKeyFromKeyObject('release', 'test:release', createPublicKey(k.publicPem));
    envelopeBytes = serializeEnvelope(await signEnvelope(INTOTO_PAYLOAD_TYPE, statementBytes, k.signer));
  });

  it('the valid samples are valid (the control)', async () => {
    assert.equal(await verifies(parseEnvelope(envelopeBytes), key), true);
    assert.ok(statementCoversDigest(parseStatement(statementBytes), digest));
  });

  it('parseEnvelope: typed errors or an envelope with at least one signature, for any bytes and any damage', () => {
    const doc = JSON.parse(envelopeBytes.toString()) as unknown;
    const inputs = fc.oneof(
      anyBytes,
      mutateBytes(envelopeBytes),
      mutateJson(doc).map((d) => Buffer.from(JSON.stringify(d) ?? 'null')),
      jsonTextTricks(envelopeBytes.toString()).map((t) => Buffer.from(t)),
    );
    fc.assert(
      fc.property(inputs, (bytes) => {
        const r = typedOutcome(() => parseEnvelope(bytes), [SignetError], bytes);
        if (r.ok) {
          assert.ok(r.value.signatures.length >= 1 && r.value.signatures.length <= 64);
          assert.ok(r.value.payloadType.length > 0);
        }
      }),
      params(500),
    );
  });

  it('a damaged envelope verifies only if it still says exactly what was signed', async () => {
    const original = parseEnvelope(envelopeBytes);
    const doc = JSON.parse(envelopeBytes.toString()) as unknown;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          mutateBytes(envelopeBytes),
          mutateJson(doc).map((d) => Buffer.from(JSON.stringify(d) ?? 'null')),
        ),
        async (bytes) => {
          const parsed = typedOutcome(() => parseEnvelope(bytes), [SignetError], bytes);
          if (!parsed.ok) return;
          const r = await typedOutcomeAsync(() => verifies(parsed.value, key), [], bytes);
          if (r.ok && r.value) {
            assert.equal(parsed.value.payloadType, original.payloadType, 'accepted another payload type');
            assert.ok(parsed.value.untrustedPayload.equals(original.untrustedPayload), 'accepted other payload bytes');
          }
        },
      ),
      params(400),
    );
  });

  it('preAuthEncoding is unambiguous: different (type, payload) pairs never encode alike', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 20 }),
        fc.uint8Array({ maxLength: 20 }),
        fc.string({ maxLength: 20 }),
        fc.uint8Array({ maxLength: 20 }),
        (t1, p1, t2, p2) => {
          if (t1 === t2 && Buffer.from(p1).equals(Buffer.from(p2))) return;
          assert.ok(!preAuthEncoding(t1, p1).equals(preAuthEncoding(t2, p2)));
        },
      ),
      params(500),
    );
  });

  it('decodeDsseBase64: typed errors, or canonical base64 of one alphabet', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.base64String({ maxLength: 40 }),
          fc.base64String({ maxLength: 40 }).map((s) => s.replace(/\+/g, '-').replace(/\//g, '_')),
        ),
        (text) => {
          const r = typedOutcome(() => decodeDsseBase64(text, 'x'), [SignetError], text);
          if (!r.ok) return;
          const bare = text.replace(/=+$/, '');
          assert.ok(r.value.toString('base64').replace(/=+$/, '') === bare || r.value.toString('base64url') === bare);
        },
      ),
      params(500),
    );
  });

  it('parseStatement: typed errors or a statement whose subjects are well-formed, for any bytes and any damage', () => {
    const inputs = fc.oneof(
      anyBytes,
      mutateBytes(statementBytes),
      mutateJson(statement).map((d) => Buffer.from(JSON.stringify(d) ?? 'null')),
      mutateJson({ ...statement, _type: INTOTO_STATEMENT_V01 }).map((d) => Buffer.from(JSON.stringify(d) ?? 'null')),
      jsonTextTricks(statementBytes.toString()).map((t) => Buffer.from(t)),
    );
    fc.assert(
      fc.property(inputs, fc.oneof(fc.constant(digest), fc.string({ maxLength: 80 })), (bytes, probe) => {
        const r = typedOutcome(() => parseStatement(bytes), [SignetError], bytes);
        if (!r.ok) return;
        assert.ok(r.value.subject.length >= 1);
        for (const s of r.value.subject) assert.ok(Object.keys(s.digest).length >= 1);
        const covers = typedOutcome(() => statementCoversDigest(r.value, probe), [], probe);
        if (covers.ok && covers.value) {
          assert.ok(isDigest(probe));
          const [alg, hex] = probe.split(':') as [string, string];
          assert.ok(
            r.value.subject.some((s) => s.digest[alg] === hex),
            'covers only a digest a subject names',
          );
        }
      }),
      params(500),
    );
  });
});
