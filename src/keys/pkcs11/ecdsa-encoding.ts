/**
 * ECDSA signature encodings: formats (cosign, DSSE) carry DER `ECDSA-Sig-Value`, PKCS#11 CKM_ECDSA
 * speaks raw r||s. This converts between the two encodings; no arithmetic on the values.
 */
import { SignetError } from '../../errors.js';

function derLength(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  if (len < 0x100) return Buffer.from([0x81, len]);
  return Buffer.from([0x82, len >> 8, len & 0xff]);
}

function derInteger(unsigned: Buffer): Buffer {
  let v = unsigned;
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  v = v.subarray(i);
  if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return Buffer.concat([Buffer.from([0x02]), derLength(v.length), v]);
}

export function rawToDer(raw: Uint8Array): Buffer {
  if (raw.length % 2 !== 0 || raw.length === 0) throw new SignetError('SIGNATURE_MALFORMED', 'raw ECDSA signature has odd length');
  const half = raw.length / 2;
  const body = Buffer.concat([derInteger(Buffer.from(raw.subarray(0, half))), derInteger(Buffer.from(raw.subarray(half)))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/** DER → raw r||s with each half `size` bytes; throws SIGNATURE_MALFORMED on anything but a strict DER SEQUENCE of two INTEGERs. */
export function derToRaw(der: Uint8Array, size: number): Buffer {
  const fail = (): never => {
    throw new SignetError('SIGNATURE_MALFORMED', 'ECDSA signature is not a DER SEQUENCE of two INTEGERs');
  };
  let pos = 0;
  const readLen = (): number => {
    const first = der[pos++];
    if (first === undefined) return fail();
    if (first < 0x80) return first;
    const n = first & 0x7f;
    if (n === 0 || n > 2) return fail();
    let len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | (der[pos++] ?? fail());
    return len;
  };
  if (der[pos++] !== 0x30) fail();
  const seqLen = readLen();
  if (pos + seqLen !== der.length) fail();
  const readInt = (): Buffer => {
    if (der[pos++] !== 0x02) fail();
    const len = readLen();
    if (len === 0 || pos + len > der.length) fail();
    let v = Buffer.from(der.subarray(pos, pos + len));
    pos += len;
    while (v.length > 1 && v[0] === 0) v = v.subarray(1);
    if (v.length > size) fail();
    return Buffer.concat([Buffer.alloc(size - v.length), v]);
  };
  const r = readInt();
  const s = readInt();
  if (pos !== der.length) fail();
  return Buffer.concat([r, s]);
}
