/** Finding objects on a token and turning their attributes into Node public keys (and back, for import). */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import pkcs11js from './binding.js';
import { SignetError } from '../../errors.js';
import type { KeyAlgorithm } from '../types.js';
import type { Handle, PKCS11 } from './module.js';
import type { ObjectType, Pkcs11Uri } from './uri.js';

type Api = InstanceType<typeof PKCS11>;

export const CKK_EC_EDWARDS = 0x40;
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;

/** DER-encoded named-curve OIDs as CKA_EC_PARAMS carries them. */
export const CURVE_PARAMS: Record<'P-256' | 'P-384' | 'Ed25519', Buffer> = {
  'P-256': Buffer.from('06082a8648ce3d030107', 'hex'),
  'P-384': Buffer.from('06052b81040022', 'hex'),
  Ed25519: Buffer.from('06032b6570', 'hex'),
};
/** SoftHSM and others also write the Ed25519 curve as PrintableString "edwards25519". */
const ED25519_NAME = Buffer.from('130c656477617264733235353139', 'hex');

const CLASS_OF: Record<ObjectType, number> = {
  public: pkcs11js.CKO_PUBLIC_KEY,
  private: pkcs11js.CKO_PRIVATE_KEY,
  cert: pkcs11js.CKO_CERTIFICATE,
  'secret-key': pkcs11js.CKO_SECRET_KEY,
  data: pkcs11js.CKO_DATA,
};

export function classOf(type: ObjectType): number {
  return CLASS_OF[type];
}

export function typeOfClass(cls: number): ObjectType | 'other' {
  return (Object.entries(CLASS_OF).find(([, v]) => v === cls)?.[0] as ObjectType | undefined) ?? 'other';
}

/** Every object matching the URI's object attributes (class defaults to `defaultType`). */
export function findObjects(api: Api, session: Handle, uri: Pkcs11Uri, defaultType?: ObjectType): Handle[] {
  const template: Array<{ type: number; value: number | string | Buffer }> = [];
  const type = uri.type ?? defaultType;
  if (type !== undefined) template.push({ type: pkcs11js.CKA_CLASS, value: CLASS_OF[type] });
  if (uri.object !== undefined) template.push({ type: pkcs11js.CKA_LABEL, value: uri.object });
  if (uri.id !== undefined) template.push({ type: pkcs11js.CKA_ID, value: uri.id });
  api.C_FindObjectsInit(session, template);
  try {
    const out: Handle[] = [];
    for (;;) {
      const batch = api.C_FindObjects(session, 64);
      if (batch.length === 0) break;
      out.push(...batch);
      if (out.length > 10_000) break;
    }
    return out;
  } finally {
    api.C_FindObjectsFinal(session);
  }
}

/** Exactly one object, or KEY_NOT_FOUND / KEY_AMBIGUOUS naming the URI. */
export function findOne(api: Api, session: Handle, uri: Pkcs11Uri, defaultType: ObjectType, keyName: string): Handle {
  const found = findObjects(api, session, uri, defaultType);
  if (found.length === 0) throw new SignetError('KEY_NOT_FOUND', `key "${keyName}": no ${uri.type ?? defaultType} object matches ${uri.redacted}`);
  if (found.length > 1) throw new SignetError('KEY_AMBIGUOUS', `key "${keyName}": ${found.length} objects match ${uri.redacted}; add object= or id=`);
  return found[0]!;
}

export function attribute(api: Api, session: Handle, handle: Handle, type: number): Buffer | undefined {
  try {
    const [attr] = api.C_GetAttributeValue(session, handle, [{ type }]);
    const v = attr?.value;
    return Buffer.isBuffer(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** CKA_EC_POINT is a DER OCTET STRING around the point; some modules store the bare point. */
function unwrapOctetString(value: Buffer, expectedLengths: number[]): Buffer {
  if (expectedLengths.includes(value.length)) return value;
  if (value[0] === 0x04) {
    let pos = 1;
    let len = value[pos++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = (len << 8) | value[pos++]!;
    }
    if (pos + len === value.length) return value.subarray(pos);
  }
  return value;
}

/** The certificate of a certificate object, or undefined for key objects. */
export function readCertificate(api: Api, session: Handle, handle: Handle): X509Certificate | undefined {
  const cls = attribute(api, session, handle, pkcs11js.CKA_CLASS);
  if (cls === undefined || cls.readUInt32LE(0) !== pkcs11js.CKO_CERTIFICATE) return undefined;
  const der = attribute(api, session, handle, pkcs11js.CKA_VALUE);
  return der ? new X509Certificate(der) : undefined;
}

/** The public key of a public-key or certificate object, as a Node KeyObject. */
export function readPublicKey(api: Api, session: Handle, handle: Handle, keyName: string): KeyObject {
  const cls = api.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_CLASS }])[0]?.value as Buffer;
  if (cls.readUInt32LE(0) === pkcs11js.CKO_CERTIFICATE) {
    const der = attribute(api, session, handle, pkcs11js.CKA_VALUE);
    if (!der) throw new SignetError('KEY_INVALID', `key "${keyName}": certificate object has no value`);
    return createPublicKey({ key: `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`, format: 'pem' });
  }
  const keyType = (api.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_KEY_TYPE }])[0]?.value as Buffer).readUInt32LE(0);
  if (keyType === pkcs11js.CKK_RSA) {
    const n = attribute(api, session, handle, pkcs11js.CKA_MODULUS);
    const e = attribute(api, session, handle, pkcs11js.CKA_PUBLIC_EXPONENT);
    if (!n || !e) throw new SignetError('KEY_INVALID', `key "${keyName}": RSA object lacks modulus or exponent`);
    return createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') }, format: 'jwk' });
  }
  const params = attribute(api, session, handle, pkcs11js.CKA_EC_PARAMS);
  const point = attribute(api, session, handle, pkcs11js.CKA_EC_POINT);
  if (!params || !point) throw new SignetError('KEY_INVALID', `key "${keyName}": object is not an RSA, EC or Ed25519 public key`);
  if (keyType === CKK_EC_EDWARDS || params.equals(CURVE_PARAMS.Ed25519) || params.equals(ED25519_NAME)) {
    const x = unwrapOctetString(point, [32]);
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: x.toString('base64url') }, format: 'jwk' });
  }
  const curve = params.equals(CURVE_PARAMS['P-256'])
    ? { crv: 'P-256', size: 32 }
    : params.equals(CURVE_PARAMS['P-384'])
      ? { crv: 'P-384', size: 48 }
      : undefined;
  if (curve === undefined) throw new SignetError('KEY_INVALID', `key "${keyName}": unsupported EC curve (P-256, P-384 and Ed25519 are supported)`);
  const raw = unwrapOctetString(point, [1 + 2 * curve.size]);
  if (raw.length !== 1 + 2 * curve.size || raw[0] !== 0x04) throw new SignetError('KEY_INVALID', `key "${keyName}": EC point is not uncompressed`);
  return createPublicKey({
    key: { kty: 'EC', crv: curve.crv, x: raw.subarray(1, 1 + curve.size).toString('base64url'), y: raw.subarray(1 + curve.size).toString('base64url') },
    format: 'jwk',
  });
}

/** Attributes that describe `key` as a token public-key object (for `signet keys import`). */
export function publicKeyTemplate(key: KeyObject, algorithm: KeyAlgorithm): Array<{ type: number; value: number | boolean | Buffer }> {
  const jwk = key.export({ format: 'jwk' }) as { n?: string; e?: string; x?: string; y?: string; crv?: string };
  const octet = (b: Buffer) => Buffer.concat([Buffer.from([0x04, b.length]), b]);
  switch (algorithm) {
    case 'rsa':
      return [
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
        { type: pkcs11js.CKA_MODULUS, value: Buffer.from(jwk.n!, 'base64url') },
        { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from(jwk.e!, 'base64url') },
      ];
    case 'ed25519':
      return [
        { type: pkcs11js.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
        { type: pkcs11js.CKA_EC_PARAMS, value: CURVE_PARAMS.Ed25519 },
        { type: pkcs11js.CKA_EC_POINT, value: octet(Buffer.from(jwk.x!, 'base64url')) },
      ];
    case 'ecdsa-p256':
    case 'ecdsa-p384': {
      const point = Buffer.concat([Buffer.from([0x04]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
      return [
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
        { type: pkcs11js.CKA_EC_PARAMS, value: CURVE_PARAMS[algorithm === 'ecdsa-p256' ? 'P-256' : 'P-384'] },
        { type: pkcs11js.CKA_EC_POINT, value: octet(point) },
      ];
    }
    default:
      throw new SignetError('KEY_INVALID', `cannot import a ${algorithm} key to a token`);
  }
}
