/**
 * signet describes the part of containerd's API it uses in its own proto/containerd/ files. Here
 * every message, field and method there is checked against the upstream .proto files that Debian's
 * golang-github-containerd-containerd-api-dev ships (fetched by the bootstrap): same full names, same
 * field numbers, types, labels and map types, same method shapes.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_DIR } from '../../src/proto-dir.js';
import { requireDebianParts, UPSTREAM_PROTOS } from '../helpers/debian-parts.js';

const OURS = [
  'containerd/types/descriptor.proto',
  'containerd/types/event.proto',
  'containerd/services/images/v1/images.proto',
  'containerd/events/image.proto',
  'containerd/services/events/v1/events.proto',
  'containerd/services/version/v1/version.proto',
  'containerd/services/introspection/v1/introspection.proto',
  'containerd/services/namespaces/v1/namespace.proto',
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
].map((f) => `${UPSTREAM_API}/${f}`);

function loadOurs(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (existsSync(join(PROTO_DIR, target)) ? join(PROTO_DIR, target) : target);
  return root.loadSync(OURS, { keepCase: true });
}

function loadUpstream(): protobuf.Root {
  const root = new protobuf.Root();
  // Imports resolve in Debian's Go source tree; google/rpc/status.proto is not shipped there, and the
  // fieldpath options need descriptor.proto, which protobufjs knows: both are taken from our copy or skipped.
  root.resolvePath = (_origin, target) => {
    if (target === 'google/rpc/status.proto') return join(PROTO_DIR, target);
    if (existsSync(join(UPSTREAM_PROTOS, target))) return join(UPSTREAM_PROTOS, target);
    return target;
  };
  return root.loadSync(UPSTREAM.map((f) => join(UPSTREAM_PROTOS, f)), { keepCase: true });
}

function allTypes(ns: protobuf.NamespaceBase, out: protobuf.ReflectionObject[] = []): protobuf.ReflectionObject[] {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type || nested instanceof protobuf.Service) out.push(nested);
    if (nested instanceof protobuf.Namespace) allTypes(nested, out);
  }
  return out;
}

/** Every difference between our description and upstream, as one line each; also what was checked. */
function compare(ours: protobuf.Root, upstream: protobuf.Root): { problems: string[]; checked: string[] } {
  const problems: string[] = [];
  const checked: string[] = [];
  const same = (what: string, a: unknown, b: unknown): void => {
    if (a !== b) problems.push(`${what}: ours ${String(a)}, upstream ${String(b)}`);
  };
  for (const obj of allTypes(ours)) {
    const name = obj.fullName.slice(1);
    if (name.startsWith('google.')) continue;
    const theirs = upstream.lookup(name);
    if (obj instanceof protobuf.Type) {
      if (!(theirs instanceof protobuf.Type)) {
        problems.push(`${name} is not a message upstream`);
        continue;
      }
      for (const field of obj.fieldsArray) {
        const t: protobuf.Field | undefined = theirs.fields[field.name];
        if (!t) {
          problems.push(`${name}.${field.name} is not a field upstream`);
          continue;
        }
        same(`${name}.${field.name}: field number`, field.id, t.id);
        same(`${name}.${field.name}: type`, field.resolvedType?.fullName ?? field.type, t.resolvedType?.fullName ?? t.type);
        same(`${name}.${field.name}: repeated`, field.repeated, t.repeated);
        same(`${name}.${field.name}: map`, field.map, t.map);
        if (field instanceof protobuf.MapField && t instanceof protobuf.MapField) same(`${name}.${field.name}: map key`, field.keyType, t.keyType);
        checked.push(`${name}.${field.name}`);
      }
    } else if (obj instanceof protobuf.Service) {
      if (!(theirs instanceof protobuf.Service)) {
        problems.push(`${name} is not a service upstream`);
        continue;
      }
      for (const method of obj.methodsArray) {
        const t: protobuf.Method | undefined = theirs.methods[method.name];
        if (!t) {
          problems.push(`${name}/${method.name} is not a method upstream`);
          continue;
        }
        method.resolve();
        t.resolve();
        same(`${name}/${method.name}: request type`, method.resolvedRequestType!.fullName, t.resolvedRequestType!.fullName);
        same(`${name}/${method.name}: response type`, method.resolvedResponseType!.fullName, t.resolvedResponseType!.fullName);
        same(`${name}/${method.name}: response stream`, Boolean(method.responseStream), Boolean(t.responseStream));
        same(`${name}/${method.name}: request stream`, Boolean(method.requestStream), Boolean(t.requestStream));
        checked.push(`${name}/${method.name}`);
      }
    }
  }
  return { problems, checked };
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
    const { problems, checked } = compare(ours, upstream);
    assert.deepEqual(problems, []);
    // What signet relies on; a file dropped from the check would shrink this list.
    for (const must of ['containerd.services.images.v1.Image.target', 'containerd.types.Descriptor.digest', 'containerd.types.Envelope.event', 'containerd.services.images.v1.ImageCreate.name', 'containerd.services.images.v1.DeleteImageRequest.target', 'containerd.services.introspection.v1.Plugin.init_err', 'containerd.services.events.v1.Events/Subscribe', 'containerd.services.images.v1.Images/Delete', 'containerd.services.namespaces.v1.Namespaces/List', 'containerd.services.version.v1.Version/Version']) {
      assert.ok(checked.includes(must), `${must} was not checked`);
    }
  });

  it('reports a wrong field number, a wrong type and a method that is not a stream (the check can fail)', () => {
    const ours = loadOurs();
    ours.lookupType('containerd.services.images.v1.Image').fields['target']!.id = 4;
    ours.lookupType('containerd.types.Descriptor').fields['size']!.type = 'int32';
    ours.lookupService('containerd.services.events.v1.Events').methods['Subscribe']!.responseStream = false;
    ours.resolveAll();
    const { problems } = compare(ours, upstream);
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems.join('\n'), /Image\.target: field number: ours 4, upstream 3/);
    assert.match(problems.join('\n'), /Descriptor\.size: type: ours int32, upstream int64/);
    assert.match(problems.join('\n'), /Subscribe: response stream/);
  });

  it('encodes an image record that upstream decodes field for field', () => {
    const ours = loadOurs();
    const record = { name: 'docker.io/library/busybox:latest', labels: { a: 'b' }, target: { media_type: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 1234, annotations: { x: 'y' } } };
    const bytes = ours.lookupType('containerd.services.images.v1.Image').encode(record).finish();
    const type = upstream.lookupType('containerd.services.images.v1.Image');
    assert.deepEqual(type.toObject(type.decode(bytes), { longs: Number }), record);
  });
});
