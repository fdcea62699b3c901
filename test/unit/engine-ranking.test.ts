/**
 * Failure ranking: when a requirement is not met, the refusal's code is the most telling failure, not
 * the first one met. A signature a trusted key made for the wrong identity or digest says more than a
 * signature by a stranger; a key out of its window more than a bad signature; "not found" only when
 * nothing more telling was seen. The order in which signatures or keys were found never matters.
 */
import assert from 'node:assert/strict';
import { SignetError } from '../../src/errors.js';
import { failureRank, mostTellingCode } from '../../src/engine/evaluate.js';
import type { DiscoveredSignature } from '../../src/engine/sources.js';
import { cosignSignature, harness, KEYS, keysDoc, loadPolicy, OTHER_DIGEST, REPO, unreadable } from '../helpers/engine.js';

const group = (keys: string[], extra: Record<string, Record<string, unknown>> = {}, more: Record<string, unknown> = {}) =>
  loadPolicy({ keys: keysDoc(['release', 'security', 'qa', 'stranger'], extra), scopes: { [REPO]: { action: 'verify', signatures: { keys }, ...more } } });

/** Decide with the signatures in the given order and reversed: both must give `code`. */
async function codeBothWays(policy: ReturnType<typeof group>, signatures: DiscoveredSignature[], code: string) {
  for (const sigs of [signatures, [...signatures].reverse()]) {
    const d = await (await harness({ policy, signatures: sigs })).decide();
    assert.equal(d.decision, 'reject', d.reason);
    assert.equal(d.code, code, `order ${sigs.map((s) => s.source).join(', ')}: ${d.reason}`);
  }
}

describe('engine: failure ranking (the most telling failure wins)', () => {
  it('IDENTITY_MISMATCH (the key signed another image name) over SIGNATURE_INVALID (a stranger)', async () => {
    await codeBothWays(
      group(['release']),
      [await cosignSignature(KEYS.stranger), await cosignSignature(KEYS.release, { reference: 'registry.example.com/prod/other' })],
      'IDENTITY_MISMATCH',
    );
  });

  it('DIGEST_MISMATCH (the key signed another digest) over SIGNATURE_INVALID', async () => {
    await codeBothWays(
      group(['release']),
      [await cosignSignature(KEYS.stranger), await cosignSignature(KEYS.release, { digest: OTHER_DIGEST })],
      'DIGEST_MISMATCH',
    );
  });

  it('IDENTITY_MISMATCH over DIGEST_MISMATCH', async () => {
    await codeBothWays(
      group(['release']),
      [await cosignSignature(KEYS.release, { digest: OTHER_DIGEST }), await cosignSignature(KEYS.release, { reference: 'registry.example.com/prod/other' })],
      'IDENTITY_MISMATCH',
    );
  });

  it('DIGEST_MISMATCH over a key out of its window', async () => {
    await codeBothWays(
      group(['release', 'security'], { security: { revoked: true } }),
      [await cosignSignature(KEYS.security), await cosignSignature(KEYS.release, { digest: OTHER_DIGEST })],
      'DIGEST_MISMATCH',
    );
  });

  it('a key out of its window (KEY_EXPIRED, KEY_REVOKED) over SIGNATURE_INVALID and SIGNATURE_MALFORMED', async () => {
    const malformed = unreadable(new SignetError('SIGNATURE_MALFORMED', 'signature layer 0 has no annotation'));
    await codeBothWays(
      group(['security'], { security: { notAfter: '2020-01-01T00:00:00Z' } }),
      [await cosignSignature(KEYS.stranger), malformed, await cosignSignature(KEYS.security)],
      'KEY_EXPIRED',
    );
    await codeBothWays(
      group(['security'], { security: { revoked: true } }),
      [await cosignSignature(KEYS.stranger), await cosignSignature(KEYS.security)],
      'KEY_REVOKED',
    );
  });

  it('SIGNATURE_MALFORMED over SIGNATURE_INVALID; a code outside the ranking never displaces "not found"', async () => {
    const malformed = unreadable(new SignetError('SIGNATURE_MALFORMED', 'not valid base64'));
    await codeBothWays(group(['release']), [await cosignSignature(KEYS.stranger), malformed], 'SIGNATURE_MALFORMED');
    const missing = unreadable(new SignetError('REGISTRY_NOT_FOUND', 'payload blob is gone'));
    await codeBothWays(group(['release']), [missing], 'SIGNATURE_NOT_FOUND');
  });

  it("a tampered payload blob (DIGEST_MISMATCH from the source) outranks a stranger's signature", async () => {
    const tampered = unreadable(new SignetError('DIGEST_MISMATCH', 'payload blob does not match its digest: tampered in the registry'));
    await codeBothWays(group(['release']), [await cosignSignature(KEYS.stranger), tampered], 'DIGEST_MISMATCH');
  });

  it('a bad signature over a key that cannot be used; the unusable key is named when it is all there is', async () => {
    const policy = group(['release', 'qa'], { qa: { file: '/nonexistent/signet/qa.pub' } });
    await codeBothWays(policy, [await cosignSignature(KEYS.stranger)], 'SIGNATURE_INVALID');
    const only = group(['qa'], { qa: { file: '/nonexistent/signet/qa.pub' } });
    const d = await (await harness({ policy: only, signatures: [await cosignSignature(KEYS.qa)] })).decide();
    assert.equal(d.code, 'KEY_NOT_FOUND');
    assert.match(d.reason, /key "qa" cannot be used: key "qa": cannot read \/nonexistent\/signet\/qa\.pub: ENOENT/);
  });

  it('one line per signature, with the most telling of the keys tried on it', async () => {
    // Tried with security (does not verify), then release (verifies, wrong identity): the line is release's.
    const d = await (
      await harness({
        policy: group(['security', 'release']),
        signatures: [await cosignSignature(KEYS.release, { reference: 'registry.example.com/prod/other' })],
      })
    ).decide();
    assert.deepEqual(
      d.signatures.map((s) => [s.key, s.code]),
      [['release', 'IDENTITY_MISMATCH']],
    );
  });

  it('across requirements too: the most telling failure of every group, the first of equal rank', async () => {
    const policy = loadPolicy({
      keys: keysDoc(['release', 'security']),
      scopes: { [REPO]: { action: 'verify', signatures: [{ keys: ['release'] }, { keys: ['security'] }] } },
    });
    // Group release: security's signature does not verify (SIGNATURE_INVALID); group security: wrong identity.
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.security, { reference: 'registry.example.com/prod/other' })] })).decide();
    assert.equal(d.code, 'IDENTITY_MISMATCH', d.reason);
    assert.match(d.reason, /2 of 2 requirements not met: needs a valid signature by release; .*; needs a valid signature by security; /);
    const none = await (await harness({ policy })).decide();
    assert.equal(none.code, 'SIGNATURE_NOT_FOUND');
  });

  it('the ranking itself: one order for signatures and attestations', () => {
    const order = [
      'ATTESTATION_REJECTED',
      'DIGEST_MISMATCH',
      'KEY_REVOKED',
      'SIGNATURE_MALFORMED',
      'SIGNATURE_INVALID',
      'KEY_UNAVAILABLE',
      'KEY_NOT_FOUND',
      'REGISTRY_NOT_FOUND',
    ] as const;
    for (let i = 1; i < order.length; i++) assert.ok(failureRank(order[i - 1]) > failureRank(order[i]), `${order[i - 1]} over ${order[i]}`);
    assert.equal(failureRank('IDENTITY_MISMATCH'), failureRank('ATTESTATION_REJECTED'));
    assert.equal(failureRank(undefined), 0);
    assert.equal(mostTellingCode([{ code: 'SIGNATURE_INVALID' }, { code: 'KEY_EXPIRED' }, { code: 'KEY_REVOKED' }], 'SIGNATURE_NOT_FOUND'), 'KEY_EXPIRED');
    assert.equal(mostTellingCode([{ code: 'BLOB_TOO_LARGE' }, {}], 'ATTESTATION_NOT_FOUND'), 'ATTESTATION_NOT_FOUND');
  });
});
