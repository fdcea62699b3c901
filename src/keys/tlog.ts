/**
 * Evidence a key may require of its signatures: `tlog: required` — a cosign signature by this key counts
 * only with a transparency-log (Rekor) record whose signed entry timestamp verifies with a log key the
 * policy trusts: a `rekorKey` PEM file, or the transparency logs of a sigstore `trustedRoot` file. Any
 * store's key may require it (the key ring attaches the log keys after the store loaded the key).
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SignetError } from '../errors.js';
import type { KeySpec } from './provider.js';

declare module './provider.js' {
  interface KeySpec {
    /** `required`: cosign signatures by this key count only with a verified transparency-log record. */
    tlog?: 'required';
    /** The transparency log's public key (PEM), for `tlog: required`. */
    rekorKey?: string;
    /** A sigstore trusted root whose transparency logs are trusted, for `tlog: required`. */
    trustedRoot?: string;
  }
}

export interface LogKey {
  /** sha256 of the log key's DER SubjectPublicKeyInfo: the record's `logID`. */
  logId: Buffer;
  key: KeyObject;
  validFrom?: Date;
  validTo?: Date;
}

export interface TlogRequirement {
  logKeys: LogKey[];
  /** Where the log keys came from, for reasons. */
  source: string;
  /** The whole trusted root when the keys came from one: sigstore bundles need its log origins and timestamp authorities too. */
  trustedRoot?: unknown;
}

async function read(name: string, path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SignetError(
      code === 'ENOENT' ? 'KEY_NOT_FOUND' : 'KEY_UNAVAILABLE',
      `key "${name}": cannot read ${what} ${path}: ${code ?? (err as Error).message}`,
    );
  }
}

const logIdOf = (key: KeyObject) =>
  createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest();

/**
 * The transparency-log keys of a sigstore trusted root. A log key without a validity start is refused:
 * it would otherwise vouch for entries from the beginning of time.
 */
export function logKeysOfTrustedRoot(doc: unknown, where: string): LogKey[] {
  const tlogs = typeof doc === 'object' && doc !== null && Array.isArray((doc as { tlogs?: unknown }).tlogs) ? (doc as { tlogs: unknown[] }).tlogs : [];
  return tlogs.map((t, i) => {
    const tl = t as { publicKey?: { rawBytes?: string; validFor?: { start?: string; end?: string } } };
    const raw = tl.publicKey?.rawBytes;
    if (typeof raw !== 'string') throw new SignetError('KEY_INVALID', `${where}: transparency log ${i} has no public key`);
    const start = tl.publicKey?.validFor?.start;
    if (typeof start !== 'string' || Number.isNaN(Date.parse(start)))
      throw new SignetError(
        'KEY_INVALID',
        `${where}: transparency log ${i}'s key has no validity start (validFor.start); it would vouch for entries from the beginning of time`,
      );
    const end = tl.publicKey?.validFor?.end;
    let key: KeyObject;
    try {
      key = createPublicKey({ key: Buffer.from(raw, 'base64'), format: 'der', type: 'spki' });
    } catch (err) {
      throw new SignetError('KEY_INVALID', `${where}: transparency log ${i}'s key is not a public key: ${(err as Error).message}`);
    }
    return {
      logId: logIdOf(key),
      key,
      validFrom: new Date(start),
      ...(typeof end === 'string' && !Number.isNaN(Date.parse(end)) ? { validTo: new Date(end) } : {}),
    };
  });
}

/** The log keys `spec` requires its signatures to be logged with, or undefined when it requires none. */
export async function loadTlogRequirement(name: string, spec: KeySpec): Promise<TlogRequirement | undefined> {
  if (spec.tlog !== 'required') return undefined;
  if (spec.rekorKey !== undefined) {
    const pem = await read(name, spec.rekorKey, 'Rekor key');
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch (err) {
      throw new SignetError('KEY_INVALID', `key "${name}": ${spec.rekorKey} is not a PEM public key: ${(err as Error).message}`);
    }
    return { logKeys: [{ logId: logIdOf(key), key }], source: `rekorKey ${spec.rekorKey}` };
  }
  if (spec.trustedRoot !== undefined) {
    const text = await read(name, spec.trustedRoot, 'trusted root');
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new SignetError('KEY_INVALID', `key "${name}": ${spec.trustedRoot} is not JSON: ${(err as Error).message}`);
    }
    const logKeys = logKeysOfTrustedRoot(doc, `key "${name}": ${spec.trustedRoot}`);
    if (logKeys.length === 0) throw new SignetError('KEY_INVALID', `key "${name}": ${spec.trustedRoot} names no transparency log`);
    return { logKeys, source: `trusted root ${spec.trustedRoot}`, trustedRoot: doc };
  }
  throw new SignetError('KEY_INVALID', `key "${name}": tlog: required needs the log's key (rekorKey: FILE, or trustedRoot: FILE)`);
}
