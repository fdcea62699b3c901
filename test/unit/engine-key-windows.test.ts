/**
 * Key windows: a signature by a revoked key, or made outside the key's notBefore/notAfter window (as
 * of the decision's time), does not count; one near the end of its window counts with a warning
 * (expiryWarning, 30 days by default).
 */
import assert from 'node:assert/strict';
import { cosignSignature, DIGEST, harness, KEYS, keysDoc, loadPolicy, REPO } from '../helpers/engine.js';

const SUBJECT = `${REPO}@${DIGEST}`;
const NOW = new Date('2026-06-01T12:00:00Z');
const DAY = 86_400_000;
const iso = (ms: number) => new Date(NOW.getTime() + ms).toISOString();

function policyWith(release: Record<string, unknown>, group: Record<string, unknown> = { keys: ['release'] }) {
  return loadPolicy({ keys: keysDoc(['release', 'security'], { release }), scopes: { [REPO]: { action: 'verify', signatures: group } } });
}
async function decide(release: Record<string, unknown>, group?: Record<string, unknown>, signers = [KEYS.release]) {
  const signatures = await Promise.all(signers.map((k) => cosignSignature(k)));
  return (await harness({ policy: policyWith(release, group), signatures, now: NOW })).decide();
}

describe('engine: key windows', () => {
  it('inside its window, far from its end: accepted without a warning', async () => {
    const d = await decide({ notBefore: iso(-100 * DAY), notAfter: iso(100 * DAY) });
    assert.equal(d.decision, 'accept', d.reason);
    assert.deepEqual(d.warnings, []);
  });

  it('revoked: KEY_REVOKED, the signature does not count', async () => {
    const d = await decide({ revoked: true });
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'KEY_REVOKED');
    assert.equal(
      d.reason,
      `rejected ${SUBJECT}: needs a valid signature by release; 1 signature(s) found: signature by key "release" does not count: key "release" is revoked (scope ${REPO})`,
    );
    assert.deepEqual(
      d.signatures.map((s) => [s.key, s.valid, s.code]),
      [['release', false, 'KEY_REVOKED']],
    );
  });

  it('before notBefore: KEY_NOT_YET_VALID; at notBefore it counts', async () => {
    const early = await decide({ notBefore: '2026-07-01T00:00:00Z' });
    assert.equal(early.code, 'KEY_NOT_YET_VALID');
    assert.match(early.reason, /key "release" is not valid before 2026-07-01T00:00:00\.000Z/);
    assert.equal((await decide({ notBefore: NOW.toISOString() })).decision, 'accept');
  });

  it('at or after notAfter: KEY_EXPIRED', async () => {
    const late = await decide({ notAfter: '2026-05-01T00:00:00Z' });
    assert.equal(late.code, 'KEY_EXPIRED');
    assert.match(late.reason, /key "release" expired on 2026-05-01T00:00:00\.000Z/);
    assert.equal((await decide({ notAfter: NOW.toISOString() })).code, 'KEY_EXPIRED', 'the window is half-open: notAfter itself is outside');
  });

  it('within 30 days of notAfter: accepted, with a warning naming the key and the days left', async () => {
    const d = await decide({ notAfter: iso(10 * DAY + 3600_000) });
    assert.equal(d.decision, 'accept', d.reason);
    assert.deepEqual(d.warnings, [`key "release" expires on ${iso(10 * DAY + 3600_000)} (in 10 days)`]);
    const tomorrow = await decide({ notAfter: iso(DAY + 60_000) });
    assert.deepEqual(tomorrow.warnings, [`key "release" expires on ${iso(DAY + 60_000)} (in 1 day)`]);
  });

  it('expiryWarning moves the warning: 5d does not warn 10 days ahead, 60d does 40 days ahead', async () => {
    assert.deepEqual((await decide({ notAfter: iso(10 * DAY), expiryWarning: '5d' })).warnings, []);
    const d = await decide({ notAfter: iso(40 * DAY), expiryWarning: '60d' });
    assert.equal(d.warnings.length, 1);
    assert.match(d.warnings[0]!, /in 40 days/);
  });

  it('warns once however many signatures and groups use the key', async () => {
    const d = await decide({ notAfter: iso(3 * DAY) }, undefined, [KEYS.release, KEYS.release]);
    assert.equal(d.warnings.length, 1);
  });

  it('a key out of its window does not stop another key of the group from meeting it', async () => {
    const d = await decide({ revoked: true }, { keys: ['release', 'security'] }, [KEYS.release, KEYS.security]);
    assert.equal(d.decision, 'accept', d.reason);
    assert.equal(d.reason, `accepted ${SUBJECT}: signed by security (scope ${REPO})`);
    assert.deepEqual(
      d.signatures.map((s) => [s.key, s.valid]),
      [
        ['release', false],
        ['security', true],
      ],
    );
  });

  it("the window is judged at the decision's time (EngineOptions.now)", async () => {
    const policy = policyWith({ notAfter: '2026-06-02T00:00:00Z' });
    const sig = await cosignSignature(KEYS.release);
    assert.equal((await (await harness({ policy, signatures: [sig], now: new Date('2026-06-01T00:00:00Z') })).decide()).decision, 'accept');
    assert.equal((await (await harness({ policy, signatures: [sig], now: new Date('2026-06-03T00:00:00Z') })).decide()).code, 'KEY_EXPIRED');
  });
});
