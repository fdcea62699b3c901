/** Reading the certificates and base64 that cosign puts in `.sig` layer annotations (shared by keyless and PKI). */
import { X509Certificate } from 'node:crypto';
import { SignetError } from '../errors.js';

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
