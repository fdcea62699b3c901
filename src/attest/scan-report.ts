/**
 * Vulnerability scan reports, normalised. Two scanners are understood, detected from the content:
 *
 * - Trivy JSON (`trivy image -f json`): `SchemaVersion`, `ArtifactName`, `Metadata.RepoDigests`
 *   (`repo@sha256:…`), `Results[].Vulnerabilities[]` with `VulnerabilityID`, `PkgName`,
 *   `InstalledVersion`, `FixedVersion` (possibly `"1.2.3, 1.3.0"`), `Severity` (UNKNOWN…CRITICAL).
 *   Trivy omits `Results` when nothing was found, and only recent versions write `Trivy.Version`
 *   and `CreatedAt`; it never writes its DB timestamp into the JSON report.
 * - Grype JSON (`grype -o json`): `matches[].vulnerability{id, severity, fix.versions}`,
 *   `matches[].artifact{name, version}`, `matches[].relatedVulnerabilities[].id`,
 *   `source.target{userInput, manifestDigest, repoDigests}` (a string for directory scans),
 *   `descriptor{name, version, timestamp, db}` where `db` is `{built, …}` up to DB schema v5 and
 *   `{status: {built, from, schemaVersion, …}}` from v6.
 *
 * A report is the scanner's output, not a signed payload: fields we do not read are tolerated (the
 * tools add fields in every release), but duplicate keys, wrong types in the fields we read, an
 * unknown severity or an unrecognised document are SCAN_REPORT_INVALID with a one-line message
 * naming the file. Trivy's `Metadata.ImageID` is the digest of the image *config*, never of the
 * manifest, so it is kept apart (`target.imageId`) and never compared with a manifest digest.
 */
import { SignetError } from '../errors.js';
import { isDigest } from '../registry/reference.js';
import { isPlainObject } from '../formats/strict-json.js';

export const SEVERITIES = ['unknown', 'negligible', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Reports larger than this are refused before parsing. */
export const MAX_SCAN_REPORT_BYTES = 64 * 1024 * 1024;

export interface Finding {
  /** CVE-…, GHSA-…, DLA-…: as the scanner names it. */
  id: string;
  /** Other IDs for the same vulnerability (Grype relatedVulnerabilities, Trivy VendorIDs). */
  aliases: string[];
  severity: Severity;
  package: string;
  installedVersion: string;
  /** Empty when no fix is known. */
  fixedVersions: string[];
}

export interface RepoDigest {
  /** The repository part as the scanner wrote it (not normalised): `registry.example/app`. */
  repository: string;
  digest: string;
}

export interface ScanTarget {
  /** What the scanner was pointed at: Trivy ArtifactName, Grype source.target.userInput. */
  name?: string;
  /** Manifest digests the report names for the scanned image (`sha256:…`), deduplicated. */
  digests: string[];
  repoDigests: RepoDigest[];
  /** Trivy Metadata.ImageID / Grype source.target.imageID: the config digest. Informational only. */
  imageId?: string;
}

export interface ScanReport {
  /** Where the report came from, for messages (a file name). */
  source: string;
  scanner: { name: 'trivy' | 'grype'; version: string };
  /** RFC 3339: when the vulnerability database was built, when the scanner reports it. */
  dbTimestamp?: string;
  /** Where the database came from, when the scanner reports it (Grype v6 `db.status.from`). */
  dbUri?: string;
  /** RFC 3339. Neither scanner records the start of a scan today; kept for callers that know it. */
  scanStarted?: string;
  /** RFC 3339: Trivy CreatedAt, Grype descriptor.timestamp — when the report was written. */
  scanFinished?: string;
  target: ScanTarget;
  /** Exact duplicates (same id, package, installed version) removed; order as in the report. */
  findings: Finding[];
}

type Json = Record<string, unknown>;

class ReportReader {
  constructor(readonly source: string) {}

  fail(why: string): never {
    throw new SignetError('SCAN_REPORT_INVALID', `scan report ${this.source}: ${oneLine(why)}`);
  }

  object(value: unknown, where: string): Json {
    if (!isPlainObject(value)) this.fail(`${where} is not an object`);
    return value;
  }

  optObject(value: unknown, where: string): Json | undefined {
    return value === undefined || value === null ? undefined : this.object(value, where);
  }

  /** Go's encoding/json writes nil slices as null: null and absent both mean empty. */
  array(value: unknown, where: string): unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) this.fail(`${where} is not an array`);
    return value;
  }

  string(value: unknown, where: string): string {
    if (typeof value !== 'string') this.fail(`${where} is not a string`);
    return value;
  }

  optString(value: unknown, where: string): string | undefined {
    return value === undefined || value === null ? undefined : this.string(value, where);
  }

  nonEmpty(value: unknown, where: string): string {
    const s = this.string(value, where);
    if (s.trim().length === 0) this.fail(`${where} is empty`);
    return s;
  }

  timestamp(value: unknown, where: string): string | undefined {
    if (value === undefined || value === null || value === '') return undefined;
    // Trivy ≤ 0.19 wrote CreatedAt as Unix seconds.
    if (typeof value === 'number' && Number.isFinite(value) && value > 0) return new Date(value * 1000).toISOString();
    const s = this.string(value, where);
    if (!isRfc3339(s)) this.fail(`${where} is not an RFC 3339 time: ${JSON.stringify(s.slice(0, 64))}`);
    return s;
  }
}

const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

export function isRfc3339(value: string): boolean {
  return RFC3339_RE.test(value) && !Number.isNaN(Date.parse(value.replace(' ', 'T')));
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

const SEVERITY_NAMES: Record<string, Severity> = {
  unknown: 'unknown',
  negligible: 'negligible',
  low: 'low',
  medium: 'medium',
  high: 'high',
  critical: 'critical',
};

function severityOf(r: ReportReader, value: unknown, where: string): Severity {
  const s = r.string(value, where);
  const sev = SEVERITY_NAMES[s.toLowerCase()];
  if (sev === undefined) r.fail(`${where} is ${JSON.stringify(s.slice(0, 32))}, not one of ${SEVERITIES.join(', ')}`);
  return sev;
}

/** `repo@sha256:…` → parts; undefined when it is not of that shape. */
export function splitRepoDigest(value: string): RepoDigest | undefined {
  const at = value.lastIndexOf('@');
  if (at <= 0) return undefined;
  const digest = value.slice(at + 1);
  if (!isDigest(digest)) return undefined;
  return { repository: value.slice(0, at), digest };
}

function addRepoDigests(r: ReportReader, target: ScanTarget, values: unknown, where: string): void {
  for (const [i, v] of r.array(values, where).entries()) {
    const s = r.string(v, `${where}[${i}]`);
    const rd = splitRepoDigest(s);
    if (rd === undefined) r.fail(`${where}[${i}] is not of the form repository@sha256:<hex>: ${JSON.stringify(s.slice(0, 128))}`);
    target.repoDigests.push(rd);
    if (!target.digests.includes(rd.digest)) target.digests.push(rd.digest);
  }
}

function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.id}\u0000${f.package}\u0000${f.installedVersion}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function parseTrivy(r: ReportReader, doc: Json): ScanReport {
  const schemaVersion = doc['SchemaVersion'];
  if (schemaVersion !== 2) r.fail(`Trivy SchemaVersion ${JSON.stringify(schemaVersion)} is not supported (expected 2)`);
  const target: ScanTarget = { digests: [], repoDigests: [] };
  const name = r.optString(doc['ArtifactName'], 'ArtifactName');
  if (name !== undefined && name.length > 0) target.name = name;
  const metadata = r.optObject(doc['Metadata'], 'Metadata');
  if (metadata !== undefined) {
    addRepoDigests(r, target, metadata['RepoDigests'], 'Metadata.RepoDigests');
    const imageId = r.optString(metadata['ImageID'], 'Metadata.ImageID');
    if (imageId !== undefined && imageId.length > 0) target.imageId = imageId;
  }
  const trivy = r.optObject(doc['Trivy'], 'Trivy');
  const version = trivy !== undefined ? r.optString(trivy['Version'], 'Trivy.Version') : undefined;
  const findings: Finding[] = [];
  for (const [i, res] of r.array(doc['Results'], 'Results').entries()) {
    const result = r.object(res, `Results[${i}]`);
    for (const [j, v] of r.array(result['Vulnerabilities'], `Results[${i}].Vulnerabilities`).entries()) {
      const where = `Results[${i}].Vulnerabilities[${j}]`;
      const vuln = r.object(v, where);
      const fixed = r.optString(vuln['FixedVersion'], `${where}.FixedVersion`) ?? '';
      const aliases = r.array(vuln['VendorIDs'], `${where}.VendorIDs`).map((a, k) => r.string(a, `${where}.VendorIDs[${k}]`));
      findings.push({
        id: r.nonEmpty(vuln['VulnerabilityID'], `${where}.VulnerabilityID`),
        aliases,
        severity: severityOf(r, vuln['Severity'], `${where}.Severity`),
        package: r.nonEmpty(vuln['PkgName'], `${where}.PkgName`),
        installedVersion: r.optString(vuln['InstalledVersion'], `${where}.InstalledVersion`) ?? '',
        fixedVersions: fixed
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0),
      });
    }
  }
  const report: ScanReport = {
    source: r.source,
    scanner: { name: 'trivy', version: version !== undefined && version.length > 0 ? version : 'unknown' },
    target,
    findings: dedupe(findings),
  };
  const created = r.timestamp(doc['CreatedAt'], 'CreatedAt');
  if (created !== undefined) report.scanFinished = created;
  return report;
}

function parseGrype(r: ReportReader, doc: Json): ScanReport {
  const descriptor = r.object(doc['descriptor'], 'descriptor');
  const version = r.optString(descriptor['version'], 'descriptor.version');
  const target: ScanTarget = { digests: [], repoDigests: [] };
  const source = r.optObject(doc['source'], 'source');
  if (source !== undefined) {
    const t = source['target'];
    if (typeof t === 'string') {
      if (t.length > 0) target.name = t;
    } else if (t !== undefined && t !== null) {
      const tgt = r.object(t, 'source.target');
      const userInput = r.optString(tgt['userInput'], 'source.target.userInput');
      if (userInput !== undefined && userInput.length > 0) target.name = userInput;
      const manifestDigest = r.optString(tgt['manifestDigest'], 'source.target.manifestDigest');
      if (manifestDigest !== undefined && manifestDigest.length > 0) {
        if (!isDigest(manifestDigest)) r.fail(`source.target.manifestDigest is not a digest: ${JSON.stringify(manifestDigest.slice(0, 128))}`);
        target.digests.push(manifestDigest);
      }
      addRepoDigests(r, target, tgt['repoDigests'], 'source.target.repoDigests');
      const imageId = r.optString(tgt['imageID'], 'source.target.imageID');
      if (imageId !== undefined && imageId.length > 0) target.imageId = imageId;
    }
  }
  const findings: Finding[] = [];
  for (const [i, m] of r.array(doc['matches'], 'matches').entries()) {
    const where = `matches[${i}]`;
    const match = r.object(m, where);
    const vuln = r.object(match['vulnerability'], `${where}.vulnerability`);
    const artifact = r.object(match['artifact'], `${where}.artifact`);
    const fix = r.optObject(vuln['fix'], `${where}.vulnerability.fix`);
    const fixedVersions =
      fix === undefined
        ? []
        : r.array(fix['versions'], `${where}.vulnerability.fix.versions`).map((v, k) => r.string(v, `${where}.vulnerability.fix.versions[${k}]`));
    const id = r.nonEmpty(vuln['id'], `${where}.vulnerability.id`);
    const aliases: string[] = [];
    for (const [k, rel] of r.array(match['relatedVulnerabilities'], `${where}.relatedVulnerabilities`).entries()) {
      const relId = r.string(r.object(rel, `${where}.relatedVulnerabilities[${k}]`)['id'], `${where}.relatedVulnerabilities[${k}].id`);
      if (relId !== id && !aliases.includes(relId)) aliases.push(relId);
    }
    findings.push({
      id,
      aliases,
      severity: severityOf(r, vuln['severity'], `${where}.vulnerability.severity`),
      package: r.nonEmpty(artifact['name'], `${where}.artifact.name`),
      installedVersion: r.optString(artifact['version'], `${where}.artifact.version`) ?? '',
      fixedVersions,
    });
  }
  const report: ScanReport = {
    source: r.source,
    scanner: { name: 'grype', version: version !== undefined && version.length > 0 ? version : 'unknown' },
    target,
    findings: dedupe(findings),
  };
  const finished = r.timestamp(descriptor['timestamp'], 'descriptor.timestamp');
  if (finished !== undefined) report.scanFinished = finished;
  const db = r.optObject(descriptor['db'], 'descriptor.db');
  if (db !== undefined) {
    const status = r.optObject(db['status'], 'descriptor.db.status'); // DB schema v6
    const built = r.timestamp(
      status !== undefined ? status['built'] : db['built'],
      status !== undefined ? 'descriptor.db.status.built' : 'descriptor.db.built',
    );
    if (built !== undefined) report.dbTimestamp = built;
    const from = status !== undefined ? r.optString(status['from'], 'descriptor.db.status.from') : undefined;
    if (from !== undefined && from.length > 0) report.dbUri = from;
  }
  return report;
}

/** Which scanner wrote `doc`, or undefined. */
export function detectScanner(doc: unknown): 'trivy' | 'grype' | undefined {
  if (!isPlainObject(doc)) return undefined;
  if ('SchemaVersion' in doc && ('ArtifactName' in doc || 'ArtifactType' in doc || 'Results' in doc)) return 'trivy';
  if ('matches' in doc && isPlainObject(doc['descriptor']) && doc['descriptor']['name'] === 'grype') return 'grype';
  return undefined;
}

/** Normalise an already-parsed report document (also used for the `result` of cosign vuln predicates). */
export function normaliseScanReport(doc: unknown, source: string): ScanReport {
  const r = new ReportReader(source);
  const obj = r.object(doc, 'the document (expected Trivy or Grype JSON output)');
  const scanner = detectScanner(obj);
  if (scanner === 'trivy') return parseTrivy(r, obj);
  if (scanner === 'grype') return parseGrype(r, obj);
  return r.fail('unknown report format: neither Trivy JSON (SchemaVersion, ArtifactName, Results) nor Grype JSON (matches, descriptor.name "grype")');
}

/**
 * Parse a scan report file's text. `source` names it in every message (use the path the user gave).
 * Throws SignetError SCAN_REPORT_INVALID.
 */
export function parseScanReport(text: string, source: string, maxBytes = MAX_SCAN_REPORT_BYTES): ScanReport {
  if (typeof text !== 'string') throw new SignetError('SCAN_REPORT_INVALID', `scan report ${source}: not text`);
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // PowerShell redirection writes a BOM
  if (body.trim().length === 0) throw new SignetError('SCAN_REPORT_INVALID', `scan report ${source}: is empty`);
  const fail = (why: string): never => {
    throw new SignetError('SCAN_REPORT_INVALID', `scan report ${source}: ${oneLine(why)}`);
  };
  if (Buffer.byteLength(body) > maxBytes) fail(`is larger than ${maxBytes} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    fail(`is not valid JSON: ${(err as Error).message}`);
  }
  const dup = findDuplicateKey(body);
  if (dup !== undefined) fail(`has a duplicate key ${JSON.stringify(dup.slice(0, 64))}`);
  return normaliseScanReport(doc, source);
}

/**
 * The first object key that appears twice in one object of `text`, which must already be valid
 * JSON. A single linear pass: scanner reports run to tens of megabytes, too large for the generic
 * (YAML-based) strict parser used for small signed payloads.
 */
export function findDuplicateKey(text: string): string | undefined {
  const stack: Array<Set<string> | null> = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) stack.push(new Set());
    else if (c === 0x5b /* [ */) stack.push(null);
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i = i + 1; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \\ */) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      const keys = stack[stack.length - 1];
      if (keys === undefined || keys === null) continue;
      let j = i + 1;
      while (j < n && (text.charCodeAt(j) === 0x20 || text.charCodeAt(j) === 0x0a || text.charCodeAt(j) === 0x0d || text.charCodeAt(j) === 0x09)) j++;
      if (text.charCodeAt(j) !== 0x3a /* : */) continue; // a value, not a key
      const raw = text.slice(start, i + 1);
      const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
      if (keys.has(key)) return key;
      keys.add(key);
    }
  }
  return undefined;
}
