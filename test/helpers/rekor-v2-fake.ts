/**
 * A Rekor v2 (rekor-tiles) log for tests: an Ed25519 log key as the public-good v2 logs have, an RFC 6962
 * Merkle tree in which an entry is one leaf among others, and the signed checkpoint over its root, as
 * c2sp.org/tlog-checkpoint and c2sp.org/signed-note describe them: the note `<origin>\n<size>\n<base64
 * root>\n`, a blank line, and `— <origin> <base64(key id[0:4] ‖ Ed25519 signature)>\n`, where the key id
 * is SHA-256(origin ‖ "\n" ‖ 0x01 ‖ public key) — the log id a trusted root gives a v2 log. No installable
 * server speaks this; it follows those specifications and the sigstore bundle/trusted-root protos.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

export interface FakeRekorV2 {
  /** The checkpoint origin: the host of baseUrl. */
  origin: string;
  baseUrl: string;
  /** The log id (= checkpoint key id) of the trusted root. */
  logId: Buffer;
  publicKey: KeyObject;
  /** This log as an element of a trusted root's `tlogs`, its key valid from `start`. */
  trustedRootEntry(start: string): Record<string, unknown>;
  /**
   * A bundle tlog entry (JSON) logging `body` (a canonicalized v2 Entry) as leaf 4 of a tree of 7
   * leaves, so the inclusion proof has inner and border hashes.
   */
  entryFor(body: Buffer, kind: 'hashedrekord' | 'dsse', options?: { checkpointOrigin?: string; checkpointSigner?: FakeRekorV2 }): Record<string, unknown>;
  /** Sign a checkpoint note under `name` with this log's key: the signature line. */
  signatureLine(note: string, name: string): string;
}

const sha256 = (...parts: Buffer[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const leafHash = (data: Buffer) => sha256(Buffer.from([0]), data);
const nodeHash = (l: Buffer, r: Buffer) => sha256(Buffer.from([1]), l, r);
const split = (n: number) => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
/** RFC 6962 §2.1: the Merkle tree hash of leaf hashes. */
function treeHash(leaves: Buffer[]): Buffer {
  if (leaves.length === 1) return leaves[0]!;
  const k = split(leaves.length);
  return nodeHash(treeHash(leaves.slice(0, k)), treeHash(leaves.slice(k)));
}
/** RFC 6962 §2.1.1: the audit path of leaf m, lowest level first. */
function auditPath(m: number, leaves: Buffer[]): Buffer[] {
  if (leaves.length <= 1) return [];
  const k = split(leaves.length);
  return m < k ? [...auditPath(m, leaves.slice(0, k)), treeHash(leaves.slice(k))] : [...auditPath(m - k, leaves.slice(k)), treeHash(leaves.slice(0, k))];
}

export function createFakeRekorV2(origin = 'log2026-1.rekor.signet.test'): FakeRekorV2 {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const keyIdFor = (name: string) => sha256(Buffer.from(`${name}\n`), Buffer.from([0x01]), spki.subarray(spki.length - 32));
  const logId = keyIdFor(origin);
  const log: FakeRekorV2 = {
    origin,
    baseUrl: `https://${origin}`,
    logId,
    publicKey,
    trustedRootEntry: (start) => ({
      baseUrl: `https://${origin}`,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: spki.toString('base64'), keyDetails: 'PKIX_ED25519', validFor: { start } },
      logId: { keyId: logId.toString('base64') },
    }),
    signatureLine: (note, name) => {
      const sig = Buffer.concat([keyIdFor(name).subarray(0, 4), sign(null, Buffer.from(note), privateKey)]);
      return `\u2014 ${name} ${sig.toString('base64')}\n`;
    },
    entryFor(body, kind, options = {}) {
      const index = 4;
      const leaves = Array.from({ length: 7 }, (_, i) => leafHash(i === index ? body : randomBytes(40)));
      const root = treeHash(leaves);
      const name = options.checkpointOrigin ?? origin;
      const note = `${name}\n${leaves.length}\n${root.toString('base64')}\n`;
      const checkpoint = `${note}\n${(options.checkpointSigner ?? log).signatureLine(note, name)}`;
      return {
        logIndex: String(index),
        logId: { keyId: logId.toString('base64') },
        kindVersion: { kind, version: '0.0.2' },
        inclusionProof: {
          logIndex: String(index),
          rootHash: root.toString('base64'),
          treeSize: String(leaves.length),
          hashes: auditPath(index, leaves).map((h) => h.toString('base64')),
          checkpoint: { envelope: checkpoint },
        },
        canonicalizedBody: body.toString('base64'),
      };
    },
  };
  return log;
}
