/** The verifier HTTP socket's form: what curl's --data-urlencode writes, parsed strictly, then the bindir contract. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseConfig } from '../../src/daemon/config.js';
import { FormError, MAX_FORM_BYTES, parseVerifyForm } from '../../src/daemon/verify-http-form.js';
import { UsageError } from '../../src/verifier/contract.js';
import { anyBytes, mutateBytes, params, typedOutcome } from '../helpers/fuzz.js';

const D = `sha256:${'a'.repeat(64)}`;
const MT = 'application/vnd.oci.descriptor.v1+json';
const descriptor = JSON.stringify({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D, size: 12 });
/** Encoded as curl's --data-urlencode does (RFC 3986 unreserved characters left as they are). */
const enc = (v: string): string => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const form = (fields: Array<[string, string]>): Buffer => Buffer.from(fields.map(([k, v]) => `${k}=${enc(v)}`).join('&'), 'latin1');
const good = (): Array<[string, string]> => [
  ['name', 'registry.example/app:v1'],
  ['digest', D],
  ['stdin-media-type', MT],
  ['timeout-ms', '8000'],
  ['descriptor', `${descriptor}\n`],
];

describe('verifier HTTP form', () => {
  it('reads the contract: name, descriptor (its size and media type), the wait', () => {
    const f = parseVerifyForm(form(good()));
    assert.deepEqual(f.request, {
      name: 'registry.example/app:v1',
      descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D, size: 12 },
    });
    assert.equal(f.timeoutMs, 8000);
  });

  it('takes values with every byte escaped, + as a space, and names that are not references (signetd refuses those itself)', () => {
    const f = parseVerifyForm(form([['name', 'x$(id)`id`;"\'&a=b%41+\u001b[31m'], ...good().slice(1)]));
    assert.equal(f.request.name, 'x$(id)`id`;"\'&a=b%41+\u001b[31m');
    assert.equal(
      parseVerifyForm(
        Buffer.from(
          form(good())
            .toString()
            .replace(enc(`${descriptor}\n`), enc(`${descriptor}\n`).replace(/%20/g, '+')),
        ),
      ).request.descriptor.size,
      12,
    );
  });

  const refusals: Array<[string, Buffer, RegExp, number?]> = [
    ['an unknown field', form([...good(), ['extra', '1']]), /unknown field "extra"/],
    ['an unknown field with a hostile name, described not quoted', Buffer.from(`${form(good()).toString()}&%1b%5b2J=1`), /a field with an unknown name/],
    ['a repeated field', form([...good(), ['name', 'other']]), /field "name" given twice/],
    ['a malformed escape', Buffer.from(form(good()).toString().replace('name=', 'name=%zz')), /malformed percent escape/],
    ['a raw control byte', Buffer.from(`${form(good()).toString()}\u0001`), /not percent-encoded/],
    ['a missing name', form(good().filter(([k]) => k !== 'name')), /missing -name/],
    ['another media type', form(good().map(([k, v]): [string, string] => [k, k === 'stdin-media-type' ? 'text/plain' : v])), /not supported/],
    ['a bad digest', form(good().map(([k, v]): [string, string] => [k, k === 'digest' ? 'sha256:00' : v])), /not a sha256 or sha512 digest/],
    ['a name with a space', form(good().map(([k, v]): [string, string] => [k, k === 'name' ? 'a b' : v])), /not an image reference/],
    ['a descriptor for another digest', form(good().map(([k, v]): [string, string] => [k, k === 'digest' ? `sha256:${'b'.repeat(64)}` : v])), /does not match/],
    ['no descriptor', form(good().filter(([k]) => k !== 'descriptor')), /not a JSON OCI descriptor/],
    ['a descriptor that is not JSON', form(good().map(([k, v]): [string, string] => [k, k === 'descriptor' ? 'hello' : v])), /not a JSON OCI descriptor/],
    ['a zero wait', form(good().map(([k, v]): [string, string] => [k, k === 'timeout-ms' ? '0' : v])), /timeout-ms/],
    ['a wait that is not a number', form(good().map(([k, v]): [string, string] => [k, k === 'timeout-ms' ? '1e3' : v])), /timeout-ms/],
    [
      'a descriptor over 1 MiB',
      form(good().map(([k, v]): [string, string] => [k, k === 'descriptor' ? 'a'.repeat((1 << 20) + 1) : v])),
      /larger than 1 MiB/,
      413,
    ],
    ['a body over the limit', Buffer.alloc(MAX_FORM_BYTES + 1, 0x61), /larger than 1 MiB/, 413],
  ];
  for (const [what, body, re, status] of refusals) {
    it(`refuses ${what}`, () => {
      assert.throws(
        () => parseVerifyForm(body),
        (err: unknown) => {
          assert.ok(err instanceof UsageError, String(err));
          assert.match(err.message, re);
          assert.equal(err instanceof FormError ? err.status : 400, status ?? 400);
          return true;
        },
      );
    });
  }
});

describe('verifier HTTP form, fuzzed', () => {
  it('any bytes, and any one edit of a good form: a request or a UsageError, never a crash or a hang', () => {
    const sample = form(good());
    fc.assert(
      fc.property(fc.oneof(anyBytes, mutateBytes(sample)), (body) => {
        const out = typedOutcome(() => parseVerifyForm(body), [UsageError], body);
        // Whatever is accepted satisfies the contract: a digest that the descriptor repeats.
        if (out.ok) assert.match(out.value.request.descriptor.digest, /^sha(256|512):[a-f0-9]+$/);
      }),
      params(400),
    );
  });
});

describe('config: verifySocket', () => {
  it('sits beside the gRPC socket unless named, and "" turns it off', () => {
    assert.equal(parseConfig('{}', 'c.yaml').verifySocket, '/run/signet/verify.sock');
    assert.equal(parseConfig('socket: /tmp/x/s.sock', 'c.yaml').verifySocket, '/tmp/x/verify.sock');
    assert.equal(parseConfig('verifySocket: /run/v.sock', 'c.yaml').verifySocket, '/run/v.sock');
    assert.equal(parseConfig('verifySocket: ""', 'c.yaml').verifySocket, '');
    assert.throws(() => parseConfig('verifySocket: relative.sock', 'c.yaml'), /verifySocket: must be an absolute path/);
    assert.throws(() => parseConfig('socket: /run/a.sock\nverifySocket: /run/a.sock', 'c.yaml'), /must not be the gRPC socket/);
  });
});
