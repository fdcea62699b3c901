/**
 * The signing gate: does a scan report allow an image to be signed? Pure functions over a parsed
 * ScanReport; the CLI turns a failed gate into SCAN_GATE_FAILED and prints formatBlockingTable().
 *
 * Severity order: negligible < low < medium < high < critical. `maxSeverity` is the highest
 * severity still allowed ('high' by default: only CRITICAL findings block; 'none' blocks every
 * finding). 'unknown' (not yet scored) is outside the order: it blocks only when maxSeverity is
 * 'none'. Ranking it as critical would block most images on any fresh CVE that a distribution has
 * not scored yet; ranking it as negligible would hide it — so it is counted and listed, and an
 * operator who wants unscored findings to block uses 'none' (with --ignore for the known ones).
 */
import { SignetError } from '../errors.js';
import { parseReference, repositoryName } from '../registry/reference.js';
import { SEVERITIES, type Finding, type ScanReport, type Severity } from './report.js';

export {
  MAX_SEVERITIES,
  type MaxSeverity,
  DEFAULT_MAX_SEVERITY,
  isMaxSeverity,
  parseMaxSeverity,
  exceeds,
  severityRank,
  emptyCounts,
  countBySeverity,
  ignoreSet,
  isIgnored,
} from '../attest/severity.js';
import {
  countBySeverity,
  DEFAULT_MAX_SEVERITY,
  exceeds,
  isIgnored,
  ignoreSet,
  isMaxSeverity,
  MAX_SEVERITIES,
  severityRank,
  type MaxSeverity,
} from '../attest/severity.js';

export interface ImageIdentity {
  /** `host/repo` (normalised or as the user wrote it; compared after normalisation). */
  repository: string;
  /** The digest being signed. */
  digest: string;
  /**
   * Other digests that identify the same image, e.g. the platform manifests of an index that is
   * being signed (a scanner may record the platform manifest rather than the index).
   */
  alsoDigests?: string[];
}

export interface GateOptions {
  maxSeverity?: MaxSeverity;
  ignore?: readonly string[];
  image: ImageIdentity;
}

export interface GateResult {
  passed: boolean;
  /** Findings above maxSeverity and not ignored, most severe first. */
  blocking: Finding[];
  /** Findings that were listed in `ignore` (whatever their severity). */
  ignored: Finding[];
  /** Over all findings of the report, ignored ones included. */
  counts: Record<Severity, number>;
  maxSeverity: MaxSeverity;
  /** From checkReportMatchesImage: how the report was matched to the image. */
  match: ReportMatch;
}

function byseverityThenId(a: Finding, b: Finding): number {
  return severityRank(b.severity) - severityRank(a.severity) || a.id.localeCompare(b.id) || a.package.localeCompare(b.package);
}

/**
 * Decide whether `report` lets `image` be signed. First checks that the report is for the image
 * (throws SCAN_REPORT_INVALID when it names another one), then applies maxSeverity and ignore.
 */
export function evaluateGate(report: ScanReport, options: GateOptions): GateResult {
  const maxSeverity = options.maxSeverity ?? DEFAULT_MAX_SEVERITY;
  if (!isMaxSeverity(maxSeverity)) throw new SignetError('INVALID_ARGUMENT', `maxSeverity must be one of ${MAX_SEVERITIES.join(', ')}`);
  const match = checkReportMatchesImage(report, options.image);
  const ignoredIds = ignoreSet(options.ignore ?? []);
  const blocking: Finding[] = [];
  const ignored: Finding[] = [];
  for (const f of report.findings) {
    if (isIgnored(f, ignoredIds)) ignored.push(f);
    else if (exceeds(f.severity, maxSeverity)) blocking.push(f);
  }
  blocking.sort(byseverityThenId);
  return { passed: blocking.length === 0, blocking, ignored, counts: countBySeverity(report.findings), maxSeverity, match };
}

export interface ReportMatch {
  /** 'digest': the report names the image's digest; 'name': no digest in the report, its name matches; 'none': nothing to compare. */
  by: 'digest' | 'name' | 'none';
  /** Set when the match is weaker than a digest: print it. */
  warning?: string;
}

/** `host/repo` of a reference as a scanner wrote it, normalised; undefined when it does not parse. */
function normalisedRepository(name: string): string | undefined {
  try {
    return repositoryName(parseReference(name));
  } catch {
    return undefined;
  }
}

/**
 * Refuse a report that is for another image.
 * - The report names manifest digests (Trivy RepoDigests; Grype manifestDigest and repoDigests):
 *   one of them must be the image's digest (or one of `alsoDigests`), else SCAN_REPORT_INVALID
 *   "report is for … not …". A matching digest is enough: the content is what was scanned, so a
 *   report made under another name (a mirror, a CI-local tag) is accepted.
 * - The report names no digest (a scan of a local build or an archive): its name, when it parses as
 *   an image reference, must be the image's repository, and the result carries a warning that the
 *   match is by name only; a report with neither digest nor name is accepted with a warning.
 * Trivy's ImageID (the config digest) is never compared.
 */
export function checkReportMatchesImage(report: ScanReport, image: ImageIdentity): ReportMatch {
  const wanted = [image.digest, ...(image.alsoDigests ?? [])];
  const { digests, name } = report.target;
  const label = name !== undefined ? `${name} (${digests.join(', ')})` : digests.join(', ');
  if (digests.length > 0) {
    if (digests.some((d) => wanted.includes(d))) return { by: 'digest' };
    throw new SignetError('SCAN_REPORT_INVALID', `scan report ${report.source}: report is for ${label}, not ${image.repository}@${image.digest}`);
  }
  if (name !== undefined) {
    const reportRepo = normalisedRepository(name);
    const imageRepo = normalisedRepository(image.repository) ?? image.repository;
    if (reportRepo !== undefined) {
      if (reportRepo !== imageRepo) {
        throw new SignetError('SCAN_REPORT_INVALID', `scan report ${report.source}: report is for ${name}, not ${image.repository}@${image.digest}`);
      }
      // A name with a digest in it (`repo@sha256:…`) is a digest claim too.
      const ref = parseReference(name);
      if (ref.digest !== undefined) {
        if (wanted.includes(ref.digest)) return { by: 'digest' };
        throw new SignetError('SCAN_REPORT_INVALID', `scan report ${report.source}: report is for ${name}, not ${image.repository}@${image.digest}`);
      }
      return { by: 'name', warning: `scan report ${report.source} names no digest; matched by name ${name} only` };
    }
    return {
      by: 'none',
      warning: `scan report ${report.source} names no digest and its target "${name}" is not an image reference; cannot check it is for ${image.repository}@${image.digest}`,
    };
  }
  return { by: 'none', warning: `scan report ${report.source} names no image; cannot check it is for ${image.repository}@${image.digest}` };
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$/;

/**
 * An ignore file: one vulnerability ID per line (CVE-…, GHSA-…, …); `#` starts a comment, blank
 * lines are skipped. Anything else on a line is an error naming the line (INVALID_ARGUMENT), so a
 * Trivy `.trivyignore` with expiry syntax is refused rather than half-read.
 */
export function parseIgnoreFile(text: string, source = 'ignore file'): string[] {
  const ids: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line.length === 0) continue;
    if (!ID_RE.test(line)) {
      throw new SignetError('INVALID_ARGUMENT', `${source}:${i + 1}: expected one vulnerability ID per line, got ${JSON.stringify(line.slice(0, 80))}`);
    }
    if (!ids.includes(line)) ids.push(line);
  }
  return ids;
}

/** ID, severity, package, installed and fixed versions, in aligned columns, one line per finding. */
export function formatBlockingTable(findings: readonly Finding[]): string {
  const header = ['ID', 'SEVERITY', 'PACKAGE', 'INSTALLED', 'FIXED'];
  const rows = [...findings]
    .sort(byseverityThenId)
    .map((f) => [
      f.id,
      f.severity.toUpperCase(),
      f.package,
      f.installedVersion.length > 0 ? f.installedVersion : '-',
      f.fixedVersions.length > 0 ? f.fixedVersions.join(', ') : '-',
    ]);
  const all = [header, ...rows].map((r) => r.map((c) => c.replace(/[\x00-\x1f\x7f]/g, ' ')));
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** One line for the CLI's error: "3 findings above high (2 CRITICAL, 1 UNKNOWN) in …". */
export function gateFailureMessage(report: ScanReport, result: GateResult): string {
  const counts = countBySeverity(result.blocking);
  const parts = [...SEVERITIES]
    .reverse()
    .filter((s) => counts[s] > 0)
    .map((s) => `${counts[s]} ${s.toUpperCase()}`);
  const n = result.blocking.length;
  const limit = result.maxSeverity === 'none' ? 'with --max-severity none' : `above ${result.maxSeverity}`;
  return `scan gate failed: ${n} finding${n === 1 ? '' : 's'} ${limit} (${parts.join(', ')}) in ${report.source}; nothing was signed`;
}
