/**
 * The Notation pre-check (SignatureFormat.precheck): whether the envelope's certificate chain names one
 * of the key's trust-store certificates (the same certificate, or issued by it). Decoding the envelope
 * and comparing certificates costs no network and no path validation. Orders candidates; never decides.
 */
import { X509Certificate } from 'node:crypto';
import type { Likelihood, PrecheckKey, UntrustedSignature } from './types.js';

export async function precheckNotation(signature: UntrustedSignature, key: PrecheckKey): Promise<Likelihood> {
  const anchors = key.certificates ?? [];
  if (anchors.length === 0) return 'other-key';
  let chain: Buffer[];
  try {
    const { parseNotationEnvelope } = await import('./notation/index.js');
    chain = parseNotationEnvelope(signature.untrustedPayload, signature.envelopeMediaType ?? '').untrustedCertificateChain;
  } catch {
    return 'unknown'; // verification will say what is wrong with it
  }
  const last = chain.at(-1);
  if (last === undefined) return 'unknown';
  if (chain.some((der) => anchors.some((a) => a.raw.equals(der)))) return 'names-key';
  try {
    const top = new X509Certificate(last);
    return anchors.some((a) => top.checkIssued(a)) ? 'names-key' : 'other-key';
  } catch {
    return 'unknown';
  }
}
