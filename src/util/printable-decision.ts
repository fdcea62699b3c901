/**
 * A Decision as it leaves signetd (the Judgement of the API, the audit line): every string escaped and
 * bounded, lists capped. A decision carries untrusted text — the name containerd or a client sent,
 * registry error messages quoted in reasons, signature sources — and must not carry it raw or unbounded
 * to a terminal or a log: a 1 MiB name would otherwise make a 3 MB audit line.
 */
import type { Decision, SignatureResult } from '../engine/decision.js';
import { LIMITS, printable } from './printable.js';

function signature(s: SignatureResult): SignatureResult {
  return { ...s, source: printable(s.source, LIMITS.name), key: printable(s.key, LIMITS.name), reason: printable(s.reason, LIMITS.detail) };
}

/**
 * Made once per decision: a decision is audited and answered, and both print it. Decisions are not
 * changed once made (changes are new objects), so the copy stays true.
 */
const made = new WeakMap<Decision, Decision>();

/** A copy of `d` fit for output; `d` itself is left as the engine made it. */
export function printableDecision(d: Decision): Decision {
  let copy = made.get(d);
  if (copy === undefined) made.set(d, (copy = printableCopy(d)));
  return copy;
}

function printableCopy(d: Decision): Decision {
  const signatures = d.signatures.slice(0, LIMITS.items).map(signature);
  const warnings = d.warnings.slice(0, LIMITS.items).map((w) => printable(w, LIMITS.detail));
  if (d.signatures.length > LIMITS.items) warnings.push(`${d.signatures.length - LIMITS.items} more signature results not listed`);
  if (d.warnings.length > LIMITS.items) warnings.push(`${d.warnings.length - LIMITS.items} more warnings not listed`);
  return {
    ...d,
    reason: printable(d.reason, LIMITS.reason),
    name: printable(d.name, LIMITS.name),
    image: printable(d.image, LIMITS.name),
    digest: printable(d.digest, LIMITS.name),
    mediaType: printable(d.mediaType, LIMITS.name),
    scope: printable(d.scope, LIMITS.name),
    policyGeneration: printable(d.policyGeneration, LIMITS.name),
    signatures,
    warnings,
  };
}

/**
 * `base` with a few fields changed (a cached verdict answered for another request: its name, its
 * time, `cached`), whose printable copy is derived from `base`'s, made once, rather than made again on
 * every answer from the cache.
 */
export function withChanges(base: Decision, changes: { name: string; durationMs: number; cached: boolean }): Decision {
  const d = { ...base, ...changes };
  const printableBase = printableDecision(base);
  const copy = { ...printableBase, ...changes, name: printable(changes.name, LIMITS.name) };
  made.set(d, copy);
  derivedFrom.set(copy, printableBase);
  return d;
}

/** Printable copies made by withChanges, and the copy each differs from only in name, durationMs and cached. */
const derivedFrom = new WeakMap<Decision, Decision>();

/**
 * The printable decision `copy` was derived from by withChanges (it differs only in `name`,
 * `durationMs` and `cached`), or `copy` itself: what stays the same from answer to answer of one verdict.
 */
export function printableBase(copy: Decision): Decision {
  return derivedFrom.get(copy) ?? copy;
}
