/**
 * Formats and sources per scope: a scope's `formats` say which signature formats count (the engine
 * asks its sources for those, and counts nothing else whatever a source returns); its
 * `signatureSources` say where to look; at most `maxSignatures` signatures are examined.
 */
import assert from 'node:assert/strict';
import { ALL_FORMATS } from '../../src/formats/types.js';
import { bundleSignature, cosignSignature, DIGEST, harness, KEYS, MemorySource, REPO, scopePolicy } from '../helpers/engine.js';

const SUBJECT = `${REPO}@${DIGEST}`;

describe('engine: formats per scope', () => {
  it('every format by default: a sigstore bundle counts like a cosign signature', async () => {
    const h = await harness({
      policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }),
      signatures: [await bundleSignature(KEYS.release)],
    });
    const d = await h.decide();
    assert.equal(d.decision, 'accept', d.reason);
    assert.deepEqual(
      d.signatures.map((s) => [s.format, s.key, s.valid]),
      [['sigstore-bundle', 'release', true]],
    );
    assert.deepEqual(h.sourceCalls, [{ specs: ['registry'], formats: [...ALL_FORMATS] }]);
  });

  it('formats: [cosign]: a bundle is not counted, nor listed, even when a source returns it', async () => {
    const policy = scopePolicy({ action: 'verify', formats: ['cosign'], signatures: { keys: ['release'] } });
    const h = await harness({ policy, signatures: [await bundleSignature(KEYS.release)] });
    const d = await h.decide();
    assert.equal(d.decision, 'reject');
    assert.equal(d.code, 'SIGNATURE_NOT_FOUND');
    assert.equal(d.reason, `rejected ${SUBJECT}: no signatures found; needs a valid signature by release (scope ${REPO})`);
    assert.deepEqual(d.signatures, []);
    assert.deepEqual(h.sourceCalls[0]!.formats, ['cosign'], 'the sources were asked for cosign only');
    assert.equal((await (await harness({ policy, signatures: [await cosignSignature(KEYS.release)] })).decide()).decision, 'accept');
  });

  it('formats: [sigstore-bundle]: a cosign signature does not count towards a threshold', async () => {
    const policy = scopePolicy({ action: 'verify', formats: ['sigstore-bundle'], signatures: { keys: ['release', 'security'], threshold: 2 } });
    const mixed = [await cosignSignature(KEYS.release), await bundleSignature(KEYS.security)];
    const d = await (await harness({ policy, signatures: mixed })).decide();
    assert.equal(d.decision, 'reject');
    assert.match(d.reason, /\(only security valid\); 1 signature\(s\) found/);
    const both = await (await harness({ policy, signatures: [await bundleSignature(KEYS.release), await bundleSignature(KEYS.security)] })).decide();
    assert.equal(both.decision, 'accept', both.reason);
  });

  it('a veto looks only at the formats the scope counts', async () => {
    const policy = scopePolicy({ action: 'verify', formats: ['cosign'], signatures: { keys: ['release'] }, rejectIfSignedBy: ['leaked'] });
    const d = await (await harness({ policy, signatures: [await cosignSignature(KEYS.release), await bundleSignature(KEYS.leaked)] })).decide();
    assert.equal(d.decision, 'accept', d.reason);
  });

  it("the scope's signatureSources reach sourcesFor", async () => {
    const policy = scopePolicy({
      action: 'verify',
      signatureSources: [{ ociLayout: '/var/lib/signet/layouts/app' }, 'registry'],
      signatures: { keys: ['release'] },
    });
    const h = await harness({ policy, signatures: [await cosignSignature(KEYS.release)] });
    assert.equal((await h.decide()).decision, 'accept');
    assert.deepEqual(h.sourceCalls[0]!.specs, [{ ociLayout: '/var/lib/signet/layouts/app' }, 'registry']);
  });

  it('at most maxSignatures are examined, whatever a source returns; each source is told the limit', async () => {
    // Signatures by a key of the scope come first (test/unit/signature-order.test.ts); the strangers' are cut.
    const flood = [await cosignSignature(KEYS.stranger), await cosignSignature(KEYS.stranger), await cosignSignature(KEYS.stranger)];
    const source = new MemorySource('registry', [...flood, await cosignSignature(KEYS.release)]);
    const limit: number[] = [];
    const counting = {
      name: 'registry',
      find: (image: unknown, digest: string, options: { limit: number; signal?: AbortSignal }) => (
        limit.push(options.limit),
        source.find(image, digest, options)
      ),
    };
    const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release'] } });
    const d = await (await harness({ policy, signatures: [counting], maxSignatures: 2 })).decide();
    assert.equal(d.decision, 'accept', d.reason);
    assert.deepEqual(limit, [2]);
    const strangers = await (await harness({ policy, signatures: [new MemorySource('registry', flood)], maxSignatures: 2 })).decide();
    assert.equal(strangers.decision, 'reject');
    assert.match(strangers.reason, /2 signature\(s\) found/);
  });

  it('signatures from several sources are pooled', async () => {
    const policy = scopePolicy({ action: 'verify', signatures: { keys: ['release', 'security'], threshold: 2 } });
    const sources = [
      new MemorySource('registry', [await cosignSignature(KEYS.release)]),
      new MemorySource('oci-layout:/l', [await bundleSignature(KEYS.security)]),
    ];
    const d = await (await harness({ policy, signatures: sources })).decide();
    assert.equal(d.decision, 'accept', d.reason);
    assert.equal(d.reason, `accepted ${SUBJECT}: signed by release, security (scope ${REPO})`);
  });
});
