/**
 * Thresholds and groups (the decision core, no registry): a group holds when at least `threshold`
 * distinct keys of it made a valid signature; every group of a scope must hold; identity rules decide
 * whether a valid signature is about this image.
 */
import assert from 'node:assert/strict';
import { bundleSignature, cosignSignature, DIGEST, harness, IMAGE, KEYS, REPO, scopePolicy } from '../helpers/engine.js';

const SUBJECT = `${REPO}@${DIGEST}`;
const WHERE = `(scope ${REPO})`;

describe('engine: thresholds', () => {
  it('accepts a signature by the one key of a 1-of-1 group, naming the key', async () => {
    const h = await harness({
      policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }),
      signatures: [await cosignSignature(KEYS.release)],
    });
    const d = await h.decide();
    assert.equal(d.decision, 'accept', d.reason);
    assert.equal(d.ok, true);
    assert.equal(d.code, undefined);
    assert.equal(d.reason, `accepted ${SUBJECT}: signed by release ${WHERE}`);
    assert.equal(d.scope, REPO);
    assert.deepEqual(
      d.signatures.map((s) => [s.key, s.valid, s.format]),
      [['release', true, 'cosign']],
    );
  });

  it('refuses an unsigned image: SIGNATURE_NOT_FOUND, saying what is needed', async () => {
    const h = await harness({ policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }) });
    const d = await h.decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.ok, false);
    assert.equal(d.code, 'SIGNATURE_NOT_FOUND');
    assert.equal(d.reason, `rejected ${SUBJECT}: no signatures found; needs a valid signature by release ${WHERE}`);
  });

  it('a 1-of-n group is met by any one of its keys', async () => {
    const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release', 'security'] } });
    for (const key of ['release', 'security'] as const) {
      const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS[key])] })).decide();
      assert.equal(d.decision, 'accept', d.reason);
      assert.equal(d.reason, `accepted ${SUBJECT}: signed by ${key} ${WHERE}`);
    }
    const none = await (await harness({ policy })).decide();
    assert.equal(none.reason, `rejected ${SUBJECT}: no signatures found; needs a valid signature by one of release, security ${WHERE}`);
  });

  it('2 of 3: one valid signature is not enough, and says which key was valid', async () => {
    const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release', 'security', 'qa'], threshold: 2 } });
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release)] })).decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'SIGNATURE_NOT_FOUND');
    assert.equal(d.reason, `rejected ${SUBJECT}: needs valid signatures by 2 of release, security, qa (only release valid); 1 signature(s) found ${WHERE}`);
  });

  it('2 of 3: two signatures by the same key count once', async () => {
    const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release', 'security', 'qa'], threshold: 2 } });
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release), await cosignSignature(KEYS.release)] })).decide();
    assert.equal(d.decision, 'reject', d.reason);
    assert.match(d.reason, /\(only release valid\); 2 signature\(s\) found/);
    assert.equal(d.signatures.filter((s) => s.valid).length, 2, 'both signatures are listed as valid');
  });

  it('2 of 3: two distinct keys meet it', async () => {
    const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release', 'security', 'qa'], threshold: 2 } });
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.qa), await cosignSignature(KEYS.release)] })).decide();
    assert.equal(d.decision, 'accept', d.reason);
    assert.equal(d.reason, `accepted ${SUBJECT}: signed by qa, release ${WHERE}`);
  });

  it('a signature by a key outside the group does not count, and the refusal says it does not verify', async () => {
    const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release', 'security'], threshold: 2 } });
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release), await cosignSignature(KEYS.stranger)] })).decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'SIGNATURE_INVALID');
    assert.match(
      d.reason,
      /\(only release valid\); 2 signature\(s\) found: signature does not verify with key "release" \(signed by another key, or the payload was altered\)/,
    );
    assert.deepEqual(d.signatures.map((s) => s.valid).sort(), [false, true]);
  });

  it('keys count across formats: a cosign signature and a sigstore bundle meet 2 of 2', async () => {
    const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release', 'edge'], threshold: 2 } });
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release), await bundleSignature(KEYS.edge)] })).decide();
    assert.equal(d.decision, 'accept', d.reason);
    assert.deepEqual(
      d.signatures.map((s) => [s.format, s.key, s.valid]),
      [
        ['cosign', 'release', true],
        ['sigstore-bundle', 'edge', true],
      ],
    );
  });
});

describe('engine: groups (every group must hold)', () => {
  const policy = scopePolicy({ action: 'verify', signatures: [{ keys: ['release'] }, { keys: ['security', 'qa'] }] });

  it('accepts when each group is met, naming each', async () => {
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release), await cosignSignature(KEYS.qa)] })).decide();
    assert.equal(d.decision, 'accept', d.reason);
    assert.equal(d.reason, `accepted ${SUBJECT}: signed by release and signed by qa ${WHERE}`);
  });

  it('refuses when one group is not met, counting the groups and naming the one that failed', async () => {
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release)] })).decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'SIGNATURE_INVALID');
    assert.match(
      d.reason,
      new RegExp(
        `^rejected ${SUBJECT}: 1 of 2 requirements not met: needs a valid signature by one of security, qa; 1 signature\\(s\\) found: signature does not verify with key "security"`,
      ),
    );
    assert.deepEqual(
      d.signatures.map((s) => [s.key, s.valid]),
      [['release', true]],
      "one line per signature: the valid result wins over the other group's failure",
    );
  });

  it('one signature does not serve two groups unless its key is in both', async () => {
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.qa)] })).decide();
    assert.equal(d.decision, 'reject');
    assert.match(d.reason, /1 of 2 requirements not met: needs a valid signature by release; 1 signature\(s\) found/);
    const shared = scopePolicy({ action: 'verify', signatures: [{ keys: ['release'] }, { keys: ['release', 'qa'] }] });
    const ok = await (await harness({ policy: shared, signatures: [await cosignSignature(KEYS.release)] })).decide();
    assert.equal(ok.decision, 'accept', ok.reason);
    assert.equal(ok.reason, `accepted ${SUBJECT}: signed by release and signed by release ${WHERE}`);
  });

  it('refuses with both groups listed when neither holds', async () => {
    const d = await (await harness({ policy })).decide();
    assert.equal(d.code, 'SIGNATURE_NOT_FOUND');
    assert.equal(
      d.reason,
      `rejected ${SUBJECT}: 2 of 2 requirements not met: no signatures found; needs a valid signature by release; no signatures found; needs a valid signature by one of security, qa ${WHERE}`,
    );
  });
});

describe('engine: identity rules on valid signatures', () => {
  it('matchRepository (default): a signature for another repository is IDENTITY_MISMATCH', async () => {
    const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release'] } });
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release, { reference: 'registry.example.com/prod/other' })] })).decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'IDENTITY_MISMATCH');
    assert.match(
      d.reason,
      /signature by key "release": signed identity "registry.example.com\/prod\/other" does not match repository "registry.example.com\/prod\/app"/,
    );
  });

  it('matchExact compares the tag; exactRepository accepts a signature made for the named repository', async () => {
    const exact = scopePolicy({ action: 'verify', signatures: { keys: ['release'], identity: { type: 'matchExact' } } });
    const tagged = await cosignSignature(KEYS.release, { reference: IMAGE });
    assert.equal((await (await harness({ policy: exact, signatures: [tagged] })).decide()).decision, 'accept');
    const other = await (await harness({ policy: exact, signatures: [await cosignSignature(KEYS.release, { reference: `${REPO}:2.0` })] })).decide();
    assert.equal(other.code, 'IDENTITY_MISMATCH');
    assert.match(other.reason, /does not match "registry.example.com\/prod\/app:1.0" exactly/);

    const mirror = scopePolicy({
      action: 'verify',
      signatures: { keys: ['release'], identity: { type: 'exactRepository', dockerRepository: 'upstream.example.org/app' } },
    });
    const fromUpstream = await cosignSignature(KEYS.release, { reference: 'upstream.example.org/app' });
    assert.equal((await (await harness({ policy: mirror, signatures: [fromUpstream] })).decide()).decision, 'accept');
    assert.equal((await (await harness({ policy: mirror, signatures: [await cosignSignature(KEYS.release)] })).decide()).code, 'IDENTITY_MISMATCH');
  });
});
