/**
 * The decision deadline (`timeoutMs`, signetd's verifyTimeout) covers the whole decision: discovery and
 * verification, a slow key (an on-token C_Verify) included. Past it the decision is a refusal naming
 * the bound — REGISTRY_TIMEOUT while a lookup was still under way, DECISION_TIMEOUT after — no key is
 * asked again, and nothing that finishes later changes the decision.
 */
import assert from 'node:assert/strict';
import { SignetError } from '../../src/errors.js';
import type { DiscoveredSignature } from '../../src/engine/sources.js';
import type { UntrustedAttestation } from '../../src/engine/attestation-source.js';
import {
  attestation,
  cosignSignature,
  DIGEST,
  hangingSource,
  harness,
  KEYS,
  keysDoc,
  loadPolicy,
  MemoryKeys,
  MemorySource,
  REPO,
  scopePolicy,
  trustedKey,
} from '../helpers/engine.js';

const SUBJECT = `${REPO}@${DIGEST}`;
const WHERE = `(scope ${REPO})`;
const BOUND = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keys where `release` answers each verify after `delayMs`; counts the verifies started. */
function slowKeys(delayMs: number) {
  const calls = { release: 0 };
  const keys = new MemoryKeys({
    release: trustedKey('release', KEYS.release, { delayMs, onVerify: () => calls.release++ }),
    security: trustedKey('security', KEYS.security),
    leaked: trustedKey('leaked', KEYS.leaked),
  });
  return { keys, calls };
}

describe('engine: the decision deadline covers verification', () => {
  it('a key slower than the bound: DECISION_TIMEOUT at the bound, naming it', async () => {
    const { keys } = slowKeys(400);
    const h = await harness({
      policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }),
      keys,
      signatures: [await cosignSignature(KEYS.release)],
      timeoutMs: BOUND,
    });
    const started = performance.now();
    const d = await h.decide();
    const took = performance.now() - started;
    assert.equal(d.decision, 'reject');
    assert.equal(d.ok, false);
    assert.equal(d.code, 'DECISION_TIMEOUT');
    assert.equal(d.reason, `rejected ${SUBJECT}: verifying the signatures found took longer than the decision bound of ${BOUND} ms (verifyTimeout) ${WHERE}`);
    assert.ok(took >= BOUND - 5 && took < 300, `answered after ${took} ms`);
  });

  it('nothing that finishes later changes the decision, and no key is asked after the bound', async () => {
    const { keys, calls } = slowKeys(150);
    const sigs = [await cosignSignature(KEYS.release), await cosignSignature(KEYS.release), await cosignSignature(KEYS.release)];
    const h = await harness({
      policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'], threshold: 1 } }),
      keys,
      signatures: sigs,
      timeoutMs: BOUND,
    });
    const d = await h.decide();
    const before = structuredClone(d);
    assert.equal(d.code, 'DECISION_TIMEOUT');
    await sleep(150); // the slow verify finishes (valid!) meanwhile
    assert.deepEqual(d, before);
    assert.equal(calls.release, 1, 'the signatures after the bound were never verified');
    assert.deepEqual(keys.failed, [], 'a slow key is not a failed key');
  });

  it('a slow check of a refused key (rejectIfSignedBy) is bounded too', async () => {
    const keys = new MemoryKeys({ release: trustedKey('release', KEYS.release), leaked: trustedKey('leaked', KEYS.leaked, { delayMs: 400 }) });
    const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release'] }, rejectIfSignedBy: ['leaked'] });
    const d = await (await harness({ policy, keys, signatures: [await cosignSignature(KEYS.release)], timeoutMs: BOUND })).decide();
    assert.equal(d.code, 'DECISION_TIMEOUT');
  });

  it('a slow attestation key is bounded too', async () => {
    const keys = new MemoryKeys({ release: trustedKey('release', KEYS.release), security: trustedKey('security', KEYS.security, { delayMs: 400 }) });
    const policy = loadPolicy({
      keys: keysDoc(['release', 'security']),
      scopes: {
        [REPO]: {
          action: 'verify',
          signatures: { keys: ['release'] },
          attestations: [{ predicateType: 'https://slsa.dev/provenance/v1', keys: ['security'] }],
        },
      },
    });
    const att = await attestation(KEYS.security, 'https://slsa.dev/provenance/v1', {});
    const d = await (await harness({ policy, keys, signatures: [await cosignSignature(KEYS.release)], attestations: [att], timeoutMs: BOUND })).decide();
    assert.equal(d.code, 'DECISION_TIMEOUT');
  });

  it('a slow key that answers within the bound is fine', async () => {
    const { keys } = slowKeys(20);
    const d = await (
      await harness({
        policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }),
        keys,
        signatures: [await cosignSignature(KEYS.release)],
        timeoutMs: 1000,
      })
    ).decide();
    assert.equal(d.decision, 'accept', d.reason);
  });

  it('the bound is for the whole decision, not per key: two verifies of 70 ms do not fit in 100', async () => {
    const { keys, calls } = slowKeys(70);
    const sigs = [await cosignSignature(KEYS.stranger), await cosignSignature(KEYS.release)];
    const d = await (
      await harness({ policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }), keys, signatures: sigs, timeoutMs: BOUND })
    ).decide();
    assert.equal(d.code, 'DECISION_TIMEOUT');
    assert.equal(calls.release, 2);
  });

  it("a lookup still under way at the bound: REGISTRY_TIMEOUT naming the lookup, and the source's signal is aborted", async () => {
    const hanging = hangingSource<DiscoveredSignature>('registry');
    const d = await (
      await harness({ policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }), signatures: [hanging], timeoutMs: BOUND })
    ).decide();
    assert.equal(d.code, 'REGISTRY_TIMEOUT');
    assert.equal(d.reason, `rejected ${SUBJECT}: looking up signatures took longer than the decision bound of ${BOUND} ms (verifyTimeout) ${WHERE}`);
    assert.equal(hanging.signals[0]?.aborted, true, 'the registry requests are cancelled');
  });

  it('signatures verified, attestations still being looked up at the bound: REGISTRY_TIMEOUT for the attestations', async () => {
    const policy = loadPolicy({
      keys: keysDoc(['release', 'security']),
      scopes: {
        [REPO]: {
          action: 'verify',
          signatures: { keys: ['release'] },
          attestations: [{ predicateType: 'https://slsa.dev/provenance/v1', keys: ['security'] }],
        },
      },
    });
    const d = await (
      await harness({
        policy,
        signatures: [await cosignSignature(KEYS.release)],
        attestations: [hangingSource<UntrustedAttestation>('registry')],
        timeoutMs: BOUND,
      })
    ).decide();
    assert.equal(d.code, 'REGISTRY_TIMEOUT');
    assert.match(d.reason, /: looking up attestations took longer than the decision bound of 100 ms/);
  });

  it('one deadline for the lookups and the checks: a slow lookup leaves less time to verify', async () => {
    const { keys } = slowKeys(60);
    const slowLookup = new MemorySource<DiscoveredSignature>('registry', async () => {
      await sleep(60);
      return [await cosignSignature(KEYS.release)];
    });
    const d = await (
      await harness({ policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }), keys, signatures: [slowLookup], timeoutMs: BOUND })
    ).decide();
    assert.equal(d.code, 'DECISION_TIMEOUT', d.reason);
  });

  it('in warn mode a timeout is allowed and recorded, like any refusal that could not check', async () => {
    const { keys } = slowKeys(400);
    const d = await (
      await harness({
        policy: scopePolicy({ action: 'verify', mode: 'warn', signatures: { keys: ['release'] } }),
        keys,
        signatures: [await cosignSignature(KEYS.release)],
        timeoutMs: BOUND,
      })
    ).decide();
    assert.equal(d.decision, 'warn');
    assert.equal(d.code, 'DECISION_TIMEOUT');
    assert.match(d.reason, /^warn \(scope .* is in warn mode, image allowed\): would have rejected .*: verifying the signatures found took longer than/);
  });

  it('decisions that need no lookup are not bounded by anything slow (there is nothing slow)', async () => {
    const d = await (await harness({ policy: scopePolicy({ action: 'accept' }), timeoutMs: 1 })).decide();
    assert.equal(d.decision, 'accept');
  });

  it('a key failing fast is a key failure, not a timeout', async () => {
    const keys = new MemoryKeys({ release: trustedKey('release', KEYS.release, { fail: new SignetError('PKCS11_ERROR', 'CKR_DEVICE_REMOVED') }) });
    const d = await (
      await harness({
        policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }),
        keys,
        signatures: [await cosignSignature(KEYS.release)],
        timeoutMs: BOUND,
      })
    ).decide();
    assert.equal(d.code, 'PKCS11_ERROR');
    assert.deepEqual(
      keys.failed.map((f) => f.name),
      ['release'],
    );
  });
});
