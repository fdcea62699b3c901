/**
 * One snapshot of policy and keys per decision (PolicySnapshot): the engine reads it once, at the
 * start, and uses that generation's policy and keys to the end, even when a reload installs another
 * policy (and another key under the same name) while the decision waits for its sources.
 *
 * Policy A names key `ci` (release.pub) and requires it; policy B maps `ci` to another key
 * (stranger.pub) and requires `release` (release.pub). An image signed with stranger.pub is refused by
 * A and by B; only A's policy read with B's keys would accept it.
 */
import assert from 'node:assert/strict';
import type { PolicySnapshot } from '../../src/engine/engine.js';
import type { DiscoveredSignature } from '../../src/engine/sources.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { PemKeyProvider } from '../../src/keys/pem-provider.js';
import { cosignSignature, harness, KEYS, keyFile, loadPolicy, MemorySource, REPO } from '../helpers/engine.js';

const policyA = loadPolicy({ keys: { ci: { file: keyFile('release') } }, scopes: { [REPO]: { action: 'verify', signatures: { keys: ['ci'] } } } });
const policyB = loadPolicy({
  keys: { ci: { file: keyFile('stranger') }, release: { file: keyFile('release') } },
  scopes: { [REPO]: { action: 'verify', signatures: { keys: ['release'] } } },
});

describe('engine: one snapshot of policy and keys per decision', () => {
  it('reads the snapshot once per decision', async () => {
    const h = await harness({ policy: policyA, signatures: [await cosignSignature(KEYS.release)] });
    await h.decide();
    await h.decide();
    assert.equal(h.snapshots(), 2);
  });

  it('a reload while the decision waits for its sources does not change the policy, the keys or the generation it decides with', async () => {
    const ring = new KeyRing([new PemKeyProvider()]);
    let current: PolicySnapshot = { policy: policyA, keys: await ring.load(policyA.keys) };
    let release: (v: DiscoveredSignature[]) => void = () => undefined;
    let asked: () => void = () => undefined;
    const wasAsked = new Promise<void>((r) => (asked = r));
    const signed = await cosignSignature(KEYS.stranger);
    const held = new MemorySource<DiscoveredSignature>('registry', () => {
      asked();
      return new Promise((r) => (release = r));
    });
    const h = await harness({ snapshot: () => current, signatures: [held] });
    const decision = h.decide();
    await wasAsked;
    // The reload: B's policy and B's keys, swapped together (the same KeyRing, as signetd does).
    current = { policy: policyB, keys: await ring.load(policyB.keys) };
    release([signed]);
    const d = await decision;
    assert.equal(d.decision, 'reject', d.reason);
    assert.equal(d.policyGeneration, policyA.generation);
    assert.match(d.reason, /needs a valid signature by ci;/, 'decided by A');

    // The control: B alone refuses too, and A's policy with B's keys would have accepted (the mix the snapshot prevents).
    const underB = await (await harness({ snapshot: () => current, signatures: [signed] })).decide();
    assert.equal(underB.decision, 'reject');
    assert.equal(underB.policyGeneration, policyB.generation);
    const mixed = await (await harness({ snapshot: () => ({ policy: policyA, keys: current.keys! }), signatures: [signed] })).decide();
    assert.equal(mixed.decision, 'accept', "A's policy read with B's keys accepts: what a decision must never do");
  });
});
