/**
 * Vetoes (rejectIfSignedBy): a valid signature for this digest by a refused key refuses the image,
 * whatever else is valid and whatever identity it names; a refused key that cannot be checked refuses
 * too (fail closed), since its signature might be among those found.
 */
import assert from 'node:assert/strict';
import { SignetError } from '../../src/errors.js';
import { cosignSignature, DIGEST, harness, KEYS, keysDoc, loadPolicy, MemoryKeys, OTHER_DIGEST, REPO, scopePolicy, trustedKey } from '../helpers/engine.js';

const SUBJECT = `${REPO}@${DIGEST}`;
const guarded = { action: 'verify', signatures: { keys: ['release'] }, rejectIfSignedBy: ['leaked'] };

describe('engine: vetoes (rejectIfSignedBy)', () => {
  it('accepts when no signature is by the refused key', async () => {
    const d = await (
      await harness({ policy: scopePolicy(guarded), signatures: [await cosignSignature(KEYS.release), await cosignSignature(KEYS.stranger)] })
    ).decide();
    assert.equal(d.decision, 'accept', d.reason);
  });

  it('refuses an image that meets its requirements but is also signed by the refused key', async () => {
    const d = await (
      await harness({ policy: scopePolicy(guarded), signatures: [await cosignSignature(KEYS.release), await cosignSignature(KEYS.leaked)] })
    ).decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'SIGNED_BY_REJECTED_KEY');
    assert.equal(d.reason, `rejected ${SUBJECT}: signed by leaked, which scope ${REPO} refuses (rejectIfSignedBy)`);
  });

  it('the veto ignores identity: a signature by the refused key naming another repository still refuses', async () => {
    const sig = await cosignSignature(KEYS.leaked, { reference: 'elsewhere.example.com/whatever' });
    const d = await (await harness({ policy: scopePolicy(guarded), signatures: [await cosignSignature(KEYS.release), sig] })).decide();
    assert.equal(d.code, 'SIGNED_BY_REJECTED_KEY');
  });

  it('a signature by the refused key for another digest is not a veto', async () => {
    const sig = await cosignSignature(KEYS.leaked, { digest: OTHER_DIGEST });
    const d = await (await harness({ policy: scopePolicy(guarded), signatures: [await cosignSignature(KEYS.release), sig] })).decide();
    assert.equal(d.decision, 'accept', d.reason);
  });

  it('a revoked key in rejectIfSignedBy still vetoes (revocation is about trusting it, not about refusing it)', async () => {
    const policy = loadPolicy({ keys: keysDoc(['release', 'leaked'], { leaked: { revoked: true } }), scopes: { [REPO]: guarded } });
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release), await cosignSignature(KEYS.leaked)] })).decide();
    assert.equal(d.code, 'SIGNED_BY_REJECTED_KEY');
  });

  it('every refused key that signed is named', async () => {
    const policy = scopePolicy({ ...guarded, rejectIfSignedBy: ['leaked', 'stranger', 'qa'] });
    const d = await (
      await harness({ policy, signatures: [await cosignSignature(KEYS.stranger), await cosignSignature(KEYS.leaked), await cosignSignature(KEYS.release)] })
    ).decide();
    assert.equal(d.code, 'SIGNED_BY_REJECTED_KEY');
    assert.match(d.reason, /: signed by stranger, leaked, which scope/);
  });

  it('a refused key that cannot be loaded refuses with KEY_UNAVAILABLE when there are signatures to check', async () => {
    const policy = loadPolicy({ keys: keysDoc(['release', 'leaked'], { leaked: { file: '/nonexistent/signet/leaked.pub' } }), scopes: { [REPO]: guarded } });
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release)] })).decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'KEY_UNAVAILABLE');
    assert.equal(d.reason, `rejected ${SUBJECT}: cannot check for signatures by refused key(s) leaked (scope ${REPO})`);
    // With nothing to check, there is nothing the missing key could have signed.
    const unsigned = await (await harness({ policy })).decide();
    assert.equal(unsigned.code, 'SIGNATURE_NOT_FOUND');
  });

  it('a refused key that fails while verifying (token removed) refuses, and is marked failed', async () => {
    const policy = scopePolicy(guarded);
    const keys = new MemoryKeys({
      release: trustedKey('release', KEYS.release),
      leaked: trustedKey('leaked', KEYS.leaked, { fail: new SignetError('KEY_UNAVAILABLE', 'key "leaked": the token went away') }),
    });
    const d = await (await harness({ policy, keys, signatures: [await cosignSignature(KEYS.release)] })).decide();
    assert.equal(d.code, 'KEY_UNAVAILABLE');
    assert.match(d.reason, /cannot check for signatures by refused key\(s\) leaked/);
    assert.deepEqual(
      keys.failed.map((f) => f.name),
      ['leaked'],
    );
  });

  it('in warn mode a veto is recorded and the image allowed', async () => {
    const policy = scopePolicy({ ...guarded, mode: 'warn' });
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release), await cosignSignature(KEYS.leaked)] })).decide();
    assert.equal(d.decision, 'warn');
    assert.equal(d.ok, true);
    assert.equal(d.code, 'SIGNED_BY_REJECTED_KEY');
    assert.equal(
      d.reason,
      `warn (scope ${REPO} is in warn mode, image allowed): would have rejected ${SUBJECT}: signed by leaked, which scope ${REPO} refuses (rejectIfSignedBy)`,
    );
  });
});
