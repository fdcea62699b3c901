/** Key management on a token: generate, list, export and import keys. */
import { randomBytes, type KeyObject } from 'node:crypto';
import pkcs11js from './binding.js';
import { SignetError } from '../../errors.js';
import { fingerprintOf, keyAlgorithmOf } from '../node-key.js';
import { publicKeyFromPem } from '../pem.js';
import type { KeyAlgorithm } from '../types.js';
import { callAsync, type Pkcs11Module } from './module.js';
import {
  attribute,
  CKK_EC_EDWARDS,
  CKM_EC_EDWARDS_KEY_PAIR_GEN,
  CURVE_PARAMS,
  findObjects,
  findOne,
  publicKeyTemplate,
  readPublicKey,
  typeOfClass,
} from './objects.js';
import { pctEncode, type Pkcs11Uri } from './uri.js';

export type GenerateAlgorithm = 'ec-p256' | 'ec-p384' | 'rsa-3072' | 'ed25519';
export const GENERATE_ALGORITHMS: GenerateAlgorithm[] = ['ec-p256', 'ec-p384', 'rsa-3072', 'ed25519'];

export interface TokenObject {
  label: string;
  id: string;
  type: string;
  algorithm: string;
  fingerprint?: string;
  uri: string;
}

/** The URI to paste into a policy for an object. */
export function objectUri(token: string, label: string, id: Buffer, type: string): string {
  return `pkcs11:token=${pctEncode(token)}${label ? `;object=${pctEncode(label)}` : ''}${id.length ? `;id=${pctEncode(id)}` : ''};type=${type}`;
}

export async function generateKeyPair(
  module: Pkcs11Module,
  uri: Pkcs11Uri,
  pin: string,
  algorithm: GenerateAlgorithm,
  label: string,
  id: Buffer,
): Promise<{ publicKey: KeyObject; uri: string }> {
  if (uri.token === undefined) throw new SignetError('INVALID_ARGUMENT', 'the key URI must name the token (token=…)');
  const what = `generating ${algorithm} key "${label}" on ${uri.redacted}`;
  const common = [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: id },
  ];
  const pub: Array<{ type: number; value: number | boolean | string | Buffer }> = [
    ...common,
    { type: pkcs11js.CKA_VERIFY, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: false },
  ];
  const priv: Array<{ type: number; value: number | boolean | string | Buffer }> = [
    ...common,
    { type: pkcs11js.CKA_SIGN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
  ];
  let mechanism: number;
  switch (algorithm) {
    case 'ec-p256':
    case 'ec-p384':
      mechanism = pkcs11js.CKM_EC_KEY_PAIR_GEN;
      pub.push({ type: pkcs11js.CKA_EC_PARAMS, value: CURVE_PARAMS[algorithm === 'ec-p256' ? 'P-256' : 'P-384'] });
      break;
    case 'rsa-3072':
      mechanism = pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN;
      pub.push({ type: pkcs11js.CKA_MODULUS_BITS, value: 3072 }, { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) });
      break;
    case 'ed25519':
      mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
      pub.push({ type: pkcs11js.CKA_EC_PARAMS, value: CURVE_PARAMS.Ed25519 });
      break;
  }
  return module.withSession(uri, pin, what, async (api, session) => {
    if (findObjects(api, session, { ...withoutType(uri), object: label, id }).length > 0) {
      throw new SignetError('INVALID_ARGUMENT', `${what}: an object with this label and id already exists`);
    }
    const keys = await callAsync<{ publicKey: Buffer; privateKey: Buffer }>('C_GenerateKeyPair', (cb) =>
      api.C_GenerateKeyPair(session, { mechanism }, pub, priv, cb as never),
    );
    const publicKey = readPublicKey(api, session, keys.publicKey, label);
    return { publicKey, uri: objectUri(uri.token!, label, id, 'public') };
  });
}

export async function listObjects(module: Pkcs11Module, uri: Pkcs11Uri, pin: string | undefined): Promise<TokenObject[]> {
  return module.withSession(uri, pin, `listing ${uri.redacted}`, (api, session) => {
    const token = uri.token ?? '';
    return findObjects(api, session, uri).map((h): TokenObject => {
      const label = attribute(api, session, h, pkcs11js.CKA_LABEL)?.toString('utf8') ?? '';
      const id = attribute(api, session, h, pkcs11js.CKA_ID) ?? Buffer.alloc(0);
      const type = typeOfClass(attribute(api, session, h, pkcs11js.CKA_CLASS)?.readUInt32LE(0) ?? -1);
      const keyType = attribute(api, session, h, pkcs11js.CKA_KEY_TYPE)?.readUInt32LE(0);
      let algorithm =
        keyType === pkcs11js.CKK_RSA ? 'rsa' : keyType === pkcs11js.CKK_EC ? 'ec' : keyType === CKK_EC_EDWARDS ? 'ed25519' : type === 'cert' ? 'x509' : '-';
      let fingerprint: string | undefined;
      if (type === 'public' || type === 'cert') {
        try {
          const key = readPublicKey(api, session, h, label);
          algorithm = keyAlgorithmOf(key);
          fingerprint = fingerprintOf(key);
        } catch {
          /* unsupported key type: listed without details */
        }
      }
      return {
        label,
        id: id.toString('hex'),
        type,
        algorithm,
        ...(fingerprint ? { fingerprint } : {}),
        uri: objectUri(token, label, id, type === 'other' ? 'data' : type),
      };
    });
  });
}

export async function exportPublicKey(module: Pkcs11Module, uri: Pkcs11Uri, pin: string | undefined): Promise<string> {
  return module.withSession(uri, pin, `exporting ${uri.redacted}`, (api, session) =>
    readPublicKey(api, session, findOne(api, session, uri, 'public', uri.object ?? uri.redacted), uri.object ?? uri.redacted)
      .export({ type: 'spki', format: 'pem' })
      .toString(),
  );
}

export async function importPublicKey(
  module: Pkcs11Module,
  uri: Pkcs11Uri,
  pin: string,
  pem: string,
  label: string,
  id: Buffer,
): Promise<{ algorithm: KeyAlgorithm; fingerprint: string; uri: string }> {
  if (uri.token === undefined) throw new SignetError('INVALID_ARGUMENT', 'the key URI must name the token (token=…)');
  const key = publicKeyFromPem(pem, 'the file');
  const algorithm = keyAlgorithmOf(key);
  return module.withSession(uri, pin, `importing into ${uri.redacted}`, (api, session) => {
    if (findObjects(api, session, { ...uri, object: label, id, type: 'public' }).length > 0)
      throw new SignetError('INVALID_ARGUMENT', `a public key labelled "${label}" with this id already exists on the token`);
    api.C_CreateObject(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_VERIFY, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
      ...publicKeyTemplate(key, algorithm),
    ]);
    return { algorithm, fingerprint: fingerprintOf(key), uri: objectUri(uri.token!, label, id, 'public') };
  });
}

export function randomId(): Buffer {
  return randomBytes(8);
}

/** The URI without its `type` attribute (a new object is looked for whatever its class). */
function withoutType(uri: Pkcs11Uri): Omit<Pkcs11Uri, 'type'> {
  const { type: _type, ...rest } = uri;
  return rest;
}
