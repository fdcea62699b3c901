import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode as cborDecode, encode as cborEncode, Tag } from 'cbor2';
import { identityMatches, verifyNotation } from '../../src/formats/notation.js';
import { ROOT } from '../helpers/daemon.js';

const FIX = join(ROOT, 'test/fixtures/notation');
const jws = readFileSync(join(FIX, 'jws_signature.sig'));
const cose = readFileSync(join(FIX, 'cose_signature.sig'));
const root = new X509Certificate(readFileSync(join(FIX, 'alpine-trust-root.pem')));
const manifest = readFileSync(join(FIX, 'alpine-oci-layout/blobs/sha256/19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0'));
const expected = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0', size: manifest.length };

function otherCert(): X509Certificate {
  const dir = mkdtempSync(join(tmpdir(), 'notation-other-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k'), '-out', join(dir, 'c'), '-days', '1', '-subj', '/C=US/ST=WA/O=Notary/CN=alpine'], { stdio: 'ignore' });
  return new X509Certificate(readFileSync(join(dir, 'c')));
}

/** JWS with one part of the envelope changed: decode, change a byte, encode again. */
function changedJws(part: 'payload' | 'signature' | 'cert', index: number): Buffer {
  const doc = JSON.parse(jws.toString()) as { payload: string; signature: string; header: { x5c: string[] } };
  const flip = (b: Buffer) => {
    const c = Buffer.from(b);
    c[index % c.length] ^= 0x01;
    return c;
  };
  if (part === 'payload') doc.payload = flip(Buffer.from(doc.payload, 'base64url')).toString('base64url');
  if (part === 'signature') doc.signature = flip(Buffer.from(doc.signature, 'base64url')).toString('base64url');
  if (part === 'cert') doc.header.x5c[0] = flip(Buffer.from(doc.header.x5c[0]!, 'base64')).toString('base64');
  return Buffer.from(JSON.stringify(doc));
}

function changedCose(part: 'payload' | 'signature' | 'cert', index: number): Buffer {
  const tag = cborDecode(new Uint8Array(cose), { preferMap: true } as never) as Tag;
  const [p, u, payload, sig] = tag.contents as [Uint8Array, Map<unknown, unknown>, Uint8Array, Uint8Array];
  const flip = (b: Uint8Array) => {
    const c = Buffer.from(b);
    c[index % c.length] ^= 0x01;
    return new Uint8Array(c);
  };
  const chain = u.get(33) as Uint8Array[];
  const newU = new Map(u);
  if (part === 'cert') newU.set(33, [flip(chain[0]!)]);
  return Buffer.from(cborEncode(new Tag(18, [p, newU, part === 'payload' ? flip(payload) : payload, part === 'signature' ? flip(sig) : sig])));
}

describe('Notation signatures made by the real notation signer', () => {
  for (const [name, bytes, mediaType] of [['JWS', jws, 'application/jose+json'], ['COSE', cose, 'application/cose']] as const) {
    describe(name, () => {
      it('verifies against the alpine trust root for the alpine manifest', () => {
        const r = verifyNotation(bytes, mediaType, expected, [root], 'alpine-ca');
        assert.equal(r.valid, true, r.valid ? '' : r.reason);
        assert.equal(r.valid && r.annotations['signingScheme'], 'notary.x509');
      });
      it('refuses with an empty or another trust store', () => {
        const empty = verifyNotation(bytes, mediaType, expected, [], 'empty');
        assert.match(!empty.valid ? empty.reason : '', /does not lead to a certificate of trust store "empty"/);
        assert.equal(verifyNotation(bytes, mediaType, expected, [otherCert()], 'other').valid, false);
      });
      it('refuses it for another digest, size or media type', () => {
        const r = verifyNotation(bytes, mediaType, { ...expected, digest: `sha256:${'1'.repeat(64)}` }, [root], 'alpine-ca');
        assert.equal(!r.valid && r.code, 'DIGEST_MISMATCH');
        assert.equal(verifyNotation(bytes, mediaType, { ...expected, size: expected.size + 1 }, [root], 'alpine-ca').valid, false);
        assert.equal(verifyNotation(bytes, mediaType, { ...expected, mediaType: 'application/vnd.oci.image.index.v1+json' }, [root], 'alpine-ca').valid, false);
      });
      it('applies trusted identities (x509.subject)', () => {
        assert.equal(verifyNotation(bytes, mediaType, expected, [root], 'alpine-ca', { trustedIdentities: ['x509.subject: C=US, ST=WA, O=Notary'] }).valid, true);
        const r = verifyNotation(bytes, mediaType, expected, [root], 'alpine-ca', { trustedIdentities: ['x509.subject: C=US, ST=WA, O=Acme'] });
        assert.equal(!r.valid && r.code, 'IDENTITY_MISMATCH');
      });
      it('refuses it after any single byte of payload, signature or certificate changes', () => {
        const change = name === 'JWS' ? changedJws : changedCose;
        for (const part of ['payload', 'signature', 'cert'] as const) {
          const length = part === 'signature' ? 256 : part === 'payload' ? 150 : 836;
          for (let i = 0; i < length; i += part === 'cert' ? 5 : 1) {
            const r = verifyNotation(change(part, i), mediaType, expected, [root], 'alpine-ca');
            assert.equal(r.valid, false, `${part} byte ${i} changed, still verified`);
          }
        }
      });
    });
  }

  it('refuses malformed envelopes with a clear reason', () => {
    const doc = JSON.parse(jws.toString()) as Record<string, unknown>;
    const ph = JSON.parse(Buffer.from(doc['protected'] as string, 'base64url').toString()) as Record<string, unknown>;
    const withHeader = (h: Record<string, unknown>) => Buffer.from(JSON.stringify({ ...doc, protected: Buffer.from(JSON.stringify(h)).toString('base64url') }));
    const cases: Array<[Buffer, string, RegExp]> = [
      [Buffer.from('not json'), 'application/jose+json', /not valid JSON/],
      [Buffer.from('{}'), 'application/jose+json', /missing "payload"/],
      [withHeader({ ...ph, crit: [...(ph['crit'] as string[]), 'x.unknown'], 'x.unknown': 1 }), 'application/jose+json', /critical header "x.unknown" is not understood/],
      [withHeader({ ...ph, crit: [] }), 'application/jose+json', /must be marked critical/],
      [withHeader({ ...ph, alg: 'RS256' }), 'application/jose+json', /alg "RS256" is not allowed/],
      [withHeader({ ...ph, 'io.cncf.notary.signingScheme': 'notary.other' }), 'application/jose+json', /signing scheme/],
      [Buffer.from([0xa0]), 'application/cose', /not a COSE_Sign1/],
      [jws, 'text/plain', /envelope media type/],
    ];
    for (const [bytes, mt, re] of cases) {
      const r = verifyNotation(bytes, mt, expected, [root], 'alpine-ca');
      assert.equal(r.valid, false);
      assert.match(!r.valid ? r.reason : '', re);
    }
  });

  it('matches distinguished names as sets of attributes', () => {
    assert.equal(identityMatches('x509.subject: C=US, ST=WA, O=Notary', 'C=US\nST=WA\nL=Seattle\nO=Notary\nCN=alpine'), true);
    assert.equal(identityMatches('x509.subject: O=Notary, C=US, ST=WA, CN=alpine', 'C=US\nST=WA\nL=Seattle\nO=Notary\nCN=alpine'), true);
    assert.equal(identityMatches('x509.subject: C=US, ST=WA, O=Other', 'C=US\nST=WA\nO=Notary'), false);
    assert.equal(identityMatches('*', 'C=US'), true);
    assert.equal(identityMatches('subject: C=US', 'C=US'), false);
  });
});
