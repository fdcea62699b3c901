/**
 * Severities and how they compare: shared by the CI gate (scan/gate.ts) and the node's judgement of a
 * vulnerability attestation (attest/vuln.ts). See scan/gate.ts for why 'unknown' is outside the order.
 */
import { SignetError } from '../errors.js';
import { SEVERITIES, type Finding, type Severity } from './scan-report.js';

export const MAX_SEVERITIES = ['none', 'low', 'medium', 'high', 'critical'] as const;
export type MaxSeverity = (typeof MAX_SEVERITIES)[number];
export const DEFAULT_MAX_SEVERITY: MaxSeverity = 'high';

const RANK: Record<Severity, number> = { unknown: -1, negligible: 0, low: 1, medium: 2, high: 3, critical: 4 };
const MAX_RANK: Record<MaxSeverity, number> = { none: -1, low: 1, medium: 2, high: 3, critical: 4 };

export function isMaxSeverity(value: unknown): value is MaxSeverity {
  return typeof value === 'string' && (MAX_SEVERITIES as readonly string[]).includes(value);
}

/** Parse a `--max-severity` value (case-insensitive); INVALID_ARGUMENT otherwise. */
export function parseMaxSeverity(value: string): MaxSeverity {
  const v = value.trim().toLowerCase();
  if (!isMaxSeverity(v)) throw new SignetError('INVALID_ARGUMENT', `--max-severity must be one of ${MAX_SEVERITIES.join(', ')}, not ${JSON.stringify(value)}`);
  return v;
}

/** Whether a finding of `severity` exceeds `maxSeverity` (see the ordering note above). */
export function exceeds(severity: Severity, maxSeverity: MaxSeverity): boolean {
  if (maxSeverity === 'none') return true;
  if (severity === 'unknown') return false;
  return RANK[severity] > MAX_RANK[maxSeverity];
}

/** Sort key: critical first, unknown last. */
export function severityRank(severity: Severity): number {
  return RANK[severity];
}

export function emptyCounts(): Record<Severity, number> {
  return Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
}

export function countBySeverity(findings: readonly { severity: Severity }[]): Record<Severity, number> {
  const counts = emptyCounts();
  for (const f of findings) counts[f.severity] += 1;
  return counts;
}

/** An ID set compared case-insensitively (GHSA IDs are written both ways). */
export function ignoreSet(ignore: readonly string[]): Set<string> {
  return new Set(ignore.map((id) => id.trim().toUpperCase()).filter((id) => id.length > 0));
}

/** A finding is ignored when its ID or any alias (Grype related CVEs, Trivy vendor IDs) is listed. */
export function isIgnored(finding: Pick<Finding, 'id'> & { aliases?: readonly string[] }, ignored: Set<string>): boolean {
  if (ignored.has(finding.id.toUpperCase())) return true;
  return (finding.aliases ?? []).some((a) => ignored.has(a.toUpperCase()));
}
