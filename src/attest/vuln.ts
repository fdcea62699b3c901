/**
 * Scan attestations: the cosign vulnerability predicate
 * (https://github.com/sigstore/cosign/blob/main/specs/COSIGN_VULN_ATTESTATION_SPEC.md)
 *
 *     { "invocation": { "parameters": …, "uri": "", "event_id": "", "builder.id": "" },
 *       "scanner":    { "uri": "pkg:github/aquasecurity/trivy@0.58.1", "version": "0.58.1",
 *                       "db": { "uri": "", "version": "" }, "result": { … } },
 *       "metadata":   { "scanStartedOn": "<RFC 3339>", "scanFinishedOn": "<RFC 3339>" } }
 *
 * in an in-toto Statement whose subject is the image digest, in a DSSE envelope, stored as cosign
 * stores attestations: tag `sha256-<hex>.att`, one layer per envelope with media type
 * `application/vnd.dsse.envelope.v1+json` and the annotation `predicateType`.
 *
 * `scanner.result` is free-form in the spec. signet writes a summary, not the whole report:
 *
 *     { "scanner": "trivy", "target": { "name", "digests" }, "dbBuilt"?,
 *       "summary": { "total", "critical", "high", "medium", "low", "negligible", "unknown" },
 *       "vulnerabilities": [{ "id", "severity", "aliases"? }] }   // one per ID, highest severity
 *
 * Nodes evaluate `vulnerabilities`. A predicate whose result is a whole Trivy or Grype report
 * (what `trivy --format cosign-vuln` writes) is evaluated from that report's findings instead.
 * `db.version` carries the DB build time (RFC 3339) when the scanner reports it — that is the
 * version that matters for freshness; `db.uri` where the DB came from, when known.
 */
import { SignetError } from '../errors.js';
import { isDigest } from '../registry/reference.js';
import type { Signer } from '../keys/types.js';
import { DSSE_ENVELOPE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE, serializeEnvelope, signEnvelope, type DsseEnvelope } from '../formats/dsse.js';
import { buildStatement, serializeStatement, subjectForDigest, type Statement } from '../formats/intoto.js';
import { isPlainObject, requireExactKeys } from '../formats/strict-json.js';
import { SEVERITIES, isRfc3339, normaliseScanReport, type ScanReport, type Severity } from './scan-report.js';
import { countBySeverity, exceeds, ignoreSet, isIgnored, isMaxSeverity, severityRank, type MaxSeverity } from './severity.js';

export { DSSE_ENVELOPE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE };
export const COSIGN_VULN_PREDICATE_TYPE = 'https://cosign.sigstore.dev/attestation/vuln/v1';
/** Layer annotation cosign puts on attestation layers, naming the statement's predicate type (a hint, unsigned). */
export const COSIGN_PREDICATE_TYPE_ANNOTATION = 'predicateType';
/** cosign also writes its signature annotation on `.att` layers, empty: the signature is inside the envelope. */
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

/** `sha256:abc…` → `sha256-abc….att`, the tag cosign stores attestations under. */
export function cosignAttestationTag(digest: string): string {
  if (!isDigest(digest)) throw new SignetError('INVALID_ARGUMENT', `not a digest: ${digest}`);
  return `${digest.replace(':', '-')}.att`;
}

/** The annotations of an attestation layer, as cosign writes them. */
export function attestationLayerAnnotations(predicateType: string): Record<string, string> {
  return { [COSIGN_SIGNATURE_ANNOTATION]: '', [COSIGN_PREDICATE_TYPE_ANNOTATION]: predicateType };
}

export interface VulnPredicate {
  invocation: { parameters: unknown; uri: string; event_id: string; 'builder.id': string };
  scanner: { uri: string; version: string; db: { uri: string; version: string }; result: Record<string, unknown> };
  metadata: { scanStartedOn: string; scanFinishedOn: string };
}

export interface VulnSummaryEntry {
  id: string;
  severity: Severity;
  aliases?: string[];
}

export interface BuildVulnPredicateOptions {
  /** What ran the scan (CI job): all optional, empty strings when unknown, as cosign writes them. */
  invocation?: { parameters?: unknown; uri?: string; eventId?: string; builderId?: string };
  /** Override the report's times (RFC 3339); defaults: the report's, else `now`. */
  scanStartedOn?: string;
  scanFinishedOn?: string;
  now?: Date;
}

const SCANNER_PURL: Record<ScanReport['scanner']['name'], string> = {
  trivy: 'pkg:github/aquasecurity/trivy',
  grype: 'pkg:github/anchore/grype',
};

/** One entry per ID with its highest severity; aliases merged; most severe first. */
export function summariseFindings(report: ScanReport): VulnSummaryEntry[] {
  const byId = new Map<string, VulnSummaryEntry>();
  for (const f of report.findings) {
    const seen = byId.get(f.id);
    if (seen === undefined) {
      byId.set(f.id, { id: f.id, severity: f.severity, ...(f.aliases.length > 0 ? { aliases: [...f.aliases] } : {}) });
      continue;
    }
    if (severityRank(f.severity) > severityRank(seen.severity)) seen.severity = f.severity;
    for (const a of f.aliases) {
      if (!(seen.aliases ??= []).includes(a)) seen.aliases.push(a);
    }
  }
  return [...byId.values()].sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || a.id.localeCompare(b.id));
}

/** The cosign vulnerability predicate for `report`, with signet's findings summary as `scanner.result`. */
export function buildVulnPredicate(report: ScanReport, options: BuildVulnPredicateOptions = {}): VulnPredicate {
  const now = (options.now ?? new Date()).toISOString();
  const finished = options.scanFinishedOn ?? report.scanFinished ?? now;
  const started = options.scanStartedOn ?? report.scanStarted ?? finished;
  for (const [k, v] of [
    ['scanStartedOn', started],
    ['scanFinishedOn', finished],
  ] as const) {
    if (!isRfc3339(v)) throw new SignetError('INVALID_ARGUMENT', `${k} is not an RFC 3339 time: ${v}`);
  }
  const counts = countBySeverity(report.findings);
  const summary: Record<string, number> = { total: report.findings.length };
  for (const s of [...SEVERITIES].reverse()) summary[s] = counts[s];
  const version = report.scanner.version;
  const result: Record<string, unknown> = {
    scanner: report.scanner.name,
    target: { ...(report.target.name !== undefined ? { name: report.target.name } : {}), digests: report.target.digests },
    ...(report.dbTimestamp !== undefined ? { dbBuilt: report.dbTimestamp } : {}),
    summary,
    vulnerabilities: summariseFindings(report),
  };
  const inv = options.invocation ?? {};
  return {
    invocation: { parameters: inv.parameters ?? null, uri: inv.uri ?? '', event_id: inv.eventId ?? '', 'builder.id': inv.builderId ?? '' },
    scanner: {
      uri: version === 'unknown' ? SCANNER_PURL[report.scanner.name] : `${SCANNER_PURL[report.scanner.name]}@${version}`,
      version,
      db: { uri: report.dbUri ?? '', version: report.dbTimestamp ?? '' },
      result,
    },
    metadata: { scanStartedOn: started, scanFinishedOn: finished },
  };
}

export interface VulnAttestation {
  statement: Statement;
  /** The statement's bytes: the DSSE payload. */
  payload: Buffer;
  envelope: DsseEnvelope;
  /** The layer blob to push (media type DSSE_ENVELOPE_MEDIA_TYPE). */
  envelopeBytes: Buffer;
  layerMediaType: string;
  layerAnnotations: Record<string, string>;
  /** Where it goes: `sha256-<hex>.att` in the image's repository. */
  tag: string;
}

/**
 * Build, wrap and sign a scan attestation for `image` (subject: the repository name and digest).
 * Registry work (appending the layer to the `.att` manifest) is the caller's.
 */
export async function createVulnAttestation(
  report: ScanReport,
  image: { repository: string; digest: string },
  signer: Signer,
  options: BuildVulnPredicateOptions = {},
): Promise<VulnAttestation> {
  const predicate = buildVulnPredicate(report, options);
  const statement = buildStatement(
    [subjectForDigest(image.repository, image.digest)],
    COSIGN_VULN_PREDICATE_TYPE,
    predicate as unknown as Record<string, unknown>,
  );
  const payload = serializeStatement(statement);
  const envelope = await signEnvelope(INTOTO_PAYLOAD_TYPE, payload, signer);
  return {
    statement,
    payload,
    envelope,
    envelopeBytes: serializeEnvelope(envelope),
    layerMediaType: DSSE_ENVELOPE_MEDIA_TYPE,
    layerAnnotations: attestationLayerAnnotations(COSIGN_VULN_PREDICATE_TYPE),
    tag: cosignAttestationTag(image.digest),
  };
}

export interface ParsedVulnPredicate {
  scannerUri: string;
  scannerVersion: string;
  scanStartedOn: string;
  scanFinishedOn: string;
  /** Findings to judge, one per ID. */
  vulnerabilities: VulnSummaryEntry[];
}

/** Parse the predicate of a (signature-checked) statement; SIGNATURE_MALFORMED when it is not one. */
export function parseVulnPredicate(predicate: unknown): ParsedVulnPredicate {
  const fail = (why: string): never => {
    throw new SignetError('SIGNATURE_MALFORMED', `vulnerability predicate: ${why}`);
  };
  if (!isPlainObject(predicate)) return fail('not an object');
  requireExactKeys(predicate, ['invocation', 'scanner', 'metadata'], [], 'vulnerability predicate');
  const scanner = predicate['scanner'];
  const metadata = predicate['metadata'];
  if (!isPlainObject(scanner)) return fail('scanner is not an object');
  if (!isPlainObject(metadata)) return fail('metadata is not an object');
  if (!isPlainObject(predicate['invocation'])) fail('invocation is not an object');
  requireExactKeys(scanner, ['uri', 'version', 'result'], ['db'], 'vulnerability predicate scanner');
  requireExactKeys(metadata, ['scanStartedOn', 'scanFinishedOn'], [], 'vulnerability predicate metadata');
  const { uri, version, result } = scanner;
  if (typeof uri !== 'string' || typeof version !== 'string') fail('scanner.uri and scanner.version must be strings');
  const { scanStartedOn, scanFinishedOn } = metadata;
  for (const [k, v] of [
    ['scanStartedOn', scanStartedOn],
    ['scanFinishedOn', scanFinishedOn],
  ] as const) {
    if (typeof v !== 'string' || !isRfc3339(v)) fail(`metadata.${k} is not an RFC 3339 time`);
  }
  if (!isPlainObject(result)) return fail('scanner.result is not an object');
  let vulnerabilities: VulnSummaryEntry[];
  if (Array.isArray(result['vulnerabilities'])) {
    vulnerabilities = (result['vulnerabilities'] as unknown[]).map((v, i) => {
      if (!isPlainObject(v)) return fail(`scanner.result.vulnerabilities[${i}] is not an object`);
      const { id, severity, aliases } = v;
      if (typeof id !== 'string' || id.length === 0) fail(`scanner.result.vulnerabilities[${i}].id is not a non-empty string`);
      if (typeof severity !== 'string' || !(SEVERITIES as readonly string[]).includes(severity))
        fail(`scanner.result.vulnerabilities[${i}].severity is not one of ${SEVERITIES.join(', ')}`);
      if (aliases !== undefined && (!Array.isArray(aliases) || aliases.some((a) => typeof a !== 'string')))
        fail(`scanner.result.vulnerabilities[${i}].aliases is not an array of strings`);
      return { id: id as string, severity: severity as Severity, ...(aliases !== undefined ? { aliases: aliases as string[] } : {}) };
    });
  } else {
    // A whole scanner report as the result (trivy --format cosign-vuln).
    let report: ScanReport;
    try {
      report = normaliseScanReport(result, 'in the attestation');
    } catch (err) {
      return fail(`scanner.result is neither a signet summary nor a Trivy or Grype report (${(err as Error).message})`);
    }
    vulnerabilities = summariseFindings(report);
  }
  return {
    scannerUri: uri as string,
    scannerVersion: version as string,
    scanStartedOn: scanStartedOn as string,
    scanFinishedOn: scanFinishedOn as string,
    vulnerabilities,
  };
}

export interface VulnRequirements {
  /** Maximum age of the scan in milliseconds, measured from scanFinishedOn; undefined: no limit. */
  maxAge?: number;
  /** Highest severity allowed (as the gate); undefined: severities are not checked. */
  maxSeverity?: MaxSeverity;
  /** IDs whose findings do not count (matched case-insensitively, aliases included). */
  ignore?: readonly string[];
  now?: Date;
  /** How far in the future scanFinishedOn may be before it is refused (clock skew). Default 5 minutes. */
  maxClockSkew?: number;
}

export interface VulnVerdict {
  ok: boolean;
  /** One line, for the decision's reason. */
  reason: string;
  /** Findings above maxSeverity, not ignored. */
  blocking: VulnSummaryEntry[];
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.round(h / 24)}d`;
}

/**
 * Judge a vulnerability predicate for a node: the scan is no older than maxAge (from
 * scanFinishedOn), not from the future, and no finding is above maxSeverity other than ignored IDs.
 * A malformed predicate is not ok (never throws for bad input).
 */
export function evaluateVulnAttestation(predicate: unknown, requirements: VulnRequirements = {}): VulnVerdict {
  let parsed: ParsedVulnPredicate;
  try {
    parsed = parseVulnPredicate(predicate);
  } catch (err) {
    return { ok: false, reason: (err as Error).message, blocking: [] };
  }
  const now = (requirements.now ?? new Date()).getTime();
  const finished = Date.parse(parsed.scanFinishedOn);
  const age = now - finished;
  const skew = requirements.maxClockSkew ?? 5 * 60 * 1000;
  if (age < -skew) return { ok: false, reason: `scan finished in the future (${parsed.scanFinishedOn})`, blocking: [] };
  if (requirements.maxAge !== undefined && age > requirements.maxAge) {
    return {
      ok: false,
      reason: `scan is too old: finished ${parsed.scanFinishedOn}, ${formatDuration(age)} ago, more than maxAge ${formatDuration(requirements.maxAge)}`,
      blocking: [],
    };
  }
  const ignored = ignoreSet(requirements.ignore ?? []);
  let ignoredCount = 0;
  const blocking: VulnSummaryEntry[] = [];
  if (requirements.maxSeverity !== undefined) {
    if (!isMaxSeverity(requirements.maxSeverity)) return { ok: false, reason: `invalid maxSeverity ${JSON.stringify(requirements.maxSeverity)}`, blocking: [] };
    for (const v of parsed.vulnerabilities) {
      if (isIgnored(v, ignored)) ignoredCount += 1;
      else if (exceeds(v.severity, requirements.maxSeverity)) blocking.push(v);
    }
  }
  const scanner = `${parsed.scannerUri || 'unknown scanner'}`;
  if (blocking.length > 0) {
    const shown = blocking
      .slice(0, 5)
      .map((v) => `${v.id} (${v.severity})`)
      .join(', ');
    const more = blocking.length > 5 ? ` and ${blocking.length - 5} more` : '';
    const limit = requirements.maxSeverity === 'none' ? ' (maxSeverity none allows no findings)' : ` above ${requirements.maxSeverity}`;
    return { ok: false, reason: `scan by ${scanner} has ${blocking.length} finding${blocking.length === 1 ? '' : 's'}${limit}: ${shown}${more}`, blocking };
  }
  const sev =
    requirements.maxSeverity === undefined
      ? 'severities not checked'
      : `no finding above ${requirements.maxSeverity}${ignoredCount > 0 ? ` (${ignoredCount} ignored)` : ''}`;
  return { ok: true, reason: `scan by ${scanner} finished ${formatDuration(Math.max(0, age))} ago; ${sev}`, blocking: [] };
}
