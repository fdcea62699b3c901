/**
 * Pure verification of sigstore bundles (cosign v3 image signatures; `cosign sign-blob` bundles), with
 * the sigstore project's own packages: @sigstore/bundle parses and validates the bundle, @sigstore/verify
 * checks the certificate chain, SCTs, transparency-log entries (inclusion promise/proof and body) and
 * RFC 3161 timestamps against a sigstore TrustedRoot given as JSON (offline: no TUF, no network).
 *
 * Log entries may be Rekor v1 (integrated time vouched for by a signed entry timestamp) or Rekor v2
 * (hashedrekord/dsse 0.0.2, proved by an inclusion proof to a signed checkpoint, with no time of its
 * own: the time comes from an RFC 3161 timestamp, which such a bundle must carry). ./sigstore-log-entries.ts
 * checks what @sigstore/verify 3.1 leaves out (checkpoint origin and signer, proof ↔ checkpoint, the
 * logged key); a DSSE bundle's Rekor v2 hashedrekord entry over the envelope's pre-authentication
 * encoding (as rekor-tiles now logs DSSE) is read as sigstore-go and @sigstore/verify 4 read it.
 * A v0.1/v0.2 certificate chain that includes a root certificate is refused: the bundle specification
 * forbids it (the root must come from the trusted root), and @sigstore/verify 3.1 would accept it.
 *
 * Two modes:
 * - keyless (`trustedRoot` + `identity`): the bundle carries a Fulcio certificate; @sigstore/verify does
 *   everything (its default thresholds: at least one tlog entry, one SCT, one timestamp), then the
 *   certificate identity is matched: issuer exactly, subject exactly or by `subjectRegExp`.
 * - key-based (`key`, a policy TrustedKey — a PEM key or an HSM key): the signature is checked with
 *   TrustedKey.verify (so HSM-held keys work; @sigstore/verify would need a Node KeyObject). The bundle's
 *   key hint is ignored: it is unsigned, and only the policy's key is ever tried. Evidence:
 *     · with a `trustedRoot`, @sigstore/verify checks the tlog/timestamp evidence as for keyless, with at
 *       least `evidence.tlogThreshold` (default 1) tlog entries and `evidence.timestampThreshold`
 *       (default 1) timestamps — cosign v3 managed-key bundles carry both;
 *     · without one, nothing but the signature can be checked (the log's key is not known), and a bundle
 *       without any evidence verifies against the key alone. That is the policy's choice to make.
 *
 * Digest binding: a DSSE bundle must carry an in-toto statement (predicate type
 * https://sigstore.dev/cosign/sign/v1 unless the caller says otherwise) one of whose subjects has the
 * expected sha256 digest; a message-signature bundle's message digest must be the expected digest, and
 * since its signature is over the artifact itself, the artifact bytes must be given (`artifact`).
 */
import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { dsse } from '@sigstore/core';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier, type SignedEntity, type TrustMaterial, type VerificationPolicy } from '@sigstore/verify';
import type { ErrorCode } from '../errors.js';
import { SignetError } from '../errors.js';
import type { TrustedKey } from '../keys/types.js';
import { checkEnvelope, INTOTO_PAYLOAD_TYPE } from './dsse.js';
import { parseStatement, statementCoversDigest } from './intoto.js';
import { checkTimestampResponse } from './sigstore-timestamp.js';
import {
  checkLogEntries,
  checkLogEntriesWellFormed,
  checkLogKeysValidAt,
  checkRekorV2Trust,
  isRekorV2Entry,
  trustedLogsOf,
  type BundleSigner,
} from './sigstore-log-entries.js';
import { isPlainObject, parseStrictJson } from './strict-json.js';

export const SIGSTORE_BUNDLE_V03_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const ACCEPTED_BUNDLE_MEDIA_TYPES: readonly string[] = [
  SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
  'application/vnd.dev.sigstore.bundle+json;version=0.3',
  'application/vnd.dev.sigstore.bundle+json;version=0.2',
  'application/vnd.dev.sigstore.bundle+json;version=0.1',
];
export const COSIGN_SIGN_V1_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1';
export const MAX_SIGSTORE_BUNDLE_BYTES = 4 * 1024 * 1024;

export interface SigstoreIdentity {
  /** The OIDC issuer in the Fulcio certificate, matched exactly. */
  issuer: string;
  /** The certificate's subject alternative name (email, URI), matched exactly. */
  subject?: string;
  /** Or a regular expression the whole subject must match (anchored here). */
  subjectRegExp?: string;
}

export interface SigstoreBundleVerifyOptions {
  untrustedBundle: Buffer;
  /** `sha256:<hex>`: an in-toto subject digest (DSSE), or the message digest (message signature). */
  expectedDigest: string;
  /** Key-based bundles: the policy key. */
  key?: TrustedKey;
  /** A sigstore TrustedRoot (JSON, as `trusted_root.json`): required for keyless, optional with a key. */
  trustedRoot?: unknown;
  /** Keyless: who must have signed. Required when no key is given. */
  identity?: SigstoreIdentity;
  /** The predicate type a DSSE bundle's statement must have; default the cosign image-signature one. */
  predicateType?: string;
  /** Message-signature bundles only: the signed artifact (its sha256 must be `expectedDigest`). */
  artifact?: Buffer;
  /** Key-based bundles checked against a trusted root: minimum evidence (defaults 1 and 1). */
  evidence?: { tlogThreshold?: number; timestampThreshold?: number };
}

export type SigstoreBundleVerifyResult =
  | {
      valid: true;
      mediaType: string;
      content: 'dsseEnvelope' | 'messageSignature';
      signedDigest: string;
      /** Key-based: the policy key; keyless: the certificate identity. */
      signer: { keyName?: string; keyFingerprint?: string; issuer?: string; subject?: string };
      /** In-toto subject names of a DSSE bundle (image repository for cosign v3). */
      subjectNames: string[];
      /** Whether tlog/timestamp evidence was verified against a trusted root, and how much there was. */
      evidence: { verified: boolean; tlogEntries: number; timestamps: number };
    }
  | { valid: false; code: ErrorCode; reason: string };

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** What an invalid field @sigstore/bundle names means, for the refusal's reason. */
function explainInvalidField(field: string, mediaType: string): string {
  if (field === 'verificationMaterial.content.$case')
    return `a ${mediaType} bundle carries the signing certificate alone (verificationMaterial.certificate), not a certificate chain`;
  if (/^verificationMaterial\.tlogEntries\[\d+\]\.inclusionProof\.checkpoint$/.test(field))
    return "its transparency-log inclusion proof has no checkpoint (the log's signed tree head), which bundles from v0.2 on must carry";
  if (/^verificationMaterial\.tlogEntries\[\d+\]\.inclusionProof$/.test(field))
    return 'its transparency-log entry has no inclusion proof, which bundles from v0.2 on must carry';
  if (/^verificationMaterial\.tlogEntries\[\d+\]\.inclusionPromise$/.test(field))
    return 'its transparency-log entry has no inclusion promise, which v0.1 bundles must carry';
  return `${field.slice(0, 120)} is missing or invalid`;
}

/** Parse strictly (no duplicate keys, size cap), then validate with @sigstore/bundle. */
export function parseSigstoreBundle(untrustedBytes: Buffer): Bundle {
  const json = parseStrictJson(untrustedBytes.toString('utf8'), 'sigstore bundle', 'SIGNATURE_MALFORMED', MAX_SIGSTORE_BUNDLE_BYTES);
  if (!isPlainObject(json)) throw new SignetError('SIGNATURE_MALFORMED', 'sigstore bundle is not a JSON object');
  const mediaType = json['mediaType'];
  if (typeof mediaType !== 'string' || !ACCEPTED_BUNDLE_MEDIA_TYPES.includes(mediaType)) {
    throw new SignetError(
      'SIGNATURE_MALFORMED',
      `sigstore bundle media type ${JSON.stringify(mediaType)} is not one of ${ACCEPTED_BUNDLE_MEDIA_TYPES.join(', ')}`,
    );
  }
  try {
    return bundleFromJSON(json);
  } catch (err) {
    const fields = (err as { fields?: unknown }).fields;
    const why =
      Array.isArray(fields) && fields.length > 0
        ? `: ${fields
            .slice(0, 5)
            .map((f) => explainInvalidField(String(f), mediaType))
            .join('; ')}`
        : '';
    throw new SignetError('SIGNATURE_MALFORMED', `sigstore bundle is invalid (${(err as Error).message})${why}`);
  }
}

/** A TrustMaterial from a TrustedRoot JSON; the key finder refuses every hint (keys come from the policy). */
export function trustMaterialFrom(trustedRoot: unknown): TrustMaterial {
  try {
    return toTrustMaterial(TrustedRoot.fromJSON(trustedRoot), () => {
      throw new SignetError('KEY_NOT_FOUND', 'sigstore bundle names a key; no trusted-root key is used for key-based bundles');
    });
  } catch (err) {
    throw new SignetError('POLICY_INVALID', `sigstore trusted root is invalid: ${(err as Error).message}`);
  }
}

/** What @sigstore/verify's error codes mean, for the refusal's reason. */
const SIGSTORE_ERROR_MEANING: Record<string, string> = {
  TLOG_INCLUSION_PROOF_ERROR: 'the transparency-log inclusion proof or its checkpoint does not verify',
  TLOG_INCLUSION_PROMISE_ERROR: "the transparency log's signed entry timestamp (inclusion promise) does not verify",
  TLOG_MISSING_INCLUSION_ERROR: 'the transparency-log entry has neither an inclusion proof nor a promise',
  TLOG_BODY_ERROR: 'the transparency-log entry is not about this signature',
  TLOG_ERROR: 'not enough transparency-log entries',
  TIMESTAMP_ERROR: 'the time evidence (RFC 3161 timestamp or signed entry timestamp) is missing or does not verify',
  CERTIFICATE_ERROR: 'the certificate does not chain to a CA of the trusted root, valid at the signing time',
  SIGNATURE_ERROR: 'the signature does not verify',
};

function verificationError(err: unknown): SignetError {
  if (err instanceof SignetError) return err;
  const e = err as { code?: string; message?: string };
  const code = e.code ?? '';
  const meaning = SIGSTORE_ERROR_MEANING[code];
  const mapped: ErrorCode = code.startsWith('SIGNATURE')
    ? 'SIGNATURE_INVALID'
    : code.startsWith('CERTIFICATE') || code.startsWith('PUBLIC_KEY')
      ? 'CERTIFICATE_INVALID'
      : code === 'UNTRUSTED_SIGNER_ERROR'
        ? 'IDENTITY_MISMATCH'
        : 'SIGNATURE_INVALID';
  return new SignetError(mapped, `sigstore bundle verification failed${code ? ` (${code})` : ''}: ${meaning ? `${meaning}: ` : ''}${e.message ?? String(err)}`);
}

/** Integrity of a key-based bundle: the DSSE envelope or message signature verifies with the policy key. */
export async function checkKeySignature(bundle: Bundle, key: TrustedKey, artifact: Buffer | undefined): Promise<void> {
  if (bundle.content.$case === 'dsseEnvelope') {
    const env = bundle.content.dsseEnvelope;
    const check = await checkEnvelope(
      { payloadType: env.payloadType, untrustedPayload: env.payload, signatures: env.signatures.map((s) => ({ keyid: s.keyid, untrustedSig: s.sig })) },
      key,
    );
    if (!check.verified)
      throw new SignetError('SIGNATURE_INVALID', `sigstore bundle's DSSE envelope does not verify with key "${key.name}" (signed by another key, or altered)`);
    return;
  }
  const m = bundle.content.messageSignature;
  if (artifact === undefined)
    throw new SignetError('INVALID_ARGUMENT', 'a message-signature sigstore bundle signs the artifact itself: its bytes are needed to verify it');
  if (!(await key.verify(artifact, m.signature, 'sha256')))
    throw new SignetError('SIGNATURE_INVALID', `sigstore bundle's message signature does not verify with key "${key.name}"`);
}

/** Evidence (tlog entries, timestamps) and, keyless, the certificate — all by @sigstore/verify. */
function checkWithSigstore(
  bundle: Bundle,
  trust: TrustMaterial,
  artifact: Buffer | undefined,
  options: { keyVerified?: boolean; policy?: VerificationPolicy; tlogThreshold?: number; timestampThreshold?: number; artifact?: Buffer | undefined },
) {
  let entity: SignedEntity;
  try {
    entity = toSignedEntity(bundle, artifact);
  } catch (err) {
    throw new SignetError('SIGNATURE_MALFORMED', `sigstore bundle could not be read for verification: ${(err as Error).message}`);
  }
  let material = trust;
  const original = entity.signature;
  // Rekor v2 logs a DSSE envelope as a hashedrekord 0.0.2 entry of its pre-authentication encoding's
  // digest (rekor-tiles dropped its dsse type); sigstore-go and @sigstore/verify 4 compare that digest,
  // 3.1 only the payload's. Either digest commits to this very envelope.
  const paeDigest =
    bundle.content.$case === 'dsseEnvelope' && bundle.verificationMaterial.tlogEntries.some((e) => isRekorV2Entry(e) && e.kindVersion?.kind === 'hashedrekord')
      ? createHash('sha256').update(dsse.preAuthEncoding(bundle.content.dsseEnvelope.payloadType, bundle.content.dsseEnvelope.payload)).digest()
      : undefined;
  const verified = options.keyVerified;
  entity = {
    ...entity,
    signature: {
      signature: original.signature,
      compareSignature: (s) => original.compareSignature(s),
      compareDigest: (d) => original.compareDigest(d) || (paeDigest !== undefined && d.length === paeDigest.length && timingSafeEqual(d, paeDigest)),
      // Key-based: the signature was checked with the policy's TrustedKey (possibly on an HSM) already;
      // @sigstore/verify is asked only about the evidence, so it sees that result instead of a KeyObject.
      verifySignature: verified !== undefined ? () => verified : (k) => original.verifySignature(k),
    },
  };
  if (verified !== undefined) material = { ...trust, publicKey: () => ({ publicKey: undefined as never, validFor: () => true }) };
  const verifier = new Verifier(material, {
    // Certificate transparency can only be required when the trusted root names CT logs.
    ctlogThreshold: material.ctlogs.length > 0 ? 1 : 0,
    ...(options.tlogThreshold !== undefined ? { tlogThreshold: options.tlogThreshold } : {}),
    ...(options.timestampThreshold !== undefined ? { timestampThreshold: options.timestampThreshold } : {}),
  });
  try {
    return verifier.verify(entity, options.policy);
  } catch (err) {
    throw verificationError(err);
  }
}

/** A v0.1/v0.2 chain may carry intermediates, never the root: that must come from the trusted root. */
export function checkChainHasNoRoot(bundle: Bundle): void {
  const content = bundle.verificationMaterial.content;
  if (content.$case !== 'x509CertificateChain') return;
  content.x509CertificateChain.certificates.forEach((c, i) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(c.rawBytes);
    } catch {
      throw new SignetError('SIGNATURE_MALFORMED', `sigstore bundle's certificate ${i} is not a DER X.509 certificate`);
    }
    if (cert.checkIssued(cert) && cert.verify(cert.publicKey))
      throw new SignetError(
        'SIGNATURE_MALFORMED',
        `sigstore bundle's certificate chain includes a root certificate (certificate ${i}, self-signed ${JSON.stringify(cert.subject.slice(0, 120))}): ` +
          'the sigstore bundle specification forbids it; the root must come from the trusted root',
      );
  });
}

/** Rekor v2 entries carry no time of their own: without a signed entry timestamp, an RFC 3161 timestamp must give it. */
function checkTimeEvidence(bundle: Bundle): void {
  const entries = bundle.verificationMaterial.tlogEntries;
  if (!entries.some(isRekorV2Entry) || entries.some((e) => e.inclusionPromise !== undefined)) return;
  if ((bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps.length ?? 0) > 0) return;
  throw new SignetError(
    'SIGNATURE_INVALID',
    'sigstore bundle has no time evidence: its Rekor v2 entries carry no integrated time or signed entry timestamp, and it has no RFC 3161 timestamp',
  );
}

/** The log checks of ./sigstore-log-entries.ts, then @sigstore/verify, then the Rekor v2 log keys' validity at the timestamps. */
function checkEvidence(bundle: Bundle, trustedRoot: unknown, signer: BundleSigner, options: Parameters<typeof checkWithSigstore>[3]) {
  const trust = trustMaterialFrom(trustedRoot);
  const logChecks = () => {
    try {
      return checkLogEntries(bundle, trustedLogsOf(trustedRoot), signer);
    } catch (err) {
      if (err instanceof SignetError) throw new SignetError(err.code, `sigstore bundle's ${err.message}`);
      throw err;
    }
  };
  try {
    checkLogEntriesWellFormed(bundle);
    checkRekorV2Trust(bundle, trustedRoot);
  } catch (err) {
    if (err instanceof SignetError) throw new SignetError(err.code, `sigstore bundle's ${err.message}`);
    throw err;
  }
  const timestamps = (bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps ?? []).map((t, i) =>
    checkTimestampResponse(Buffer.from(t.signedTimestamp), trustedRoot, `sigstore bundle's RFC 3161 timestamp ${i}`),
  );
  if ((options.timestampThreshold ?? 1) > 0) checkTimeEvidence(bundle);
  let verified;
  try {
    verified = checkWithSigstore(bundle, trust, options.artifact, options);
  } catch (err) {
    // @sigstore/verify stops at its first failure; when that is about the log entries, the checks here say more exactly what is wrong.
    if (err instanceof SignetError && /\(TLOG_[A-Z_]+\)/.test(err.message)) logChecks();
    throw err;
  }
  const v2Logs = logChecks();
  const times = timestamps.map((t) => t.genTime);
  try {
    checkLogKeysValidAt(v2Logs, times);
  } catch (err) {
    if (err instanceof SignetError) throw new SignetError(err.code, `sigstore bundle's transparency-log entry: ${err.message}`);
    throw err;
  }
  return verified;
}

/** Keyless identity: issuer exactly; subject exactly or matching the (anchored) regular expression. */
export function checkIdentity(
  identity: SigstoreIdentity,
  signer: { extensions?: { issuer?: string }; subjectAlternativeName?: string } | undefined,
): { issuer: string; subject: string } {
  const issuer = signer?.extensions?.issuer;
  const subject = signer?.subjectAlternativeName ?? '';
  if (issuer !== identity.issuer)
    throw new SignetError('IDENTITY_MISMATCH', `sigstore certificate issuer ${JSON.stringify(issuer ?? null)} is not ${JSON.stringify(identity.issuer)}`);
  if (identity.subject !== undefined && subject !== identity.subject)
    throw new SignetError(
      'IDENTITY_MISMATCH',
      `sigstore certificate subject ${JSON.stringify(subject.slice(0, 200))} is not ${JSON.stringify(identity.subject)}`,
    );
  if (identity.subjectRegExp !== undefined && !new RegExp(`^(?:${identity.subjectRegExp})$`).test(subject)) {
    throw new SignetError(
      'IDENTITY_MISMATCH',
      `sigstore certificate subject ${JSON.stringify(subject.slice(0, 200))} does not match /${identity.subjectRegExp}/`,
    );
  }
  return { issuer, subject };
}

/** Digest binding: what the (now authentic) bundle is about must be `expectedDigest`. */
export function checkDigestBinding(bundle: Bundle, expectedDigest: string, predicateType: string, artifact: Buffer | undefined): string[] {
  if (bundle.content.$case === 'messageSignature') {
    const md = bundle.content.messageSignature.messageDigest;
    if (md === undefined || md.algorithm !== 1 /* SHA2_256 */)
      throw new SignetError('SIGNATURE_MALFORMED', 'sigstore message-signature bundle has no SHA-256 message digest');
    const signed = `sha256:${Buffer.from(md.digest).toString('hex')}`;
    if (signed !== expectedDigest) throw new SignetError('DIGEST_MISMATCH', `sigstore bundle signs ${signed}, not ${expectedDigest}`);
    if (artifact !== undefined && `sha256:${createHash('sha256').update(artifact).digest('hex')}` !== expectedDigest)
      throw new SignetError('DIGEST_MISMATCH', `the artifact given is not ${expectedDigest}`);
    return [];
  }
  const env = bundle.content.dsseEnvelope;
  if (env.payloadType !== INTOTO_PAYLOAD_TYPE)
    throw new SignetError(
      'SIGNATURE_MALFORMED',
      `sigstore bundle payload type is ${JSON.stringify(env.payloadType.slice(0, 100))}, not ${INTOTO_PAYLOAD_TYPE}`,
    );
  let statement;
  try {
    statement = parseStatement(env.payload);
  } catch (err) {
    throw new SignetError('SIGNATURE_MALFORMED', `sigstore bundle statement: ${(err as Error).message}`);
  }
  if (statement.predicateType !== predicateType)
    throw new SignetError(
      'SIGNATURE_MALFORMED',
      `sigstore bundle statement has predicate type ${JSON.stringify(statement.predicateType.slice(0, 100))}, not ${predicateType}`,
    );
  if (!statementCoversDigest(statement, expectedDigest)) throw new SignetError('DIGEST_MISMATCH', `sigstore bundle statement is not about ${expectedDigest}`);
  const hex = expectedDigest.slice('sha256:'.length);
  return statement.subject.filter((s) => s.digest['sha256'] === hex).map((s) => s.name ?? '');
}

export async function verifySigstoreBundle(options: SigstoreBundleVerifyOptions): Promise<SigstoreBundleVerifyResult> {
  try {
    return await verifyOrThrow(options);
  } catch (err) {
    if (err instanceof SignetError) return { valid: false, code: err.code, reason: err.message };
    return { valid: false, code: 'SIGNATURE_INVALID', reason: `sigstore bundle could not be verified: ${(err as Error).message}` };
  }
}

async function verifyOrThrow(o: SigstoreBundleVerifyOptions): Promise<SigstoreBundleVerifyResult> {
  if (!DIGEST.test(o.expectedDigest)) throw new SignetError('INVALID_ARGUMENT', `expected digest ${JSON.stringify(o.expectedDigest)} is not sha256:<64 hex>`);
  if (o.key === undefined && (o.trustedRoot === undefined || o.identity === undefined))
    throw new SignetError('INVALID_ARGUMENT', 'a sigstore bundle needs a key, or a trusted root and an identity (keyless)');
  const bundle = parseSigstoreBundle(o.untrustedBundle);
  checkChainHasNoRoot(bundle);
  if (o.trustedRoot !== undefined) trustMaterialFrom(o.trustedRoot);
  const material = bundle.verificationMaterial.content.$case;
  const tlogEntries = bundle.verificationMaterial.tlogEntries.length;
  const timestamps = bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps.length ?? 0;
  const content = bundle.content.$case;
  let signer: Extract<SigstoreBundleVerifyResult, { valid: true }>['signer'];
  let evidenceVerified = false;

  if (o.key !== undefined) {
    if (material !== 'publicKey')
      throw new SignetError('SIGNATURE_INVALID', `sigstore bundle is keyless (${material}); the policy expects a signature by key "${o.key.name}"`);
    await checkKeySignature(bundle, o.key, o.artifact);
    if (o.trustedRoot !== undefined) {
      checkEvidence(
        bundle,
        o.trustedRoot,
        { keyFingerprint: o.key.fingerprint },
        { keyVerified: true, tlogThreshold: o.evidence?.tlogThreshold ?? 1, timestampThreshold: o.evidence?.timestampThreshold ?? 1, artifact: o.artifact },
      );
      evidenceVerified = true;
    }
    signer = { keyName: o.key.name, keyFingerprint: o.key.fingerprint };
  } else {
    if (material === 'publicKey') throw new SignetError('SIGNATURE_INVALID', 'sigstore bundle is signed with a key, and the policy gives none (keyless only)');
    if (content === 'messageSignature' && o.artifact === undefined)
      throw new SignetError('INVALID_ARGUMENT', 'a message-signature sigstore bundle signs the artifact itself: its bytes are needed to verify it');
    const leaf = material === 'certificate' ? bundle.verificationMaterial.content : undefined;
    const chain = material === 'x509CertificateChain' ? bundle.verificationMaterial.content : undefined;
    const certificateDer = Buffer.from(
      (leaf?.$case === 'certificate'
        ? leaf.certificate.rawBytes
        : chain?.$case === 'x509CertificateChain'
          ? chain.x509CertificateChain.certificates[0]?.rawBytes
          : undefined) ?? Buffer.alloc(0),
    );
    const verified = checkEvidence(bundle, o.trustedRoot, { certificateDer }, { artifact: o.artifact });
    signer = checkIdentity(o.identity!, verified.identity);
    evidenceVerified = true;
  }
  // Authentic from here on.
  const subjectNames = checkDigestBinding(bundle, o.expectedDigest, o.predicateType ?? COSIGN_SIGN_V1_PREDICATE_TYPE, o.artifact);
  return {
    valid: true,
    mediaType: bundle.mediaType,
    content,
    signedDigest: o.expectedDigest,
    signer,
    subjectNames,
    evidence: { verified: evidenceVerified, tlogEntries, timestamps },
  };
}
