/** Signing with a private key that never leaves the token (C_Sign; ECDSA raw r||s returned as DER). */
import { SignetError } from '../../errors.js';
import { fingerprintOf, keyAlgorithmOf } from '../node-key.js';
import type { HashAlgorithm, KeyAlgorithm, Signer } from '../types.js';
import { plan } from './mechanisms.js';
import { callAsync, moduleFor, type Pkcs11Module } from './module.js';
import { findObjects, findOne, readPublicKey } from './objects.js';
import { DEFAULT_PKCS11_MODULE } from './provider.js';
import { parsePkcs11Uri, resolvePin, type Pkcs11Uri } from './uri.js';

export class Pkcs11Signer implements Signer {
  private constructor(
    private readonly uri: Pkcs11Uri,
    private readonly module: Pkcs11Module,
    private readonly pin: string,
    readonly algorithm: KeyAlgorithm,
    readonly fingerprint: string,
    private readonly pem: string,
  ) {}

  /** Open the private key a URI names; the PIN comes from the URI or SIGNET_PKCS11_PIN. */
  static async open(uriText: string, options: { module?: string; pin?: string } = {}): Promise<Pkcs11Signer> {
    const uri = parsePkcs11Uri(uriText);
    const module = moduleFor(uri.modulePath ?? options.module ?? process.env['SIGNET_PKCS11_MODULE'] ?? DEFAULT_PKCS11_MODULE);
    const pin = resolvePin(uri, options.pin ?? process.env['SIGNET_PKCS11_PIN']);
    if (pin === undefined)
      throw new SignetError(
        'PIN_REQUIRED',
        `signing key ${uri.redacted}: the token's user PIN is needed and none was given: add pin-source=file:/path/to/pin (or pin-value=…) to the URI, or set SIGNET_PKCS11_PIN`,
      );
    const what = `signing key ${uri.redacted}`;
    // The public half (same label/id) gives algorithm and fingerprint; the private object must exist.
    const publicKey = await module.withSession(uri, pin, what, (api, session) => {
      findOne(api, session, { ...uri, type: 'private' }, 'private', uri.object ?? uri.redacted);
      const pub = findObjects(api, session, { ...uri, type: 'public' });
      if (pub.length !== 1)
        throw new SignetError('KEY_NOT_FOUND', `${what}: need exactly one public-key object with the same label/id to name the key (found ${pub.length})`);
      return readPublicKey(api, session, pub[0]!, uri.object ?? uri.redacted);
    });
    return new Pkcs11Signer(
      uri,
      module,
      pin,
      keyAlgorithmOf(publicKey),
      fingerprintOf(publicKey),
      publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    );
  }

  publicKeyPem(): string {
    return this.pem;
  }

  async sign(data: Uint8Array, hash: HashAlgorithm): Promise<Uint8Array> {
    const p = plan(this.algorithm, data, hash);
    return this.module.withSession(this.uri, this.pin, `signing with ${this.uri.redacted}`, async (api, session) => {
      const handle = findOne(api, session, { ...this.uri, type: 'private' }, 'private', this.uri.object ?? this.uri.redacted);
      api.C_SignInit(session, { mechanism: p.mechanism }, handle);
      const raw = await callAsync<Buffer>('C_Sign', (cb) =>
        api.C_Sign(session, p.input, Buffer.alloc(p.maxSignatureBytes), cb as (e: Error, v: Buffer) => void),
      );
      return p.fromToken(raw);
    });
  }

  async close(): Promise<void> {}
}
