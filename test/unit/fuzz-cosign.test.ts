/**
 * Fuzzing the cosign simple-signing parsers and verifier (untrusted registry bytes): the `.sig`
 * manifest, the payload, the base64 signature annotation, and verification against a real key. Never a
 * crash (only SignetError or a result), never a hang, never an acceptance of bytes the key did not sign
 * for this digest.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { SignetError } from '../../src/errors.js';
import {
  appendSignatureLayer,
  buildSimpleSigningPayload,
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SIMPLESIGNING_MEDIA_TYPE,
  cosignFormat,
  decodeBase64Strict,
  parseSignatureManifest,
  parseSimpleSigningPayload,
} from '../../src/formats/cosign.js';
import { isDigest } from '../../src/registry/reference.js';
import { trustedKeyFromKeyObject } from '../../src/keys/node-key.js';
import { anyBytes, jsonTextTricks, mutateBytes, mutateJson, params, typedOutcome, typedOutcomeAsync } from '../helpers/fuzz.js';

const digest = `sha256:${createHash('sha256').update('the image').digest('hex')}`;
const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const key = trustedKeyFromKeyObject('release', 'test:release', pair.publicKey);
const payload = buildSimpleSigningPayload('registry.example/app', digest, { team: 'ci' });
const signature = sign('sha256', payload, pair.privateKey);
const expected = { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1234 };
const payloadDigest = `sha256:${createHash('sha256').update(payload).digest('hex')}`;
const manifest = appendSignatureLayer(undefined, {
  mediaType: COSIGN_SIMPLESIGNING_MEDIA_TYPE,
  digest: payloadDigest,
  size: payload.length,
  annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signature.toString('base64') },
}).manifest;
const manifestDoc = JSON.parse(manifest.toString()) as unknown;
const payloadDoc = JSON.parse(payload.toString()) as unknown;

const verify = (untrustedPayload: Buffer, untrustedSignature: Buffer) =>
  cosignFormat.verify({ format: 'cosign', source: 'fuzz', untrustedPayload, untrustedSignature }, key, expected);

describe('fuzz: cosign simple signing', function () {
  this.timeout(30_000);

  it('the valid samples are valid (the control)', async () => {
    assert.equal(parseSignatureManifest(manifest).length, 1);
    assert.equal(parseSimpleSigningPayload(payload).manifestDigest, digest);
    assert.equal((await verify(payload, signature)).valid, true);
  });

  it('parseSignatureManifest: typed errors or well-formed layers, for any bytes and any damage to a real manifest', () => {
    const inputs = fc.oneof(
      anyBytes,
      mutateBytes(manifest),
      mutateJson(manifestDoc).map((d) => Buffer.from(JSON.stringify(d) ?? 'null')),
      jsonTextTricks(manifest.toString()).map((t) => Buffer.from(t)),
    );
    fc.assert(
      fc.property(inputs, (bytes) => {
        const r = typedOutcome(() => parseSignatureManifest(bytes), [SignetError], bytes);
        if (!r.ok) return;
        assert.ok(r.value.length <= 256);
        for (const l of r.value) {
          assert.ok(isDigest(l.descriptor.digest), l.descriptor.digest);
          assert.ok(Number.isSafeInteger(l.descriptor.size) && l.descriptor.size >= 0 && l.descriptor.size <= 64 * 1024);
          assert.equal(typeof l.untrustedSignatureBase64, 'string');
        }
      }),
      params(400),
    );
  });

  it('parseSimpleSigningPayload: typed errors or claims naming a digest', () => {
    const inputs = fc.oneof(
      anyBytes,
      mutateBytes(payload),
      mutateJson(payloadDoc).map((d) => Buffer.from(JSON.stringify(d) ?? 'null')),
      jsonTextTricks(payload.toString()).map((t) => Buffer.from(t)),
    );
    fc.assert(
      fc.property(inputs, (bytes) => {
        const r = typedOutcome(() => parseSimpleSigningPayload(bytes), [SignetError], bytes);
        if (r.ok) {
          assert.ok(isDigest(r.value.manifestDigest));
          assert.equal(typeof r.value.dockerReference, 'string');
        }
      }),
      params(400),
    );
  });

  it('decodeBase64Strict: typed errors, or bytes that encode back to the same text (line breaks aside)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 64 }),
          fc.base64String({ maxLength: 64 }),
          fc.constantFrom('=', '==', 'A', 'AA=', 'A===', ' QQ==', 'QQ==\n', 'Q\u0000Q='),
        ),
        (text) => {
          const r = typedOutcome(() => decodeBase64Strict(text, 'sig'), [SignetError], text);
          if (!r.ok) return;
          // Line breaks are skipped, as Go's decoder (cosign's) skips them; nothing else but the alphabet gets through.
          const compact = text.replace(/[\r\n]/g, '');
          assert.match(compact, /^[A-Za-z0-9+/]*={0,2}$/, 'only the base64 alphabet gets through');
          assert.deepEqual(r.value, Buffer.from(compact, 'base64'));
        },
      ),
      params(300),
    );
  });

  it('verify: a damaged payload or signature never verifies, and never throws', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.tuple(mutateBytes(payload), fc.constant(signature)),
          fc.tuple(fc.constant(payload), mutateBytes(signature)),
          fc.tuple(mutateBytes(payload), mutateBytes(signature)),
        ),
        async ([p, s]) => {
          const r = await typedOutcomeAsync(() => verify(p, s), [], { p: p.toString('latin1'), s: s.toString('hex') });
          if (r.ok && r.value.valid) assert.ok(p.equals(payload), `accepted a changed payload: ${p.toString('latin1')}`);
        },
      ),
      params(400),
    );
  });

  it('verify: random payloads and signatures never verify', async () => {
    await fc.assert(
      fc.asyncProperty(anyBytes, fc.uint8Array({ maxLength: 200 }), async (p, s) => {
        const r = await typedOutcomeAsync(() => verify(p, Buffer.from(s)), [], p);
        assert.ok(r.ok && !r.value.valid);
      }),
      params(300),
    );
  });

  it('verify: a payload signed by the key but for another digest, or not a payload at all, is refused', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          mutateJson(payloadDoc).map((d) => Buffer.from(JSON.stringify(d) ?? 'null')),
          anyBytes,
        ),
        async (p) => {
          const r = await typedOutcomeAsync(() => verify(p, sign('sha256', p, pair.privateKey)), [], p);
          assert.ok(r.ok);
          if (r.value.valid) {
            assert.equal(r.value.signedDigest, digest);
            assert.equal(parseSimpleSigningPayload(p).manifestDigest, digest);
          }
        },
      ),
      params(300),
    );
  });
});
