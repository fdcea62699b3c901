/**
 * One VerifyImage, whichever door it came through (gRPC, or the verifier's HTTP socket): the verdict
 * cache first (no decision slot), then admission control, then the decision, audited once. The doors
 * only translate requests and answers; what is decided, audited and refused for load is decided here.
 */
import { describeError } from '../errors.js';
import type { Decision, VerifyRequest } from '../engine/decision.js';
import { LIMITS, printable } from '../util/printable.js';
import { Abandoned, Overloaded, type Admission } from './admission.js';
import type { Logger } from './logger.js';

/** What the daemon offers this path (Daemon implements it). */
export interface VerifyImageDeps {
  admission: Admission;
  /** A cached verdict, concluded (counted and audited), or undefined. */
  verifyCached(request: VerifyRequest): Decision | undefined;
  /** A decision, concluded; never throws by design. */
  verify(request: VerifyRequest): Promise<Decision>;
}

export type VerifyImageAnswer =
  /** A decision, concluded and audited: `ok` says accept. */
  | { kind: 'decision'; decision: Decision }
  /** Refused for lack of capacity, before any decision: the caller fails closed with `reason`. */
  | { kind: 'overloaded'; reason: string }
  /** The caller went away while waiting. */
  | { kind: 'abandoned'; reason: string }
  /** The decision crashed (a bug): the caller fails closed with `reason`. */
  | { kind: 'internal'; reason: string };

export interface VerifyImageOptions {
  /** The caller's own deadline (epoch ms): a wait for a slot ends shortly before it. */
  deadline?: number;
  /** Aborted when the caller goes away. */
  signal?: AbortSignal;
}

export class VerifyImagePath {
  constructor(
    private readonly deps: VerifyImageDeps,
    private readonly log: Logger,
  ) {}

  /**
   * A verdict in the cache, concluded (counted and audited), answered at once and synchronously: it takes
   * no decision slot, and a door can skip setting up cancellation and deadlines for it (the hot path).
   */
  cached(request: VerifyRequest): Decision | undefined {
    return this.deps.verifyCached(request);
  }

  async answer(request: VerifyRequest, options: VerifyImageOptions = {}): Promise<VerifyImageAnswer> {
    const cached = this.cached(request);
    if (cached !== undefined) return { kind: 'decision', decision: cached };
    // Admission control: decisions beyond the bounds are refused at once (the caller fails closed and
    // says why); an admitted decision's own deadlines start only now, not while it waited.
    try {
      const decision = await this.deps.admission.run(() => this.deps.verify(request), {
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.deadline !== undefined && Number.isFinite(options.deadline) ? { deadline: options.deadline } : {}),
      });
      return { kind: 'decision', decision };
    } catch (err) {
      if (err instanceof Overloaded) {
        this.overloaded(err);
        return { kind: 'overloaded', reason: `RESOURCE_EXHAUSTED: ${err.message}; refusing ${printable(request.name, LIMITS.name)} (fail closed)` };
      }
      if (err instanceof Abandoned) return { kind: 'abandoned', reason: err.message };
      // verify() never throws by design; if it does, fail closed with a reason.
      this.log.error('verification crashed', { error: describeError(err) });
      return { kind: 'internal', reason: printable(`rejected ${request.name}: internal error (${describeError(err)})`, LIMITS.reason) };
    }
  }

  /** Overload episodes are logged once when they start and once when they end, never per refusal. */
  private overload: { since: number; refused: number; timer?: NodeJS.Timeout } | undefined;
  private overloaded(err: Overloaded): void {
    if (this.overload === undefined) {
      this.log.warn('overloaded: refusing decisions (RESOURCE_EXHAUSTED) until the load drops', { why: err.message });
      this.overload = { since: Date.now(), refused: 0 };
    }
    const o = this.overload;
    o.refused++;
    clearTimeout(o.timer);
    // The episode ends after a second without a refusal.
    o.timer = setTimeout(() => {
      this.overload = undefined;
      this.log.warn('overload over', { refused: o.refused, seconds: Math.round((Date.now() - o.since) / 100) / 10 });
    }, 1000);
    o.timer.unref();
  }
}
