/**
 * Fuzzing Notary Project envelopes (JWS and COSE, read from registries as referrers), starting from
 * signatures made by the real notation signer: typed errors only, no hang, and an envelope verifies
 * only if what its signature covers (the signing input: protected header and payload) is unchanged.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, encode, Tag } from 'cbor2';
import fc from 'fast-check';
import { SignetError } from '../../src/errors.js';
import { parseNotationEnvelope, verifyNotationSignature } from '../../src/formats/notation/index.js';
import { ROOT } from '../helpers/daemon.js';
import { anyBytes, jsonTextTricks, mutateBytes, mutateJson, params, typedOutcome, typedOutcomeAsync } from '../helpers/fuzz.js';

const FIX = join(ROOT, 'test/fixtures/notation');
const root = new X509Certificate(readFileSync(join(FIX, 'alpine-trust-root.pem')));
const jws = readFileSync(join(FIX, 'jws_signature.sig'));
const cose = readFileSync(join(FIX, 'cose_signature.sig'));
const index = JSON.parse(readFileSync(join(FIX, 'alpine-oci-layout/index.json'), 'utf8')) as {
  manifests: Array<{ mediaType: string; digest: string; size: number }>;
};
const alpine = { mediaType: index.manifests[0]!.mediaType, digest: index.manifests[0]!.digest, size: index.manifests[0]!.size };
const JOSE = 'application/jose+json';
const COSE = 'application/cose';

const verify = (envelope: Buffer, mediaType: string) =>
  verifyNotationSignature({ untrustedEnvelope: envelope, envelopeMediaType: mediaType, expected: alpine, trustStore: [root] });
const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** The JWS with its protected header (decoded JSON) or payload (decoded JSON) changed, signature kept. */
function jwsInnerMutations(): fc.Arbitrary<Buffer> {
  const doc = JSON.parse(jws.toString()) as { protected: string; payload: string; header: unknown; signature: string };
  const hdr = JSON.parse(Buffer.from(doc.protected, 'base64url').toString()) as unknown;
  const payload = JSON.parse(Buffer.from(doc.payload, 'base64url').toString()) as unknown;
  return fc.oneof(
    mutateJson(hdr).map((h) => Buffer.from(JSON.stringify({ ...doc, protected: b64url(JSON.stringify(h) ?? 'null') }))),
    mutateJson(payload).map((p) => Buffer.from(JSON.stringify({ ...doc, payload: b64url(JSON.stringify(p) ?? 'null') }))),
    mutateJson(doc.header).map((u) => Buffer.from(JSON.stringify({ ...doc, header: u }))),
    // The signing certificate itself, damaged (X.509 parsing of untrusted DER), anywhere or in its extensions.
    fc
      .oneof(
        mutateBytes(Buffer.from((doc.header as { x5c: string[] }).x5c[0]!, 'base64')),
        mutateExtensions(Buffer.from((doc.header as { x5c: string[] }).x5c[0]!, 'base64')),
      )
      .map((der) => Buffer.from(JSON.stringify({ ...doc, header: { ...(doc.header as object), x5c: [der.toString('base64')] } }))),
  );
}

/** The COSE_Sign1 with one of its four parts, or an entry of its protected header, replaced. */
function coseInnerMutations(): fc.Arbitrary<Buffer> {
  const top = decode(cose, { preferMap: true }) as Tag;
  const [prot, unprot, payload, sig] = top.contents as [Uint8Array, Map<unknown, unknown>, Uint8Array, Uint8Array];
  const hdr = decode(prot, { preferMap: true }) as Map<unknown, unknown>;
  const value = fc.oneof(
    fc.constantFrom<unknown>(null, 0, -7, 1, 'x', '', new Uint8Array(0), new Date(0), new Date(8.64e15), [], new Map()),
    fc.string({ maxLength: 20 }),
    fc.integer(),
    fc.uint8Array({ maxLength: 40 }),
  );
  const keys = [...hdr.keys()];
  const enc = (parts: unknown[]) => Buffer.from(encode(new Tag(18, parts)));
  return fc.oneof(
    fc.tuple(fc.constantFrom(...keys), value).map(([k, v]) => {
      const h = new Map(hdr);
      h.set(k, v);
      return enc([new Uint8Array(encode(h)), unprot, payload, sig]);
    }),
    fc.constantFrom(...keys).map((k) => {
      const h = new Map(hdr);
      h.delete(k);
      return enc([new Uint8Array(encode(h)), unprot, payload, sig]);
    }),
    fc.tuple(fc.nat(3), value).map(([i, v]) => {
      const parts: unknown[] = [prot, unprot, payload, sig];
      parts[i] = v;
      return enc(parts);
    }),
    mutateBytes(Buffer.from(payload)).map((p) => enc([prot, unprot, new Uint8Array(p), sig])),
    // The signing certificate itself, damaged (X.509 parsing of untrusted DER).
    fc.oneof(mutateBytes(Buffer.from(leafDer(unprot))), mutateExtensions(Buffer.from(leafDer(unprot)))).map((der) => {
      const u = new Map(unprot);
      u.set(33, new Uint8Array(der));
      return enc([prot, u, payload, sig]);
    }),
  );
}

function leafDer(unprot: Map<unknown, unknown>): Uint8Array {
  const chain = unprot.get(33);
  return chain instanceof Uint8Array ? chain : (chain as Uint8Array[])[0]!;
}

/** Edits confined to the X.509 extensions of a certificate (key usage, EKU, basic constraints): lazily parsed parts. */
function mutateExtensions(der: Buffer): fc.Arbitrary<Buffer> {
  const first = der.indexOf(Buffer.from([0x06, 0x03, 0x55, 0x1d]));
  const last = der.lastIndexOf(Buffer.from([0x06, 0x03, 0x55, 0x1d]));
  const start = Math.max(0, first - 4);
  const end = Math.min(der.length, last + 40);
  return fc.array(fc.tuple(fc.integer({ min: start, max: end - 1 }), fc.nat(255)), { minLength: 1, maxLength: 3 }).map((edits) => {
    const b = Buffer.from(der);
    for (const [at, byte] of edits) b[at] = byte;
    return b;
  });
}

/** A CBOR nest `depth` deep of arrays, maps or tags, inside tag 18. */
const deepCbor = fc.tuple(fc.integer({ min: 1, max: 5000 }), fc.constantFrom(0x81, 0xa1, 0xc6)).map(([d, head]) => {
  const body = head === 0xa1 ? Buffer.concat(Array.from({ length: d }, () => Buffer.from([0xa1, 0x00]))) : Buffer.alloc(d, head);
  return Buffer.concat([Buffer.from([0xd2]), body, Buffer.from([0x00])]);
});

describe('fuzz: Notation JWS and COSE envelopes', function () {
  this.timeout(60_000);

  it("the real signer's envelopes verify (the control)", async () => {
    assert.equal((await verify(jws, JOSE)).valid, true);
    assert.equal((await verify(cose, COSE)).valid, true);
  });

  it('parseNotationEnvelope: typed errors only, for any bytes, any damage and any nesting', () => {
    const doc = JSON.parse(jws.toString()) as unknown;
    const inputs = fc.oneof(
      anyBytes.map((b) => [b, JOSE] as const),
      anyBytes.map((b) => [b, COSE] as const),
      mutateBytes(jws).map((b) => [b, JOSE] as const),
      mutateJson(doc).map((d) => [Buffer.from(JSON.stringify(d) ?? 'null'), JOSE] as const),
      jsonTextTricks(jws.toString()).map((t) => [Buffer.from(t), JOSE] as const),
      jwsInnerMutations().map((b) => [b, JOSE] as const),
      mutateBytes(cose).map((b) => [b, COSE] as const),
      coseInnerMutations().map((b) => [b, COSE] as const),
      deepCbor.map((b) => [b, COSE] as const),
      fc.tuple(anyBytes, fc.string({ maxLength: 30 })),
    );
    fc.assert(
      fc.property(inputs, ([bytes, mediaType]) => {
        typedOutcome(() => parseNotationEnvelope(bytes, mediaType), [SignetError], bytes);
      }),
      params(600),
    );
  });

  for (const [name, envelope, mediaType, inner] of [
    ['JWS', jws, JOSE, jwsInnerMutations],
    ['COSE', cose, COSE, coseInnerMutations],
  ] as const) {
    it(`${name}: a damaged envelope verifies only if the bytes its signature covers are unchanged`, async () => {
      const original = parseNotationEnvelope(envelope, mediaType);
      await fc.assert(
        fc.asyncProperty(fc.oneof(mutateBytes(envelope), inner()), async (bytes) => {
          const r = await typedOutcomeAsync(() => verify(bytes, mediaType), [], bytes);
          assert.ok(r.ok);
          if (!r.value.valid) {
            // verifyNotationSignature turns an untyped exception into "could not be checked": that is a crash.
            assert.doesNotMatch(r.value.reason, /could not be checked/);
            return;
          }
          const parsed = parseNotationEnvelope(bytes, mediaType);
          assert.ok(parsed.signingInput.equals(original.signingInput), 'accepted a changed signing input');
          assert.ok(parsed.untrustedPayload.equals(original.untrustedPayload), 'accepted a changed payload');
        }),
        params(2000),
      );
    });
  }
});
