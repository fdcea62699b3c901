import assert from 'node:assert/strict';
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  COSIGN_VULN_PREDICATE_TYPE,
  DSSE_ENVELOPE_MEDIA_TYPE,
  INTOTO_PAYLOAD_TYPE,
  buildVulnPredicate,
  cosignAttestationTag,
  createVulnAttestation,
  evaluateVulnAttestation,
  type VulnPredicate,
} from '../../src/attest/vuln.js';
import { parseScanReport, type ScanReport } from '../../src/scan/report.js';
import { makeTestKey } from '../helpers/keys.js';

const FIX = fileURLToPath(new URL('../../../test/fixtures/scan/', import.meta.url));
const REPO = '127.0.0.1:5000/signet/app';
const HEX = '16649ba604d7f9849f179f899057ad45be3693bb1e21df3e83ea23806743ebac';
const DIGEST = `sha256:${HEX}`;
const OTHER = 'sha256:59a74fbb9ab67bcee2e934384920300a692dfea33ec5bd1d0deaac3c0a97ea4b';
const HOUR = 3600_000;
const DAY = 24 * HOUR;

function fixture(name: string): ScanReport {
  return parseScanReport(readFileSync(FIX + name, 'utf8'), name);
}

describe('scan attestations (cosign vuln predicate)', () => {
  it('cosign .att tag and media types', () => {
    assert.equal(cosignAttestationTag(DIGEST), `sha256-${HEX}.att`);
    assert.throws(() => cosignAttestationTag('latest'), /not a digest/);
    assert.equal(COSIGN_VULN_PREDICATE_TYPE, 'https://cosign.sigstore.dev/attestation/vuln/v1');
    assert.equal(DSSE_ENVELOPE_MEDIA_TYPE, 'application/vnd.dsse.envelope.v1+json');
    assert.equal(INTOTO_PAYLOAD_TYPE, 'application/vnd.in-toto+json');
  });

  it('builds the predicate with the spec’s field names from a Trivy report', () => {
    const p = buildVulnPredicate(fixture('trivy-critical.json'), { invocation: { uri: 'https://ci.example/job/7', eventId: '7', builderId: 'ci' } });
    assert.deepEqual(Object.keys(p), ['invocation', 'scanner', 'metadata']);
    assert.deepEqual(p.invocation, { parameters: null, uri: 'https://ci.example/job/7', event_id: '7', 'builder.id': 'ci' });
    assert.deepEqual(Object.keys(p.scanner), ['uri', 'version', 'db', 'result']);
    assert.equal(p.scanner.uri, 'pkg:github/aquasecurity/trivy@0.58.1');
    assert.equal(p.scanner.version, '0.58.1');
    assert.deepEqual(p.scanner.db, { uri: '', version: '' }, 'Trivy reports carry no DB time');
    assert.deepEqual(p.metadata, { scanStartedOn: '2025-01-14T09:21:37.482915304Z', scanFinishedOn: '2025-01-14T09:21:37.482915304Z' });
    assert.deepEqual(p.scanner.result['summary'], { total: 5, critical: 1, high: 1, medium: 2, low: 1, negligible: 0, unknown: 0 });
    assert.deepEqual(p.scanner.result['vulnerabilities'], [
      { id: 'CVE-2023-45853', severity: 'critical' },
      { id: 'CVE-2023-44487', severity: 'high' },
      { id: 'CVE-2024-2511', severity: 'medium' },
      { id: 'CVE-2024-29041', severity: 'medium', aliases: ['GHSA-rv95-896h-c2vc'] },
      { id: 'CVE-2023-4806', severity: 'low' },
    ]);
    assert.deepEqual(p.scanner.result['target'], { name: `${REPO}:1.4.2`, digests: [DIGEST] });
  });

  it('builds from a Grype report: DB build time and source, one entry per ID', () => {
    const p = buildVulnPredicate(fixture('grype-high.json'));
    assert.equal(p.scanner.uri, 'pkg:github/anchore/grype@0.86.1');
    assert.equal(p.scanner.db.version, '2025-01-13T04:51:03Z');
    assert.match(p.scanner.db.uri, /^https:\/\/grype\.anchore\.io\//);
    assert.equal(p.scanner.result['dbBuilt'], '2025-01-13T04:51:03Z');
    assert.equal(p.metadata.scanFinishedOn, '2025-01-14T09:27:18.541287962Z');
    const dup = fixture('trivy-clean.json'); // CVE-2024-9143 in two packages
    const entries = buildVulnPredicate(dup).scanner.result['vulnerabilities'] as unknown[];
    assert.equal(entries.length, 2);
    assert.equal((buildVulnPredicate(dup).scanner.result['summary'] as Record<string, number>)['total'], 3);
  });

  it('times default to now when the report has none, and can be given', () => {
    const report = { ...fixture('trivy-clean.json') };
    delete report.scanFinished;
    const now = new Date('2025-02-01T00:00:00Z');
    assert.deepEqual(buildVulnPredicate(report, { now }).metadata, { scanStartedOn: '2025-02-01T00:00:00.000Z', scanFinishedOn: '2025-02-01T00:00:00.000Z' });
    assert.deepEqual(buildVulnPredicate(report, { scanStartedOn: '2025-01-01T00:00:00Z', scanFinishedOn: '2025-01-01T00:05:00Z' }).metadata, {
      scanStartedOn: '2025-01-01T00:00:00Z',
      scanFinishedOn: '2025-01-01T00:05:00Z',
    });
    assert.throws(() => buildVulnPredicate(report, { scanFinishedOn: 'today' }), /not an RFC 3339 time/);
  });

  describe('evaluateVulnAttestation', () => {
    const predicate = buildVulnPredicate(fixture('trivy-critical.json'));
    const finished = Date.parse(predicate.metadata.scanFinishedOn);
    const now = new Date(finished + 2 * HOUR);

    it('a fresh scan within the severity limit is ok', () => {
      const v = evaluateVulnAttestation(predicate, { now, maxAge: DAY, maxSeverity: 'critical' });
      assert.equal(v.ok, true, v.reason);
      assert.match(v.reason, /scan by pkg:github\/aquasecurity\/trivy@0\.58\.1 finished 2h ago; no finding above critical/);
    });

    it('too old', () => {
      const v = evaluateVulnAttestation(predicate, { now: new Date(finished + 8 * DAY), maxAge: 7 * DAY, maxSeverity: 'critical' });
      assert.equal(v.ok, false);
      assert.match(v.reason, /scan is too old: finished 2025-01-14T09:21:37\.482915304Z, 8d ago, more than maxAge 7d/);
      assert.equal(evaluateVulnAttestation(predicate, { now: new Date(finished + 7 * DAY), maxAge: 7 * DAY }).ok, true, 'exactly maxAge is still ok');
    });

    it('from the future (beyond clock skew)', () => {
      assert.equal(evaluateVulnAttestation(predicate, { now: new Date(finished - 60_000) }).ok, true);
      const v = evaluateVulnAttestation(predicate, { now: new Date(finished - HOUR) });
      assert.equal(v.ok, false);
      assert.match(v.reason, /in the future/);
    });

    it('too severe', () => {
      const v = evaluateVulnAttestation(predicate, { now, maxSeverity: 'high' });
      assert.equal(v.ok, false);
      assert.match(v.reason, /has 1 finding above high: CVE-2023-45853 \(critical\)/);
      assert.deepEqual(v.blocking, [{ id: 'CVE-2023-45853', severity: 'critical' }]);
      const medium = evaluateVulnAttestation(predicate, { now, maxSeverity: 'medium' });
      assert.deepEqual(
        medium.blocking.map((b) => b.id),
        ['CVE-2023-45853', 'CVE-2023-44487'],
      );
    });

    it('an ignored ID passes, also when named by an alias', () => {
      const v = evaluateVulnAttestation(predicate, { now, maxSeverity: 'high', ignore: ['CVE-2023-45853'] });
      assert.equal(v.ok, true, v.reason);
      assert.match(v.reason, /no finding above high \(1 ignored\)/);
      assert.equal(
        evaluateVulnAttestation(predicate, { now, maxSeverity: 'low', ignore: ['CVE-2023-45853', 'CVE-2023-44487', 'CVE-2024-2511', 'GHSA-RV95-896H-C2VC'] })
          .ok,
        true,
      );
      assert.equal(evaluateVulnAttestation(predicate, { now, maxSeverity: 'high', ignore: ['CVE-2023-44487'] }).ok, false);
    });

    it('none refuses any finding; severities unchecked without maxSeverity', () => {
      const clean = buildVulnPredicate(fixture('trivy-no-findings.json'));
      assert.equal(evaluateVulnAttestation(clean, { now: new Date(Date.parse(clean.metadata.scanFinishedOn)), maxSeverity: 'none' }).ok, true);
      assert.match(
        evaluateVulnAttestation(predicate, { now, maxSeverity: 'none' }).reason,
        /has 5 findings \(maxSeverity none allows no findings\): CVE-2023-45853 \(critical\), /,
      );
      assert.match(evaluateVulnAttestation(predicate, { now }).reason, /severities not checked/);
    });

    it('a malformed predicate is not ok, with the reason', () => {
      const cases: Array<[unknown, RegExp]> = [
        [null, /not an object/],
        [{ ...predicate, extra: 1 }, /unknown field "extra"/],
        [{ ...predicate, metadata: { scanStartedOn: 'x', scanFinishedOn: 'y' } }, /metadata\.scanStartedOn is not an RFC 3339 time/],
        [{ ...predicate, metadata: { scanStartedOn: predicate.metadata.scanStartedOn } }, /missing "scanFinishedOn"/],
        [{ ...predicate, scanner: { ...predicate.scanner, result: { vulnerabilities: [{ id: 'CVE-1', severity: 'SEVERE' }] } } }, /severity is not one of/],
        [{ ...predicate, scanner: { ...predicate.scanner, result: { vulnerabilities: [{ severity: 'low' }] } } }, /id is not a non-empty string/],
        [{ ...predicate, scanner: { ...predicate.scanner, result: { summary: {} } } }, /neither a signet summary nor a Trivy or Grype report/],
        [{ ...predicate, scanner: { ...predicate.scanner, uri: 7 } }, /must be strings/],
      ];
      for (const [p, re] of cases) {
        const v = evaluateVulnAttestation(p, { now, maxSeverity: 'critical' });
        assert.equal(v.ok, false);
        assert.match(v.reason, re);
      }
    });

    it('evaluates a predicate whose result is a whole Trivy report (trivy --format cosign-vuln)', () => {
      const trivyDoc = JSON.parse(readFileSync(FIX + 'trivy-critical.json', 'utf8')) as Record<string, unknown>;
      const trivyStyle: VulnPredicate = {
        invocation: { parameters: null, uri: '', event_id: '', 'builder.id': '' },
        scanner: { uri: 'pkg:github/aquasecurity/trivy@0.58.1', version: '0.58.1', db: { uri: '', version: '' }, result: trivyDoc },
        metadata: { scanStartedOn: '2025-01-14T09:21:30Z', scanFinishedOn: '2025-01-14T09:21:37Z' },
      };
      assert.deepEqual(evaluateVulnAttestation(trivyStyle, { now, maxSeverity: 'high' }).blocking, [{ id: 'CVE-2023-45853', severity: 'critical' }]);
      assert.equal(evaluateVulnAttestation(trivyStyle, { now, maxSeverity: 'high', ignore: ['CVE-2023-45853'] }).ok, true);
    });
  });

  describe('signed attestation end to end', () => {
    const key = makeTestKey('ecdsa-p256');
    const report = fixture('grype-high.json');
    const now = new Date(Date.parse(report.scanFinished!) + HOUR);

    it('creates what cosign stores, and the signature and subject check out independently', async () => {
      const att = await createVulnAttestation(report, { repository: REPO, digest: DIGEST }, key.signer, { now });
      assert.equal(att.tag, `sha256-${HEX}.att`);
      assert.equal(att.layerMediaType, 'application/vnd.dsse.envelope.v1+json');
      assert.deepEqual(att.layerAnnotations, { 'dev.cosignproject.cosign/signature': '', predicateType: COSIGN_VULN_PREDICATE_TYPE });
      // Independent check, from the raw layer bytes, with node:crypto and JSON.parse only.
      const env = JSON.parse(att.envelopeBytes.toString('utf8')) as { payloadType: string; payload: string; signatures: Array<{ keyid: string; sig: string }> };
      assert.equal(env.payloadType, 'application/vnd.in-toto+json');
      const body = Buffer.from(env.payload, 'base64');
      const pae = Buffer.concat([Buffer.from(`DSSEv1 ${env.payloadType.length} ${env.payloadType} ${body.length} `), body]);
      assert.equal(cryptoVerify('sha256', pae, createPublicKey(key.publicPem), Buffer.from(env.signatures[0]!.sig, 'base64')), true);
      const statement = JSON.parse(body.toString('utf8')) as {
        _type: string;
        subject: Array<{ name: string; digest: { sha256: string } }>;
        predicateType: string;
        predicate: VulnPredicate;
      };
      assert.equal(statement._type, 'https://in-toto.io/Statement/v1');
      assert.deepEqual(statement.subject, [{ name: REPO, digest: { sha256: HEX } }]);
      assert.equal(statement.predicateType, 'https://cosign.sigstore.dev/attestation/vuln/v1');
      assert.equal(statement.predicate.scanner.version, '0.86.1');
      assert.equal(statement.predicate.metadata.scanFinishedOn, report.scanFinished);
    });
  });
});
