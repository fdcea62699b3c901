/** Trust anchors held in PEM files (SubjectPublicKeyInfo, or a certificate whose key is used). */
import { readFile } from 'node:fs/promises';
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { SignetError } from '../errors.js';
import { trustedKeyFromKeyObject } from './node-key.js';
import type { TrustedKey } from './types.js';

const MAX_PEM_BYTES = 1 << 20;

export function publicKeyFromPem(pem: string, what: string): KeyObject {
  try {
    if (pem.includes('-----BEGIN CERTIFICATE-----')) return new X509Certificate(pem).publicKey;
    return createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new SignetError('KEY_INVALID', `${what} is not a PEM public key or certificate: ${(err as Error).message}`);
  }
}

export async function loadPemKey(name: string, path: string): Promise<TrustedKey> {
  let text: string;
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_PEM_BYTES) throw new SignetError('KEY_INVALID', `key "${name}": ${path} is larger than 1 MiB`);
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof SignetError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new SignetError(code === 'ENOENT' ? 'KEY_NOT_FOUND' : 'KEY_UNAVAILABLE', `key "${name}": cannot read ${path}: ${code ?? (err as Error).message}`);
  }
  const key = publicKeyFromPem(text, `key "${name}" (${path})`);
  return trustedKeyFromKeyObject(name, `file:${path}`, key);
}

/** Every certificate of a PEM file (a trust store, intermediates, timestamp authorities); `what` names the file in messages. */
export async function loadPemList(name: string, path: string, what?: string): Promise<X509Certificate[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SignetError(
      code === 'ENOENT' ? 'KEY_NOT_FOUND' : 'KEY_UNAVAILABLE',
      `key "${name}": cannot read ${what !== undefined ? `${what} ` : ''}${path}: ${code ?? (err as Error).message}`,
    );
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new SignetError('KEY_INVALID', `key "${name}": ${path} holds no PEM certificate`);
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    throw new SignetError('KEY_INVALID', `key "${name}": ${path} holds an invalid certificate: ${(err as Error).message}`);
  }
}

/** A trust store: every certificate in a PEM file; the key is the first certificate's. */
export async function loadCertificateKey(name: string, path: string): Promise<TrustedKey> {
  const certificates = await loadPemList(name, path);
  return { ...trustedKeyFromKeyObject(name, `file:${path}`, certificates[0]!.publicKey), certificates };
}
