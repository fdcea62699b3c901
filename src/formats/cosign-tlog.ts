/**
 * `tlog: required` for key-based cosign signatures: the layer's `dev.sigstore.cosign/bundle` Rekor record
 * must be a hashedrekord entry of exactly this payload digest, signature and signing key, with a signed
 * entry timestamp (over the canonical `{body, integratedTime, logIndex, logID}`, as Rekor signs it) by a
 * log key the policy trusts, valid at the entry's integrated time. A missing, tampered or foreign record
 * refuses the signature.
 */
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { json } from '@sigstore/core';
import { SignetError } from '../errors.js';
import type { TlogRequirement } from '../keys/tlog.js';
import type { TrustedKey } from '../keys/types.js';
import { base64Field, COSIGN_BUNDLE_ANNOTATION, parseRekorRecord } from './cosign-certs.js';
import { isPlainObject, parseStrictJson } from './strict-json.js';

const refuse = (why: string): never => {
  throw new SignetError('SIGNATURE_INVALID', `transparency-log record: ${why}`);
};

/** The entry's integrated time (seconds) when the record vouches for this signature; throws otherwise. */
export function verifyTlogRecord(
  untrustedPayload: Buffer,
  untrustedSignature: Buffer,
  annotations: Record<string, string>,
  key: TrustedKey,
  requirement: TlogRequirement,
): { integratedTime: number; logIndex: number } {
  const text = annotations[COSIGN_BUNDLE_ANNOTATION];
  if (text === undefined || text === '')
    return refuse(`key "${key.name}" requires one (tlog: required) and the signature has no ${COSIGN_BUNDLE_ANNOTATION} annotation`);
  const record = parseRekorRecord(text);
  const logKey = requirement.logKeys.find((k) => k.logId.equals(record.logId));
  if (logKey === undefined) return refuse(`logged by log ${record.logId.toString('hex').slice(0, 16)}…, not a log of ${requirement.source}`);
  const at = record.integratedTime * 1000;
  if ((logKey.validFrom !== undefined && at < logKey.validFrom.getTime()) || (logKey.validTo !== undefined && at > logKey.validTo.getTime())) {
    return refuse(`the log key of ${requirement.source} was not valid at the entry's time ${new Date(at).toISOString()}`);
  }
  const signed = Buffer.from(
    json.canonicalize({
      body: record.body.toString('base64'),
      integratedTime: record.integratedTime,
      logIndex: record.logIndex,
      logID: record.logId.toString('hex'),
    }),
  );
  let ok = false;
  try {
    ok = cryptoVerify(logKey.key.asymmetricKeyType === 'ed25519' ? null : 'sha256', signed, logKey.key, record.set);
  } catch {
    ok = false;
  }
  if (!ok) return refuse(`the signed entry timestamp does not verify with the log key of ${requirement.source}`);
  // Signed by the log from here on: the entry must be this signature.
  const body = parseStrictJson(record.body.toString('utf8'), 'Rekor entry body', 'SIGNATURE_MALFORMED');
  if (!isPlainObject(body) || body['kind'] !== 'hashedrekord' || body['apiVersion'] !== '0.0.1') return refuse('the entry is not a hashedrekord 0.0.1 entry');
  const spec = body['spec'];
  const data = isPlainObject(spec) && isPlainObject(spec['data']) ? spec['data'] : undefined;
  const hash = data !== undefined && isPlainObject(data['hash']) ? data['hash'] : undefined;
  if (hash?.['algorithm'] !== 'sha256' || hash['value'] !== createHash('sha256').update(untrustedPayload).digest('hex'))
    return refuse('the entry is for another payload');
  const sig = isPlainObject(spec) && isPlainObject(spec['signature']) ? spec['signature'] : undefined;
  if (sig === undefined || !base64Field(sig['content'], 'Rekor entry signature').equals(untrustedSignature)) return refuse('the entry holds another signature');
  const pk = isPlainObject(sig['publicKey']) ? sig['publicKey']['content'] : undefined;
  let fingerprint: string | undefined;
  try {
    const spki = createPublicKey(base64Field(pk, 'Rekor entry public key').toString('utf8')).export({ type: 'spki', format: 'der' });
    fingerprint = `sha256:${createHash('sha256').update(spki).digest('hex')}`;
  } catch {
    fingerprint = undefined;
  }
  if (fingerprint !== key.fingerprint) return refuse(`the entry names another signing key than "${key.name}"`);
  return { integratedTime: record.integratedTime, logIndex: record.logIndex };
}
