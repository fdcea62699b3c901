/**
 * A Rekor-like log for key-based cosign signatures in tests: a log key, and the `dev.sigstore.cosign/bundle`
 * record cosign attaches when it uploads a signature (a hashedrekord v0.0.1 entry of the payload hash,
 * signature and public key, with the log's signed entry timestamp over the canonical record).
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

export interface FakeRekor {
  publicPem: string;
  logId: Buffer;
  /** Write the log's public key (PEM) into `dir`; returns the path. */
  writeKey(dir: string): string;
  /** A trusted root naming this log (valid from `start`, default a day ago; none when null). */
  writeTrustedRoot(dir: string, start?: string | null): string;
  /** The Rekor record annotation value for a signature by `signerPublicPem`. */
  recordFor(payload: Buffer, signature: Buffer, signerPublicPem: string, options?: { integratedTime?: number }): string;
}

export function createFakeRekor(): FakeRekor {
  const { privateKey, publicKey }: { privateKey: KeyObject; publicKey: KeyObject } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const logId = createHash('sha256').update(spki).digest();
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    publicPem,
    logId,
    writeKey(dir) {
      const p = join(dir, 'rekor.pub');
      writeFileSync(p, publicPem);
      return p;
    },
    writeTrustedRoot(dir, start = new Date(Date.now() - 86_400_000).toISOString()) {
      const p = join(dir, 'trusted_root.json');
      writeFileSync(
        p,
        JSON.stringify({
          mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
          tlogs: [
            {
              baseUrl: 'https://rekor.signet.test',
              hashAlgorithm: 'SHA2_256',
              publicKey: { rawBytes: spki.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', ...(start !== null ? { validFor: { start } } : {}) },
              logId: { keyId: logId.toString('base64') },
            },
          ],
          certificateAuthorities: [],
          ctlogs: [],
          timestampAuthorities: [],
        }),
      );
      return p;
    },
    recordFor(payload, signature, signerPublicPem, options = {}) {
      const body = Buffer.from(
        canonical({
          apiVersion: '0.0.1',
          kind: 'hashedrekord',
          spec: {
            data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') } },
            signature: { content: signature.toString('base64'), publicKey: { content: Buffer.from(signerPublicPem).toString('base64') } },
          },
        }),
      );
      const Payload = {
        body: body.toString('base64'),
        integratedTime: options.integratedTime ?? Math.floor(Date.now() / 1000),
        logIndex: 42,
        logID: logId.toString('hex'),
      };
      const set = sign('sha256', Buffer.from(canonical(Payload)), privateKey);
      return JSON.stringify({ SignedEntryTimestamp: set.toString('base64'), Payload });
    },
  };
}
