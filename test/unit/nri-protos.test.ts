/**
 * signet describes the NRI and ttrpc messages it exchanges in proto/nri/api.proto and
 * proto/ttrpc/request.proto. Checked here, field by field:
 *  - against the upstream files Debian ships (golang-github-containerd-nri-dev 0.8.0,
 *    golang-github-containerd-ttrpc-dev), with test/helpers/proto-compare.ts;
 *  - against the NRI API compiled into the containerd binaries the integration tests run (the Go
 *    protobuf runtime embeds each .proto file's descriptor): every field and method signet uses must
 *    be in 2.x's, and in 1.7's except the ones NRI added in 0.7 — which 1.7 leaves unset.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { PROTO_DIR } from '../../src/proto-dir.js';
import { CONTAINERD_BIN, requireDebianParts, UPSTREAM_PROTOS } from '../helpers/debian-parts.js';
import { allTypes, compareProtos, loadRoot } from '../helpers/proto-compare.js';

const ours = (files: string[]) => loadRoot(files, (t) => (t.startsWith('google/protobuf/') ? t : join(PROTO_DIR, t)));

/** Fields of ours that NRI added after 0.6 (containerd 1.7.24 as Debian builds it has NRI 0.6). */
const SINCE_NRI_07 = [
  'nri.pkg.api.v1alpha1.ConfigureRequest.registration_timeout',
  'nri.pkg.api.v1alpha1.ConfigureRequest.request_timeout',
  'nri.pkg.api.v1alpha1.SynchronizeRequest.more',
  'nri.pkg.api.v1alpha1.SynchronizeResponse.more',
];

/**
 * The FileDescriptorProto of `name` that the Go protobuf runtime embeds in `binary`, as a protobufjs
 * root: found by its first field (the file name) and read field by field up to the first byte that
 * cannot continue it.
 */
function embeddedDescriptor(binary: string, name: string): protobuf.Root {
  const bytes = readFileSync(binary);
  const needle = Buffer.concat([Buffer.from([0x0a, name.length]), Buffer.from(name)]);
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + 1)) {
    const r = protobuf.Reader.create(new Uint8Array(bytes.buffer, bytes.byteOffset + at, Math.min(1 << 20, bytes.length - at)));
    let end = 0;
    try {
      while (r.pos < r.len) {
        const tag = r.uint32();
        const field = tag >>> 3;
        const wire = tag & 7;
        if (field < 1 || field > 14 || (wire !== 0 && wire !== 2)) break;
        r.skipType(wire);
        end = r.pos;
      }
    } catch {
      /* ran off the end of the descriptor */
    }
    const fd = descriptor.FileDescriptorProto.decode(new Uint8Array(bytes.buffer, bytes.byteOffset + at, end));
    if ((fd as unknown as { messageType: unknown[] }).messageType.length > 10)
      return withMaps((protobuf.Root as unknown as { fromDescriptor(d: object): protobuf.Root }).fromDescriptor({ file: [fd] }));
  }
  throw new Error(`${binary}: no embedded descriptor for ${name}`);
}

/** A descriptor spells `map<k, v> f` as `repeated FEntry f` with a nested FEntry { key = 1; value = 2 }: make it a map again. */
function withMaps(root: protobuf.Root): protobuf.Root {
  for (const t of allTypes(root)) {
    if (!(t instanceof protobuf.Type)) continue;
    for (const f of [...t.fieldsArray]) {
      const entry = t.nested?.[f.type.split('.').pop()!];
      if (!f.repeated || !(entry instanceof protobuf.Type) || !entry.name.endsWith('Entry')) continue;
      const key = entry.fields['key'];
      const value = entry.fields['value'];
      if (!key || !value || key.id !== 1 || value.id !== 2) continue;
      t.remove(f);
      t.add(new protobuf.MapField(f.name, f.id, key.type, value.type));
    }
  }
  return root;
}

describe('NRI and ttrpc protos (ours vs. upstream)', () => {
  before(() => requireDebianParts());

  it("NRI: every message, field and method of ours is upstream (Debian's NRI 0.8.0) with the same number and type", () => {
    const upstream = loadRoot([join(UPSTREAM_PROTOS, 'github.com/containerd/nri/pkg/api/api.proto')], (t) => t);
    upstream.resolveAll();
    const mine = ours(['nri/api.proto']);
    mine.resolveAll();
    const { problems, checked } = compareProtos(mine, upstream);
    assert.deepEqual(problems, []);
    for (const must of [
      'nri.pkg.api.v1alpha1.Container.annotations',
      'nri.pkg.api.v1alpha1.PodSandbox.annotations',
      'nri.pkg.api.v1alpha1.PodSandbox.namespace',
      'nri.pkg.api.v1alpha1.ConfigureResponse.events',
      'nri.pkg.api.v1alpha1.RegisterPluginRequest.plugin_idx',
      'nri.pkg.api.v1alpha1.Plugin/CreateContainer',
      'nri.pkg.api.v1alpha1.Plugin/StateChange',
      'nri.pkg.api.v1alpha1.Runtime/RegisterPlugin',
      'nri.pkg.api.v1alpha1.SynchronizeResponse.more',
    ]) {
      assert.ok(checked.includes(must), `${must} was not checked`);
    }
    // The event numbers signet computes its subscription from.
    const ev = upstream.lookupEnum('nri.pkg.api.v1alpha1.Event').values;
    const mineEv = mine.lookupEnum('nri.pkg.api.v1alpha1.Event').values;
    assert.deepEqual({ ...mineEv }, { ...ev });
  });

  it('NRI: the check fails on a wrong field number or a method that does not exist (the check can fail)', () => {
    const upstream = loadRoot([join(UPSTREAM_PROTOS, 'github.com/containerd/nri/pkg/api/api.proto')], (t) => t);
    upstream.resolveAll();
    const mine = ours(['nri/api.proto']);
    mine.lookupType('nri.pkg.api.v1alpha1.Container').fields['annotations']!.id = 7;
    mine.lookupService('nri.pkg.api.v1alpha1.Plugin').add(new protobuf.Method('ValidateContainer', 'rpc', 'Empty', 'Empty'));
    mine.resolveAll();
    const { problems } = compareProtos(mine, upstream);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems.join('\n'), /Container\.annotations: field number: ours 7, upstream 6/);
    assert.match(problems.join('\n'), /Plugin\/ValidateContainer is not a method upstream/);
  });

  it("ttrpc: Request and Response as upstream; Response.status is google.rpc.Status, as ttrpc-go's generated code uses", () => {
    const dir = join(UPSTREAM_PROTOS, 'github.com/containerd/ttrpc');
    const upstream = loadRoot([join(dir, 'request.proto')], (t) => (existsSync(join(dir, t)) ? join(dir, t) : t));
    upstream.resolveAll();
    const mine = ours(['ttrpc/request.proto']);
    mine.resolveAll();
    const { problems, checked } = compareProtos(mine, upstream);
    // Debian's request.proto imports a stub proto/status.proto (a top-level `Status { int32 code = 1; }`);
    // the Go code generated from it uses google.golang.org/genproto/googleapis/rpc/status, i.e. google.rpc.Status.
    assert.deepEqual(problems, ['ttrpc.Response.status: type: ours .google.rpc.Status, upstream .Status']);
    assert.match(readFileSync(join(dir, 'request.pb.go'), 'utf8'), /status "google\.golang\.org\/genproto\/googleapis\/rpc\/status"/);
    const stub = upstream.lookupType('.Status').fields['code']!;
    const real = mine.lookupType('google.rpc.Status').fields['code']!;
    assert.deepEqual([stub.id, stub.type], [real.id, real.type], "the stub's code field is google.rpc.Status's");
    for (const must of ['ttrpc.Request.service', 'ttrpc.Request.method', 'ttrpc.Request.payload', 'ttrpc.Request.timeout_nano', 'ttrpc.Response.payload'])
      assert.ok(checked.includes(must), must);
  });

  for (const line of ['2.x', '1.7'] as const) {
    it(`NRI as compiled into containerd ${line}: every field and method signet uses${line === '1.7' ? ', except those added in NRI 0.7' : ''}`, function () {
      this.timeout(30_000);
      const compiled = embeddedDescriptor(join(CONTAINERD_BIN[line], 'containerd'), 'pkg/api/api.proto');
      compiled.resolveAll();
      const mine = ours(['nri/api.proto']);
      mine.resolveAll();
      const { problems } = compareProtos(mine, compiled);
      const expected = line === '1.7' ? SINCE_NRI_07.map((f) => `${f} is not a field upstream`) : [];
      assert.deepEqual(problems.sort(), expected.sort());
      // Neither knows the pod-sandbox update or validation hooks of NRI 0.10+.
      const plugin = compiled.lookupService('nri.pkg.api.v1alpha1.Plugin');
      assert.deepEqual(Object.keys(plugin.methods).sort(), [
        'Configure',
        'CreateContainer',
        'Shutdown',
        'StateChange',
        'StopContainer',
        'Synchronize',
        'UpdateContainer',
      ]);
      assert.ok(allTypes(compiled).length > 30);
    });
  }
});
