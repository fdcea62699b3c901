/**
 * One decision: deny lists, scope, discovery, verification, requirements, mode. Knows nothing of gRPC
 * or the CLI; signetd, `signet verify` and `signet audit` all call it. Never throws: every error
 * becomes a rejection with a reason (fail closed).
 *
 * One bound covers the whole decision (`timeoutMs`, signetd's `verifyTimeout`): discovery and
 * verification alike, a key that answers slowly (a PKCS#11 token's C_Verify) included. When it passes,
 * the decision is a refusal naming the bound (REGISTRY_TIMEOUT while lookups were still under way,
 * DECISION_TIMEOUT after), no key is asked again, and nothing that finishes later changes it.
 */
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { DEFAULTS } from '../defaults.js';
import { describeError, SignetError, type ErrorCode } from '../errors.js';
import type { KeySet } from '../keys/keyring.js';
import { resolveScope } from '../policy/scope.js';
import type { Mode, Policy, ScopePolicy, SignatureSourceSpec } from '../policy/types.js';
import type { FormatName } from '../formats/types.js';
import { formatReference, parseReference, repositoryName, type ImageReference } from '../registry/reference.js';
import type { Decision, SignatureResult, VerifyRequest } from './decision.js';
import { evaluateRequirement, mostTellingCode, signedByRejectedKeys, type EvaluationContext } from './evaluate.js';
import { evaluateAttestationRequirement } from './attestations.js';
import type { UntrustedAttestation } from './attestation-source.js';
import { inExaminationOrder, precheckKeys, referrersInExaminationOrder, withoutDuplicates } from './signature-order.js';
import { isUnreadable, type DiscoveredSignature, type FindOptions, type SignatureSource } from './sources.js';

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

/** Where attestations are read from (cosign `.att` in a registry or an OCI layout; in memory in tests). */
export interface AttestationLookup {
  readonly name: string;
  find(image: ImageReference, digest: string, options: { limit: number; signal?: AbortSignal }): Promise<UntrustedAttestation[]>;
}

/** What `sourcesFor` gives the engine (default-sources.ts SourceFactory builds one per scope). */
export interface EngineSources {
  signatures: SignatureSource[];
  attestations: AttestationLookup[];
}

export interface EngineOptions {
  snapshot: () => PolicySnapshot;
  /** The signature and attestation sources for a scope's `signatureSources`. */
  sourcesFor: (specs: SignatureSourceSpec[], formats: readonly FormatName[]) => EngineSources;
  /** Upper bound on one decision: registry round trips and verification (keys, tokens) alike. */
  timeoutMs: number;
  /** Signatures examined per image: a flood of signatures is not a denial of service. */
  maxSignatures: number;
  now?: () => Date;
}

/** How a decision ends: an acceptance with its reason, or a refusal. */
export type Outcome =
  | { ok: true; reason: string }
  /** `final` refusals (deny lists, no policy, bad names, internal errors) ignore warn mode. */
  | { ok: false; code: ErrorCode; reason: string; final: boolean };

/** What decide() found; verify() turns it into the Decision. */
export interface Verdict {
  /** The normalised image reference, or the raw name when it did not parse. */
  image: string;
  /** The scope that matched, `default`, or '' when no policy applied. */
  scope: string;
  mode: Mode;
  signatures: SignatureResult[];
  warnings: string[];
  outcome: Outcome;
  /** Epoch ms: when what the decision rests on stops holding (an attestation's maxAge), when known. */
  validUntil?: number;
}

const accept = (reason: string): Outcome => ({ ok: true, reason });
const refuse = (code: ErrorCode, reason: string, final = false): Outcome => ({ ok: false, code, reason, final });

interface Lookup<T> {
  found: T[];
  failures: SignetError[];
  /** Distinct signatures found but not examined (past maxSignatures). */
  leftOut: number;
}

/** A lookup under way: whether it has finished tells a slow registry from a slow key at the deadline. */
interface PendingLookup<T> {
  what: 'signatures' | 'attestations';
  done: boolean;
  result: Promise<Lookup<T>>;
  /** Each source's own lookup, for a look at what the first to answer found (see earlySignatures). */
  each: Array<{ name: string; found: Promise<T[]> }>;
}

/** What the checks of one scope need once the pure part of the decision has run. */
interface Work {
  image: ImageReference;
  digest: string;
  /** `host/repo@digest`, for reasons. */
  subject: string;
  /** `scope <name>`, for reasons. */
  where: string;
  scopePolicy: ScopePolicy;
  ctx: EvaluationContext;
}

/** The deadline passed: `late` are the lookups still under way then. */
class DeadlinePassed extends Error {
  constructor(readonly late: string[]) {
    super('deadline passed');
  }
}

export class VerificationEngine {
  constructor(private readonly options: EngineOptions) {}

  async verify(request: VerifyRequest): Promise<Decision> {
    const started = performance.now();
    const snapshot = this.options.snapshot();
    const verdict = await this.decide(request, snapshot).catch((err: unknown): Verdict => {
      // decide() handles every error it expects; this is the fail-closed net for the ones it does not.
      const e = err instanceof SignetError ? err : new SignetError('INTERNAL', describeError(err));
      return {
        image: request.name,
        scope: '',
        mode: 'enforce',
        signatures: [],
        warnings: [],
        outcome: refuse(e.code, `rejected ${request.name}: ${e.message}`, true),
      };
    });
    const { outcome } = verdict;
    const decision: Decision = {
      ok: outcome.ok,
      decision: outcome.ok ? 'accept' : 'reject',
      reason: outcome.reason,
      name: request.name,
      image: verdict.image,
      digest: request.descriptor.digest,
      mediaType: request.descriptor.mediaType,
      scope: verdict.scope,
      signatures: verdict.signatures,
      warnings: verdict.warnings,
      policyGeneration: snapshot.policy?.generation ?? '',
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      ...(verdict.validUntil !== undefined ? { validUntil: new Date(verdict.validUntil).toISOString() } : {}),
    };
    if (!outcome.ok) {
      decision.code = outcome.code;
      if (verdict.mode === 'warn' && !outcome.final) {
        Object.assign(decision, {
          ok: true,
          decision: 'warn',
          reason: `warn (scope ${verdict.scope} is in warn mode, image allowed): would have ${outcome.reason}`,
        });
      }
    }
    return decision;
  }

  /** The whole decision as a value; never throws. */
  private async decide(request: VerifyRequest, snapshot: PolicySnapshot): Promise<Verdict> {
    const deadline = AbortSignal.timeout(this.options.timeoutMs);
    // Every registry request of the decision listens on it (dozens for an image with many signatures):
    // not a leak, so no MaxListenersExceededWarning.
    setMaxListeners(Math.max(64, 8 * this.options.maxSignatures), deadline);
    const none = (image: string, outcome: Outcome): Verdict => ({ image, scope: '', mode: 'enforce', signatures: [], warnings: [], outcome });
    // The pure part first: the name, the policy, deny lists, the scope. Synchronous, so within any bound.
    let image: ImageReference;
    try {
      image = parseReference(request.name);
    } catch (err) {
      return none(request.name, refuse('INVALID_REFERENCE', `rejected: ${(err as Error).message}`, true));
    }
    const name = formatReference(image);
    const digest = request.descriptor.digest;
    const subject = `${repositoryName(image)}@${digest}`;
    if (image.digest !== undefined && image.digest !== digest) {
      return none(name, refuse('DIGEST_MISMATCH', `rejected ${name}: the name pins ${image.digest} but the resolved digest is ${digest}`, true));
    }
    const { policy, keys } = snapshot;
    if (policy === undefined || keys === undefined) {
      return none(
        name,
        refuse('POLICY_NOT_FOUND', `rejected ${name}: no valid trust policy is loaded${snapshot.error ? ` (${snapshot.error.split('\n')[0]})` : ''}`, true),
      );
    }
    // Deny lists win over everything, warn mode included: they are for incident response.
    if (policy.denyDigests.includes(digest)) return none(name, refuse('DIGEST_DENIED', `rejected ${subject}: the digest is on the policy's deny list`, true));
    const { scope, policy: scopePolicy } = resolveScope(policy, image);
    const where = `scope ${scope}`;
    const verdict = (outcome: Outcome, signatures: SignatureResult[] = [], warnings: string[] = []): Verdict => ({
      image: name,
      scope,
      mode: scopePolicy.mode,
      signatures,
      warnings,
      outcome,
    });
    if (scopePolicy.denyDigests.includes(digest))
      return verdict(refuse('DIGEST_DENIED', `rejected ${subject}: the digest is on the deny list of ${where}`, true));
    if (scopePolicy.action === 'accept') return verdict(accept(`accepted ${name}: ${where} accepts without signatures`));
    if (scopePolicy.action === 'reject') return verdict(refuse('POLICY_REJECTED', `rejected ${name}: ${where} rejects all images`));

    // Discovery and verification, under the decision's deadline.
    const ctx: EvaluationContext = {
      image,
      digest,
      subject: { digest, mediaType: request.descriptor.mediaType, size: request.descriptor.size },
      keys,
      keyDefinitions: policy.keys,
      now: this.options.now?.() ?? new Date(),
      signal: deadline,
    };
    const work: Work = { image, digest, subject, where, scopePolicy, ctx };
    const pending: Array<PendingLookup<unknown>> = [];
    try {
      const checked = this.check(work, deadline, pending);
      checked.catch(() => undefined); // it may lose the race below and fail later: never an unhandled rejection
      const { signatures, warnings, outcome, validUntil } = await beforeDeadline(checked, deadline, () => pending.filter((p) => !p.done).map((p) => p.what));
      return { ...verdict(outcome, signatures, warnings), ...(validUntil !== undefined ? { validUntil } : {}) };
    } catch (err) {
      if (err instanceof DeadlinePassed) {
        const bound = `the decision bound of ${this.options.timeoutMs} ms (verifyTimeout)`;
        if (err.late.length > 0)
          return verdict(refuse('REGISTRY_TIMEOUT', `rejected ${subject}: looking up ${err.late.join(' and ')} took longer than ${bound} (${where})`));
        return verdict(refuse('DECISION_TIMEOUT', `rejected ${subject}: verifying the signatures found took longer than ${bound} (${where})`));
      }
      const e = err instanceof SignetError ? err : new SignetError('INTERNAL', describeError(err));
      return verdict(refuse(e.code, `rejected ${name}: ${e.message}`, true));
    }
  }

  /** Look up, verify, and hold the result against the scope's requirements. */
  private async check(
    work: Work,
    deadline: AbortSignal,
    pending: Array<PendingLookup<unknown>>,
  ): Promise<Pick<Verdict, 'signatures' | 'warnings' | 'outcome' | 'validUntil'>> {
    const { digest, subject, where, scopePolicy, ctx } = work;
    const sources = this.options.sourcesFor(scopePolicy.signatureSources, scopePolicy.formats);
    // Signatures and attestations are looked up at the same time.
    // A lookup that fails (a referrers endpoint answering 500, a listing over its size cap) refuses the
    // image only when what it might have found could change the decision: below, that is when
    // rejectIfSignedBy applies, or when the requirements are not met without it.
    // Signatures a key of the scope can verify are examined first (signature-order.ts): refused keys too.
    const keys = precheckKeys(ctx.keys, [...scopePolicy.signatures.flatMap((r) => r.keys), ...scopePolicy.rejectIfSignedBy]);
    const order = <T extends DiscoveredSignature>(candidates: readonly T[]) => inExaminationOrder(candidates, keys, { signal: deadline });
    const orderReferrers = <T extends { annotations?: Record<string, string> }>(listed: readonly T[]) => referrersInExaminationOrder(listed, keys);
    const signatureLookup = this.lookup(sources.signatures, 'signatures', work.image, digest, deadline, order, orderReferrers);
    const attestationLookup = scopePolicy.attestations.length > 0 ? this.lookup(sources.attestations, 'attestations', work.image, digest, deadline) : undefined;
    pending.push(signatureLookup, ...(attestationLookup ? [attestationLookup] : []));
    const early = scopePolicy.rejectIfSignedBy.length === 0 ? await this.earlySignatures(signatureLookup, scopePolicy, ctx) : undefined;
    const { found, failures: signatureFailures, leftOut } = early ?? (await signatureLookup.result);
    // Only the formats the scope accepts count, whatever a source returned.
    const signatures = found.filter((s) => scopePolicy.formats.includes(s.format));
    if (scopePolicy.rejectIfSignedBy.length > 0) {
      const { hits, unchecked } = await signedByRejectedKeys(scopePolicy.rejectIfSignedBy, signatures, ctx);
      if (hits.length > 0)
        return {
          signatures: [],
          warnings: [],
          outcome: refuse('SIGNED_BY_REJECTED_KEY', `rejected ${subject}: signed by ${hits.join(', ')}, which ${where} refuses (rejectIfSignedBy)`),
        };
      if (unchecked.length > 0)
        return {
          signatures: [],
          warnings: [],
          outcome: refuse('KEY_UNAVAILABLE', `rejected ${subject}: cannot check for signatures by refused key(s) ${unchecked.join(', ')} (${where})`),
        };
      // A signature by a refused key could be in what was not read.
      const lost = signatureFailures[0];
      if (lost)
        return {
          signatures: [],
          warnings: [],
          outcome: refuse(
            lost.code,
            `rejected ${subject}: cannot rule out a signature by ${scopePolicy.rejectIfSignedBy.join(', ')} (rejectIfSignedBy): ${lost.message} (${where})`,
          ),
        };
    }
    const results: SignatureResult[] = [];
    const warnings: string[] = [];
    if (leftOut > 0)
      warnings.push(
        `${leftOut} more signature(s) found and not examined (maxSignatures ${this.options.maxSignatures}; those a key of ${where} can verify were examined first)`,
      );
    const satisfied: string[] = [];
    const failed: Array<{ code?: ErrorCode; reason: string }> = [];
    const addResults = (rs: SignatureResult[]) => {
      for (const r of rs) if (!results.some((x) => x.source === r.source && x.key === r.key && x.valid === r.valid)) results.push(r);
    };
    for (const requirement of scopePolicy.signatures) {
      const outcome = await evaluateRequirement(requirement, signatures, ctx);
      warnings.push(...outcome.warnings.filter((w) => !warnings.includes(w)));
      addResults(outcome.results);
      if (outcome.satisfied) satisfied.push(outcome.reason);
      else failed.push({ ...(outcome.code ? { code: outcome.code } : {}), reason: outcome.reason });
    }
    const { found: attestations, failures: attestationFailures } = attestationLookup ? await attestationLookup.result : { found: [], failures: [] };
    let validUntil: number | undefined;
    for (const requirement of scopePolicy.attestations) {
      const outcome = await evaluateAttestationRequirement(requirement, attestations, ctx);
      if (outcome.satisfied && outcome.validUntil !== undefined) validUntil = Math.min(validUntil ?? Infinity, outcome.validUntil);
      addResults(outcome.results);
      if (outcome.satisfied) satisfied.push(outcome.reason);
      else failed.push({ ...(outcome.code ? { code: outcome.code } : {}), reason: outcome.reason });
    }
    // One line per signature: a valid result wins over failures of other groups for the same signature.
    const lines = results.filter((r) => r.valid || !results.some((x) => x.source === r.source && x.valid));
    const lookupFailures = [...signatureFailures, ...attestationFailures];
    if (failed.length === 0) {
      // Met without what could not be read: nothing there could change that.
      for (const f of lookupFailures) warnings.push(`${f.message} (the requirements were met without it)`);
      return {
        signatures: lines,
        warnings,
        outcome: accept(`accepted ${subject}: ${satisfied.join(' and ')} (${where})`),
        ...(validUntil !== undefined ? { validUntil } : {}),
      };
    }
    const total = scopePolicy.signatures.length + scopePolicy.attestations.length;
    const groups = total > 1 ? `${failed.length} of ${total} requirements not met: ` : '';
    const unmet = `${groups}${failed.map((f) => f.reason).join('; ')}`;
    // Not met with what could be read, and a lookup failed: the failure is why we cannot tell.
    const lost = lookupFailures[0];
    if (lost)
      return { signatures: lines, warnings, outcome: refuse(lost.code, `rejected ${subject}: ${lost.message}; with what could be read: ${unmet} (${where})`) };
    // The most telling failure of all the requirements, as within one (the first of equal rank).
    return {
      signatures: lines,
      warnings,
      outcome: refuse(mostTellingCode(failed, failed[0]!.code ?? 'SIGNATURE_NOT_FOUND'), `rejected ${subject}: ${unmet} (${where})`),
    };
  }

  /**
   * What the sources that answered first found, when it already meets every signature requirement of the
   * scope; undefined when only everything can tell. Without rejectIfSignedBy, more signatures can only
   * add to an accept, so the decision need not wait for the slower sources (a `.sig` tag answers before a
   * referrers listing and its tag fallback): their requests finish or fail on their own, unread. Checks
   * made here are remembered in ctx.checked, so nothing is verified twice when everything is needed.
   */
  private async earlySignatures(
    lookup: PendingLookup<DiscoveredSignature>,
    scopePolicy: Work['scopePolicy'],
    ctx: EvaluationContext,
  ): Promise<Lookup<DiscoveredSignature> | undefined> {
    if (lookup.each.length < 2 || scopePolicy.signatures.length === 0) return undefined;
    ctx.checked ??= new WeakMap();
    const limit = this.options.maxSignatures;
    const found: DiscoveredSignature[] = [];
    const failures: SignetError[] = [];
    const out = new Map(
      lookup.each.map((e, i) => [
        i,
        e.found.then(
          (value) => ({ i, value }),
          (error: unknown) => ({ i, error }),
        ),
      ]),
    );
    // Only while another source is still out: once all have answered, the full lookup is the answer.
    while (out.size > 1) {
      const settled = await Promise.race(out.values());
      out.delete(settled.i);
      if ('error' in settled) {
        const e = settled.error instanceof SignetError ? settled.error : new SignetError('REGISTRY_UNAVAILABLE', describeError(settled.error));
        failures.push(new SignetError(e.code, `cannot look up signatures in the ${lookup.each[settled.i]!.name}: ${e.message}`));
        continue;
      }
      if (settled.value.length === 0) continue;
      found.push(...settled.value);
      const candidates = withoutDuplicates(found)
        .filter((s) => scopePolicy.formats.includes(s.format))
        .slice(0, limit);
      let met = candidates.length > 0;
      for (const requirement of scopePolicy.signatures) {
        if (!met) break;
        met = (await evaluateRequirement(requirement, candidates, ctx)).satisfied;
      }
      if (met) {
        lookup.done = true; // no longer waited for: not "late" if the deadline passes now
        lookup.result.catch(() => undefined); // nor read: never an unhandled rejection
        return { found: candidates, failures, leftOut: 0 };
      }
    }
    return undefined;
  }

  /**
   * Ask every source at once; what was found, and each source that failed (as a coded error). With
   * `order` (signatures): identical signatures once, then the likeliest to verify first, then the cut
   * to maxSignatures; sources that can read more candidates cheaply order theirs the same way.
   */
  private lookup<T extends DiscoveredSignature | UntrustedAttestation>(
    sources: ReadonlyArray<{ name: string; find(image: ImageReference, digest: string, options: FindOptions): Promise<T[]> }>,
    what: 'signatures' | 'attestations',
    image: ImageReference,
    digest: string,
    signal: AbortSignal,
    order?: FindOptions['order'],
    orderReferrers?: FindOptions['orderReferrers'],
  ): PendingLookup<T> {
    const limit = this.options.maxSignatures;
    let leftOut = 0;
    const counted = { leftOut: (n: number) => void (leftOut += n) };
    const options: FindOptions = order
      ? { limit, signal, order, candidates: limit * DEFAULTS.signatureCandidatesFactor, ...(orderReferrers ? { orderReferrers } : {}), ...counted }
      : { limit, signal };
    const each = sources.map((source) => ({ name: source.name, found: source.find(image, digest, options) }));
    const pending: PendingLookup<T> = { what, done: false, result: Promise.resolve({ found: [], failures: [], leftOut: 0 }), each };
    pending.result = Promise.allSettled(each.map((e) => e.found)).then(async (settled) => {
      pending.done = true;
      let found: T[] = [];
      const failures: SignetError[] = [];
      settled.forEach((r, i) => {
        if (r.status === 'fulfilled') {
          found.push(...r.value);
          return;
        }
        const e = r.reason instanceof SignetError ? r.reason : new SignetError('REGISTRY_UNAVAILABLE', describeError(r.reason));
        failures.push(new SignetError(e.code, `cannot look up ${what} in the ${sources[i]!.name}: ${e.message}`));
      });
      if (order) {
        const signatures = withoutDuplicates(found as DiscoveredSignature[]);
        found = (signatures.length > limit ? await order(signatures) : signatures) as T[];
        leftOut += Math.max(0, found.length - limit);
      }
      return { found: found.slice(0, limit), failures, leftOut };
    });
    return pending;
  }
}

/**
 * `work`'s result if it settles before `deadline` passes; otherwise DeadlinePassed (with the lookups
 * `late()` names), and whatever `work` does afterwards is ignored. A result that arrives once the
 * deadline has passed is past the bound too.
 */
async function beforeDeadline<T>(work: Promise<T>, deadline: AbortSignal, late: () => string[]): Promise<T> {
  if (deadline.aborted) throw new DeadlinePassed(late());
  let onAbort: (() => void) | undefined;
  const passed = new Promise<never>((_, reject) => {
    onAbort = () => reject(new DeadlinePassed(late()));
    deadline.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const result = await Promise.race([work, passed]);
    if (deadline.aborted) throw new DeadlinePassed(late());
    return result;
  } catch (err) {
    // A check stopped by the deadline (throwIfAborted) is the deadline, not an internal error.
    if (deadline.aborted && !(err instanceof DeadlinePassed)) throw new DeadlinePassed(late());
    throw err;
  } finally {
    deadline.removeEventListener('abort', onAbort!);
  }
}
