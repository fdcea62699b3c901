/**
 * `signet policy check` reads every file a key names — file, certificates, intermediates, rekorKey,
 * trustedRoot, tsaCertificates, tsaTrustedRoot, a sigstore key's trusted root — with the loaders signetd
 * uses, and reports each one that is missing, not readable or does not parse, at the policy file and
 * line of its key (exit 1). A policy whose files all read is ok (exit 0).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIGNET } from '../helpers/daemon.js';
import { createTestPki } from '../helpers/pki.js';
import { createFakeSigstore } from '../helpers/sigstore-fake.js';

const signet = (args: string[]) => {
  const r = spawnSync(process.execPath, [SIGNET, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

interface Problem {
  file: string;
  line: number;
  message: string;
}

describe('signet policy check reads every key file', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'signet-policy-files-'));
  const fake = createFakeSigstore();
  const pki = createTestPki();
  const f = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const pub = f('key.pub', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string);
  const root = JSON.parse(readFileSync(fake.trustedRootPath, 'utf8')) as Record<string, unknown>;
  const tsaChain = f('tsa-chain.pem', readFileSync(join(fake.dir, 'tsa.pem'), 'utf8') + readFileSync(join(fake.dir, 'tsa-root.pem'), 'utf8'));

  /** One key per line, so that the n-th key is on line n + 2. */
  const policy = (name: string, keys: Array<[string, string]>) => {
    const d = join(dir, name);
    mkdirSync(d);
    const keyNames = keys.map(([k]) => k);
    writeFileSync(
      join(d, 'p.yaml'),
      `apiVersion: signet/v1\nkeys:\n${keys.map(([k, v]) => `  ${k}: ${v}\n`).join('')}scopes:\n  reg.example/prod: { action: verify, signatures: { keys: [${keyNames.join(', ')}] } }\n`,
    );
    return d;
  };

  it('every field read and parsed: a policy whose files are all good is ok', () => {
    const d = policy('good', [
      ['plain', `{ file: ${pub} }`],
      ['pki', `{ certificates: ${pki.rootPath}, intermediates: ${pki.intermediatePath}, subjectEmail: release@acme.example }`],
      ['notation-file', `{ certificates: ${pki.rootPath}, tsaCertificates: ${tsaChain} }`],
      ['notation-root', `{ certificates: ${pki.rootPath}, tsaTrustedRoot: ${fake.trustedRootPath} }`],
      ['logged', `{ file: ${pub}, tlog: required, rekorKey: ${pub} }`],
      ['logged-root', `{ file: ${pub}, tlog: required, trustedRoot: ${fake.trustedRootPath} }`],
      ['keyless', `{ sigstore: { trustedRoot: ${fake.trustedRootPath}, issuer: "${fake.issuer}", subject: "${fake.identity}" } }`],
    ]);
    const r = signet(['policy', 'check', d]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok: 1 file\(s\), 7 key\(s\)/);
  });

  it('each missing, unreadable or unparsable file is a problem at the line of its key (exit 1)', () => {
    const noCerts = f('no-certs.pem', readFileSync(pub, 'utf8'));
    const notPem = f('not-pem.pem', 'hello\n');
    const badKey = f('bad-key.pem', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
    const notJson = f('not-json.json', '{ "mediaType": ');
    const noTsa = f('no-tsa.json', JSON.stringify({ ...root, timestampAuthorities: [] }));
    const noCa = f('no-ca.json', JSON.stringify({ ...root, certificateAuthorities: [] }));
    const noLogStart = f(
      'no-log-start.json',
      JSON.stringify({ ...root, tlogs: (root['tlogs'] as Array<{ publicKey: object }>).map((t) => ({ ...t, publicKey: { ...t.publicKey, validFor: {} } })) }),
    );
    const cases: Array<[string, string, RegExp]> = [
      ['missing', `{ file: ${join(dir, 'absent.pub')} }`, /file \S+absent\.pub does not exist/],
      ['trust-store-without-certificates', `{ certificates: ${noCerts} }`, /certificates \S+no-certs\.pem: \S+ holds no PEM certificate/],
      ['intermediates-not-pem', `{ certificates: ${pki.rootPath}, intermediates: ${notPem} }`, /intermediates \S+not-pem\.pem holds no PEM block/],
      ['tsa-directory', `{ certificates: ${pki.rootPath}, tsaCertificates: ${dir} }`, /tsaCertificates \S+ is a directory/],
      ['tsa-root-without-tsa', `{ certificates: ${pki.rootPath}, tsaTrustedRoot: ${noTsa} }`, /tsaTrustedRoot \S+no-tsa\.json: .*names no timestamp authority/],
      ['rekor-key-broken', `{ file: ${pub}, tlog: required, rekorKey: ${badKey} }`, /rekorKey \S+bad-key\.pem: .*is not a PEM public key/],
      ['trusted-root-not-json', `{ file: ${pub}, tlog: required, trustedRoot: ${notJson} }`, /trustedRoot \S+not-json\.json: .*is not JSON/],
      ['trusted-root-log-without-start', `{ file: ${pub}, tlog: required, trustedRoot: ${noLogStart} }`, /trustedRoot \S+: .*no validity start/],
      [
        'keyless-without-ca',
        `{ sigstore: { trustedRoot: ${noCa}, issuer: "${fake.issuer}", subject: "${fake.identity}" } }`,
        /sigstore\.trustedRoot \S+no-ca\.json: .*lists no certificate authority/,
      ],
    ];
    const d = policy('bad', [['fine', `{ file: ${pub} }`], ...cases.map(([k, v]): [string, string] => [k, v])]);
    const r = signet(['policy', 'check', d, '--output', 'json']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout) as { ok: boolean; problems: Problem[] };
    assert.equal(doc.ok, false);
    assert.equal(doc.problems.length, cases.length, doc.problems.map((p) => p.message).join('\n'));
    cases.forEach(([key, , message], i) => {
      const p = doc.problems.find((q) => q.message.startsWith(`key "${key}": `));
      assert.ok(p, `no problem reported for key "${key}"`);
      assert.ok(p.file.endsWith('p.yaml'));
      assert.equal(p.line, i + 4, `key "${key}" is on line ${i + 4}`);
      assert.match(p.message, message);
    });
    const text = signet(['policy', 'check', d]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /p\.yaml:4: key "missing": file \S+absent\.pub does not exist/);
    assert.match(text.stdout, new RegExp(`${cases.length} problem\\(s\\): signetd would load this policy, and refuse every image that needs these keys`));
  });
});
