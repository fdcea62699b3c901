/**
 * Failed lookups: a source that fails (a referrers endpoint answering 500, a listing over its cap)
 * refuses the image only when what it might have found could change the decision — when
 * rejectIfSignedBy applies, or when the requirements are not met with what could be read. Otherwise the
 * acceptance carries a warning naming the failed lookup.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SignetError } from '../../src/errors.js';
import type { DiscoveredSignature } from '../../src/engine/sources.js';
import type { UntrustedAttestation } from '../../src/engine/attestation-source.js';
import { COSIGN_VULN_PREDICATE_TYPE, createVulnAttestation } from '../../src/attest/vuln.js';
import { cosignSignature, DIGEST, failingSource, harness, KEYS, keysDoc, loadPolicy, MemorySource, REPO, scopePolicy } from '../helpers/engine.js';
import { parseScanReport } from '../../src/scan/report.js';

const SUBJECT = `${REPO}@${DIGEST}`;
const WHERE = `(scope ${REPO})`;
const http500 = () => new SignetError('REGISTRY_UNAVAILABLE', 'referrers of registry.example.com/prod/app: registry answered 500, 1 attempts');

/** The signed source answers a little after the failing one has failed, so the failure is known by then. */
async function sources(signed: boolean) {
  const found: DiscoveredSignature[] = signed ? [await cosignSignature(KEYS.release)] : [];
  return [
    new MemorySource<DiscoveredSignature>('registry', () => new Promise((resolve) => setTimeout(() => resolve(found), 20))),
    failingSource<DiscoveredSignature>('registry referrers', http500()),
  ];
}

describe('engine: failed lookups', () => {
  it('requirements met without the failed source: accepted, with a warning naming the lookup', async () => {
    const d = await (await harness({ policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }), signatures: await sources(true) })).decide();
    assert.equal(d.decision, 'accept', d.reason);
    assert.deepEqual(d.warnings, [
      'cannot look up signatures in the registry referrers: referrers of registry.example.com/prod/app: registry answered 500, 1 attempts (the requirements were met without it)',
    ]);
  });

  it('requirements met by the first source to answer: accepted without waiting for the others (without rejectIfSignedBy)', async () => {
    const slowFailure = new MemorySource<DiscoveredSignature>(
      'registry referrers',
      () => new Promise((_, reject) => setTimeout(() => reject(http500()), 1500)),
    );
    const h = await harness({
      policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }),
      signatures: [new MemorySource<DiscoveredSignature>('registry', [await cosignSignature(KEYS.release)]), slowFailure],
    });
    const started = Date.now();
    const d = await h.decide();
    assert.equal(d.decision, 'accept', d.reason);
    assert.ok(Date.now() - started < 1000, `waited ${Date.now() - started} ms for the slow source`);
    assert.deepEqual(d.warnings, [], 'its failure came after the decision');
  });

  it('what the first source found does not meet the requirements: the others are waited for', async () => {
    const stale = await cosignSignature(KEYS.stranger);
    const valid = await cosignSignature(KEYS.release);
    const h = await harness({
      policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }),
      signatures: [
        new MemorySource<DiscoveredSignature>('registry', [stale]),
        new MemorySource<DiscoveredSignature>('registry referrers', () => new Promise((resolve) => setTimeout(() => resolve([valid]), 50))),
      ],
    });
    const d = await h.decide();
    assert.equal(d.decision, 'accept', d.reason);
    assert.equal(d.signatures.filter((s) => s.valid).length, 1);
  });

  it("requirements not met with what could be read: refused with the lookup's code, and what was missing", async () => {
    const d = await (
      await harness({ policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }), signatures: await sources(false) })
    ).decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'REGISTRY_UNAVAILABLE');
    assert.equal(
      d.reason,
      `rejected ${SUBJECT}: cannot look up signatures in the registry referrers: referrers of registry.example.com/prod/app: registry answered 500, 1 attempts; with what could be read: no signatures found; needs a valid signature by release ${WHERE}`,
    );
  });

  it('rejectIfSignedBy: a signature by the refused key could be in what was not read: refused even when met', async () => {
    const d = await (
      await harness({
        policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] }, rejectIfSignedBy: ['leaked'] }),
        signatures: await sources(true),
      })
    ).decide();
    assert.equal(d.code, 'REGISTRY_UNAVAILABLE');
    assert.match(d.reason, /: cannot rule out a signature by leaked \(rejectIfSignedBy\): cannot look up signatures in the registry referrers: .*500/);
  });

  it('keeps the code of the failure: REGISTRY_UNAUTHORIZED stays itself; a thrown non-SignetError becomes REGISTRY_UNAVAILABLE', async () => {
    const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release'] } });
    const denied = await (
      await harness({ policy, signatures: [failingSource('registry', new SignetError('REGISTRY_UNAUTHORIZED', 'no credentials'))] })
    ).decide();
    assert.equal(denied.code, 'REGISTRY_UNAUTHORIZED');
    const odd = await (
      await harness({
        policy,
        signatures: [
          new MemorySource<DiscoveredSignature>('registry', async () => {
            throw new TypeError('socket hang up');
          }),
        ],
      })
    ).decide();
    assert.equal(odd.code, 'REGISTRY_UNAVAILABLE');
    assert.match(odd.reason, /cannot look up signatures in the registry: socket hang up/);
  });

  it('in warn mode a failed lookup that refuses is allowed and recorded', async () => {
    const d = await (
      await harness({ policy: scopePolicy({ action: 'verify', mode: 'warn', signatures: { keys: ['release'] } }), signatures: await sources(false) })
    ).decide();
    assert.equal(d.decision, 'warn');
    assert.equal(d.code, 'REGISTRY_UNAVAILABLE');
  });

  describe('attestation lookups', () => {
    const report = parseScanReport(
      readFileSync(fileURLToPath(new URL('../../../test/fixtures/scan/grype-high.json', import.meta.url)), 'utf8'),
      'grype-high.json',
    );
    const policy = loadPolicy({
      keys: keysDoc(['release', 'security']),
      scopes: {
        [REPO]: { action: 'verify', signatures: { keys: ['release'] }, attestations: [{ predicateType: COSIGN_VULN_PREDICATE_TYPE, keys: ['security'] }] },
      },
    });
    const scan = async (): Promise<UntrustedAttestation> => ({
      source: 'att#0',
      untrustedEnvelope: (await createVulnAttestation(report, { repository: REPO, digest: DIGEST }, KEYS.security.signer)).envelopeBytes,
    });

    it("met by another source: accepted with a warning; not met: refused with the lookup's code", async () => {
      const failing = failingSource<UntrustedAttestation>('oci-layout:/l', new SignetError('BLOB_TOO_LARGE', 'listing over its cap'));
      const met = await (
        await harness({ policy, signatures: [await cosignSignature(KEYS.release)], attestations: [new MemorySource('registry', [await scan()]), failing] })
      ).decide();
      assert.equal(met.decision, 'accept', met.reason);
      assert.deepEqual(met.warnings, ['cannot look up attestations in the oci-layout:/l: listing over its cap (the requirements were met without it)']);
      const unmet = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release)], attestations: [failing] })).decide();
      assert.equal(unmet.code, 'BLOB_TOO_LARGE');
      assert.match(
        unmet.reason,
        /cannot look up attestations in the oci-layout:\/l: listing over its cap; with what could be read: 1 of 2 requirements not met: no attestations found/,
      );
    });

    it('a failed attestation lookup does not matter to a scope that requires none (it is not even asked)', async () => {
      const failing = failingSource<UntrustedAttestation>('registry', http500());
      const d = await (
        await harness({
          policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }),
          signatures: [await cosignSignature(KEYS.release)],
          attestations: [failing],
        })
      ).decide();
      assert.equal(d.decision, 'accept', d.reason);
      assert.deepEqual(d.warnings, []);
      assert.equal(failing.signals.length, 0);
    });
  });
});
