/**
 * Warn mode, deny lists, scope actions and the refusals made before any lookup: deny lists (policy-wide
 * and per scope) win over everything, warn mode included; a scope in warn mode allows what it would
 * refuse and says so; no policy, a bad name or a pinned digest that is not the resolved one refuse.
 */
import assert from 'node:assert/strict';
import { VerificationEngine } from '../../src/engine/engine.js';
import { cosignSignature, DIGEST, harness, IMAGE, KEYS, keysDoc, loadPolicy, MANIFEST, OTHER_DIGEST, REPO, ringKeys, scopePolicy } from '../helpers/engine.js';

const SUBJECT = `${REPO}@${DIGEST}`;
const verify = { action: 'verify', signatures: { keys: ['release'] } };

describe('engine: deny lists', () => {
  it('policy-wide: DIGEST_DENIED before scope resolution, even for a signed image in warn mode', async () => {
    const policy = loadPolicy({ mode: 'warn', deny: { digests: [DIGEST] }, keys: keysDoc(['release']), scopes: { [REPO]: verify } });
    const h = await harness({ policy, signatures: [await cosignSignature(KEYS.release)] });
    const d = await h.decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.ok, false);
    assert.equal(d.code, 'DIGEST_DENIED');
    assert.equal(d.reason, `rejected ${SUBJECT}: the digest is on the policy's deny list`);
    assert.equal(d.scope, '', 'decided before any scope applied');
    assert.equal(h.sourceCalls.length, 0, 'nothing was looked up');
    const other = await h.decide(IMAGE, OTHER_DIGEST);
    assert.equal(other.decision, 'warn', 'another digest is not denied: decided by the scope (in warn mode)');
    assert.equal(other.code, 'DIGEST_MISMATCH', 'the signature found is for the denied digest');
  });

  it('per scope: DIGEST_DENIED in that scope, in warn mode and with action accept too', async () => {
    for (const scope of [{ ...verify, mode: 'warn' }, { action: 'accept' }]) {
      const policy = loadPolicy({ keys: keysDoc(['release']), scopes: { [REPO]: { ...scope, deny: { digests: [DIGEST] } } } });
      const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release)] })).decide();
      assert.equal(d.decision, 'reject', JSON.stringify(scope));
      assert.equal(d.code, 'DIGEST_DENIED');
      assert.equal(d.reason, `rejected ${SUBJECT}: the digest is on the deny list of scope ${REPO}`);
      assert.equal(d.scope, REPO);
    }
  });

  it("a scope's deny list does not apply in another scope", async () => {
    const policy = loadPolicy({
      keys: keysDoc(['release']),
      scopes: { [REPO]: verify, 'registry.example.com/dev': { action: 'accept', deny: { digests: [DIGEST] } } },
    });
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release)] })).decide();
    assert.equal(d.decision, 'accept', d.reason);
  });
});

describe('engine: warn mode', () => {
  it('a refusal in a warn scope is allowed, with the code and the reason it would have had', async () => {
    const d = await (await harness({ policy: scopePolicy({ ...verify, mode: 'warn' }) })).decide();
    assert.equal(d.decision, 'warn');
    assert.equal(d.ok, true);
    assert.equal(d.code, 'SIGNATURE_NOT_FOUND');
    assert.equal(
      d.reason,
      `warn (scope ${REPO} is in warn mode, image allowed): would have rejected ${SUBJECT}: no signatures found; needs a valid signature by release (scope ${REPO})`,
    );
  });

  it('an acceptance in a warn scope is a plain acceptance', async () => {
    const d = await (await harness({ policy: scopePolicy({ ...verify, mode: 'warn' }), signatures: [await cosignSignature(KEYS.release)] })).decide();
    assert.equal(d.decision, 'accept');
    assert.equal(d.code, undefined);
  });

  it("the policy-wide mode is every scope's default; a scope's own mode wins", async () => {
    const policy = loadPolicy({
      mode: 'warn',
      keys: keysDoc(['release']),
      scopes: { [REPO]: verify, 'registry.example.com/strict': { ...verify, mode: 'enforce' } },
    });
    const h = await harness({ policy });
    assert.equal((await h.decide()).decision, 'warn');
    const strict = await h.decide('registry.example.com/strict/app:1');
    assert.equal(strict.decision, 'reject');
    assert.equal(strict.code, 'SIGNATURE_NOT_FOUND');
  });

  it('a scope that rejects everything only warns in warn mode', async () => {
    const d = await (await harness({ policy: scopePolicy({ action: 'reject', mode: 'warn' }) })).decide();
    assert.equal(d.decision, 'warn');
    assert.equal(d.code, 'POLICY_REJECTED');
  });
});

describe('engine: scope actions and the default scope', () => {
  it('accept: allowed without looking anything up', async () => {
    const h = await harness({ policy: scopePolicy({ action: 'accept' }) });
    const d = await h.decide();
    assert.equal(d.decision, 'accept');
    assert.equal(d.reason, `accepted ${IMAGE}: scope ${REPO} accepts without signatures`);
    assert.equal(h.sourceCalls.length, 0);
  });

  it('reject: POLICY_REJECTED, whatever the signatures', async () => {
    const d = await (await harness({ policy: scopePolicy({ action: 'reject' }), signatures: [await cosignSignature(KEYS.release)] })).decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'POLICY_REJECTED');
    assert.equal(d.reason, `rejected ${IMAGE}: scope ${REPO} rejects all images`);
  });

  it('an image no scope matches falls to the default, which rejects unless a file sets it', async () => {
    const h = await harness({ policy: scopePolicy(verify) });
    const d = await h.decide('quay.io/someone/else:1');
    assert.equal(d.scope, 'default');
    assert.equal(d.code, 'POLICY_REJECTED');
    assert.equal(d.reason, 'rejected quay.io/someone/else:1: scope default rejects all images');
    const open = loadPolicy({ keys: keysDoc(['release']), default: { action: 'accept' } });
    assert.equal((await (await harness({ policy: open })).decide('quay.io/someone/else:1')).decision, 'accept');
  });

  it('the most specific scope wins', async () => {
    const policy = loadPolicy({ keys: keysDoc(['release']), scopes: { 'registry.example.com': { action: 'reject' }, [REPO]: { action: 'accept' } } });
    const h = await harness({ policy });
    assert.equal((await h.decide()).scope, REPO);
    assert.equal((await h.decide('registry.example.com/prod/other:1')).scope, 'registry.example.com');
  });
});

describe('engine: refusals before any policy rule', () => {
  it('no policy loaded: POLICY_NOT_FOUND with the first line of the load error, even for a scope that would warn', async () => {
    const h = await harness({ snapshot: () => ({ error: '/etc/signet/policy.d/a.yaml:3:1: duplicate key "keys"\nand more' }) });
    const d = await h.decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'POLICY_NOT_FOUND');
    assert.equal(d.reason, `rejected ${IMAGE}: no valid trust policy is loaded (/etc/signet/policy.d/a.yaml:3:1: duplicate key "keys")`);
    assert.equal(d.policyGeneration, '');
  });

  it('a name that is not an image reference: INVALID_REFERENCE, the raw name kept', async () => {
    const d = await (await harness({ policy: scopePolicy({ action: 'accept' }) })).decide('Not A Name!');
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'INVALID_REFERENCE');
    assert.match(d.reason, /^rejected: /);
    assert.equal(d.image, 'Not A Name!');
    assert.equal(d.scope, '');
  });

  it('a name that pins another digest than the one resolved: DIGEST_MISMATCH, even in an accepting scope', async () => {
    const d = await (await harness({ policy: scopePolicy({ action: 'accept', mode: 'warn' }) })).decide(`${REPO}@${OTHER_DIGEST}`);
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'DIGEST_MISMATCH');
    assert.equal(d.reason, `rejected ${REPO}@${OTHER_DIGEST}: the name pins ${OTHER_DIGEST} but the resolved digest is ${DIGEST}`);
  });

  it('the Decision carries the request, the policy generation and a duration', async () => {
    const policy = scopePolicy({ action: 'accept' });
    const d = await (await harness({ policy })).decide('registry.example.com/prod/app');
    assert.equal(d.name, 'registry.example.com/prod/app');
    assert.equal(d.image, 'registry.example.com/prod/app:latest');
    assert.equal(d.digest, DIGEST);
    assert.equal(d.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(d.policyGeneration, policy.generation);
    assert.ok(d.durationMs >= 0 && d.durationMs < 1000);
  });
});

describe('engine: errors nobody expected fail closed', () => {
  it('an internal error is a refusal (INTERNAL) that warn mode does not turn into an allowance', async () => {
    const policy = scopePolicy({ ...verify, mode: 'warn' });
    const keys = await ringKeys(policy);
    const engine = new VerificationEngine({
      snapshot: () => ({ policy, keys }),
      sourcesFor: () => {
        throw new Error('no sources for you');
      },
      timeoutMs: 1000,
      maxSignatures: 8,
    });
    const d = await engine.verify({ name: IMAGE, descriptor: { mediaType: MANIFEST, digest: DIGEST, size: 1 } });
    assert.equal(d.decision, 'reject');
    assert.equal(d.ok, false);
    assert.equal(d.code, 'INTERNAL');
    assert.equal(d.reason, `rejected ${IMAGE}: no sources for you`);
    assert.equal(d.scope, REPO);
  });
});
