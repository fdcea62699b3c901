import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isSignetError } from '../../src/errors.js';
import { detectScanner, findDuplicateKey, parseScanReport, type ScanReport } from '../../src/scan/report.js';

const FIX = fileURLToPath(new URL('../../../test/fixtures/scan/', import.meta.url));
const DIGEST = 'sha256:16649ba604d7f9849f179f899057ad45be3693bb1e21df3e83ea23806743ebac';
const INDEX_DIGEST = 'sha256:13ab63a11cbde5c3f9f8db83041025a6c82f473412ee1fbc8a81f20172dabbc7';

function fixtureText(name: string): string {
  return readFileSync(FIX + name, 'utf8');
}
function fixture(name: string): ScanReport {
  return parseScanReport(fixtureText(name), name);
}
function fixtureJson(name: string): Record<string, any> {
  return JSON.parse(fixtureText(name)) as Record<string, any>;
}

/** Assert SCAN_REPORT_INVALID with a one-line message naming the file and matching `re`. */
function assertInvalid(text: string, re: RegExp, source = 'report.json'): void {
  assert.throws(
    () => parseScanReport(text, source),
    (err: unknown) => {
      assert.ok(isSignetError(err, 'SCAN_REPORT_INVALID'), `expected SCAN_REPORT_INVALID, got ${String(err)}`);
      assert.ok(!err.message.includes('\n'), `message is more than one line: ${err.message}`);
      assert.ok(err.message.includes(source), `message does not name the file: ${err.message}`);
      assert.match(err.message, re);
      return true;
    },
  );
}

describe('scan reports', () => {
  describe('Trivy JSON', () => {
    it('is detected and normalised', () => {
      const r = fixture('trivy-critical.json');
      assert.equal(r.scanner.name, 'trivy');
      assert.equal(r.scanner.version, '0.58.1');
      assert.equal(r.scanFinished, '2025-01-14T09:21:37.482915304Z');
      assert.equal(r.dbTimestamp, undefined, 'Trivy does not write its DB time into the report');
      assert.equal(r.target.name, '127.0.0.1:5000/signet/app:1.4.2');
      assert.deepEqual(r.target.digests, [DIGEST]);
      assert.deepEqual(r.target.repoDigests, [{ repository: '127.0.0.1:5000/signet/app', digest: DIGEST }]);
      assert.equal(r.target.imageId, 'sha256:5f51164f2bebe0b4f639cf3828cbe7f71d3b1ed4f90d7e71649f980de41baa0d');
      assert.ok(!r.target.digests.includes(r.target.imageId!), 'the config digest is not a manifest digest');
      assert.equal(r.findings.length, 5);
      const zlib = r.findings.find((f) => f.id === 'CVE-2023-45853')!;
      assert.deepEqual(zlib, {
        id: 'CVE-2023-45853',
        aliases: [],
        severity: 'critical',
        package: 'zlib1g',
        installedVersion: '1:1.2.13.dfsg-1',
        fixedVersions: [],
      });
      const express = r.findings.find((f) => f.id === 'CVE-2024-29041')!;
      assert.deepEqual(express.fixedVersions, ['4.19.2', '5.0.0-beta.3'], 'comma-separated FixedVersion is split');
      assert.deepEqual(express.aliases, ['GHSA-rv95-896h-c2vc']);
      assert.equal(express.severity, 'medium');
    });

    it('reads an older report without Trivy.Version and keeps per-package findings of one CVE', () => {
      const r = fixture('trivy-clean.json');
      assert.equal(r.scanner.version, 'unknown');
      assert.deepEqual(
        r.findings.map((f) => `${f.id}/${f.package}/${f.severity}`),
        ['CVE-2024-9143/libcrypto3/low', 'CVE-2024-9143/libssl3/low', 'CVE-2024-13176/libcrypto3/medium'],
      );
    });

    it('reads a report with no findings (Vulnerabilities omitted) and one without Results', () => {
      assert.deepEqual(fixture('trivy-no-findings.json').findings, []);
      const doc = fixtureJson('trivy-no-findings.json');
      delete doc['Results'];
      assert.deepEqual(parseScanReport(JSON.stringify(doc), 'x.json').findings, []);
    });

    it('accepts the old Unix-seconds CreatedAt and a byte-order mark', () => {
      const doc = fixtureJson('trivy-clean.json');
      doc['CreatedAt'] = 1736846702;
      const r = parseScanReport('\ufeff' + JSON.stringify(doc), 'bom.json');
      assert.equal(r.scanFinished, '2025-01-14T09:25:02.000Z');
    });

    it('drops exact duplicate findings', () => {
      const doc = fixtureJson('trivy-critical.json');
      doc['Results'][0]['Vulnerabilities'].push(doc['Results'][0]['Vulnerabilities'][0]);
      assert.equal(parseScanReport(JSON.stringify(doc), 'dup.json').findings.length, 5);
    });
  });

  describe('Grype JSON', () => {
    it('is detected and normalised (DB schema v6 descriptor)', () => {
      const r = fixture('grype-high.json');
      assert.equal(r.scanner.name, 'grype');
      assert.equal(r.scanner.version, '0.86.1');
      assert.equal(r.dbTimestamp, '2025-01-13T04:51:03Z');
      assert.match(r.dbUri!, /^https:\/\/grype\.anchore\.io\/databases\/v6\//);
      assert.equal(r.scanFinished, '2025-01-14T09:27:18.541287962Z');
      assert.equal(r.target.name, '127.0.0.1:5000/signet/app:1.4.2');
      assert.deepEqual(r.target.digests, [DIGEST, INDEX_DIGEST], 'manifestDigest and repoDigests');
      assert.deepEqual(
        r.findings.map((f) => [f.id, f.severity]),
        [
          ['CVE-2023-44487', 'high'],
          ['GHSA-rv95-896h-c2vc', 'medium'],
          ['CVE-2011-3374', 'negligible'],
        ],
      );
      const ghsa = r.findings[1]!;
      assert.deepEqual(ghsa.aliases, ['CVE-2024-29041']);
      assert.equal(ghsa.package, 'express');
      assert.equal(ghsa.installedVersion, '4.18.2');
      assert.deepEqual(ghsa.fixedVersions, ['4.19.2']);
      assert.deepEqual(r.findings[0]!.aliases, [], 'a related entry with the same ID is not an alias');
    });

    it('reads the DB schema v5 descriptor', () => {
      const r = fixture('grype-critical.json');
      assert.equal(r.scanner.version, '0.74.7');
      assert.equal(r.dbTimestamp, '2024-03-02T01:30:24Z');
      assert.equal(r.dbUri, undefined);
      assert.deepEqual(
        r.findings.map((f) => [f.id, f.severity]),
        [['CVE-2023-45853', 'critical']],
      );
    });

    it('reads a directory scan (source.target is a string) with no matches', () => {
      const doc = fixtureJson('grype-high.json');
      doc['matches'] = [];
      doc['source'] = { type: 'directory', target: './rootfs' };
      const r = parseScanReport(JSON.stringify(doc), 'dir.json');
      assert.deepEqual(r.target, { name: './rootfs', digests: [], repoDigests: [] });
      assert.deepEqual(r.findings, []);
    });
  });

  it('detectScanner tells the formats apart and recognises nothing else', () => {
    assert.equal(detectScanner(fixtureJson('trivy-critical.json')), 'trivy');
    assert.equal(detectScanner(fixtureJson('grype-high.json')), 'grype');
    assert.equal(detectScanner({ matches: [], descriptor: { name: 'syft' } }), undefined);
    assert.equal(detectScanner([]), undefined);
  });

  it('findDuplicateKey finds repeated keys per object, escapes decoded, and nothing else', () => {
    assert.equal(findDuplicateKey('{"a":1,"\\u0061":2}'), 'a');
    assert.equal(findDuplicateKey('{"a":"x\\"","b":{"c":1,"c" :2}}'), 'c');
    assert.equal(findDuplicateKey('{"a":{"a":1},"b":[{"a":1},{"a":2}]}'), undefined);
    assert.equal(findDuplicateKey('["a","a"]'), undefined);
    assert.equal(findDuplicateKey('{"a\\\\":1,"a":2}'), undefined);
    assert.equal(findDuplicateKey('{"k":"{\\"k\\":1}","j":"k"}'), undefined);
  });

  // Speed is the benchmark's business; this checks that a large report is read completely.
  it('parses a large report completely', function () {
    this.timeout(20000);
    const doc = fixtureJson('trivy-critical.json');
    const vulns = doc['Results'][0]['Vulnerabilities'] as Array<Record<string, unknown>>;
    doc['Results'][0]['Vulnerabilities'] = Array.from({ length: 2000 }, (_, i) =>
      vulns.map((v) => ({ ...v, VulnerabilityID: `${String(v['VulnerabilityID'])}-${i}` })),
    ).flat();
    const text = JSON.stringify(doc, null, 2);
    assert.equal(parseScanReport(text, 'large.json').findings.length, 8001); // and the express finding in Results[1]
  });

  describe('malformed input is SCAN_REPORT_INVALID naming the file', () => {
    it('empty file', () => assertInvalid('', /is empty/));
    it('whitespace only', () => assertInvalid(' \n\t', /is empty/));
    it('not JSON', () => assertInvalid('{"SchemaVersion": 2,', /not valid JSON/));
    it('truncated file', () => assertInvalid(fixtureText('trivy-critical.json').slice(0, 500), /not valid JSON/));
    it('a JSON array', () => assertInvalid('[]', /not an object/));
    it('a JSON string', () => assertInvalid('"trivy"', /not an object/));
    it('an unknown format (SARIF)', () => assertInvalid(JSON.stringify({ version: '2.1.0', runs: [] }), /unknown report format/));
    it('an unknown format (CycloneDX)', () => assertInvalid(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5' }), /unknown report format/));
    it('duplicate keys', () => assertInvalid('{"SchemaVersion":2,"ArtifactName":"a","ArtifactName":"b"}', /duplicate key "ArtifactName"/));
    it('duplicate keys deep inside a finding', () => {
      const text = fixtureText('grype-high.json').replace('"severity": "High",', '"severity": "High", "severity": "Low",');
      assertInvalid(text, /duplicate key "severity"/);
    });
    it('larger than the cap', () => {
      assert.throws(
        () => parseScanReport(fixtureText('trivy-clean.json'), 'big.json', 1000),
        (err: unknown) => isSignetError(err, 'SCAN_REPORT_INVALID') && /big\.json.*larger than 1000 bytes/.test(err.message),
      );
    });

    const trivyCases: Array<[string, (d: Record<string, any>) => void, RegExp]> = [
      [
        'SchemaVersion 1',
        (d) => {
          d['SchemaVersion'] = 1;
        },
        /SchemaVersion 1 is not supported/,
      ],
      [
        'Results not an array',
        (d) => {
          d['Results'] = {};
        },
        /Results is not an array/,
      ],
      [
        'a result not an object',
        (d) => {
          d['Results'] = [7];
        },
        /Results\[0\] is not an object/,
      ],
      [
        'Vulnerabilities not an array',
        (d) => {
          d['Results'][0]['Vulnerabilities'] = 'x';
        },
        /Results\[0\]\.Vulnerabilities is not an array/,
      ],
      [
        'VulnerabilityID missing',
        (d) => {
          delete d['Results'][0]['Vulnerabilities'][1]['VulnerabilityID'];
        },
        /Results\[0\]\.Vulnerabilities\[1\]\.VulnerabilityID is not a string/,
      ],
      [
        'VulnerabilityID empty',
        (d) => {
          d['Results'][0]['Vulnerabilities'][0]['VulnerabilityID'] = ' ';
        },
        /VulnerabilityID is empty/,
      ],
      [
        'Severity a number',
        (d) => {
          d['Results'][0]['Vulnerabilities'][0]['Severity'] = 4;
        },
        /Severity is not a string/,
      ],
      [
        'Severity unknown word',
        (d) => {
          d['Results'][0]['Vulnerabilities'][0]['Severity'] = 'SEVERE';
        },
        /Severity is "SEVERE", not one of/,
      ],
      [
        'PkgName a number',
        (d) => {
          d['Results'][0]['Vulnerabilities'][0]['PkgName'] = 1;
        },
        /PkgName is not a string/,
      ],
      [
        'FixedVersion an array',
        (d) => {
          d['Results'][0]['Vulnerabilities'][0]['FixedVersion'] = ['1'];
        },
        /FixedVersion is not a string/,
      ],
      [
        'RepoDigests not repo@digest',
        (d) => {
          d['Metadata']['RepoDigests'] = ['app:1.0'];
        },
        /RepoDigests\[0\] is not of the form repository@sha256/,
      ],
      [
        'RepoDigests a string',
        (d) => {
          d['Metadata']['RepoDigests'] = 'x';
        },
        /RepoDigests is not an array/,
      ],
      [
        'Metadata an array',
        (d) => {
          d['Metadata'] = [];
        },
        /Metadata is not an object/,
      ],
      [
        'CreatedAt not a time',
        (d) => {
          d['CreatedAt'] = 'yesterday';
        },
        /CreatedAt is not an RFC 3339 time/,
      ],
      [
        'ArtifactName a number',
        (d) => {
          d['ArtifactName'] = 5;
        },
        /ArtifactName is not a string/,
      ],
    ];
    for (const [what, mutate, re] of trivyCases) {
      it(`Trivy: ${what}`, () => {
        const doc = fixtureJson('trivy-critical.json');
        mutate(doc);
        assertInvalid(JSON.stringify(doc), re, 'trivy.json');
      });
    }

    const grypeCases: Array<[string, (d: Record<string, any>) => void, RegExp]> = [
      [
        'matches not an array',
        (d) => {
          d['matches'] = {};
        },
        /matches is not an array/,
      ],
      [
        'vulnerability missing',
        (d) => {
          delete d['matches'][0]['vulnerability'];
        },
        /matches\[0\]\.vulnerability is not an object/,
      ],
      [
        'artifact missing',
        (d) => {
          delete d['matches'][1]['artifact'];
        },
        /matches\[1\]\.artifact is not an object/,
      ],
      [
        'id a number',
        (d) => {
          d['matches'][0]['vulnerability']['id'] = 44487;
        },
        /matches\[0\]\.vulnerability\.id is not a string/,
      ],
      [
        'severity unknown word',
        (d) => {
          d['matches'][0]['vulnerability']['severity'] = 'Important';
        },
        /severity is "Important", not one of/,
      ],
      [
        'fix.versions a string',
        (d) => {
          d['matches'][0]['vulnerability']['fix']['versions'] = '1.0';
        },
        /fix\.versions is not an array/,
      ],
      [
        'fix.versions with a number',
        (d) => {
          d['matches'][0]['vulnerability']['fix']['versions'] = [1];
        },
        /fix\.versions\[0\] is not a string/,
      ],
      [
        'manifestDigest not a digest',
        (d) => {
          d['source']['target']['manifestDigest'] = 'sha256:xyz';
        },
        /manifestDigest is not a digest/,
      ],
      [
        'descriptor.timestamp not a time',
        (d) => {
          d['descriptor']['timestamp'] = '14/01/2025';
        },
        /descriptor\.timestamp is not an RFC 3339 time/,
      ],
      [
        'db.status.built not a time',
        (d) => {
          d['descriptor']['db']['status']['built'] = 'soon';
        },
        /descriptor\.db\.status\.built is not an RFC 3339 time/,
      ],
    ];
    for (const [what, mutate, re] of grypeCases) {
      it(`Grype: ${what}`, () => {
        const doc = fixtureJson('grype-high.json');
        mutate(doc);
        assertInvalid(JSON.stringify(doc), re, 'grype.json');
      });
    }
  });
});
