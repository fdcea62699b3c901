/**
 * signetd's verdict cache and request coalescing, in front of the engine. One instance serves every
 * path that asks for a decision: VerifyImage (containerd's verifier, `signet verify --daemon`), the
 * image watcher (events, reverification) and NRI container creation.
 *
 * Key: (descriptor digest, normalised name, scope, policy generation, key-set generation). The scope is
 * a pure function of the name and the policy; the generations make an entry unreachable the moment the
 * policy or the keys change, and the whole cache is also dropped then (clear()).
 *
 * Lifetime of an entry: `ttlMs` for an acceptance, at most `negativeTtlMs` for a refusal (or a warn-mode
 * "would have refused": a just-signed image is not refused for long), and either one cut short by the
 * earliest instant the verdict could change without a policy or key change (verdict-lifetime.ts: a
 * key's notBefore/notAfter and expiry warning, a trust-store certificate's validity, an attestation's
 * maxAge). "Could not check" refusals (registry down or slow, key unavailable, decision timeout, no
 * policy) are never stored: the next request checks again.
 *
 * Coalescing: while a decision for a key is under way, identical requests wait for it instead of
 * starting their own (50 simultaneous pulls of one image = one registry walk). A decision that
 * finishes after clear() is handed to its waiters but not stored.
 */
import { LRUCache } from 'lru-cache';
import type { Decision, VerifyRequest } from '../engine/decision.js';
import type { KeySet } from '../keys/keyring.js';
import { resolveScope } from '../policy/scope.js';
import type { Policy } from '../policy/types.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { verdictLifetime } from './verdict-lifetime.js';
import { withChanges } from '../util/printable-decision.js';
import { couldNotCheck } from '../errors.js';

export interface VerdictCacheOptions {
  /** Longest life of an acceptance (config cacheTTL, default 5 min). 0 turns the cache off (coalescing stays). */
  ttlMs: number;
  /** Longest life of a refusal (config negativeCacheTTL, default 10 s). */
  negativeTtlMs: number;
  /** Entries kept at most, least recently used dropped first (config cacheEntries, default 10,000). */
  maxEntries: number;
  /** Clock (tests). */
  now?: () => number;
}

/** The policy, its keys and the key-set generation, read once per request (as the engine reads them). */
export interface CacheSnapshot {
  policy?: Policy;
  keys?: KeySet;
  /** Bumped by the daemon on every key change (load, refresh that changed a key). */
  keyGeneration: number;
}

export interface VerdictCacheDeps {
  /** The engine's decision; must read the same snapshot synchronously at its start. */
  decide: (request: VerifyRequest) => Promise<Decision>;
  snapshot: () => CacheSnapshot;
}

export interface VerdictCacheStats {
  entries: number;
  maxEntries: number;
  hits: number;
  misses: number;
  /** Requests that joined a decision already under way. */
  coalesced: number;
  /** Decisions stored. */
  stored: number;
  /** Times the whole cache was dropped (policy or key change). */
  cleared: number;
  /** Decisions under way now. */
  inFlight: number;
}

/** What a cached decide() answers: the decision, and whether it came from memory or from another request's work. */
export interface CachedDecision {
  decision: Decision;
  cached: boolean;
  coalesced: boolean;
}

interface Entry {
  decision: Decision;
  /** Epoch ms after which the entry is not served. */
  expires: number;
}

/** A request joining a decision under way for at least this long asks again itself if it could not check. */
export const REJOIN_AFTER_MS = 1000;

export { couldNotCheck };

export class VerdictCache {
  private readonly lru: LRUCache<string, Entry>;
  private readonly inflight = new Map<string, { work: Promise<Decision>; started: number }>();
  /** Bumped by clear(): a decision started before it is not stored after it. */
  private epoch = 0;
  private readonly counts = { hits: 0, misses: 0, coalesced: 0, stored: 0, cleared: 0 };
  private readonly now: () => number;

  constructor(
    private readonly deps: VerdictCacheDeps,
    private readonly options: VerdictCacheOptions,
  ) {
    if (!(options.maxEntries >= 1)) throw new RangeError('cacheEntries must be at least 1');
    this.lru = new LRUCache<string, Entry>({ max: options.maxEntries });
    this.now = options.now ?? Date.now;
  }

  /** The cached decision for `request`, synchronously, or undefined (a miss is not counted: decide() follows). */
  peek(request: VerifyRequest): Decision | undefined {
    const started = performance.now();
    const key = cacheKey(request, this.deps.snapshot());
    if (key === undefined) return undefined;
    const hit = this.lru.get(key);
    if (hit === undefined || hit.expires <= this.now()) return undefined;
    this.counts.hits++;
    return withChanges(hit.decision, { cached: true, name: request.name, durationMs: round(performance.now() - started) });
  }

  /** The decision for `request`: from memory, from a decision under way, or a new one. Never throws unless `decide` does. */
  async decide(request: VerifyRequest, rejoined = false): Promise<CachedDecision> {
    const snapshot = this.deps.snapshot();
    const key = cacheKey(request, snapshot);
    if (key === undefined) return { decision: await this.deps.decide(request), cached: false, coalesced: false };
    const started = performance.now();
    const hit = this.lru.get(key);
    if (hit !== undefined) {
      if (hit.expires > this.now()) {
        this.counts.hits++;
        return {
          decision: { ...hit.decision, cached: true, name: request.name, durationMs: round(performance.now() - started) },
          cached: true,
          coalesced: false,
        };
      }
      this.lru.delete(key);
    }
    const running = this.inflight.get(key);
    if (running !== undefined) {
      this.counts.coalesced++;
      const late = this.now() - running.started >= REJOIN_AFTER_MS;
      const decision = await running.work;
      // A request that came while the decision had been under way for a while (a retry, say kubelet's
      // after a creation refused for time) and hears "could not check" asks once more itself: what
      // held the first one up (a hanging registry) may have passed. Requests of one burst share it.
      if (late && !rejoined && couldNotCheck(decision)) return this.decide(request, true);
      return { decision: { ...decision, name: request.name }, cached: false, coalesced: true };
    }
    this.counts.misses++;
    const epoch = this.epoch;
    const work = this.deps.decide(request);
    this.inflight.set(key, { work, started: this.now() });
    try {
      const decision = await work;
      if (epoch === this.epoch && this.options.ttlMs > 0) this.store(key, decision, snapshot);
      return { decision, cached: false, coalesced: false };
    } finally {
      if (this.inflight.get(key)?.work === work) this.inflight.delete(key);
    }
  }

  private store(key: string, decision: Decision, snapshot: CacheSnapshot): void {
    const { policy, keys } = snapshot;
    if (policy === undefined || keys === undefined || decision.policyGeneration !== policy.generation || couldNotCheck(decision)) return;
    const now = this.now();
    const allowed = decision.ok && decision.decision === 'accept';
    const longest = allowed ? this.options.ttlMs : Math.min(this.options.ttlMs, this.options.negativeTtlMs);
    const until = Math.min(now + longest, verdictLifetime(decision, policy, keys, now));
    if (!(until > now)) return;
    this.lru.set(key, { decision: { ...decision, validUntil: new Date(until).toISOString() }, expires: until });
    this.counts.stored++;
  }

  /** Forget every verdict (policy or keys changed). Decisions under way finish for their waiters, unstored. */
  clear(): void {
    this.epoch++;
    this.lru.clear();
    // Requests from now on start afresh under the new snapshot (their key differs anyway).
    this.inflight.clear();
    this.counts.cleared++;
  }

  stats(): VerdictCacheStats {
    return { entries: this.lru.size, maxEntries: this.options.maxEntries, ...this.counts, inFlight: this.inflight.size };
  }
}

/** `digest|name|scope|policy generation|key generation`, or undefined when the request cannot be cached (no policy, a name that does not parse). */
export function cacheKey(request: VerifyRequest, snapshot: CacheSnapshot): string | undefined {
  const { policy, keys } = snapshot;
  if (policy === undefined || keys === undefined) return undefined;
  const named = nameAndScope(request.name, policy);
  if (named === undefined) return undefined;
  // The whole descriptor: a media type or size other than the one decided is another question.
  const d = request.descriptor;
  return [d.digest, d.mediaType, d.size, named.name, named.scope, policy.generation, snapshot.keyGeneration].join('\u0000');
}

/**
 * The normalised name and the scope of a requested name under one policy (a policy is never changed:
 * a reload makes a new one). Remembered, bounded, per policy: a node asks about the same few names
 * over and over, and parsing and scope matching are most of the cost of a cached answer.
 */
const namesByPolicy = new WeakMap<Policy, Map<string, { name: string; scope: string } | null>>();
const MAX_REMEMBERED_NAMES = 4096;

function nameAndScope(requested: string, policy: Policy): { name: string; scope: string } | undefined {
  let names = namesByPolicy.get(policy);
  if (names === undefined) namesByPolicy.set(policy, (names = new Map()));
  let named = names.get(requested);
  if (named === undefined) {
    try {
      const image = parseReference(requested);
      named = { name: formatReference(image), scope: resolveScope(policy, image).scope };
    } catch {
      named = null;
    }
    if (names.size >= MAX_REMEMBERED_NAMES) names.clear();
    names.set(requested, named);
  }
  return named ?? undefined;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
