/**
 * Fuzzing signet-verifier's inputs: the argv and stdin containerd hands it, SIGNET_VERIFIER_TIMEOUT, and
 * the bytes signetd (or something squatting on its socket) answers. Typed errors only (UsageError for
 * argv and stdin; the wire decoder's errors fail closed), no hang, and never an acceptance that protobuf's own
 * wire reader would not also read as ok = true.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { PROTO_DIR } from '../../src/proto-dir.js';
import { DESCRIPTOR_MEDIA_TYPE, parseDurationMs, parseStdinDescriptor, parseVerifierArgs, UsageError } from '../../src/verifier/contract.js';
import { decodeJudgement, encodeVerifyImageRequest } from '../../src/verifier/wire.js';
import { jsonTextTricks, mutateBytes, mutateJson, params, typedOutcome } from '../helpers/fuzz.js';

const root = protobuf.loadSync(join(PROTO_DIR, 'signet/v1/verifier.proto'));
const Judgement = root.lookupType('signet.v1.Judgement');
const VerifyImageRequest = root.lookupType('signet.v1.VerifyImageRequest');
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const argv = ['-name', 'registry.example.com/app:1.0', '-digest', DIGEST, '-stdin-media-type', DESCRIPTOR_MEDIA_TYPE];
const descriptor = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: DIGEST,
  size: 1234,
  annotations: { 'org.opencontainers.image.ref.name': '1.0' },
};
const judgement = Buffer.from(
  Judgement.encode(
    Judgement.fromObject({
      ok: false,
      reason: 'rejected: no signatures found',
      decision: 'reject',
      scope: 'registry.example.com',
      signatures: [{ format: 'cosign', source: 'x', key: 'k', valid: false, reason: 'r', code: 'SIGNATURE_INVALID' }],
      policyGeneration: 'sha256:x',
      durationMs: 1.5,
      image: 'i',
      digest: DIGEST,
      code: 'SIGNATURE_NOT_FOUND',
      warnings: ['w'],
    }),
  ).finish(),
);

describe('fuzz: signet-verifier inputs', function () {
  this.timeout(30_000);

  it('argv: UsageError, or arguments that satisfy the contract', () => {
    const token = fc.oneof(
      fc.constantFrom(
        ...argv,
        '-name',
        '--name',
        '-digest=x',
        '--digest',
        '-stdin-media-type=',
        '-version',
        '--',
        '-',
        '',
        'a b',
        `-name=${'x'.repeat(5000)}`,
        `-digest=sha512:${'c'.repeat(128)}`,
        '-name=\u0000',
        '-unknown',
      ),
      fc.string({ maxLength: 30 }),
    );
    const args = fc.oneof(
      fc.array(token, { maxLength: 8 }),
      fc.tuple(fc.nat(argv.length - 1), token).map(([i, t]) => argv.map((a, j) => (j === i ? t : a))),
      fc.shuffledSubarray(argv),
    );
    fc.assert(
      fc.property(args, (a) => {
        const r = typedOutcome(() => parseVerifierArgs(a), [UsageError], a);
        if (!r.ok) return;
        assert.match(r.value.digest, /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/);
        assert.equal(r.value.stdinMediaType, DESCRIPTOR_MEDIA_TYPE);
        assert.ok(r.value.name.length > 0 && r.value.name.length <= 4096 && !/[\s\0]/.test(r.value.name));
      }),
      params(1500),
    );
  });

  it('stdin: UsageError, or a descriptor for exactly the digest on the command line', () => {
    const text = JSON.stringify(descriptor);
    const stdin = fc.oneof(
      fc.string({ maxLength: 200 }),
      mutateBytes(Buffer.from(text)).map((b) => b.toString('utf8')),
      mutateJson(descriptor).map((d) => JSON.stringify(d) ?? 'null'),
      jsonTextTricks(text),
      fc.json(),
    );
    fc.assert(
      fc.property(stdin, fc.constantFrom(DIGEST, `sha256:${'0'.repeat(64)}`), (t, expected) => {
        const r = typedOutcome(() => parseStdinDescriptor(t, expected), [UsageError], t);
        if (!r.ok) return;
        assert.equal(r.value.digest, expected);
        assert.ok(Number.isSafeInteger(r.value.size) && r.value.size >= 0);
        assert.ok(r.value.mediaType.length > 0);
        for (const v of Object.values(r.value.annotations)) assert.equal(typeof v, 'string');
      }),
      params(1500),
    );
  });

  it('SIGNET_VERIFIER_TIMEOUT: UsageError, or a duration from just above 0 to 10 minutes', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 20 }),
          fc.tuple(fc.double({ noNaN: false }), fc.constantFrom('ms', 's', 'm', '', 'S')).map(([n, u]) => `${n}${u}`),
        ),
        (t) => {
          const r = typedOutcome(() => parseDurationMs(t), [UsageError], t);
          if (r.ok) assert.ok(r.value > 0 && r.value <= 600_000, `${r.value}`);
        },
      ),
      params(1500),
    );
  });

  it('the request encoder agrees with protobufjs for any name and descriptor', () => {
    const desc = fc.record({
      mediaType: fc.string({ maxLength: 40 }),
      digest: fc.constantFrom(DIGEST, `sha512:${'e'.repeat(128)}`),
      size: fc.maxSafeNat(),
      annotations: fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 4 }),
    });
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), desc, (name, d) => {
        const decoded = VerifyImageRequest.toObject(VerifyImageRequest.decode(encodeVerifyImageRequest(name, d)), { longs: Number, defaults: true }) as {
          name: string;
          descriptor: { mediaType: string; digest: string; size: number; annotations: Record<string, string> };
        };
        const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('utf8');
        assert.equal(decoded.name, utf8(name));
        assert.equal(decoded.descriptor.digest, d.digest);
        assert.equal(decoded.descriptor.size, d.size);
        assert.equal(decoded.descriptor.mediaType, utf8(d.mediaType));
        assert.deepEqual(decoded.descriptor.annotations, Object.fromEntries(Object.entries(d.annotations).map(([k, v]) => [utf8(k), utf8(v)])));
      }),
      params(1000),
    );
  });

  it("the answer decoder: an error, or ok = true only where protobuf's wire reader also reads ok = true", () => {
    const answer = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      mutateBytes(judgement),
      mutateBytes(Buffer.from(Judgement.encode({ ok: true, reason: 'accepted' }).finish())),
      fc.constantFrom(
        Buffer.from([0x08, 0x01]),
        Buffer.from([0x08, 0x02]),
        Buffer.from([0x08, 0x81, 0x00]),
        Buffer.from([0x08, 0x01, 0x08, 0x00]),
        Buffer.from([0x08, 0x00, 0x08, 0x01]),
        Buffer.from([0x0a, 0x01, 0x01]),
        Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        // ok = true, then a tag varint longer than 53 bits: as a double it loses its wire type (4, invalid) and reads as a varint field.
        Buffer.from([0x08, 0x01, 0xf4, 0xc7, 0xd8, 0xe0, 0xe9, 0xfc, 0xb0, 0x61, 0x63]),
      ),
    );
    fc.assert(
      fc.property(answer, (bytes) => {
        const r = typedOutcome(() => decodeJudgement(bytes), [Error], bytes);
        if (!r.ok) {
          assert.ok(!(r.error instanceof TypeError) && !(r.error instanceof RangeError), `a crash: ${r.error.name}: ${r.error.message}`);
          return;
        }
        assert.equal(typeof r.value.reason, 'string');
        if (!r.value.ok) return;
        // The oracle: protobufjs's own wire reader walks the message field by field (skipping by wire type,
        // as protobuf's reference implementations treat a field of unexpected wire type as unknown), and
        // must find a well-formed message whose last `ok` (field 1, varint) is true.
        let ok: boolean | undefined;
        try {
          const reader = protobuf.Reader.create(bytes);
          while (reader.pos < reader.len) {
            const tag = reader.uint32();
            if (tag >>> 3 === 1 && (tag & 7) === 0) ok = reader.bool();
            else reader.skipType(tag & 7);
          }
        } catch (err) {
          assert.fail(`accepted bytes protobuf's wire reader cannot walk (${(err as Error).message}): ${bytes.toString('hex')}`);
        }
        assert.equal(ok, true, `accepted bytes whose ok field reads ${ok}: ${bytes.toString('hex')}`);
      }),
      params(3000),
    );
  });
});
