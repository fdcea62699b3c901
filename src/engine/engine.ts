/**
 * One decision: deny lists, scope, discovery, verification, requirements, mode. Knows nothing of gRPC
 * or the CLI; signetd, `signet verify` and `signet audit` all call it. Never throws: every error
 * becomes a rejection with a reason (fail closed).
 */
import { performance } from 'node:perf_hooks';
import { describeError, SignetError, type ErrorCode } from '../errors.js';
import type { KeySet } from '../keys/keyring.js';
import { resolveScope } from '../policy/scope.js';
import type { Policy, ScopePolicy, SignatureSourceSpec } from '../policy/types.js';
import type { SourceSet } from './default-sources.js';
import type { FormatName } from '../formats/types.js';
import { formatReference, parseReference, repositoryName, type ImageReference } from '../registry/reference.js';
import type { Decision, SignatureResult, VerifyRequest } from './decision.js';
import { evaluateRequirement, signedByRejectedKeys, type EvaluationContext } from './evaluate.js';
import { evaluateAttestationRequirement } from './attestations.js';
import type { UntrustedAttestation } from './attestation-source.js';

/**
 * The policy in force and the keys it names, loaded together and swapped together. A decision reads
 * the snapshot once, at its start, and uses it to the end: a reload under way never mixes one
 * generation's policy with another's keys.
 */
export interface PolicySnapshot {
  policy?: Policy;
  keys?: KeySet;
  /** Why no policy (or not the newest) is in force. */
  error?: string;
}

export interface EngineOptions {
  snapshot: () => PolicySnapshot;
  /** The signature and attestation sources for a scope's `signatureSources`. */
  sourcesFor: (specs: SignatureSourceSpec[], formats: readonly FormatName[]) => SourceSet;
  /** Upper bound on one decision, including registry round trips. */
  timeoutMs: number;
  /** Signatures examined per image: a flood of signatures is not a denial of service. */
  maxSignatures: number;
  now?: () => Date;
}

interface Lookup<T> {
  found: T[];
  failures: SignetError[];
}

/** A refusal on its way out: `final` ones (deny lists, no policy) ignore warn mode. */
class Refusal {
  constructor(readonly code: ErrorCode, readonly reason: string, readonly final = false) {}
}

export class VerificationEngine {
  constructor(private readonly options: EngineOptions) {}

  async verify(request: VerifyRequest): Promise<Decision> {
    const started = performance.now();
    const { policy, keys, error: policyError } = this.options.snapshot();
    const decision: Decision = {
      ok: false,
      decision: 'reject',
      reason: '',
      name: request.name,
      image: request.name,
      digest: request.descriptor.digest,
      mediaType: request.descriptor.mediaType,
      scope: '',
      signatures: [],
      warnings: [],
      policyGeneration: policy?.generation ?? '',
      durationMs: 0,
    };
    let mode = 'enforce' as ScopePolicy['mode'];
    try {
      const outcome = await this.decide(request, policy && keys ? { policy, keys } : undefined, policyError, decision, (m) => (mode = m));
      if (outcome instanceof Refusal) {
        decision.code = outcome.code;
        if (mode === 'warn' && !outcome.final) {
          Object.assign(decision, { ok: true, decision: 'warn', reason: `warn (scope ${decision.scope} is in warn mode, image allowed): would have ${outcome.reason}` });
        } else {
          Object.assign(decision, { ok: false, decision: 'reject', reason: outcome.reason });
        }
      } else {
        Object.assign(decision, { ok: true, decision: 'accept', reason: outcome });
      }
    } catch (err) {
      const e = err instanceof SignetError ? err : new SignetError('INTERNAL', describeError(err));
      Object.assign(decision, { ok: false, decision: 'reject', code: e.code, reason: `rejected ${decision.image}: ${e.message}` });
    }
    decision.durationMs = Math.round((performance.now() - started) * 100) / 100;
    return decision;
  }

  /** Returns the reason for an acceptance, or a Refusal. */
  private async decide(request: VerifyRequest, snapshot: { policy: Policy; keys: KeySet } | undefined, policyError: string | undefined, decision: Decision, setMode: (m: ScopePolicy['mode']) => void): Promise<string | Refusal> {
    const policy = snapshot?.policy;
    let image: ImageReference;
    try {
      image = parseReference(request.name);
    } catch (err) {
      return new Refusal('INVALID_REFERENCE', `rejected: ${(err as Error).message}`, true);
    }
    decision.image = formatReference(image);
    const digest = request.descriptor.digest;
    const subject = `${repositoryName(image)}@${digest}`;
    if (image.digest !== undefined && image.digest !== digest) {
      return new Refusal('DIGEST_MISMATCH', `rejected ${decision.image}: the name pins ${image.digest} but the resolved digest is ${digest}`, true);
    }
    if (policy === undefined) {
      return new Refusal('POLICY_NOT_FOUND', `rejected ${decision.image}: no valid trust policy is loaded${policyError ? ` (${policyError.split('\n')[0]})` : ''}`, true);
    }
    // Deny lists win over everything, warn mode included: they are for incident response.
    if (policy.denyDigests.includes(digest)) return new Refusal('DIGEST_DENIED', `rejected ${subject}: the digest is on the policy's deny list`, true);
    const { scope, policy: scopePolicy } = resolveScope(policy, image);
    decision.scope = scope;
    setMode(scopePolicy.mode);
    const where = `scope ${scope}`;
    if (scopePolicy.denyDigests.includes(digest)) return new Refusal('DIGEST_DENIED', `rejected ${subject}: the digest is on the deny list of ${where}`, true);
    if (scopePolicy.action === 'accept') return `accepted ${decision.image}: ${where} accepts without signatures`;
    if (scopePolicy.action === 'reject') return new Refusal('POLICY_REJECTED', `rejected ${decision.image}: ${where} rejects all images`);

    const sources = this.options.sourcesFor(scopePolicy.signatureSources, scopePolicy.formats);
    // Signatures and attestations are looked up at the same time.
    // A lookup that fails (a referrers endpoint answering 500, a listing over its size cap) refuses the
    // image only when what it might have found could change the decision: below, that is when
    // rejectIfSignedBy applies, or when the requirements are not met without it.
    const attestationsFound: Promise<Lookup<UntrustedAttestation>> = scopePolicy.attestations.length > 0 ? this.lookup(sources.attestations, 'attestations', image, digest) : Promise.resolve({ found: [], failures: [] });
    const { found: signatures, failures: signatureFailures } = await this.lookup(sources.signatures, 'signatures', image, digest);
    const ctx: EvaluationContext = { image, digest, subject: { digest, mediaType: request.descriptor.mediaType, size: request.descriptor.size }, keys: snapshot!.keys, keyDefinitions: policy.keys, now: this.options.now?.() ?? new Date() };
    if (scopePolicy.rejectIfSignedBy.length > 0) {
      const { hits, unchecked } = await signedByRejectedKeys(scopePolicy.rejectIfSignedBy, signatures, ctx);
      if (hits.length > 0) return new Refusal('SIGNED_BY_REJECTED_KEY', `rejected ${subject}: signed by ${hits.join(', ')}, which ${where} refuses (rejectIfSignedBy)`);
      if (unchecked.length > 0) return new Refusal('KEY_UNAVAILABLE', `rejected ${subject}: cannot check for signatures by refused key(s) ${unchecked.join(', ')} (${where})`);
      // A signature by a refused key could be in what was not read.
      const lost = signatureFailures[0];
      if (lost) return new Refusal(lost.code, `rejected ${subject}: cannot rule out a signature by ${scopePolicy.rejectIfSignedBy.join(', ')} (rejectIfSignedBy): ${lost.message} (${where})`);
    }
    const results: SignatureResult[] = [];
    const satisfied: string[] = [];
    const failed: Array<{ code?: ErrorCode; reason: string }> = [];
    for (const requirement of scopePolicy.signatures) {
      const outcome = await evaluateRequirement(requirement, signatures, ctx);
      decision.warnings.push(...outcome.warnings.filter((w) => !decision.warnings.includes(w)));
      for (const r of outcome.results) if (!results.some((x) => x.source === r.source && x.key === r.key && x.valid === r.valid)) results.push(r);
      if (outcome.satisfied) satisfied.push(outcome.reason);
      else failed.push({ ...(outcome.code ? { code: outcome.code } : {}), reason: outcome.reason });
    }
    const { found: attestations, failures: attestationFailures } = await attestationsFound;
    if (scopePolicy.attestations.length > 0) {
      for (const requirement of scopePolicy.attestations) {
        const outcome = await evaluateAttestationRequirement(requirement, attestations, ctx);
        for (const r of outcome.results) if (!results.some((x) => x.source === r.source && x.key === r.key && x.valid === r.valid)) results.push(r);
        if (outcome.satisfied) satisfied.push(outcome.reason);
        else failed.push({ ...(outcome.code ? { code: outcome.code } : {}), reason: outcome.reason });
      }
    }
    // One line per signature: a valid result wins over failures of other groups for the same signature.
    decision.signatures = results.filter((r) => r.valid || !results.some((x) => x.source === r.source && x.valid));
    const lookupFailures = [...signatureFailures, ...attestationFailures];
    if (failed.length === 0) {
      // Met without what could not be read: nothing there could change that.
      for (const f of lookupFailures) decision.warnings.push(`${f.message} (the requirements were met without it)`);
      return `accepted ${subject}: ${satisfied.join(' and ')} (${where})`;
    }
    const total = scopePolicy.signatures.length + scopePolicy.attestations.length;
    const groups = total > 1 ? `${failed.length} of ${total} requirements not met: ` : '';
    const unmet = `${groups}${failed.map((f) => f.reason).join('; ')}`;
    // Not met with what could be read, and a lookup failed: the failure is why we cannot tell.
    const lost = lookupFailures[0];
    if (lost) return new Refusal(lost.code, `rejected ${subject}: ${lost.message}; with what could be read: ${unmet} (${where})`);
    return new Refusal(failed[0]!.code ?? 'SIGNATURE_NOT_FOUND', `rejected ${subject}: ${unmet} (${where})`);
  }

  /** Ask every source at once; what was found, and each source that failed (as a coded error). */
  private async lookup<T>(sources: ReadonlyArray<{ name: string; find(image: ImageReference, digest: string, options: { limit: number; signal: AbortSignal }): Promise<T[]> }>, what: 'signatures' | 'attestations', image: ImageReference, digest: string): Promise<Lookup<T>> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    const settled = await Promise.allSettled(sources.map((source) => source.find(image, digest, { limit: this.options.maxSignatures, signal })));
    const found: T[] = [];
    const failures: SignetError[] = [];
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        found.push(...r.value);
        return;
      }
      const e = r.reason instanceof SignetError ? r.reason : new SignetError('REGISTRY_UNAVAILABLE', describeError(r.reason));
      if (signal.aborted && e.code === 'REGISTRY_TIMEOUT') failures.push(new SignetError('REGISTRY_TIMEOUT', `looking up ${what} took longer than ${this.options.timeoutMs} ms`));
      else failures.push(new SignetError(e.code, `cannot look up ${what} in the ${sources[i]!.name}: ${e.message}`));
    });
    return { found: found.slice(0, this.options.maxSignatures), failures };
  }
}
