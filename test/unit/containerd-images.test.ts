import assert from 'node:assert/strict';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import type { Decision, VerifyRequest } from '../../src/engine/decision.js';
import type { ContainerdImage } from '../../src/containerd/client.js';
import { decodeEvent } from '../../src/containerd/events.js';
import { decideGroup, groupByTarget, isImageId, mapLimit } from '../../src/containerd/image-verdicts.js';
import { isUndecided } from '../../src/containerd/node-enforcer.js';
import { PROTO_DIR } from '../../src/proto-dir.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const ID = `sha256:${'c'.repeat(64)}`;
const record = (name: string, digest = D1, namespace = 'k8s.io'): ContainerdImage => ({
  namespace,
  name,
  labels: {},
  target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 10 },
});

/** A stand-in for the engine: accepts names listed in `accept`, refuses the rest with `code`. */
function engine(accept: string[], code: Decision['code'] = 'SIGNATURE_NOT_FOUND') {
  const asked: string[] = [];
  const decide = async (r: VerifyRequest): Promise<Decision> => {
    asked.push(r.name);
    const ok = accept.includes(r.name);
    return {
      ok,
      decision: ok ? 'accept' : 'reject',
      reason: ok ? `accepted ${r.name}` : `rejected ${r.name}: no signatures found`,
      ...(ok ? {} : { code }),
      name: r.name,
      image: r.name,
      digest: r.descriptor.digest,
      mediaType: r.descriptor.mediaType,
      scope: 's',
      signatures: [],
      warnings: [],
      policyGeneration: 'sha256:gen',
      durationMs: 1,
    };
  };
  return { decide, asked };
}

describe('image records on a node (pure part)', () => {
  it('tells image IDs from names', () => {
    assert.equal(isImageId(ID), true);
    assert.equal(isImageId('127.0.0.1:5000/a/b:v1'), false);
    assert.equal(isImageId(`127.0.0.1:5000/a/b@${D1}`), false);
  });

  it('groups the records of one image by namespace and target', () => {
    const groups = groupByTarget([record('a:1'), record(ID), record('b:1', D2), record('a:1', D1, 'default')]);
    assert.deepEqual(
      groups.map((g) => g.map((i) => `${i.namespace}/${i.name}`)),
      [['k8s.io/a:1', `k8s.io/${ID}`], ['k8s.io/b:1'], ['default/a:1']],
    );
  });

  it('decides each name with the engine, and an ID by its names: accepted when one name is', async () => {
    const { decide, asked } = engine(['r/a:1']);
    const verdicts = await decideGroup([record(ID), record('r/a:1'), record(`r/a@${D1}`)], decide, () => 'gen');
    assert.deepEqual(asked, ['r/a:1', `r/a@${D1}`], 'the ID is never given to the engine as a name');
    const byName = Object.fromEntries(verdicts.map((v) => [v.image.name, v.decision]));
    assert.equal(byName['r/a:1']!.ok, true);
    assert.equal(byName[`r/a@${D1}`]!.ok, false);
    assert.equal(byName[ID]!.ok, true);
    assert.match(byName[ID]!.reason, /the ID of r\/a:1, which is accepted/);
  });

  it('refuses an ID whose names are all refused, with their reason and code', async () => {
    const { decide } = engine([]);
    const verdicts = await decideGroup([record('r/a:1'), record(ID)], decide, () => 'gen');
    const id = verdicts.find((v) => v.image.name === ID)!.decision;
    assert.equal(id.ok, false);
    assert.equal(id.code, 'SIGNATURE_NOT_FOUND');
    assert.match(id.reason, /the ID of r\/a:1, which is refused: rejected r\/a:1: no signatures found/);
  });

  it('refuses an ID without any name as unnamed (nothing the policy could check)', async () => {
    const { decide, asked } = engine(['anything']);
    const [v] = await decideGroup([record(ID)], decide, () => 'sha256:policy');
    assert.deepEqual(asked, []);
    assert.equal(v!.decision.ok, false);
    assert.equal(v!.decision.code, 'IMAGE_UNNAMED');
    assert.equal(v!.decision.policyGeneration, 'sha256:policy');
  });

  it('tells refusals that mean "could not check" from verdicts', async () => {
    const { decide: down } = engine([], 'REGISTRY_UNAVAILABLE');
    const { decide: unsigned } = engine([], 'SIGNATURE_NOT_FOUND');
    assert.equal(isUndecided((await decideGroup([record('r/a:1')], down, () => ''))[0]!.decision), true);
    assert.equal(isUndecided((await decideGroup([record('r/a:1')], unsigned, () => ''))[0]!.decision), false);
    const { decide: ok } = engine(['r/a:1']);
    assert.equal(isUndecided((await decideGroup([record('r/a:1')], ok, () => ''))[0]!.decision), false);
  });

  it('maps with bounded concurrency, keeping order', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n));
      running--;
      return n * 10;
    });
    assert.deepEqual(out, [50, 10, 40, 20, 30]);
    assert.equal(peak, 2);
  });
});

describe('containerd event envelopes', () => {
  const types = protobuf.loadSync(join(PROTO_DIR, 'containerd/events/image.proto'));
  const value = (type: string, name: string) => Buffer.from(types.lookupType(type).encode({ name }).finish());

  it('reads the image name of /images/create and /images/update, as grpc-js hands them over', () => {
    const e = decodeEvent({
      namespace: 'k8s.io',
      topic: '/images/create',
      timestamp: { seconds: 1795766929, nanos: 571156126 },
      event: { type_url: 'containerd.services.images.v1.ImageCreate', value: value('containerd.services.images.v1.ImageCreate', 'r/a:1') },
    });
    assert.deepEqual(e, { namespace: 'k8s.io', topic: '/images/create', time: new Date(1795766929571), imageName: 'r/a:1' });
    const u = decodeEvent({
      namespace: 'default',
      topic: '/images/update',
      event: { typeUrl: 'types.containerd.io/containerd.services.images.v1.ImageUpdate', value: value('containerd.services.images.v1.ImageUpdate', 'r/b:2') },
    });
    assert.equal(u?.imageName, 'r/b:2');
  });

  it('carries no name when the payload is of another type, does not decode, or the envelope is not one', () => {
    assert.equal(
      decodeEvent({
        namespace: 'n',
        topic: '/images/create',
        event: { type_url: 'containerd.services.images.v1.ImageDelete', value: value('containerd.services.images.v1.ImageDelete', 'x') },
      })?.imageName,
      undefined,
    );
    assert.equal(
      decodeEvent({
        namespace: 'n',
        topic: '/images/create',
        event: { type_url: 'containerd.services.images.v1.ImageCreate', value: Buffer.from([0x0a, 0xff]) },
      })?.imageName,
      undefined,
    );
    assert.equal(decodeEvent({ namespace: 'n', topic: '/tasks/start', event: null })?.imageName, undefined);
    assert.equal(decodeEvent(null), undefined);
    assert.equal(decodeEvent({ topic: 5 }), undefined);
  });
});
