/** Reading the certificates and base64 that cosign puts in `.sig` layer annotations (shared by keyless and PKI). */
import { X509Certificate } from 'node:crypto';
import { SignetError } from '../errors.js';
import { isPlainObject, parseStrictJson } from './strict-json.js';

/** The Rekor record annotation (`{SignedEntryTimestamp, Payload: {body, integratedTime, logIndex, logID}}`). */
export const COSIGN_BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';
const BUNDLE = COSIGN_BUNDLE_ANNOTATION;
const MAX_ANNOTATION_CHARS = 64 * 1024;

export const malformed = (why: string): never => {
  throw new SignetError('SIGNATURE_MALFORMED', `cosign signature: ${why}`);
};

/** Base64 as Go's decoder takes it in these annotations: line breaks allowed, otherwise strict. */
export function base64Field(value: unknown, what: string): Buffer {
  if (typeof value !== 'string') return malformed(`${what} is not a string`);
  const compact = value.replace(/[\r\n]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) return malformed(`${what} is not valid base64`);
  return Buffer.from(compact, 'base64');
}

/** The DER of the one certificate in a PEM text. */
export function singleCertificateDer(pem: string, what: string): Buffer {
  const blocks = [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
  if (blocks.length !== 1) return malformed(`${what} holds ${blocks.length} PEM certificates, not one`);
  const der = base64Field(blocks[0]![1]!.replace(/\s/g, ''), what);
  try {
    new X509Certificate(der);
  } catch {
    return malformed(`${what} is not an X.509 certificate`);
  }
  return der;
}

/** The DER of every certificate in a PEM list; anything else in the text is malformed. */
export function pemCertificatesDer(pem: string, what: string): Buffer[] {
  const blocks = [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
  const rest = pem.replace(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g, '').trim();
  if (blocks.length === 0 || rest !== '') malformed(`${what} is not a list of PEM certificates`);
  return blocks.map((b, i) => base64Field(b[1]!.replace(/\s/g, ''), `${what} certificate ${i}`));
}

export interface RekorRecord {
  set: Buffer;
  body: Buffer;
  integratedTime: number;
  logIndex: number;
  logId: Buffer;
}

export function parseRekorRecord(text: string): RekorRecord {
  if (text.length > MAX_ANNOTATION_CHARS) malformed(`${BUNDLE} is longer than ${MAX_ANNOTATION_CHARS} characters`);
  const doc = parseStrictJson(text, BUNDLE, 'SIGNATURE_MALFORMED');
  if (!isPlainObject(doc) || !isPlainObject(doc['Payload'])) return malformed(`${BUNDLE} has no Payload object`);
  const p = doc['Payload'];
  const int = (v: unknown, what: string): number =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : malformed(`${BUNDLE} ${what} is not a non-negative integer`);
  const logID = p['logID'];
  if (typeof logID !== 'string' || !/^[0-9a-f]{64}$/.test(logID)) malformed(`${BUNDLE} Payload.logID is not 64 hex digits`);
  return {
    set: base64Field(doc['SignedEntryTimestamp'], `${BUNDLE} SignedEntryTimestamp`),
    body: base64Field(p['body'], `${BUNDLE} Payload.body`),
    integratedTime: int(p['integratedTime'], 'Payload.integratedTime'),
    logIndex: int(p['logIndex'], 'Payload.logIndex'),
    logId: Buffer.from(logID as string, 'hex'),
  };
}

/** The hashedrekord body's kind, version and certificate (what it says was logged). */
export function readBody(body: Buffer): { kind: string; apiVersion: string; certificateDer?: Buffer } {
  const doc = parseStrictJson(body.toString('utf8'), 'Rekor entry body', 'SIGNATURE_MALFORMED');
  if (!isPlainObject(doc) || typeof doc['kind'] !== 'string' || typeof doc['apiVersion'] !== 'string')
    return malformed('the Rekor entry body has no kind and apiVersion');
  const spec = doc['spec'];
  const sig = isPlainObject(spec) ? spec['signature'] : undefined;
  const pk = isPlainObject(sig) ? sig['publicKey'] : undefined;
  const content = isPlainObject(pk) ? pk['content'] : undefined;
  let certificateDer: Buffer | undefined;
  if (typeof content === 'string') {
    const pem = base64Field(content, 'Rekor entry body publicKey').toString('utf8');
    if (pem.includes('BEGIN CERTIFICATE')) certificateDer = singleCertificateDer(pem, 'Rekor entry body certificate');
  }
  return { kind: doc['kind'], apiVersion: doc['apiVersion'], ...(certificateDer !== undefined ? { certificateDer } : {}) };
}
