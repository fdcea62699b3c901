/**
 * Keyless sigstore trust: a trusted root (Fulcio certificate authorities, Rekor transparency logs, in
 * the sigstore trusted-root JSON format) read from a file, used offline — no network to any log or
 * TUF repository at verification time — plus the signer identity the policy requires.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SignetError } from '../errors.js';
import type { KeyProvider, KeySpec, KeyStore } from './provider.js';
import type { TrustedKey } from './types.js';
import { logKeysOfTrustedRoot } from './tlog.js';

declare module './provider.js' {
  interface KeySpec {
    /** Keyless sigstore signers: a trusted root JSON file and the identity the signing certificate must carry. */
    sigstore?: { trustedRoot: string; issuer: string; subject?: string; subjectRegExp?: string };
  }
}

/** `sigstore:` keys: an offline trusted root and a signer identity (the sigstore libraries load with the first key). */
export const sigstoreKeyStore: KeyStore<'sigstore'> = {
  kind: 'sigstore',
  location: (spec: KeySpec) => `sigstore:${spec.sigstore?.trustedRoot}`,
  provider: () => new SigstoreKeyProvider(),
};

export class SigstoreKeyProvider implements KeyProvider {
  readonly scheme = 'sigstore' as const;

  async load(name: string, spec: KeySpec): Promise<TrustedKey> {
    const s = spec.sigstore;
    if (s === undefined) throw new SignetError('KEY_INVALID', `key "${name}" has no sigstore settings`);
    let text: string;
    try {
      text = await readFile(s.trustedRoot, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new SignetError(
        code === 'ENOENT' ? 'KEY_NOT_FOUND' : 'KEY_UNAVAILABLE',
        `key "${name}": cannot read trusted root ${s.trustedRoot}: ${code ?? (err as Error).message}`,
      );
    }
    const [{ TrustedRoot }, { toTrustMaterial }] = await Promise.all([import('@sigstore/protobuf-specs'), import('@sigstore/verify')]);
    let trustedRoot: unknown;
    try {
      trustedRoot = JSON.parse(text);
      const root = TrustedRoot.fromJSON(trustedRoot);
      toTrustMaterial(root);
      if (root.certificateAuthorities.length === 0) throw new Error('it lists no certificate authority');
      // A log key without a validity start would vouch for entries from the beginning of time.
      logKeysOfTrustedRoot(trustedRoot, 'trusted root');
    } catch (err) {
      throw new SignetError('KEY_INVALID', `key "${name}": ${s.trustedRoot} is not a usable sigstore trusted root: ${(err as Error).message}`);
    }
    if (s.subjectRegExp !== undefined) {
      try {
        new RegExp(s.subjectRegExp);
      } catch (err) {
        throw new SignetError('KEY_INVALID', `key "${name}": subjectRegExp is not a regular expression: ${(err as Error).message}`);
      }
    }
    return {
      name,
      location: `sigstore:${s.trustedRoot}`,
      algorithm: 'sigstore-identity',
      fingerprint: `sha256:${createHash('sha256').update(text).digest('hex')}`,
      verify: async () => false,
      sigstore: {
        trustedRoot,
        issuer: s.issuer,
        ...(s.subject !== undefined ? { subject: s.subject } : {}),
        ...(s.subjectRegExp !== undefined ? { subjectRegExp: s.subjectRegExp } : {}),
      },
    };
  }

  async close(): Promise<void> {}
}
