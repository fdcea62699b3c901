import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isSignetError } from '../../src/errors.js';
import { parseScanReport, type Finding, type ScanReport } from '../../src/scan/report.js';
import {
  checkReportMatchesImage,
  evaluateGate,
  exceeds,
  formatBlockingTable,
  gateFailureMessage,
  parseIgnoreFile,
  parseMaxSeverity,
} from '../../src/scan/gate.js';

const FIX = fileURLToPath(new URL('../../../test/fixtures/scan/', import.meta.url));
const REPO = '127.0.0.1:5000/signet/app';
const DIGEST = 'sha256:16649ba604d7f9849f179f899057ad45be3693bb1e21df3e83ea23806743ebac';
const INDEX_DIGEST = 'sha256:13ab63a11cbde5c3f9f8db83041025a6c82f473412ee1fbc8a81f20172dabbc7';
const OTHER_DIGEST = 'sha256:59a74fbb9ab67bcee2e934384920300a692dfea33ec5bd1d0deaac3c0a97ea4b';
const IMAGE = { repository: REPO, digest: DIGEST };

function fixture(name: string): ScanReport {
  return parseScanReport(readFileSync(FIX + name, 'utf8'), name);
}

function finding(id: string, severity: Finding['severity'], extra: Partial<Finding> = {}): Finding {
  return { id, aliases: [], severity, package: 'pkg', installedVersion: '1.0', fixedVersions: [], ...extra };
}

function synthetic(findings: Finding[], target: ScanReport['target'] = { digests: [DIGEST], repoDigests: [] }): ScanReport {
  return { source: 'synthetic.json', scanner: { name: 'trivy', version: '0.58.1' }, target, findings };
}

describe('scan gate', () => {
  it('CRITICAL blocks at the default threshold (high)', () => {
    for (const name of ['trivy-critical.json', 'grype-critical.json']) {
      const report = fixture(name);
      const result = evaluateGate(report, { image: IMAGE });
      assert.equal(result.passed, false, name);
      assert.equal(result.maxSeverity, 'high');
      assert.deepEqual(
        result.blocking.map((f) => f.id),
        ['CVE-2023-45853'],
      );
      assert.equal(result.match.by, 'digest');
      assert.match(
        gateFailureMessage(report, result),
        new RegExp(`^scan gate failed: 1 finding above high \\(1 CRITICAL\\) in ${name.replace('.', '\\.')}; nothing was signed$`),
      );
    }
  });

  it('lower findings pass at the default threshold', () => {
    const clean = evaluateGate(fixture('trivy-clean.json'), { image: IMAGE });
    assert.equal(clean.passed, true);
    assert.deepEqual(clean.blocking, []);
    assert.deepEqual(clean.counts, { unknown: 0, negligible: 0, low: 2, medium: 1, high: 0, critical: 0 });
    const high = evaluateGate(fixture('grype-high.json'), { image: IMAGE });
    assert.equal(high.passed, true, 'HIGH is still allowed by default');
    assert.deepEqual(high.counts, { unknown: 0, negligible: 1, low: 0, medium: 1, high: 1, critical: 0 });
    assert.equal(evaluateGate(fixture('trivy-no-findings.json'), { image: IMAGE, maxSeverity: 'none' }).passed, true);
  });

  it('each threshold blocks exactly what is above it', () => {
    const report = fixture('trivy-critical.json'); // critical, high, 2 medium, low
    const blocked = (maxSeverity: 'none' | 'low' | 'medium' | 'high' | 'critical') =>
      evaluateGate(report, { image: IMAGE, maxSeverity }).blocking.map((f) => f.severity);
    assert.deepEqual(blocked('critical'), []);
    assert.deepEqual(blocked('high'), ['critical']);
    assert.deepEqual(blocked('medium'), ['critical', 'high']);
    assert.deepEqual(blocked('low'), ['critical', 'high', 'medium', 'medium']);
    assert.deepEqual(blocked('none'), ['critical', 'high', 'medium', 'medium', 'low']);
  });

  it('none blocks everything, negligible and unknown included', () => {
    const report = synthetic([finding('CVE-1', 'negligible'), finding('CVE-2', 'unknown'), finding('CVE-3', 'low')]);
    const result = evaluateGate(report, { image: IMAGE, maxSeverity: 'none' });
    assert.equal(result.passed, false);
    assert.equal(result.blocking.length, 3);
    assert.match(gateFailureMessage(report, result), /3 findings with --max-severity none \(1 LOW, 1 NEGLIGIBLE, 1 UNKNOWN\)/);
  });

  it('unknown blocks only at none; negligible is below low', () => {
    for (const max of ['low', 'medium', 'high', 'critical'] as const) {
      assert.equal(exceeds('unknown', max), false, max);
      assert.equal(exceeds('negligible', max), false, max);
    }
    assert.equal(exceeds('unknown', 'none'), true);
    assert.equal(exceeds('low', 'low'), false);
    assert.equal(exceeds('medium', 'low'), true);
    assert.equal(exceeds('critical', 'critical'), false);
  });

  it('--ignore is honoured, by ID or alias, case-insensitively', () => {
    const report = fixture('trivy-critical.json');
    const result = evaluateGate(report, { image: IMAGE, ignore: ['cve-2023-45853'] });
    assert.equal(result.passed, true);
    assert.deepEqual(
      result.ignored.map((f) => f.id),
      ['CVE-2023-45853'],
    );
    assert.equal(result.counts.critical, 1, 'counts include ignored findings');
    // Grype names the express advisory GHSA-…, with the CVE as a related vulnerability; Trivy the other way round.
    const grype = evaluateGate(fixture('grype-high.json'), { image: IMAGE, maxSeverity: 'low', ignore: ['CVE-2023-44487', 'CVE-2024-29041'] });
    assert.equal(grype.passed, true);
    assert.deepEqual(grype.ignored.map((f) => f.id).sort(), ['CVE-2023-44487', 'GHSA-rv95-896h-c2vc']);
    const trivy = evaluateGate(report, {
      image: IMAGE,
      maxSeverity: 'low',
      ignore: ['CVE-2023-45853', 'CVE-2023-44487', 'CVE-2024-2511', 'ghsa-rv95-896h-c2vc'],
    });
    assert.equal(trivy.passed, true);
    // Ignoring one CVE does not ignore others.
    assert.equal(evaluateGate(report, { image: IMAGE, ignore: ['CVE-2023-44487'] }).passed, false);
  });

  it('refuses a report for another image', () => {
    const report = fixture('trivy-critical.json');
    for (const run of [
      () => evaluateGate(report, { image: { repository: REPO, digest: OTHER_DIGEST } }),
      () => checkReportMatchesImage(fixture('trivy-clean.json'), { repository: REPO, digest: OTHER_DIGEST }),
    ]) {
      assert.throws(run, (err: unknown) => {
        assert.ok(isSignetError(err, 'SCAN_REPORT_INVALID'));
        assert.match(err.message, new RegExp(`report is for .*${DIGEST.slice(7, 20)}.*, not ${REPO.replace(/\./g, '\\.')}@${OTHER_DIGEST}`));
        assert.ok(!err.message.includes('\n'));
        return true;
      });
    }
  });

  it('the same digest under another name is the same image', () => {
    assert.deepEqual(checkReportMatchesImage(fixture('trivy-critical.json'), { repository: 'mirror.example.com/app', digest: DIGEST }), { by: 'digest' });
  });

  it('Grype: the platform manifest digest or the index digest (repoDigests) matches', () => {
    const report = fixture('grype-high.json');
    assert.equal(checkReportMatchesImage(report, { repository: REPO, digest: DIGEST }).by, 'digest');
    assert.equal(checkReportMatchesImage(report, { repository: REPO, digest: INDEX_DIGEST }).by, 'digest');
  });

  it('alsoDigests: an index signed, a platform manifest scanned', () => {
    const report = synthetic([], { name: `${REPO}:1`, digests: [DIGEST], repoDigests: [] });
    assert.throws(() => checkReportMatchesImage(report, { repository: REPO, digest: INDEX_DIGEST }), /report is for/);
    assert.equal(checkReportMatchesImage(report, { repository: REPO, digest: INDEX_DIGEST, alsoDigests: [DIGEST] }).by, 'digest');
  });

  it('Trivy ImageID (the config digest) is never taken for the manifest digest', () => {
    const report = fixture('trivy-critical.json');
    assert.throws(() => checkReportMatchesImage(report, { repository: REPO, digest: report.target.imageId! }), /report is for/);
  });

  it('a report without digests: matched by name with a warning, refused for another name', () => {
    const byName = synthetic([], { name: `${REPO}:1.4.2`, digests: [], repoDigests: [] });
    const m = checkReportMatchesImage(byName, IMAGE);
    assert.equal(m.by, 'name');
    assert.match(m.warning!, /names no digest; matched by name/);
    assert.throws(
      () => checkReportMatchesImage(byName, { repository: '127.0.0.1:5000/other/app', digest: DIGEST }),
      (err: unknown) => isSignetError(err, 'SCAN_REPORT_INVALID') && /report is for 127\.0\.0\.1:5000\/signet\/app:1\.4\.2, not/.test(err.message),
    );
    // Docker Hub names are normalised on both sides.
    const hub = synthetic([], { name: 'nginx:1.27', digests: [], repoDigests: [] });
    assert.equal(checkReportMatchesImage(hub, { repository: 'docker.io/library/nginx', digest: DIGEST }).by, 'name');
    // A name with a digest in it is a digest claim.
    const pinned = synthetic([], { name: `${REPO}@${OTHER_DIGEST}`, digests: [], repoDigests: [] });
    assert.throws(() => checkReportMatchesImage(pinned, IMAGE), /report is for/);
    assert.equal(checkReportMatchesImage(pinned, { repository: REPO, digest: OTHER_DIGEST }).by, 'digest');
  });

  it('a report that names no image at all, or a directory, is accepted with a warning', () => {
    const none = checkReportMatchesImage(synthetic([], { digests: [], repoDigests: [] }), IMAGE);
    assert.equal(none.by, 'none');
    assert.match(none.warning!, /names no image/);
    const dir = checkReportMatchesImage(synthetic([], { name: './Rootfs Dir', digests: [], repoDigests: [] }), IMAGE);
    assert.equal(dir.by, 'none');
    assert.match(dir.warning!, /is not an image reference/);
  });

  it('parseIgnoreFile: one ID per line, comments and blanks skipped, junk refused with its line', () => {
    const text = '# accepted risks\nCVE-2023-45853\n\n  GHSA-rv95-896h-c2vc   # express, fixed upstream\r\nCVE-2023-45853\n#CVE-0000-0000\n';
    assert.deepEqual(parseIgnoreFile(text), ['CVE-2023-45853', 'GHSA-rv95-896h-c2vc']);
    assert.deepEqual(parseIgnoreFile(''), []);
    assert.throws(
      () => parseIgnoreFile('CVE-1\nCVE-2 exp:2025-01-01\n', 'ignore.txt'),
      (err: unknown) => isSignetError(err, 'INVALID_ARGUMENT') && /^ignore\.txt:2: expected one vulnerability ID per line/.test(err.message),
    );
    assert.throws(() => parseIgnoreFile('CVE-1,CVE-2'), /expected one vulnerability ID/);
  });

  it('parseMaxSeverity accepts the five levels only', () => {
    assert.equal(parseMaxSeverity('CRITICAL'), 'critical');
    assert.equal(parseMaxSeverity(' none '), 'none');
    assert.throws(
      () => parseMaxSeverity('negligible'),
      (err: unknown) => isSignetError(err, 'INVALID_ARGUMENT'),
    );
    assert.throws(() => parseMaxSeverity('severe'), /must be one of none, low, medium, high, critical/);
  });

  it('formatBlockingTable aligns ID, severity, package, installed and fixed versions, most severe first', () => {
    const report = fixture('trivy-critical.json');
    const table = formatBlockingTable(evaluateGate(report, { image: IMAGE, maxSeverity: 'low' }).blocking);
    const lines = table.split('\n');
    assert.deepEqual(lines, [
      'ID              SEVERITY  PACKAGE        INSTALLED         FIXED',
      'CVE-2023-45853  CRITICAL  zlib1g         1:1.2.13.dfsg-1   -',
      'CVE-2023-44487  HIGH      libnghttp2-14  1.52.0-1          1.52.0-1+deb12u1',
      'CVE-2024-2511   MEDIUM    libssl3        3.0.11-1~deb12u2  3.0.13-1~deb12u1',
      'CVE-2024-29041  MEDIUM    express        4.18.2            4.19.2, 5.0.0-beta.3',
    ]);
    // Every column starts at the same offset on every line.
    for (const col of ['SEVERITY', 'PACKAGE', 'INSTALLED', 'FIXED']) {
      const at = lines[0]!.indexOf(col);
      for (const line of lines.slice(1)) {
        assert.equal(line.slice(at - 2, at), '  ', `column ${col} is not aligned in ${JSON.stringify(line)}`);
        assert.notEqual(line[at], ' ');
      }
    }
    // Control characters from a hostile report cannot break the table.
    assert.equal(formatBlockingTable([finding('CVE-1\n\u001b[2J', 'critical')]).split('\n').length, 2);
  });
});
