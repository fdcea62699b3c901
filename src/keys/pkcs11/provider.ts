/**
 * Trust anchors on a PKCS#11 token. By default the public key is read once (no login needed for public
 * objects), cached as a Node key and used in process; `verifyOn: token` performs C_Verify on the token.
 * Every load is a fresh lookup, so a policy reload or the refresh interval notices a key that was
 * removed, and one that came back.
 */
import { SignetError } from '../../errors.js';
import { fingerprintOf, keyAlgorithmOf, trustedKeyFromKeyObject } from '../node-key.js';
import type { KeyProvider, KeySpec } from '../provider.js';
import type { HashAlgorithm, TrustedKey } from '../types.js';
import { plan } from './mechanisms.js';
import { callAsync, moduleFor, pkcs11Code, TokenNotFoundError, type Pkcs11Module } from './module.js';
import { findOne, readCertificate, readPublicKey } from './objects.js';
import { parsePkcs11Uri, resolvePin, type Pkcs11Uri } from './uri.js';
import pkcs11js from './binding.js';

export const DEFAULT_PKCS11_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface Pkcs11ProviderOptions {
  /** The daemon config's `pkcs11.module`; a URI's module-path wins. */
  defaultModule?: string;
}

export class Pkcs11KeyProvider implements KeyProvider {
  readonly scheme = 'pkcs11' as const;
  private readonly used = new Set<Pkcs11Module>();

  constructor(private readonly options: Pkcs11ProviderOptions = {}) {}

  async load(name: string, spec: KeySpec): Promise<TrustedKey> {
    if (spec.pkcs11 === undefined) throw new SignetError('KEY_INVALID', `key "${name}" has no pkcs11 URI`);
    const uri = parsePkcs11Uri(spec.pkcs11);
    const module = moduleFor(uri.modulePath ?? this.options.defaultModule ?? DEFAULT_PKCS11_MODULE);
    this.used.add(module);
    const pin = resolvePin(uri);
    const what = `key "${name}" (${uri.redacted})`;
    const read = () =>
      module.withSession(uri, pin, what, (api, session) => {
        const handle = findOne(api, session, uri, 'public', name);
        return { key: readPublicKey(api, session, handle, name), certificate: readCertificate(api, session, handle) };
      });
    let found;
    try {
      found = await read();
    } catch (err) {
      // A token that was removed and put back is a new slot: look again from a fresh module state. Only
      // then: a missing object on a present token is seen without it, and a reset drops every session
      // of the module (on-token verifications of other keys in flight).
      const tokenGone =
        err instanceof TokenNotFoundError ||
        (err instanceof SignetError && err.code === 'KEY_UNAVAILABLE') ||
        (err instanceof SignetError && err.code === 'KEY_NOT_FOUND' && module.tokenMoved(uri));
      if (!tokenGone) throw err;
      module.reset();
      found = await read();
    }
    const publicKey = found.key;
    // A certificate object is also a trust anchor for X.509-based formats (Notation).
    const certificates = found.certificate ? { certificates: [found.certificate] } : {};
    if (spec.verifyOn !== 'token') return { ...trustedKeyFromKeyObject(name, uri.redacted, publicKey), ...certificates };
    return { ...tokenVerifier(name, uri, pin, module, publicKey), ...certificates };
  }

  async close(): Promise<void> {
    for (const m of this.used) m.close();
    this.used.clear();
  }
}

/** A TrustedKey whose verify runs C_Verify on the token. */
function tokenVerifier(name: string, uri: Pkcs11Uri, pin: string | undefined, module: Pkcs11Module, publicKey: ReturnType<typeof readPublicKey>): TrustedKey {
  const algorithm = keyAlgorithmOf(publicKey);
  const what = `key "${name}" (${uri.redacted})`;
  return {
    name,
    location: uri.redacted,
    algorithm,
    fingerprint: fingerprintOf(publicKey),
    verifiesOnDevice: true,
    async verify(data: Uint8Array, signature: Uint8Array, hash: HashAlgorithm): Promise<boolean> {
      const p = plan(algorithm, data, hash);
      let tokenSignature: Buffer;
      try {
        tokenSignature = p.toToken(signature);
      } catch {
        return false; // not even a well-formed signature
      }
      return module.withSession(uri, pin, what, async (api, session) => {
        const handle = findOne(api, session, uri, 'public', name);
        api.C_VerifyInit(session, { mechanism: p.mechanism }, handle);
        try {
          return await callAsync<boolean>('C_Verify', (cb) => api.C_Verify(session, p.input, tokenSignature, cb as (e: Error, v: boolean) => void));
        } catch (err) {
          const code = pkcs11Code(err);
          if (code === pkcs11js.CKR_SIGNATURE_INVALID || code === pkcs11js.CKR_SIGNATURE_LEN_RANGE) return false;
          throw err;
        }
      });
    },
  };
}
