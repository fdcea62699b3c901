/** The one redaction of key locations: PKCS#11 URIs without PINs in every output. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { keyLocation, redactKeyLocation } from '../../src/keys/location.js';
import { parsePkcs11Uri } from '../../src/keys/pkcs11/uri.js';
import { explain, formatExplanation } from '../../src/policy/explain.js';
import { buildPolicy } from '../../src/policy/load.js';
import { parseReference } from '../../src/registry/reference.js';

const PIN = '73;91x';

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

describe('redactKeyLocation(): the one redaction of key locations', () => {
  const cases: Array<[string, string]> = [
    [`pkcs11:token=t;object=k?module-path=/m.so&pin-value=${PIN}`, 'pkcs11:token=t;object=k?module-path=/m.so'],
    [`pkcs11:token=t;object=k?pin-value=${PIN}&module-path=/m.so`, 'pkcs11:token=t;object=k?module-path=/m.so'],
    [`pkcs11:token=t?pin-source=file:/etc/signet/pin`, 'pkcs11:token=t'],
    [`pkcs11:token=t?PIN-VALUE=${PIN}`, 'pkcs11:token=t'],
    [`pkcs11:token=t?pin%2Dvalue=${PIN}`, 'pkcs11:token=t'],
    [`pkcs11:token=t?pin-value=73&91x&module-path=/m.so`, 'pkcs11:token=t?module-path=/m.so'],
    [`pkcs11:token=t;pin-value=${PIN};object=k`, 'pkcs11:token=t'],
    [`pkcs11:token=t;pin-value=73?91x;object=k`, 'pkcs11:token=t'],
    [`PKCS11:token=t?pin-value=${PIN}`, 'PKCS11:token=t'],
    [`pkcs11:token=t;object=k;type=public`, 'pkcs11:token=t;object=k;type=public'],
    ['/etc/signet/keys/a.pub', '/etc/signet/keys/a.pub'],
    [` pkcs11:token=t?pin-value=${PIN}`, ' pkcs11:token=t?…'],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => assert.equal(redactKeyLocation(input), want));
  }

  it('is what parsed URIs print, and no parse error quotes a PIN (a PIN with ";" included)', () => {
    assert.equal(parsePkcs11Uri(`pkcs11:token=t;object=k?pin-value=${PIN}`).redacted, 'pkcs11:token=t;object=k');
    for (const uri of [
      `pkcs11:token=t;object=k?pin-value=${PIN}&color=red`,
      `pkcs11:token=t;bogus?pin-value=${PIN}`,
      `pkcs11:token=t?pin-value=73&91x`,
      `pkcs11:token=t?pin-value=73&91x=1`,
      `pkcs11:token=t?PIN-VALUE=${PIN}`,
      `pkcs11:token=t;pin-value=${PIN}`,
      `pkcs11:token=t?pin-value=${PIN}&pin-source=file:/p`,
      `pkcs11:token=t?pin-value=${PIN}&pin-value=${PIN}`,
    ]) {
      const message = errorOf(() => parsePkcs11Uri(uri));
      assert.notEqual(message, '', `${uri} should be refused`);
      assert.ok(!message.includes('91x') && !message.includes('73;'), `${uri}: ${message}`);
    }
  });

  it('property: a PIN (any characters but "&") never survives, in the redaction or in a parse error', () => {
    const pinChar = fc.constantFrom(...'abcXYZ019;?=%/:,.-_ ~!'.split(''));
    fc.assert(
      fc.property(
        fc.array(pinChar, { maxLength: 20 }).map((a) => `Q7${a.join('')}Z9`),
        fc.boolean(),
        fc.constantFrom('pin-value', 'PIN-value', 'pin%2dvalue', 'pin-source'),
        (pin, pinFirst, attr) => {
          const query = pinFirst ? `${attr}=${pin}&module-path=/usr/lib/m.so` : `module-path=/usr/lib/m.so&${attr}=${pin}`;
          const uri = `pkcs11:token=tok;object=obj?${query}`;
          for (const text of [redactKeyLocation(uri), errorOf(() => parsePkcs11Uri(uri)), keyLocation({ pkcs11: uri })]) {
            assert.ok(!text.includes('Q7') && !text.includes('Z9'), `${uri} → ${text}`);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('keyLocation() names every kind of key', () => {
    assert.equal(keyLocation({ file: '/k.pub' }), 'file:/k.pub');
    assert.equal(keyLocation({ certificates: '/ca.pem' }), 'file:/ca.pem');
    assert.equal(keyLocation({ sigstore: { trustedRoot: '/root.json', issuer: 'i' } }), 'sigstore:/root.json');
    assert.equal(keyLocation({ pkcs11: `pkcs11:token=t?pin-value=${PIN}` }), 'pkcs11:token=t');
    assert.equal(keyLocation(undefined), 'undefined');
  });
});

describe('signet policy explain: key locations without PINs', () => {
  it('prints the PKCS#11 URI of a key without its pin-value, in text and JSON', () => {
    const policy = buildPolicy([
      {
        path: '/etc/signet/policy.d/p.yaml',
        text: [
          'apiVersion: signet/v1',
          'keys:',
          `  hsm: { pkcs11: "pkcs11:token=node-trust;object=release?pin-value=${PIN}" }`,
          '  pem: { file: /etc/signet/keys/a.pub }',
          'default:',
          '  action: verify',
          '  signatures:',
          '    - { keys: [hsm, pem], threshold: 1 }',
        ].join('\n'),
      },
    ]);
    const e = explain(policy, parseReference('registry.example.com/app:1'));
    for (const text of [formatExplanation(e), JSON.stringify(e)]) {
      assert.ok(!text.includes('91x') && !text.includes('pin-value'), text);
      assert.match(text, /pkcs11:token=node-trust;object=release/);
      assert.match(text, /file:\/etc\/signet\/keys\/a\.pub/);
    }
  });
});
