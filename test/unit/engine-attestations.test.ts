/**
 * Attestation requirements (cosign `.att`: DSSE envelopes of in-toto statements): at least `threshold`
 * distinct keys attested the predicate type about this digest; for the cosign vulnerability predicate,
 * the scan is recent enough (maxAge) and clean enough (maxSeverity, ignore). Each check names itself in
 * the refusal. (These replace the tests of attest/vuln.ts checkVulnAttestation, a second checker that
 * nothing in production used and that refused with another code.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COSIGN_VULN_PREDICATE_TYPE, createVulnAttestation } from '../../src/attest/vuln.js';
import { SignetError } from '../../src/errors.js';
import { parseScanReport } from '../../src/scan/report.js';
import { attestation, cosignSignature, DIGEST, harness, KEYS, keysDoc, loadPolicy, MemorySource, OTHER_DIGEST, REPO } from '../helpers/engine.js';
import type { TestKey } from '../helpers/keys.js';

const SUBJECT = `${REPO}@${DIGEST}`;
const WHERE = `(scope ${REPO})`;
const VULN = COSIGN_VULN_PREDICATE_TYPE;
const SLSA = 'https://slsa.dev/provenance/v1';
const HOUR = 3600_000;
const DAY = 24 * HOUR;
const FIX = fileURLToPath(new URL('../../../test/fixtures/scan/', import.meta.url));
const report = parseScanReport(readFileSync(FIX + 'grype-high.json', 'utf8'), 'grype-high.json');
const NOW = new Date(Date.parse(report.scanFinished!) + HOUR);

async function scan(key: TestKey, digest = DIGEST) {
  const att = await createVulnAttestation(report, { repository: REPO, digest }, key.signer);
  return { source: `${REPO}:sha256-….att#scan`, untrustedEnvelope: att.envelopeBytes };
}

function policy(requirement: Record<string, unknown>, extra: { keys?: Record<string, Record<string, unknown>>; mode?: string } = {}) {
  return loadPolicy({
    keys: keysDoc(['release', 'security', 'qa', 'stranger'], extra.keys),
    scopes: {
      [REPO]: {
        action: 'verify',
        ...(extra.mode ? { mode: extra.mode } : {}),
        signatures: { keys: ['release'] },
        attestations: [{ predicateType: VULN, keys: ['security'], ...requirement }],
      },
    },
  });
}

async function decide(p: ReturnType<typeof policy>, attestations: Parameters<typeof harness>[0]['attestations'], now = NOW) {
  return (
    await harness({ policy: p, signatures: [await cosignSignature(KEYS.release)], ...(attestations !== undefined ? { attestations } : {}), now })
  ).decide();
}

describe('engine: attestation requirements', () => {
  it('accepts a fresh, clean enough scan attested by the key, naming both requirements', async () => {
    const d = await decide(policy({ maxAge: '1d', maxSeverity: 'high' }), [await scan(KEYS.security)]);
    assert.equal(d.decision, 'accept', d.reason);
    assert.equal(d.reason, `accepted ${SUBJECT}: signed by release and ${VULN} attested by security ${WHERE}`);
    assert.deepEqual(
      d.signatures.map((s) => [s.format, s.key, s.valid]),
      [
        ['cosign', 'release', true],
        ['in-toto', 'security', true],
      ],
    );
    assert.match(d.signatures[1]!.reason, /attestation by key "security": scan by pkg:github\/anchore\/grype.* finished 60m ago; no finding above high/);
  });

  it('no attestation: ATTESTATION_NOT_FOUND, saying what is needed', async () => {
    const d = await decide(policy({}), []);
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'ATTESTATION_NOT_FOUND');
    assert.equal(d.reason, `rejected ${SUBJECT}: 1 of 2 requirements not met: no attestations found; needs 1 ${VULN} attestation by security ${WHERE}`);
  });

  it('a scan older than maxAge: ATTESTATION_REJECTED, "too old"', async () => {
    const d = await decide(policy({ maxAge: '7d' }), [await scan(KEYS.security)], new Date(NOW.getTime() + 30 * DAY));
    assert.equal(d.code, 'ATTESTATION_REJECTED');
    assert.match(d.reason, /attestation by key "security": scan is too old: finished .*, 30d ago, more than maxAge 7d/);
  });

  it('a finding above maxSeverity: ATTESTATION_REJECTED naming it; ignored IDs do not count', async () => {
    const d = await decide(policy({ maxSeverity: 'medium' }), [await scan(KEYS.security)]);
    assert.equal(d.code, 'ATTESTATION_REJECTED');
    assert.match(d.reason, /finding.* above medium: .*CVE-2023-44487 \(high\)/);
    const blocking = report.findings.filter((f) => f.severity === 'high' || f.severity === 'critical').map((f) => f.id);
    const ok = await decide(policy({ maxSeverity: 'medium', ignore: blocking }), [await scan(KEYS.security)]);
    assert.equal(ok.decision, 'accept', ok.reason);
  });

  it('an attestation by another key: SIGNATURE_INVALID', async () => {
    const d = await decide(policy({}), [await scan(KEYS.stranger)]);
    assert.equal(d.code, 'SIGNATURE_INVALID');
    assert.match(d.reason, /attestation does not verify with key "security"/);
  });

  it('an attestation about another digest: DIGEST_MISMATCH', async () => {
    const d = await decide(policy({}), [await scan(KEYS.security, OTHER_DIGEST)]);
    assert.equal(d.code, 'DIGEST_MISMATCH');
    assert.match(d.reason, new RegExp(`attestation by key "security" is not about ${DIGEST}`));
  });

  it('another predicate type, even signed by the key: SIGNATURE_MALFORMED naming both types', async () => {
    const d = await decide(policy({}), [await attestation(KEYS.security, SLSA, {})]);
    assert.equal(d.code, 'SIGNATURE_MALFORMED');
    assert.match(d.reason, new RegExp(`attestation by key "security" is a ${SLSA.replace(/[./]/g, '\\$&')}, not ${VULN.replace(/[./]/g, '\\$&')}`));
  });

  it('a payload type other than in-toto: SIGNATURE_MALFORMED', async () => {
    const d = await decide(policy({}), [await attestation(KEYS.security, VULN, {}, { payloadType: 'application/json' })]);
    assert.equal(d.code, 'SIGNATURE_MALFORMED');
    assert.match(d.reason, /attestation payloadType is "application\/json"/);
  });

  it('an envelope that does not parse: SIGNATURE_MALFORMED', async () => {
    const d = await decide(policy({}), [{ source: 'garbage', untrustedEnvelope: Buffer.from('{"payloadType":') }]);
    assert.equal(d.code, 'SIGNATURE_MALFORMED');
  });

  it('a payload changed after signing: SIGNATURE_INVALID', async () => {
    const att = await scan(KEYS.security);
    const tampered = JSON.parse(att.untrustedEnvelope.toString()) as { payload: string };
    tampered.payload = Buffer.from(Buffer.from(tampered.payload, 'base64').toString().replace('"high"', '"low"')).toString('base64');
    const d = await decide(policy({ maxSeverity: 'medium' }), [{ source: att.source, untrustedEnvelope: Buffer.from(JSON.stringify(tampered)) }]);
    assert.equal(d.code, 'SIGNATURE_INVALID');
  });

  it('an attestation by a revoked key: KEY_REVOKED', async () => {
    const d = await decide(policy({}, { keys: { security: { revoked: true } } }), [await scan(KEYS.security)]);
    assert.equal(d.code, 'KEY_REVOKED');
    assert.match(d.reason, /attestation by key "security" does not count: key "security" is revoked/);
  });

  it('a threshold counts distinct keys', async () => {
    const two = policy({ keys: ['security', 'qa'], threshold: 2 });
    const one = await decide(two, [await scan(KEYS.security), await scan(KEYS.security)]);
    assert.equal(one.decision, 'reject');
    assert.equal(one.code, 'ATTESTATION_NOT_FOUND');
    assert.match(one.reason, new RegExp(`needs 2 ${VULN.replace(/[./]/g, '\\$&')} attestations by security, qa; 2 attestation\\(s\\) found`));
    assert.equal((await decide(two, [await scan(KEYS.security), await scan(KEYS.qa)])).decision, 'accept');
  });

  it('any predicate type can be required; only the vulnerability predicate is judged beyond its signature', async () => {
    const p = loadPolicy({
      keys: keysDoc(['release', 'security']),
      scopes: { [REPO]: { action: 'verify', signatures: { keys: ['release'] }, attestations: [{ predicateType: SLSA, keys: ['security'] }] } },
    });
    const d = await decide(p, [await scan(KEYS.security), await attestation(KEYS.security, SLSA, { buildType: 'test' })]);
    assert.equal(d.decision, 'accept', d.reason);
    assert.equal(d.reason, `accepted ${SUBJECT}: signed by release and ${SLSA} attested by security ${WHERE}`);
  });

  it('the most telling failure across attestations: a rejected scan over one about another digest', async () => {
    for (const order of [0, 1]) {
      const atts = [await scan(KEYS.security, OTHER_DIGEST), await scan(KEYS.security)];
      if (order) atts.reverse();
      const d = await decide(policy({ maxSeverity: 'low' }), atts);
      assert.equal(d.code, 'ATTESTATION_REJECTED', `order ${order}`);
    }
  });

  it('an unreadable layer is listed with its reason and does not count', async () => {
    const d = await decide(policy({}), [{ source: 'layer#0', error: new SignetError('BLOB_TOO_LARGE', 'blob is larger than 4194304 bytes') }]);
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'ATTESTATION_NOT_FOUND', 'a code outside the ranking does not displace "not found"');
    assert.deepEqual(
      d.signatures.filter((s) => s.format === 'in-toto').map((s) => [s.source, s.valid, s.code, s.reason]),
      [['layer#0', false, 'BLOB_TOO_LARGE', 'blob is larger than 4194304 bytes']],
    );
  });

  it('attestations are not looked up when the scope requires none', async () => {
    const source = new MemorySource('registry', [await scan(KEYS.stranger)]);
    const p = loadPolicy({ keys: keysDoc(['release']), scopes: { [REPO]: { action: 'verify', signatures: { keys: ['release'] } } } });
    const d = await (await harness({ policy: p, signatures: [await cosignSignature(KEYS.release)], attestations: [source] })).decide();
    assert.equal(d.decision, 'accept');
    assert.equal(source.signals.length, 0);
  });

  it('in warn mode a failed attestation requirement is allowed and recorded', async () => {
    const d = await decide(policy({}, { mode: 'warn' }), []);
    assert.equal(d.decision, 'warn');
    assert.equal(d.code, 'ATTESTATION_NOT_FOUND');
  });
});
