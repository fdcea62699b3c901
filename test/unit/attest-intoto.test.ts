import assert from 'node:assert/strict';
import { isSignetError } from '../../src/errors.js';
import {
  INTOTO_STATEMENT_V01,
  INTOTO_STATEMENT_V1,
  buildStatement,
  parseStatement,
  serializeStatement,
  statementCoversDigest,
  subjectForDigest,
} from '../../src/formats/intoto.js';

const HEX = '16649ba604d7f9849f179f899057ad45be3693bb1e21df3e83ea23806743ebac';
const DIGEST = `sha256:${HEX}`;
const OTHER = 'sha256:59a74fbb9ab67bcee2e934384920300a692dfea33ec5bd1d0deaac3c0a97ea4b';

function malformed(doc: unknown, re: RegExp): void {
  assert.throws(
    () => parseStatement(Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc))),
    (err: unknown) => {
      assert.ok(isSignetError(err, 'SIGNATURE_MALFORMED'), `expected SIGNATURE_MALFORMED, got ${String(err)}`);
      assert.match(err.message, re);
      return true;
    },
  );
}

describe('in-toto statements', () => {
  const statement = buildStatement([subjectForDigest('127.0.0.1:5000/signet/app', DIGEST)], 'https://example.com/p/v1', { a: 1 });

  it('builds a v1 statement in the spec’s shape and field order', () => {
    assert.deepEqual(JSON.parse(serializeStatement(statement).toString()), {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: '127.0.0.1:5000/signet/app', digest: { sha256: HEX } }],
      predicateType: 'https://example.com/p/v1',
      predicate: { a: 1 },
    });
    assert.deepEqual(Object.keys(statement), ['_type', 'subject', 'predicateType', 'predicate']);
    assert.throws(() => buildStatement([], 'p', {}), /at least one subject/);
    assert.throws(() => subjectForDigest('x', 'sha256:abc'), /not a digest/);
  });

  it('parses what it builds, and checks the subject digest', () => {
    const parsed = parseStatement(serializeStatement(statement));
    assert.deepEqual(parsed, statement);
    assert.equal(statementCoversDigest(parsed, DIGEST), true);
    assert.equal(statementCoversDigest(parsed, OTHER), false);
    assert.equal(statementCoversDigest(parsed, HEX), false, 'a bare hex is not a digest');
    assert.equal(statementCoversDigest(parsed, `sha512:${HEX}${HEX}`), false);
  });

  it('covers a digest among several subjects; hex compared in lower case', () => {
    const doc = {
      _type: INTOTO_STATEMENT_V1,
      subject: [{ name: 'a', digest: { sha256: OTHER.slice(7) } }, { digest: { sha256: HEX.toUpperCase(), sha512: 'ab'.repeat(64) } }],
      predicateType: 'p',
    };
    const parsed = parseStatement(JSON.stringify(doc));
    assert.equal(statementCoversDigest(parsed, DIGEST), true);
    assert.equal(statementCoversDigest(parsed, OTHER), true);
    assert.equal(parsed.predicate, undefined, 'predicate is optional in v1');
  });

  it('accepts the v0.1 _type cosign writes', () => {
    const v01 = {
      _type: INTOTO_STATEMENT_V01,
      predicateType: 'https://cosign.sigstore.dev/attestation/vuln/v1',
      subject: [{ name: 'r', digest: { sha256: HEX } }],
      predicate: {},
    };
    assert.equal(parseStatement(JSON.stringify(v01))._type, INTOTO_STATEMENT_V01);
    malformed({ ...v01, subject: [{ name: 'r', uri: 'x', digest: { sha256: HEX } }] }, /unknown field "uri"/);
  });

  it('accepts v1 ResourceDescriptor subject fields', () => {
    const doc = {
      _type: INTOTO_STATEMENT_V1,
      subject: [{ name: 'r', uri: 'oci://r', mediaType: 'application/vnd.oci.image.manifest.v1+json', annotations: {}, digest: { sha256: HEX } }],
      predicateType: 'p',
      predicate: {},
    };
    assert.equal(statementCoversDigest(parseStatement(JSON.stringify(doc)), DIGEST), true);
  });

  const good = { _type: INTOTO_STATEMENT_V1, subject: [{ name: 'r', digest: { sha256: HEX } }], predicateType: 'p', predicate: {} };
  it('refuses an unknown _type', () => malformed({ ...good, _type: 'https://in-toto.io/Statement/v2' }, /_type is "https:\/\/in-toto\.io\/Statement\/v2"/));
  it('refuses a missing _type', () => malformed({ subject: good.subject, predicateType: 'p' }, /missing "_type"/));
  it('refuses an unknown top-level field', () => malformed({ ...good, extra: true }, /unknown field "extra"/));
  it('refuses duplicate keys', () =>
    malformed(
      `{"_type":"${INTOTO_STATEMENT_V1}","subject":[{"digest":{"sha256":"${HEX}","sha256":"${OTHER.slice(7)}"}}],"predicateType":"p"}`,
      /duplicate key/,
    ));
  it('refuses an empty subject list', () => malformed({ ...good, subject: [] }, /subject is not a non-empty array/));
  it('refuses a subject without digest', () => malformed({ ...good, subject: [{ name: 'r' }] }, /missing "digest"/));
  it('refuses an empty digest', () => malformed({ ...good, subject: [{ digest: {} }] }, /digest is not a non-empty object/));
  it('refuses a short sha256', () => malformed({ ...good, subject: [{ digest: { sha256: 'abc' } }] }, /digest\.sha256 is not 64 hex digits/));
  it('refuses a non-string digest', () => malformed({ ...good, subject: [{ digest: { sha256: 5 } }] }, /digest\.sha256 is not a string/));
  it('refuses a non-string name', () => malformed({ ...good, subject: [{ name: 1, digest: { sha256: HEX } }] }, /name is not a string/));
  it('refuses a predicate that is not an object', () => malformed({ ...good, predicate: [1] }, /predicate is not an object/));
  it('refuses an empty predicateType', () => malformed({ ...good, predicateType: '' }, /predicateType is not a non-empty string/));
  it('refuses not JSON', () => malformed('{', /not valid JSON/));
});
