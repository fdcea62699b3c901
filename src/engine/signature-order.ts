/**
 * Which signatures a decision examines when there are more than `maxSignatures`: identical ones once,
 * and those a key of the scope can verify first, so that stale signatures of an old key, or a flood of
 * hostile ones, cannot push the one valid signature past the cut (issue 14).
 *
 * Ordering rests on each format's pre-check (SignatureFormat.precheck): parsing and in-process crypto,
 * no network round trip, no token. It is bounded (count and time, below) and only orders: whatever it
 * says, every signature examined is verified in full, and a signature ranked last is still examined when
 * there is room.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { formatNamed } from '../formats/index.js';
import type { Likelihood, PrecheckKey, UntrustedSignature } from '../formats/types.js';
import type { KeySet } from '../keys/keyring.js';
import { isUnreadable, type DiscoveredSignature } from './sources.js';

/** Pre-checking stops after this long (the rest keep their order): a bound on the work, whatever the keys. */
export const PRECHECK_BUDGET_MS = 250;

/**
 * What makes two signatures identical: everything a format's `verify` reads is equal, so verifying both
 * says the same thing twice.
 * - cosign (tag `.sig` layers): the payload bytes, the signature bytes and the layer annotations
 *   (certificate, chain, Rekor bundle) — the same as the tag source's layer key (payload digest and
 *   annotations, which carry the signature).
 * - sigstore-bundle: the bundle's bytes (signature, key material and evidence are all inside).
 * - notation: the envelope's bytes and its media type (JWS or COSE).
 * Where a signature was found is not part of it: one found in the registry and in an OCI layout is one.
 */
export function signatureIdentity(sig: UntrustedSignature): string {
  // Asked more than once per decision (what the first sources found, then everything): hashed once.
  let id = identities.get(sig);
  if (id === undefined) identities.set(sig, (id = hashIdentity(sig)));
  return id;
}

const identities = new WeakMap<UntrustedSignature, string>();

function hashIdentity(sig: UntrustedSignature): string {
  const h = createHash('sha256');
  const part = (b: Buffer | string) => {
    const bytes = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
    h.update(`${bytes.length}:`).update(bytes);
  };
  part(sig.format);
  part(sig.envelopeMediaType ?? '');
  part(sig.untrustedPayload);
  part(sig.untrustedSignature);
  part(canonicalAnnotations(sig.untrustedAnnotations));
  return h.digest('hex');
}

/** Annotations as one string, independent of their order. */
export function canonicalAnnotations(annotations: Record<string, string> | undefined): string {
  return JSON.stringify(Object.entries(annotations ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `found` without repeats (the first of identical signatures stays); unreadable ones are kept as they are. */
export function withoutDuplicates<T extends DiscoveredSignature>(found: readonly T[]): T[] {
  const seen = new Set<string>();
  return found.filter((sig) => {
    if (isUnreadable(sig)) return true;
    const id = signatureIdentity(sig);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Rank of a candidate, lower first: the best likelihood over the scope's keys; unreadable before `other-key`. */
const RANK: Record<Likelihood | 'unreadable', number> = { verifies: 0, 'names-key': 1, unknown: 2, unreadable: 3, 'other-key': 4 };

/** The keys a pre-check may use, from the names a scope gives (requirements and rejectIfSignedBy alike). */
export function precheckKeys(keys: KeySet, names: Iterable<string>): PrecheckKey[] {
  const out: PrecheckKey[] = [];
  for (const name of new Set(names)) {
    const { key } = keys.get(name);
    if (key === undefined) continue; // a key that cannot be used is reported by verification
    const keyless = key.sigstore !== undefined;
    out.push({
      name,
      algorithm: key.algorithm,
      fingerprint: key.fingerprint,
      ...(key.certificates !== undefined ? { certificates: key.certificates } : {}),
      keyless,
      ...(keyless || key.verifiesOnDevice === true ? {} : { verifyInProcess: (data, signature, hash) => key.verify(data, signature, hash) }),
    });
  }
  return out;
}

/** How a signature ranks against `keys`: the best any key gives; 'unknown' when the format has no pre-check. */
export async function likelihood(sig: UntrustedSignature, keys: readonly PrecheckKey[]): Promise<Likelihood> {
  const precheck = formatNamed(sig.format)?.precheck;
  if (precheck === undefined || keys.length === 0) return 'unknown';
  let best: Likelihood = 'other-key';
  for (const key of keys) {
    let l: Likelihood;
    try {
      l = await precheck(sig, key);
    } catch {
      l = 'unknown'; // a pre-check that fails orders nothing
    }
    if (RANK[l] < RANK[best]) best = l;
    if (best === 'verifies') break;
  }
  return best;
}

/**
 * `candidates` in the order to examine them: by pre-check rank, and in the order found within a rank
 * (a stable sort). Pre-checks stop once `budgetMs` has passed or `signal` aborts; the rest rank
 * 'unknown'. Returns a new array; the caller cuts it.
 */
export async function inExaminationOrder<T extends DiscoveredSignature>(
  candidates: readonly T[],
  keys: readonly PrecheckKey[],
  options: { budgetMs?: number; signal?: AbortSignal } = {},
): Promise<T[]> {
  const until = performance.now() + (options.budgetMs ?? PRECHECK_BUDGET_MS);
  const ranked: Array<{ sig: T; rank: number; i: number }> = [];
  for (const [i, sig] of candidates.entries()) {
    let rank: number;
    if (isUnreadable(sig)) rank = RANK.unreadable;
    else if (performance.now() > until || options.signal?.aborted) rank = RANK.unknown;
    else rank = RANK[await likelihood(sig, keys)];
    ranked.push({ sig, rank, i });
  }
  return ranked.sort((a, b) => a.rank - b.rank || a.i - b.i).map((r) => r.sig);
}

/** Notation's referrer-manifest annotation: the SHA-256 thumbprints (hex) of the envelope's certificate chain, leaf first. */
export const NOTATION_THUMBPRINTS = 'io.cncf.notary.x509chain.thumbprint#S256';
const CREATED = 'org.opencontainers.image.created';

/**
 * Referrers (sigstore bundles, Notation envelopes) in the order to fetch and examine them, decided from
 * the listing alone — an envelope can be a megabyte, so they are not fetched to be ranked. First those
 * whose Notation thumbprints name a trust-store certificate of the scope's keys; within a rank the
 * newest (`org.opencontainers.image.created`) first, since stale signatures of an old key are older;
 * then the listing's order. Annotations are untrusted: they only order, verification decides.
 */
export function referrersInExaminationOrder<T extends { annotations?: Record<string, string> }>(descriptors: readonly T[], keys: readonly PrecheckKey[]): T[] {
  const anchors = new Set<string>();
  for (const key of keys) for (const cert of key.certificates ?? []) anchors.add(createHash('sha256').update(cert.raw).digest('hex'));
  const ranked = descriptors.map((d, i) => ({
    d,
    i,
    rank: thumbprintRank(d.annotations?.[NOTATION_THUMBPRINTS], anchors),
    created: createdAt(d.annotations?.[CREATED]),
  }));
  return ranked.sort((a, b) => a.rank - b.rank || b.created - a.created || a.i - b.i).map((r) => r.d);
}

function thumbprintRank(untrustedThumbprints: string | undefined, anchors: ReadonlySet<string>): number {
  if (untrustedThumbprints === undefined || untrustedThumbprints.length > 4096 || anchors.size === 0) return RANK.unknown;
  let list: unknown;
  try {
    list = JSON.parse(untrustedThumbprints);
  } catch {
    return RANK.unknown;
  }
  if (!Array.isArray(list) || list.length === 0) return RANK.unknown;
  return list.some((t) => typeof t === 'string' && anchors.has(t.toLowerCase())) ? RANK['names-key'] : RANK['other-key'];
}

/** Milliseconds since the epoch of an RFC 3339 `created` annotation; 0 (oldest) when absent or not a date. */
function createdAt(untrustedCreated: string | undefined): number {
  if (untrustedCreated === undefined || untrustedCreated.length > 64) return 0;
  const t = Date.parse(untrustedCreated);
  return Number.isFinite(t) ? t : 0;
}
