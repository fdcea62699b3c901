/**
 * A cached verdict's Judgement is encoded once and answered with duration_ms and cached appended: what a
 * client decodes must be exactly what the field-by-field encoding gives, hostile text escaped alike.
 */
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { cachedJudgementBytes, judgement, loadProtos } from '../../src/daemon/grpc-server.js';
import type { Decision } from '../../src/engine/decision.js';
import { withChanges } from '../../src/util/printable-decision.js';

const FORGED = '\x1b[2K\r\x1b[32mOK\x1b[0m\u202e';

describe('cached Judgement bytes', () => {
  const root = loadProtos() as unknown as { signet: { v1: { ImageVerifier: grpc.ServiceClientConstructor } } };
  const method = root.signet.v1.ImageVerifier.service['VerifyImage']!;
  const serialize = (v: unknown) => method.responseSerialize(v);
  const decode = (b: Buffer) => method.responseDeserialize(b) as Record<string, unknown>;

  const stored: Decision = {
    ok: false,
    decision: 'reject',
    reason: `rejected registry.example.com/app${FORGED}: no signatures found`,
    code: 'SIGNATURE_NOT_FOUND',
    name: 'registry.example.com/app:v1',
    image: 'registry.example.com/app:v1',
    digest: `sha256:${'ef'.repeat(32)}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    scope: 'registry.example.com/app',
    signatures: [{ format: 'cosign', source: `registry${FORGED}#0`, key: 'release', valid: false, reason: 'bad', code: 'SIGNATURE_INVALID' }],
    warnings: [`a warning${FORGED}`],
    policyGeneration: 'sha256:abc',
    durationMs: 12.5,
  };

  it('decodes to what the field-by-field encoding gives, for each answer of one verdict', () => {
    for (const [i, durationMs] of [0, 0.03, 1234.5678].entries()) {
      const answer = withChanges(stored, { name: `registry.example.com/app:t${i}${FORGED}`, durationMs, cached: true });
      const fast = decode(cachedJudgementBytes(answer, serialize));
      assert.deepEqual(fast, decode(serialize(judgement(answer))));
      assert.equal(fast['durationMs'], durationMs);
      assert.equal(fast['cached'], true);
      assert.doesNotMatch(JSON.stringify(fast), /\u001b|\u202e/, 'escaped as every answer is');
    }
  });

  it('a decision that is not a cached answer (cached false, its own fields) is encoded whole the same way', () => {
    const fast = decode(cachedJudgementBytes(stored, serialize));
    assert.deepEqual(fast, decode(serialize(judgement(stored))));
    assert.equal(fast['cached'], false);
    assert.equal(fast['code'], 'SIGNATURE_NOT_FOUND');
  });
});
