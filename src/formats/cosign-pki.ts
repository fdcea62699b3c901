/**
 * Cosign signatures whose signer is a certificate of a private PKI: the layer carries
 * `dev.sigstore.cosign/certificate` (the leaf, PEM) and optionally `dev.sigstore.cosign/chain`, and the
 * policy key is a `certificates` trust store (roots) with optional `intermediates` and identity rules.
 *
 * As cosign's `--certificate-chain` verification does: the signature over the payload verifies with the
 * leaf's public key; the leaf chains to one of the roots through CA certificates of the key's
 * intermediates or the chain annotation (untrusted candidates: only the roots are trusted), each one
 * valid at the signing time; an extended key usage on the leaf must allow code signing; and the
 * identity rules match the leaf's subject alternative names. With no trusted time (no transparency-log
 * or timestamp evidence is checked for these keys), the signing time is the time of verification.
 */
import { X509Certificate } from 'node:crypto';
import { X509Certificate as SigstoreX509 } from '@sigstore/core';
import type { ErrorCode } from '../errors.js';
import { SignetError } from '../errors.js';
import { trustedKeyFromKeyObject } from '../keys/node-key.js';
import type { CertificateIdentity, TrustedKey } from '../keys/types.js';
import { pemCertificatesDer, singleCertificateDer } from './cosign-certs.js';

export const COSIGN_CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const COSIGN_CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
const ANY_EKU = '2.5.29.37.0';
const MAX_DEPTH = 8;

export type PkiCheck = { valid: true; subject: string; chain: string[] } | { valid: false; code: ErrorCode; reason: string };

function validAt(cert: X509Certificate, at: Date): boolean {
  return Date.parse(cert.validFrom) <= at.getTime() && at.getTime() <= Date.parse(cert.validTo);
}

function issued(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/** Subject alternative names by kind (email, DNS, URI). */
export function subjectAltNames(der: Buffer): { email: string[]; dns: string[]; uri: string[] } {
  const out = { email: [] as string[], dns: [] as string[], uri: [] as string[] };
  let names;
  try {
    // The extension's GeneralNames (the library's own parse; its getters return only the first of a kind).
    const ext = SigstoreX509.parse(der as Buffer<ArrayBuffer>).extSubjectAltName as unknown as
      { generalNames: Array<{ tag: { isContextSpecific(n: number): boolean }; value: Buffer }> } | undefined;
    names = ext?.generalNames ?? [];
  } catch {
    return out;
  }
  for (const gn of names) {
    const value = gn.value.toString('ascii');
    if (gn.tag.isContextSpecific(0x01)) out.email.push(value);
    else if (gn.tag.isContextSpecific(0x02)) out.dns.push(value);
    else if (gn.tag.isContextSpecific(0x06)) out.uri.push(value);
  }
  return out;
}

function checkIdentity(sans: ReturnType<typeof subjectAltNames>, rules: CertificateIdentity | undefined): string | undefined {
  if (rules?.subjectEmail !== undefined && !sans.email.includes(rules.subjectEmail))
    return `the certificate's email names ${JSON.stringify(sans.email.slice(0, 5))} do not include ${JSON.stringify(rules.subjectEmail)}`;
  if (rules?.subjectHostname !== undefined && !sans.dns.some((d) => d.toLowerCase() === rules.subjectHostname!.toLowerCase()))
    return `the certificate's DNS names ${JSON.stringify(sans.dns.slice(0, 5))} do not include ${JSON.stringify(rules.subjectHostname)}`;
  if (rules?.subjectURI !== undefined && !sans.uri.includes(rules.subjectURI))
    return `the certificate's URIs ${JSON.stringify(sans.uri.slice(0, 5))} do not include ${JSON.stringify(rules.subjectURI)}`;
  return undefined;
}

const describe = (c: X509Certificate) => c.subject.replace(/\n/g, ', ').slice(0, 200);

/** The path from `leaf` to a root, or the reason there is none (valid at `at`, CA certificates only). */
function buildPath(leaf: X509Certificate, roots: readonly X509Certificate[], candidates: readonly X509Certificate[], at: Date): X509Certificate[] {
  const path = [leaf];
  let current = leaf;
  for (let depth = 0; depth <= MAX_DEPTH; depth++) {
    const root = roots.find((r) => r.raw.equals(current.raw) || issued(current, r));
    if (root !== undefined) {
      if (!root.raw.equals(current.raw)) path.push(root);
      const expired = path.find((c) => !validAt(c, at));
      if (expired !== undefined)
        throw new SignetError(
          'CERTIFICATE_INVALID',
          `certificate ${describe(expired)} is not valid at the signing time ${at.toISOString()} (valid ${expired.validFrom} to ${expired.validTo})`,
        );
      return path;
    }
    const next = candidates.find((c) => c.ca && !path.some((p) => p.raw.equals(c.raw)) && issued(current, c));
    if (next === undefined) break;
    path.push(next);
    current = next;
  }
  throw new SignetError('CERTIFICATE_INVALID', `the signing certificate ${describe(leaf)} does not chain to a certificate of the trust store`);
}

/** Authenticity of a cosign layer signed with a private-PKI certificate (the caller checks the payload's claims). */
export async function verifyCosignPki(
  untrustedPayload: Buffer,
  untrustedSignature: Buffer,
  annotations: Record<string, string>,
  key: TrustedKey,
  at: Date,
): Promise<PkiCheck> {
  try {
    const certPem = annotations[COSIGN_CERTIFICATE_ANNOTATION];
    if (certPem === undefined || certPem === '')
      throw new SignetError('SIGNATURE_MALFORMED', `cosign signature has no ${COSIGN_CERTIFICATE_ANNOTATION} annotation`);
    const leafDer = singleCertificateDer(certPem, COSIGN_CERTIFICATE_ANNOTATION);
    const leaf = new X509Certificate(leafDer);
    const chainPem = annotations[COSIGN_CHAIN_ANNOTATION];
    const chain = chainPem !== undefined && chainPem !== '' ? pemCertificatesDer(chainPem, COSIGN_CHAIN_ANNOTATION).map((d) => new X509Certificate(d)) : [];
    let leafKey: TrustedKey;
    try {
      leafKey = trustedKeyFromKeyObject(key.name, 'certificate', leaf.publicKey);
    } catch (err) {
      throw new SignetError('CERTIFICATE_INVALID', `the signing certificate's key cannot be used: ${(err as Error).message}`);
    }
    if (!(await leafKey.verify(untrustedPayload, untrustedSignature, 'sha256'))) {
      throw new SignetError('SIGNATURE_INVALID', 'signature does not verify with the key of its certificate (the payload or signature was altered)');
    }
    const eku = leaf.keyUsage;
    if (eku !== undefined && eku.length > 0 && !eku.includes(CODE_SIGNING) && !eku.includes(ANY_EKU))
      throw new SignetError('CERTIFICATE_INVALID', `the signing certificate ${describe(leaf)} is not for code signing`);
    const path = buildPath(leaf, key.certificates ?? [], [...(key.intermediates ?? []), ...chain], at);
    const sans = subjectAltNames(leafDer);
    const mismatch = checkIdentity(sans, key.certificateIdentity);
    if (mismatch !== undefined) throw new SignetError('IDENTITY_MISMATCH', mismatch);
    return { valid: true, subject: sans.email[0] ?? sans.uri[0] ?? sans.dns[0] ?? describe(leaf), chain: path.map(describe) };
  } catch (err) {
    if (err instanceof SignetError) return { valid: false, code: err.code, reason: `cosign signature, trust store "${key.name}": ${err.message}` };
    throw err;
  }
}
