import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePkcs11Uri, pctEncode, resolvePin } from '../../src/keys/pkcs11/uri.js';
import { derToRaw, rawToDer } from '../../src/keys/pkcs11/ecdsa-encoding.js';
import { generateKeyPairSync, sign } from 'node:crypto';

describe('RFC 7512 PKCS#11 URIs', () => {
  it('reads path and query attributes, percent-decoding values and ids', () => {
    const u = parsePkcs11Uri(
      'pkcs11:token=node%20trust;object=release-2026;id=%01%a2;type=public;slot-id=3;serial=abc?module-path=/usr/lib/x.so&pin-value=1234',
    );
    assert.equal(u.token, 'node trust');
    assert.equal(u.object, 'release-2026');
    assert.deepEqual(u.id, Buffer.from([0x01, 0xa2]));
    assert.equal(u.type, 'public');
    assert.equal(u.slotId, 3);
    assert.equal(u.serial, 'abc');
    assert.equal(u.modulePath, '/usr/lib/x.so');
    assert.equal(u.pinValue, '1234');
    assert.equal(u.redacted, 'pkcs11:token=node%20trust;object=release-2026;id=%01%a2;type=public;slot-id=3;serial=abc?module-path=/usr/lib/x.so');
    assert.ok(!u.redacted.includes('1234'));
  });

  it('reads the PIN from a pin-source file, trimming the newline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pin-'));
    writeFileSync(join(dir, 'pin'), '987654\n');
    const u = parsePkcs11Uri(`pkcs11:token=t?pin-source=file:${join(dir, 'pin')}`);
    assert.equal(resolvePin(u), '987654');
    assert.ok(!u.redacted.includes('pin'));
    assert.throws(() => resolvePin(parsePkcs11Uri('pkcs11:token=t?pin-source=file:/nonexistent/pin')), /cannot read pin-source/);
    assert.equal(resolvePin(parsePkcs11Uri('pkcs11:token=t'), 'fallback'), 'fallback');
  });

  const bad: Array<[string, RegExp]> = [
    ['token=x', /must start with "pkcs11:"/],
    ['pkcs11:token=x;color=red', /unknown path attribute "color"/],
    ['pkcs11:token=x;token=y', /given twice/],
    ['pkcs11:id=%zz', /bad percent-encoding/],
    ['pkcs11:type=secret', /type must be one of/],
    ['pkcs11:slot-id=abc', /slot-id must be a number/],
    ['pkcs11:token=x?pin-value=1&pin-source=file:/p', /not both/],
    ['pkcs11:token=x?pin-source=http://pin', /must be a file: path/],
    ['pkcs11:token=x?bogus=1', /unknown query attribute/],
  ];
  for (const [uri, re] of bad) {
    it(`rejects ${uri}`, () =>
      assert.throws(
        () => parsePkcs11Uri(uri),
        (e: Error & { code?: string }) => e.code === 'KEY_INVALID' && re.test(e.message),
      ));
  }

  it('never puts a PIN into an error message', () => {
    assert.throws(
      () => parsePkcs11Uri('pkcs11:token=x;wrong?pin-value=SECRET99'),
      (e: Error) => !e.message.includes('SECRET99'),
    );
  });

  it('percent-encodes what it prints', () => {
    assert.equal(pctEncode('a b/c'), 'a%20b%2fc');
    assert.equal(pctEncode(Buffer.from([1, 255])), '%01%ff');
  });
});

describe('ECDSA signature encodings', () => {
  it('converts DER to raw r||s and back without changing the signature', () => {
    for (const [curve, size] of [
      ['P-256', 32],
      ['P-384', 48],
    ] as const) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
      for (let i = 0; i < 50; i++) {
        const der = sign('sha256', Buffer.from(`m${i}`), privateKey);
        const raw = sign('sha256', Buffer.from(`m${i}`), { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const converted = derToRaw(der, size);
        assert.equal(converted.length, 2 * size);
        assert.deepEqual(rawToDer(derToRaw(der, size)), der);
        assert.equal(rawToDer(raw).length > 0, true);
      }
    }
  });
  it('rejects malformed DER', () => {
    for (const bad of ['', '30', '3006020100020100ff', '3103020100', '300402010002']) {
      assert.throws(
        () => derToRaw(Buffer.from(bad, 'hex'), 32),
        (e: { code?: string }) => e.code === 'SIGNATURE_MALFORMED',
      );
    }
  });
});
