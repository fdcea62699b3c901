/**
 * signet describes the part of containerd's API it uses in its own proto/containerd/ files. Here
 * every message, field and method there is checked against the upstream .proto files that Debian's
 * golang-github-containerd-containerd-api-dev ships (fetched by the bootstrap): same full names, same
 * field numbers, types, labels and map types, same method shapes (test/helpers/proto-compare.ts).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { PROTO_DIR } from '../../src/proto-dir.js';
import { requireDebianParts, UPSTREAM_PROTOS } from '../helpers/debian-parts.js';
import { compareProtos, loadRoot } from '../helpers/proto-compare.js';

const OURS = [
  'containerd/types/descriptor.proto',
  'containerd/types/event.proto',
  'containerd/services/images/v1/images.proto',
  'containerd/events/image.proto',
  'containerd/services/events/v1/events.proto',
  'containerd/services/version/v1/version.proto',
  'containerd/services/introspection/v1/introspection.proto',
  'containerd/services/namespaces/v1/namespace.proto',
  'containerd/services/containers/v1/containers.proto',
];

const UPSTREAM_API = 'github.com/containerd/containerd/api';
const UPSTREAM = [
  'types/descriptor.proto',
  'types/platform.proto',
  'types/event.proto',
  'services/images/v1/images.proto',
  'events/image.proto',
  'services/events/v1/events.proto',
  'services/version/v1/version.proto',
  'services/introspection/v1/introspection.proto',
  'services/namespaces/v1/namespace.proto',
  'services/containers/v1/containers.proto',
].map((f) => `${UPSTREAM_API}/${f}`);

function loadOurs(): protobuf.Root {
  return loadRoot(OURS, (target) => (existsSync(join(PROTO_DIR, target)) ? join(PROTO_DIR, target) : target));
}

function loadUpstream(): protobuf.Root {
  // Imports resolve in Debian's Go source tree; google/rpc/status.proto is not shipped there, and the
  // fieldpath options need descriptor.proto, which protobufjs knows: both are taken from our copy or skipped.
  return loadRoot(
    UPSTREAM.map((f) => join(UPSTREAM_PROTOS, f)),
    (target) => {
      if (target === 'google/rpc/status.proto') return join(PROTO_DIR, target);
      // The fieldpath option's descriptor.proto: protobufjs ships it.
      if (target === 'google/protobuf/descriptor.proto')
        return fileURLToPath(new URL('../../../node_modules/protobufjs/google/protobuf/descriptor.proto', import.meta.url));
      if (existsSync(join(UPSTREAM_PROTOS, target))) return join(UPSTREAM_PROTOS, target);
      return target;
    },
  );
}

describe('containerd API protos (ours vs. upstream, as Debian ships them)', () => {
  let upstream: protobuf.Root;
  before(() => {
    requireDebianParts();
    upstream = loadUpstream();
    upstream.resolveAll();
  });

  it('describes only messages and services that exist upstream, with the same fields, numbers and methods', () => {
    const ours = loadOurs();
    ours.resolveAll();
    const { problems, checked } = compareProtos(ours, upstream);
    assert.deepEqual(problems, []);
    // What signet relies on; a file dropped from the check would shrink this list.
    for (const must of [
      'containerd.services.images.v1.Image.target',
      'containerd.types.Descriptor.digest',
      'containerd.types.Envelope.event',
      'containerd.services.images.v1.ImageCreate.name',
      'containerd.services.images.v1.DeleteImageRequest.target',
      'containerd.services.introspection.v1.Plugin.init_err',
      'containerd.services.events.v1.Events/Subscribe',
      'containerd.services.images.v1.Images/Delete',
      'containerd.services.namespaces.v1.Namespaces/List',
      'containerd.services.version.v1.Version/Version',
      'containerd.services.containers.v1.Container.image',
      'containerd.services.containers.v1.Containers/Get',
    ]) {
      assert.ok(checked.includes(must), `${must} was not checked`);
    }
  });

  it('reports a wrong field number, a wrong type and a method that is not a stream (the check can fail)', () => {
    const ours = loadOurs();
    ours.lookupType('containerd.services.images.v1.Image').fields['target']!.id = 4;
    ours.lookupType('containerd.types.Descriptor').fields['size']!.type = 'int32';
    ours.lookupService('containerd.services.events.v1.Events').methods['Subscribe']!.responseStream = false;
    ours.resolveAll();
    const { problems } = compareProtos(ours, upstream);
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems.join('\n'), /Image\.target: field number: ours 4, upstream 3/);
    assert.match(problems.join('\n'), /Descriptor\.size: type: ours int32, upstream int64/);
    assert.match(problems.join('\n'), /Subscribe: response stream/);
  });

  it('encodes an image record that upstream decodes field for field', () => {
    const ours = loadOurs();
    const record = {
      name: 'docker.io/library/busybox:latest',
      labels: { a: 'b' },
      target: { media_type: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 1234, annotations: { x: 'y' } },
    };
    const bytes = ours.lookupType('containerd.services.images.v1.Image').encode(record).finish();
    const type = upstream.lookupType('containerd.services.images.v1.Image');
    assert.deepEqual(type.toObject(type.decode(bytes), { longs: Number }), record);
  });
});
