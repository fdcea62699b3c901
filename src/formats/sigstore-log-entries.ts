/**
 * Checks of a sigstore bundle's transparency-log entries made before @sigstore/verify sees them, for
 * what its 3.1 release (the newest that runs on Node 20) leaves out or reads loosely:
 * - the checkpoint (a signed note: origin, tree size, root hash, optional lines, a blank line, then lines
 *   `— <name> <base64(key hint ‖ signature)>`) is parsed strictly, so malformed text is a clear refusal
 *   rather than an exception inside the library; its tree size and root hash must be the inclusion
 *   proof's (3.1 uses only the checkpoint's); it must be signed, under the log's own name and key hint,
 *   by the key of the trusted-root log the entry names (3.1 accepts any line whose name is a pattern
 *   matching the base URL of any trusted log);
 * - the origin is the log's: for Rekor v2 the host of the log's baseUrl (as sigstore-go derives it), for
 *   Rekor v1 `<host> - <tree id>`;
 * - a Rekor v2 entry (hashedrekord or dsse, version 0.0.2) must log this bundle's own certificate or the
 *   policy's key (sigstore-go rebuilds the entry from the bundle; 3.1 compares only digest and signature).
 * Rekor v2 entries carry no integrated time and no signed entry timestamp: the time they are checked at
 * comes from an RFC 3161 timestamp (see ./sigstore-bundle.ts), at which the log's key must be valid.
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import { TrustedRoot, type TransparencyLogEntry } from '@sigstore/protobuf-specs';
import { SignetError } from '../errors.js';
import { isPlainObject, parseStrictJson } from './strict-json.js';

/** A transparency log of the trusted root, as the checks here need it. */
export interface TrustedLog {
  logId: Buffer;
  key: KeyObject;
  /** The checkpoint origin (and signature name) of the log: its baseUrl's host; undefined without a baseUrl. */
  origin: string | undefined;
  validFrom: Date | undefined;
  validTo: Date | undefined;
}

/** Who the bundle says signed: its leaf certificate (keyless), or the policy key's SubjectPublicKeyInfo fingerprint. */
export type BundleSigner = { certificateDer: Buffer } | { keyFingerprint: string };

export interface CheckpointSignature {
  name: string;
  keyHint: Buffer;
  signature: Buffer;
}

export interface Checkpoint {
  /** The signed text: everything up to and including the line before the blank line. */
  note: string;
  origin: string;
  treeSize: bigint;
  rootHash: Buffer;
  signatures: CheckpointSignature[];
}

const MAX_CHECKPOINT_BYTES = 64 * 1024;
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Standard base64 whose unused bits are zero: two spellings of one signature would let a changed note byte pass. */
const isCanonicalBase64 = (text: string) => BASE64.test(text) && Buffer.from(text, 'base64').toString('base64') === text;
// Signed-note key names: no white space, no '+' (c2sp.org/signed-note); kept to URL characters so that no
// name can be read as a pattern by a library further on.
const KEY_NAME = /^[A-Za-z0-9._~:/-]{1,255}$/;
const EM_DASH = '\u2014';

const malformed = (why: string): never => {
  throw new SignetError('SIGNATURE_MALFORMED', why);
};
const refuse = (why: string): never => {
  throw new SignetError('SIGNATURE_INVALID', why);
};
const show = (text: string) => JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);

/** A Rekor v2 (rekor-tiles) entry: hashedrekord or dsse, version 0.0.2. Rekor v1 wrote 0.0.1 of both. */
export function isRekorV2Entry(entry: TransparencyLogEntry): boolean {
  return entry.kindVersion?.version === '0.0.2' && (entry.kindVersion.kind === 'hashedrekord' || entry.kindVersion.kind === 'dsse');
}

/** Parse a checkpoint strictly (c2sp.org/tlog-checkpoint, c2sp.org/signed-note). */
export function parseCheckpoint(untrustedEnvelope: string): Checkpoint {
  if (Buffer.byteLength(untrustedEnvelope) > MAX_CHECKPOINT_BYTES) malformed(`its checkpoint is larger than ${MAX_CHECKPOINT_BYTES} bytes`);
  const split = untrustedEnvelope.indexOf('\n\n');
  if (split < 0) return malformed('its checkpoint has no blank line between the note and its signatures');
  const note = untrustedEnvelope.slice(0, split + 1);
  const lines = note.slice(0, -1).split('\n');
  const [origin, size, root] = lines;
  if (origin === undefined || size === undefined || root === undefined)
    return malformed('its checkpoint note has fewer than three lines (origin, tree size, root hash)');
  if (origin === '' || /[\u0000-\u001f]/.test(origin)) malformed('its checkpoint origin line is empty or has control characters');
  if (!DECIMAL.test(size)) malformed(`its checkpoint tree size ${show(size)} is not a decimal number`);
  if (!isCanonicalBase64(root) || Buffer.from(root, 'base64').length !== 32) malformed(`its checkpoint root hash ${show(root)} is not 32 bytes of base64`);
  if (lines.slice(3).some((l) => l === '')) malformed('its checkpoint note has an empty line before the signatures');
  const block = untrustedEnvelope.slice(split + 2);
  if (block === '') return malformed('its checkpoint has no signature lines');
  if (!block.endsWith('\n')) return malformed('its checkpoint signatures do not end with a newline');
  const signatures = block
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      const parts = line.split(' ');
      const [dash, name, encoded] = parts;
      if (parts.length !== 3 || dash !== EM_DASH || name === undefined || encoded === undefined)
        return malformed(`its checkpoint signature line ${show(line)} is not "${EM_DASH} <name> <base64>"`);
      if (!KEY_NAME.test(name)) malformed(`its checkpoint signature name ${show(name)} is not a key name`);
      if (!isCanonicalBase64(encoded)) malformed(`its checkpoint signature for ${show(name)} is not canonical base64`);
      const bytes = Buffer.from(encoded, 'base64');
      if (bytes.length < 5) malformed(`its checkpoint signature for ${show(name)} is shorter than a key hint and a signature`);
      return { name, keyHint: bytes.subarray(0, 4), signature: bytes.subarray(4) };
    });
  return { note, origin, treeSize: BigInt(size), rootHash: Buffer.from(root, 'base64'), signatures };
}

/** The host of a trusted-root baseUrl (which may come without a scheme): the log's checkpoint origin. */
function originOf(baseUrl: string): string | undefined {
  if (baseUrl === '') return undefined;
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(baseUrl) ? baseUrl : `https://${baseUrl}`).hostname || undefined;
  } catch {
    return undefined;
  }
}

/** The transparency logs of a trusted root (JSON). */
export function trustedLogsOf(trustedRoot: unknown): TrustedLog[] {
  const root = TrustedRoot.fromJSON(trustedRoot);
  return root.tlogs.flatMap((t) => {
    const raw = t.publicKey?.rawBytes;
    const logId = t.logId?.keyId;
    if (raw === undefined || logId === undefined) return [];
    let key: KeyObject;
    try {
      key = createPublicKey({ key: raw, format: 'der', type: 'spki' });
    } catch {
      try {
        key = createPublicKey({ key: raw, format: 'der', type: 'pkcs1' });
      } catch {
        return [];
      }
    }
    return [{ logId, key, origin: originOf(t.baseUrl), validFrom: t.publicKey?.validFor?.start, validTo: t.publicKey?.validFor?.end }];
  });
}

/** The signed-note key hint of a log key under `name` (c2sp.org/signed-note; ECDSA as Rekor and rekor-tiles compute it). */
export function checkpointKeyHint(key: KeyObject, name: string): Buffer {
  const spki = key.export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256');
  if (key.asymmetricKeyType === 'ed25519')
    hash
      .update(`${name}\n`)
      .update(Buffer.from([0x01]))
      .update(spki.subarray(spki.length - 32));
  else if (key.asymmetricKeyType === 'rsa')
    hash
      .update(`${name}\n`)
      .update(Buffer.from([0xff]))
      .update('PKIX-RSA-PKCS#1v1.5')
      .update(spki);
  else hash.update(spki);
  return hash.digest().subarray(0, 4);
}

/** The checkpoint is the log's: its origin, a signature under the log's name and key hint that verifies, and the proof's tree. */
function checkCheckpoint(entry: TransparencyLogEntry, log: TrustedLog, where: string): void {
  const proof = entry.inclusionProof!;
  const checkpoint = parseCheckpoint(proof.checkpoint!.envelope);
  const v2 = isRekorV2Entry(entry);
  if (log.origin === undefined) {
    // A Rekor v1 entry is vouched for by its signed entry timestamp; its checkpoint is checked as far as it can be.
    if (v2) refuse(`${where}: the trusted root gives its log no baseUrl, so the checkpoint's origin cannot be checked`);
  } else {
    // Rekor v1 checkpoints name the log's shard: `<host> - <tree id>`.
    const v1Shard = !v2 && checkpoint.origin.startsWith(`${log.origin} - `) && /^\d+$/.test(checkpoint.origin.slice(log.origin.length + 3));
    if (checkpoint.origin !== log.origin && !v1Shard)
      refuse(`${where}: its checkpoint is for the log ${show(checkpoint.origin)}, not ${show(log.origin)}${v2 ? '' : ' (or one of its shards)'}`);
  }
  if (checkpoint.treeSize !== BigInt(proof.treeSize) || !checkpoint.rootHash.equals(proof.rootHash))
    refuse(`${where}: its checkpoint (tree size ${checkpoint.treeSize}) is not the tree of its inclusion proof (tree size ${proof.treeSize})`);
  const name = log.origin;
  const data = Buffer.from(checkpoint.note, 'utf8');
  const signed = checkpoint.signatures.some(
    (s) =>
      (name === undefined || s.name === name) &&
      s.keyHint.equals(checkpointKeyHint(log.key, s.name)) &&
      cryptoVerify(log.key.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, log.key, s.signature),
  );
  if (!signed)
    refuse(`${where}: its checkpoint is not signed by the log ${show(name ?? 'named by the entry')} (no signature line under its name and key verifies)`);
}

/** The certificate or key a Rekor v2 entry body logs must be the bundle's signer. */
function checkV2Body(entry: TransparencyLogEntry, signer: BundleSigner, where: string): void {
  const body = parseStrictJson(entry.canonicalizedBody.toString('utf8'), `${where}: its body`);
  const { kind, version } = entry.kindVersion ?? { kind: '', version: '' };
  if (!isPlainObject(body) || body['kind'] !== kind || body['apiVersion'] !== version)
    return refuse(`${where}: its body is not a ${kind} ${version} entry, as its kindVersion says`);
  const spec = isPlainObject(body['spec']) ? body['spec'] : {};
  const inner = kind === 'hashedrekord' ? spec['hashedRekordV002'] : spec['dsseV002'];
  const signatures = !isPlainObject(inner)
    ? []
    : kind === 'hashedrekord'
      ? [inner['signature']]
      : Array.isArray(inner['signatures'])
        ? inner['signatures']
        : [];
  if (signatures.length !== 1) return refuse(`${where}: its body does not log exactly one signature`);
  const verifier = isPlainObject(signatures[0]) && isPlainObject(signatures[0]['verifier']) ? signatures[0]['verifier'] : {};
  const rawOf = (field: string): Buffer | undefined => {
    const v = verifier[field];
    const raw = isPlainObject(v) ? v['rawBytes'] : undefined;
    return typeof raw === 'string' && BASE64.test(raw) ? Buffer.from(raw, 'base64') : undefined;
  };
  if ('certificateDer' in signer) {
    const cert = rawOf('x509Certificate');
    if (cert === undefined || !cert.equals(signer.certificateDer)) refuse(`${where}: it logs another certificate than the bundle's`);
  } else {
    const spki = rawOf('publicKey');
    if (spki === undefined || `sha256:${createHash('sha256').update(spki).digest('hex')}` !== signer.keyFingerprint)
      refuse(`${where}: it logs another public key than the policy's`);
  }
}

/**
 * What @sigstore/verify parses without guarding (numbers, checkpoint text, the body's JSON) is well formed,
 * so that a malformed entry is a clear SIGNATURE_MALFORMED refusal, before any library sees it.
 */
export function checkLogEntriesWellFormed(bundle: Bundle): void {
  bundle.verificationMaterial.tlogEntries.forEach((entry, i) => {
    const where = `transparency-log entry ${i}`;
    if (!DECIMAL.test(entry.logIndex)) malformed(`${where}: its log index ${show(entry.logIndex)} is not a decimal number`);
    if (!DECIMAL.test(entry.integratedTime)) malformed(`${where}: its integrated time ${show(entry.integratedTime)} is not a decimal number`);
    const proof = entry.inclusionProof;
    if (proof !== undefined) {
      if (!DECIMAL.test(proof.logIndex) || !DECIMAL.test(proof.treeSize))
        malformed(`${where}: its inclusion proof's log index or tree size is not a decimal number`);
      if (proof.checkpoint !== undefined) parseCheckpoint(proof.checkpoint.envelope);
    }
    parseStrictJson(entry.canonicalizedBody.toString('utf8'), `${where}: its body`);
  });
}

/**
 * A Rekor v2 entry carries no signed entry timestamp: only a checkpoint signed under the log's origin (the
 * trusted root's baseUrl) and a time from a timestamp authority vouch for it. Trust material without both
 * cannot, and says so before anything is checked against it — a `rekorKey` alone names a log key only.
 */
export function checkRekorV2Trust(bundle: Bundle, trustedRoot: unknown): void {
  const logs = trustedLogsOf(trustedRoot);
  const hasTsa = TrustedRoot.fromJSON(trustedRoot).timestampAuthorities.length > 0;
  bundle.verificationMaterial.tlogEntries.forEach((entry, i) => {
    if (!isRekorV2Entry(entry)) return;
    const log = logs.find((l) => l.logId.equals(entry.logId?.keyId ?? Buffer.alloc(0)));
    // With a timestamp authority, a log the trust material does not name is refused by checkLogEntries, naming it.
    if (hasTsa && (log === undefined || log.origin !== undefined)) return;
    const missing = [
      ...(log === undefined ? ['does not name its log'] : log.origin === undefined ? ['gives its log no baseUrl'] : []),
      ...(hasTsa ? [] : ['names no timestamp authority']),
    ];
    refuse(
      `transparency-log entry ${i} is a Rekor v2 entry, which needs a trusted root naming its log with a baseUrl (the checkpoint's origin) and a ` +
        `timestamp authority (the entry's time comes from an RFC 3161 timestamp); the key's trust material ${missing.join(' and ')}: ` +
        'a rekorKey alone cannot vouch for a Rekor v2 entry',
    );
  });
}

/** Every entry of the bundle, against the trusted root's logs; returns the log of each Rekor v2 entry. */
export function checkLogEntries(bundle: Bundle, logs: readonly TrustedLog[], signer: BundleSigner): TrustedLog[] {
  checkLogEntriesWellFormed(bundle);
  const v2Logs: TrustedLog[] = [];
  bundle.verificationMaterial.tlogEntries.forEach((entry, i) => {
    const where = `transparency-log entry ${i}`;
    const logId = entry.logId?.keyId ?? Buffer.alloc(0);
    const log = logs.find((l) => l.logId.equals(logId));
    if (log === undefined) return refuse(`${where}: it was logged by the log ${logId.toString('hex').slice(0, 16)}…, which is not a log of the trusted root`);
    const proof = entry.inclusionProof;
    const v2 = isRekorV2Entry(entry);
    if (v2 && (proof === undefined || proof.checkpoint === undefined)) refuse(`${where}: a Rekor v2 entry needs an inclusion proof with a checkpoint`);
    if (v2 && entry.inclusionPromise !== undefined) refuse(`${where}: a Rekor v2 entry has no signed entry timestamp, yet this one carries one`);
    if (proof !== undefined) {
      if (v2 && proof.logIndex !== entry.logIndex) refuse(`${where}: its inclusion proof is for index ${proof.logIndex}, not ${entry.logIndex}`);
      if (proof.checkpoint !== undefined) checkCheckpoint(entry, log, where);
    }
    if (v2) {
      checkV2Body(entry, signer, where);
      v2Logs.push(log);
    }
  });
  return v2Logs;
}

/** A Rekor v2 entry's log key must have been valid at each (verified) timestamp's time. */
export function checkLogKeysValidAt(logs: readonly TrustedLog[], times: readonly Date[]): void {
  for (const log of logs) {
    for (const t of times) {
      if ((log.validFrom !== undefined && t < log.validFrom) || (log.validTo !== undefined && t > log.validTo))
        refuse(`the key of the log ${show(log.origin ?? '')} was not valid at the timestamp's time ${t.toISOString()}`);
    }
  }
}
