/**
 * One decision: resolve the scope, discover signatures, verify, decide. Knows nothing of gRPC or the
 * CLI; signetd, `signet verify` and `signet audit` all call it. Never throws: every error becomes a
 * rejection with a reason (fail closed).
 */
import { performance } from 'node:perf_hooks';
import { describeError, SignetError } from '../errors.js';
import type { KeyRing } from '../keys/keyring.js';
import { resolveScope } from '../policy/scope.js';
import type { Policy } from '../policy/types.js';
import { formatReference, parseReference, repositoryName, type ImageReference } from '../registry/reference.js';
import type { Decision, VerifyRequest } from './decision.js';
import { evaluateRequirement } from './evaluate.js';
import type { DiscoveredSignature, SignatureSource } from './sources.js';

export interface EngineOptions {
  /** The policy in force, read at the start of each decision (so a reload swaps it atomically). */
  policy: () => { policy?: Policy; error?: string };
  keys: KeyRing;
  sources: SignatureSource[];
  /** Upper bound on one decision, including registry round trips. */
  timeoutMs: number;
  /** Signatures examined per image: a flood of signatures is not a denial of service. */
  maxSignatures: number;
}

export class VerificationEngine {
  constructor(private readonly options: EngineOptions) {}

  async verify(request: VerifyRequest): Promise<Decision> {
    const started = performance.now();
    const { policy, error: policyError } = this.options.policy();
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
      policyGeneration: policy?.generation ?? '',
      durationMs: 0,
    };
    const reject = (code: SignetError['code'], reason: string): Decision => Object.assign(decision, { ok: false, decision: 'reject', code, reason });
    try {
      await this.decide(request, policy, policyError, decision, reject);
    } catch (err) {
      const e = err instanceof SignetError ? err : new SignetError('INTERNAL', describeError(err));
      reject(e.code, `rejected ${decision.image}: ${e.message}`);
    }
    decision.durationMs = Math.round((performance.now() - started) * 100) / 100;
    return decision;
  }

  private async decide(
    request: VerifyRequest,
    policy: Policy | undefined,
    policyError: string | undefined,
    decision: Decision,
    reject: (code: SignetError['code'], reason: string) => Decision,
  ): Promise<void> {
    let image: ImageReference;
    try {
      image = parseReference(request.name);
    } catch (err) {
      reject('INVALID_REFERENCE', (err as Error).message);
      return;
    }
    decision.image = formatReference(image);
    const digest = request.descriptor.digest;
    if (image.digest !== undefined && image.digest !== digest) {
      reject('DIGEST_MISMATCH', `rejected ${decision.image}: the name pins ${image.digest} but the resolved digest is ${digest}`);
      return;
    }
    if (policy === undefined) {
      reject('POLICY_NOT_FOUND', `rejected ${decision.image}: no valid trust policy is loaded${policyError ? ` (${policyError})` : ''}`);
      return;
    }
    const { scope, policy: scopePolicy } = resolveScope(policy, image);
    decision.scope = scope;
    const where = `scope ${scope}`;
    if (scopePolicy.action === 'accept') {
      Object.assign(decision, { ok: true, decision: 'accept', reason: `accepted ${decision.image}: ${where} accepts without signatures` });
      return;
    }
    if (scopePolicy.action === 'reject') {
      reject('POLICY_REJECTED', `rejected ${decision.image}: ${where} rejects all images`);
      return;
    }
    const requirement = scopePolicy.signatures;
    if (requirement === undefined) throw new SignetError('POLICY_INVALID', `${where} says verify but names no signatures`);

    const signatures = await this.discover(image, digest);
    const outcome = await evaluateRequirement(requirement, image, digest, signatures, this.options.keys);
    decision.signatures = outcome.results;
    const subject = `${repositoryName(image)}@${digest}`;
    if (outcome.satisfied) {
      Object.assign(decision, { ok: true, decision: 'accept', reason: `accepted ${subject}: ${outcome.reason} (${where})` });
    } else {
      reject(outcome.code ?? 'SIGNATURE_NOT_FOUND', `rejected ${subject}: ${outcome.reason} (${where})`);
    }
  }

  private async discover(image: ImageReference, digest: string): Promise<DiscoveredSignature[]> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    const lookups = this.options.sources.map((source) =>
      source.find(image, digest, { limit: this.options.maxSignatures, signal }).catch((err: unknown) => {
        if (signal.aborted) throw new SignetError('REGISTRY_TIMEOUT', `looking up signatures took longer than ${this.options.timeoutMs} ms`);
        const e = err instanceof SignetError ? err : new SignetError('REGISTRY_UNAVAILABLE', describeError(err));
        throw new SignetError(e.code, `cannot look up signatures in ${source.name}: ${e.message}`);
      }),
    );
    const found = (await Promise.all(lookups)).flat();
    return found.slice(0, this.options.maxSignatures);
  }
}
