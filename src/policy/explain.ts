/**
 * `signet policy explain`: which scope applies to an image and why, what it requires, and which keys
 * count today. Pure: no registry, no HSM.
 */
import { keyUsability } from './key-window.js';
import { keyLocation } from '../keys/location.js';
import { formatReference, type ImageReference } from '../registry/reference.js';
import { LIMITS, printable } from '../util/printable.js';
import { resolveScope } from './scope.js';
import type { IdentityRule, Policy } from './types.js';

export interface Explanation {
  image: string;
  scope: string;
  definedAt?: string;
  /** Every scope tried, most specific first, and whether the policy defines it. */
  tried: Array<{ scope: string; defined: boolean; chosen: boolean }>;
  action: string;
  mode: string;
  denied?: string;
  requirements: Array<{ threshold: number; keys: Array<{ name: string; location: string; counts: boolean; note?: string }>; identity: string }>;
  rejectIfSignedBy: string[];
  attestations: Array<{ predicateType: string; threshold: number; keys: string[]; maxAge?: string; maxSeverity?: string; ignore: string[] }>;
  formats: string[];
  signatureSources: string[];
  warnings: string[];
}

export function describeIdentity(rule: IdentityRule): string {
  switch (rule.type) {
    case 'matchRepository':
      return 'matchRepository: the signed docker-reference must name the same repository';
    case 'matchExact':
      return 'matchExact: the signed reference must equal the pulled reference, tag included';
    case 'matchRepoDigestOrExact':
      return 'matchRepoDigestOrExact: same repository when pulled by digest, exact when pulled by tag';
    case 'exactReference':
      return `exactReference: the signed reference must be ${rule.dockerReference}`;
    case 'exactRepository':
      return `exactRepository: the signed reference must be in ${rule.dockerRepository}`;
    case 'remapIdentity':
      return `remapIdentity: ${rule.prefix} is read as ${rule.signedPrefix}, then matchRepoDigestOrExact`;
  }
}

export function explain(policy: Policy, image: ImageReference, now = new Date()): Explanation {
  const match = resolveScope(policy, image);
  const sp = match.policy;
  const tried = match.candidates.map((scope) => ({ scope, defined: scope === 'default' || policy.scopes[scope] !== undefined, chosen: scope === match.scope }));
  const lastTried = tried.findIndex((t) => t.chosen);
  const warnings: string[] = [];
  const requirements = sp.signatures.map((req) => ({
    threshold: req.threshold,
    identity: describeIdentity(req.identity),
    keys: req.keys.map((name) => {
      const def = policy.keys[name];
      const u = keyUsability(name, def, now);
      if (u.usable && u.warning) warnings.push(u.warning);
      const window = def
        ? [def.notBefore ? `from ${def.notBefore.toISOString()}` : '', def.notAfter ? `until ${def.notAfter.toISOString()}` : ''].filter(Boolean).join(' ')
        : '';
      return {
        name,
        location: keyLocation(def),
        counts: u.usable,
        ...(u.usable ? (window || u.warning ? { note: [window, u.warning].filter(Boolean).join('; ') } : {}) : { note: u.reason }),
      };
    }),
  }));
  for (const r of requirements) {
    const counting = r.keys.filter((k) => k.counts).length;
    if (counting < r.threshold)
      warnings.push(`only ${counting} of the keys count today, fewer than the threshold ${r.threshold}: every image in this scope will be refused`);
  }
  const denied = policy.denyDigests.includes(image.digest ?? '')
    ? 'the digest is on the policy-wide deny list'
    : sp.denyDigests.includes(image.digest ?? '')
      ? 'the digest is on the scope deny list'
      : undefined;
  return {
    image: formatReference(image),
    scope: match.scope,
    ...(policy.origins[`scope:${match.scope}`] ? { definedAt: policy.origins[`scope:${match.scope}`] } : {}),
    tried: tried.slice(0, lastTried + 1),
    action: sp.action,
    mode: sp.mode,
    ...(denied ? { denied } : {}),
    requirements,
    rejectIfSignedBy: sp.rejectIfSignedBy,
    attestations: sp.attestations.map((a) => ({
      predicateType: a.predicateType,
      threshold: a.threshold,
      keys: a.keys,
      ...(a.maxAgeMs !== undefined ? { maxAge: `${Math.round(a.maxAgeMs / 3_600_000)}h` } : {}),
      ...(a.maxSeverity !== undefined ? { maxSeverity: a.maxSeverity } : {}),
      ignore: a.ignore,
    })),
    formats: sp.formats,
    signatureSources: sp.signatureSources.map((src) => (src === 'registry' ? 'registry' : `oci-layout:${src.ociLayout}`)),
    warnings,
  };
}

/** One field of an explanation, escaped and bounded: the image comes from the command line, the rest from policy files. */
const t = (text: string, max: number = LIMITS.name): string => printable(text, max);

export function formatExplanation(e: Explanation): string {
  const lines = [
    `image   ${t(e.image)}`,
    `scope   ${t(e.scope)}${e.definedAt ? `  (defined at ${t(e.definedAt, LIMITS.reason)})` : ''}`,
    'tried, most specific first:',
  ];
  for (const x of e.tried) lines.push(`  ${x.chosen ? '→' : ' '} ${t(x.scope)}${x.chosen ? '  matched' : x.defined ? '' : '  (not in the policy)'}`);
  lines.push(`action  ${t(e.action)}${e.mode === 'warn' ? '  (warn mode: refusals are recorded, images allowed)' : ''}`);
  if (e.denied) lines.push(`DENIED  ${t(e.denied, LIMITS.reason)}: refused whatever else holds`);
  e.requirements.forEach((r, i) => {
    lines.push(
      `requirement${e.requirements.length > 1 ? ` ${i + 1} of ${e.requirements.length} (all must hold)` : ''}: ${r.threshold} valid signature${r.threshold > 1 ? 's' : ''} by distinct keys of:`,
    );
    for (const k of r.keys)
      lines.push(`  ${k.counts ? 'counts ' : 'IGNORED'}  ${t(k.name)}  ${t(k.location, LIMITS.reason)}${k.note ? `  — ${t(k.note, LIMITS.reason)}` : ''}`);
    lines.push(`  identity: ${t(r.identity, LIMITS.reason)}`);
  });
  for (const a of e.attestations) {
    lines.push(
      `attestation: ${a.threshold} ${t(a.predicateType)} by ${a.keys.map((k) => t(k)).join(', ')}${a.maxAge ? `, scan no older than ${t(a.maxAge)}` : ''}${a.maxSeverity ? `, nothing above ${t(a.maxSeverity)}` : ''}${a.ignore.length ? ` (ignoring ${a.ignore.map((x) => t(x)).join(', ')})` : ''}`,
    );
  }
  if (e.action === 'verify')
    lines.push(`formats ${e.formats.map((f) => t(f)).join(', ')}; signatures read from ${e.signatureSources.map((x) => t(x, LIMITS.reason)).join(', then ')}`);
  if (e.rejectIfSignedBy.length) lines.push(`refused if signed by: ${e.rejectIfSignedBy.map((k) => t(k)).join(', ')}`);
  for (const w of e.warnings) lines.push(`warning: ${t(w, LIMITS.reason)}`);
  return `${lines.join('\n')}\n`;
}
