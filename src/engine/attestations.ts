/**
 * Attestation requirements: at least `threshold` distinct keys signed an in-toto statement of the
 * required predicate type about this digest, and (vulnerability predicate) the scan is recent and clean
 * enough. One check, one step; every failure names itself.
 */
import { COSIGN_VULN_PREDICATE_TYPE, evaluateVulnAttestation, parseVulnPredicate } from '../attest/vuln.js';
import { describeError, type ErrorCode } from '../errors.js';
import { checkEnvelope, INTOTO_PAYLOAD_TYPE, parseEnvelope } from '../formats/dsse.js';
import { parseStatement, statementCoversDigest } from '../formats/intoto.js';
import type { AttestationRequirement } from '../policy/types.js';
import type { SignatureResult } from './decision.js';
import { failureRank, mostTellingCode, type EvaluationContext } from './evaluate.js';
import { keyUsability } from '../policy/key-window.js';
import type { UntrustedAttestation } from './attestation-source.js';

/** `validUntil` (epoch ms): when a valid attestation stops counting (scan finished + maxAge). */
type Check = { ok: true; reason: string; validUntil?: number } | { ok: false; code: ErrorCode; reason: string };

async function checkOne(untrustedEnvelope: Buffer, keyName: string, requirement: AttestationRequirement, ctx: EvaluationContext): Promise<Check> {
  ctx.signal?.throwIfAborted();
  const lookup = ctx.keys.get(keyName);
  if (lookup.error) return { ok: false, code: lookup.error.code, reason: `key "${keyName}" cannot be used: ${lookup.error.message}` };
  let statement;
  try {
    const envelope = parseEnvelope(untrustedEnvelope);
    const verified = await checkEnvelope(envelope, lookup.key);
    if (!verified.verified) return { ok: false, code: 'SIGNATURE_INVALID', reason: `attestation does not verify with key "${keyName}"` };
    if (envelope.payloadType !== INTOTO_PAYLOAD_TYPE)
      return { ok: false, code: 'SIGNATURE_MALFORMED', reason: `attestation payloadType is ${JSON.stringify(envelope.payloadType)}` };
    statement = parseStatement(envelope.untrustedPayload);
  } catch (err) {
    return { ok: false, code: 'SIGNATURE_MALFORMED', reason: describeError(err) };
  }
  // Signed by the key from here on.
  const usable = keyUsability(keyName, ctx.keyDefinitions[keyName], ctx.now);
  if (!usable.usable) return { ok: false, code: usable.code, reason: `attestation by key "${keyName}" does not count: ${usable.reason}` };
  if (statement.predicateType !== requirement.predicateType)
    return {
      ok: false,
      code: 'SIGNATURE_MALFORMED',
      reason: `attestation by key "${keyName}" is a ${statement.predicateType}, not ${requirement.predicateType}`,
    };
  if (!statementCoversDigest(statement, ctx.digest))
    return { ok: false, code: 'DIGEST_MISMATCH', reason: `attestation by key "${keyName}" is not about ${ctx.digest}` };
  if (requirement.predicateType === COSIGN_VULN_PREDICATE_TYPE) {
    const verdict = evaluateVulnAttestation(statement.predicate, {
      ...(requirement.maxAgeMs !== undefined ? { maxAge: requirement.maxAgeMs } : {}),
      ...(requirement.maxSeverity !== undefined ? { maxSeverity: requirement.maxSeverity } : {}),
      ignore: requirement.ignore,
      now: ctx.now,
    });
    if (!verdict.ok) return { ok: false, code: 'ATTESTATION_REJECTED', reason: `attestation by key "${keyName}": ${verdict.reason}` };
    // It stops counting once the scan is older than maxAge: a cached verdict must not outlive that.
    const validUntil =
      requirement.maxAgeMs !== undefined ? Date.parse(parseVulnPredicate(statement.predicate).scanFinishedOn) + requirement.maxAgeMs : undefined;
    return {
      ok: true,
      reason: `attestation by key "${keyName}": ${verdict.reason}`,
      ...(validUntil !== undefined && Number.isFinite(validUntil) ? { validUntil } : {}),
    };
  }
  return { ok: true, reason: `valid ${requirement.predicateType} attestation by key "${keyName}"` };
}

export async function evaluateAttestationRequirement(
  requirement: AttestationRequirement,
  attestations: UntrustedAttestation[],
  ctx: EvaluationContext,
): Promise<{ satisfied: boolean; results: SignatureResult[]; code?: ErrorCode; reason: string; validUntil?: number }> {
  const valid = new Set<string>();
  let validUntil: number | undefined;
  const results: SignatureResult[] = [];
  for (const att of attestations) {
    if (att.untrustedEnvelope === undefined) {
      results.push({
        format: 'in-toto',
        source: att.source,
        key: '',
        valid: false,
        reason: att.error?.message ?? 'unreadable',
        code: att.error?.code ?? 'SIGNATURE_MALFORMED',
      });
      continue;
    }
    let best: SignatureResult | undefined;
    for (const keyName of requirement.keys) {
      const c = await checkOne(att.untrustedEnvelope, keyName, requirement, ctx);
      const r: SignatureResult = c.ok
        ? { format: 'in-toto', source: att.source, key: keyName, valid: true, reason: c.reason }
        : { format: 'in-toto', source: att.source, key: keyName, valid: false, reason: c.reason, code: c.code };
      if (c.ok) {
        valid.add(keyName);
        if (c.validUntil !== undefined) validUntil = Math.min(validUntil ?? Infinity, c.validUntil);
        best = r;
        break;
      }
      if (best === undefined || failureRank(r.code) > failureRank(best.code)) best = r;
    }
    if (best) results.push(best);
  }
  const name = requirement.predicateType;
  if (valid.size >= requirement.threshold)
    return { satisfied: true, results, reason: `${name} attested by ${[...valid].join(', ')}`, ...(validUntil !== undefined ? { validUntil } : {}) };
  const failures = results.filter((r) => !r.valid);
  const code = mostTellingCode(failures, 'ATTESTATION_NOT_FOUND');
  const need = `${requirement.threshold} ${name} attestation${requirement.threshold > 1 ? 's' : ''} by ${requirement.keys.join(', ')}`;
  const detail = [...new Set(failures.map((f) => f.reason))].slice(0, 3).join('; ');
  return {
    satisfied: false,
    results,
    code,
    reason: attestations.length === 0 ? `no attestations found; needs ${need}` : `needs ${need}; ${attestations.length} attestation(s) found: ${detail}`,
  };
}
