/**
 * Timestamp authorities a `certificates` key trusts for Notation's RFC 3161 countersignatures: a
 * `tsaCertificates` PEM file (one authority: its signing certificate, then its chain), or the
 * `timestampAuthorities` of a sigstore trusted root (`tsaTrustedRoot`), the same file a sigstore key
 * reads for cosign keyless timestamps.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SignetError } from '../errors.js';
import type { TimestampAuthority } from './types.js';

declare module './provider.js' {
  interface KeySpec {
    /** Path of a sigstore trusted_root.json whose timestamp authorities countersign Notation signatures. */
    tsaTrustedRoot?: string;
  }
}

const MAX_TRUSTED_ROOT_BYTES = 4 << 20;

/**
 * The timestamp authorities of a parsed trusted root (`TrustedRoot.fromJSON` of @sigstore/protobuf-specs).
 * An authority without a validity start is refused, as a log key is: it would vouch for any time at all.
 */
export function timestampAuthoritiesOfTrustedRoot(root: { timestampAuthorities: unknown[] }, where: string): TimestampAuthority[] {
  const tsas = root.timestampAuthorities as Array<{
    certChain?: { certificates: Array<{ rawBytes: Uint8Array }> };
    validFor?: { start?: Date; end?: Date };
  }>;
  if (tsas.length === 0) throw new SignetError('KEY_INVALID', `${where} names no timestamp authority (timestampAuthorities is empty)`);
  return tsas.map((t, i) => {
    const certs = t.certChain?.certificates ?? [];
    if (certs.length === 0) throw new SignetError('KEY_INVALID', `${where}: timestamp authority ${i} has no certificate chain`);
    const start = t.validFor?.start;
    if (start === undefined)
      throw new SignetError('KEY_INVALID', `${where}: timestamp authority ${i} has no validity start (validFor.start); it would vouch for any time at all`);
    let certChain: X509Certificate[];
    try {
      certChain = certs.map((c) => new X509Certificate(Buffer.from(c.rawBytes)));
    } catch (err) {
      throw new SignetError('KEY_INVALID', `${where}: timestamp authority ${i} has a certificate that does not parse: ${(err as Error).message}`);
    }
    return {
      certChain,
      validFor: { start, ...(t.validFor?.end !== undefined ? { end: t.validFor.end } : {}) },
      source: `${where} (timestamp authority ${i})`,
    };
  });
}

/** The text of a trusted root as the sigstore libraries read it; throws KEY_INVALID naming the file. */
export async function parseTrustedRootText(text: string, where: string): Promise<{ timestampAuthorities: unknown[]; certificateAuthorities: unknown[] }> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new SignetError('KEY_INVALID', `${where} is not JSON (a sigstore trusted_root.json): ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new SignetError('KEY_INVALID', `${where} is not a JSON object (a sigstore trusted_root.json)`);
  const { TrustedRoot } = await import('@sigstore/protobuf-specs');
  try {
    return TrustedRoot.fromJSON(doc);
  } catch (err) {
    throw new SignetError('KEY_INVALID', `${where} is not a sigstore trusted root: ${(err as Error).message}`);
  }
}

/** `tsaTrustedRoot: FILE`: read, parse and return its timestamp authorities. */
export async function loadTsaTrustedRoot(name: string, path: string): Promise<TimestampAuthority[]> {
  let text: string;
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_TRUSTED_ROOT_BYTES) throw new SignetError('KEY_INVALID', `key "${name}": ${path} is larger than 4 MiB`);
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof SignetError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new SignetError(
      code === 'ENOENT' ? 'KEY_NOT_FOUND' : 'KEY_UNAVAILABLE',
      `key "${name}": cannot read tsaTrustedRoot ${path}: ${code ?? (err as Error).message}`,
    );
  }
  const where = `key "${name}": tsaTrustedRoot ${path}`;
  return timestampAuthoritiesOfTrustedRoot(await parseTrustedRootText(text, where), where);
}
