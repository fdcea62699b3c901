/**
 * signet's description of the CRI messages it uses (proto/cri/runtime/v1/api.proto, for
 * `signet doctor --probe`) checked field by field against the upstream api.proto that Debian's
 * golang-k8s-cri-api-dev ships (fetched by the bootstrap).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { PROTO_DIR } from '../../src/proto-dir.js';
import { requireDebianParts, upstreamProto } from '../helpers/debian-parts.js';
import { compareProtos, loadRoot } from '../helpers/proto-compare.js';

const OURS = 'cri/runtime/v1/api.proto';
const UPSTREAM = upstreamProto('k8s.io/cri-api/pkg/apis/runtime/v1/api.proto');

const loadOurs = (): protobuf.Root => loadRoot([join(PROTO_DIR, OURS)], (target) => target);

describe('CRI protos (ours vs. upstream k8s.io/cri-api, as Debian ships it)', () => {
  let upstream: protobuf.Root;
  before(() => {
    requireDebianParts();
    upstream = loadRoot([UPSTREAM], (target) => target);
    upstream.resolveAll();
  });

  it('describes only messages and methods that exist upstream, with the same fields, numbers and shapes', () => {
    const ours = loadOurs();
    ours.resolveAll();
    const { problems, checked } = compareProtos(ours, upstream);
    assert.deepEqual(problems, []);
    for (const must of [
      'runtime.v1.ImageService/PullImage',
      'runtime.v1.ImageService/ImageStatus',
      'runtime.v1.ImageService/RemoveImage',
      'runtime.v1.ImageSpec.image',
      'runtime.v1.PullImageRequest.image',
      'runtime.v1.PullImageResponse.image_ref',
      'runtime.v1.ImageStatusRequest.image',
      'runtime.v1.ImageStatusResponse.image',
      'runtime.v1.Image.id',
      'runtime.v1.Image.repo_digests',
      'runtime.v1.RemoveImageRequest.image',
    ]) {
      assert.ok(checked.includes(must), `${must} was not checked`);
    }
  });

  it('reports a wrong field number, a wrong type and a streaming method (the check can fail)', () => {
    const ours = loadOurs();
    ours.lookupType('runtime.v1.PullImageRequest').fields['image']!.id = 3;
    ours.lookupType('runtime.v1.Image').fields['size']!.type = 'int64';
    ours.lookupService('runtime.v1.ImageService').methods['PullImage']!.responseStream = true;
    ours.resolveAll();
    const { problems } = compareProtos(ours, upstream);
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems.join('\n'), /PullImageRequest\.image: field number: ours 3, upstream 1/);
    assert.match(problems.join('\n'), /Image\.size: type: ours int64, upstream uint64/);
    assert.match(problems.join('\n'), /PullImage: response stream/);
  });

  it('reports a field or a method that upstream does not have', () => {
    const ours = loadOurs();
    ours.lookupType('runtime.v1.ImageSpec').add(new protobuf.Field('colour', 30, 'string'));
    ours.lookupService('runtime.v1.ImageService').add(new protobuf.Method('PullImages', 'rpc', 'PullImageRequest', 'PullImageResponse'));
    ours.resolveAll();
    const { problems } = compareProtos(ours, upstream);
    assert.deepEqual(problems.sort(), ['runtime.v1.ImageService/PullImages is not a method upstream', 'runtime.v1.ImageSpec.colour is not a field upstream']);
  });

  it("a PullImageRequest we encode is what upstream decodes, and upstream's full Image decodes with our fields", () => {
    const ours = loadOurs();
    const bytes = ours
      .lookupType('runtime.v1.PullImageRequest')
      .encode({ image: { image: '127.0.0.1:5000/prod/app:v1' } })
      .finish();
    const theirs = upstream.lookupType('runtime.v1.PullImageRequest');
    assert.deepEqual(theirs.toObject(theirs.decode(bytes)), { image: { image: '127.0.0.1:5000/prod/app:v1' } });

    const full = {
      image: {
        id: `sha256:${'c'.repeat(64)}`,
        repo_tags: ['a/b:1'],
        repo_digests: [`a/b@sha256:${'d'.repeat(64)}`],
        size: 1234,
        username: 'root',
        pinned: true,
        uid: { value: 0 },
      },
      info: { x: 'y' },
    };
    const upstreamBytes = upstream.lookupType('runtime.v1.ImageStatusResponse').encode(full).finish();
    const mine = ours.lookupType('runtime.v1.ImageStatusResponse');
    assert.deepEqual(mine.toObject(mine.decode(upstreamBytes), { longs: Number }), {
      image: { id: full.image.id, repo_tags: full.image.repo_tags, repo_digests: full.image.repo_digests, size: 1234 },
    });
  });

  it('loads with @grpc/proto-loader (as the client does)', () => {
    const def = protoLoader.loadSync(OURS, { includeDirs: [PROTO_DIR] });
    assert.ok(def['runtime.v1.ImageService']);
  });
});
