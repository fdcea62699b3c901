import assert from 'node:assert/strict';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isVersionRequest, parseDurationMs, parseStdinDescriptor, parseVerifierArgs, UsageError } from '../../src/verifier/contract.js';
import { decodeJudgement, encodeVerifyImageRequest } from '../../src/verifier/wire.js';
import { ROOT, VERIFIER } from '../helpers/daemon.js';

const D = `sha256:${'e'.repeat(64)}`;
const MT = 'application/vnd.oci.descriptor.v1+json';

describe('verifier argv (containerd bindir contract)', () => {
  it('reads the seven arguments containerd passes, in Go flag syntax', () => {
    assert.deepEqual(parseVerifierArgs(['-name', 'nginx', '-digest', D, '-stdin-media-type', MT]), { name: 'nginx', digest: D, stdinMediaType: MT });
    assert.deepEqual(parseVerifierArgs([`--digest=${D}`, '-name=a/b:1', '--stdin-media-type', MT]), { name: 'a/b:1', digest: D, stdinMediaType: MT });
  });
  const bad: Array<[string, string[], RegExp]> = [
    ['no arguments', [], /missing -name/],
    ['a missing value', ['-name'], /needs a value/],
    ['an unknown flag', ['-name', 'a', '-digest', D, '-stdin-media-type', MT, '-verbose', 'x'], /unknown flag/],
    ['a repeated flag', ['-name', 'a', '-name', 'b', '-digest', D, '-stdin-media-type', MT], /given twice/],
    ['a bad digest', ['-name', 'a', '-digest', 'sha256:xyz', '-stdin-media-type', MT], /not a sha256/],
    ['another stdin media type', ['-name', 'a', '-digest', D, '-stdin-media-type', 'text/plain'], /not supported/],
    ['a positional argument', ['nginx'], /unexpected argument/],
  ];
  for (const [what, argv, re] of bad) {
    it(`rejects ${what}`, () =>
      assert.throws(
        () => parseVerifierArgs(argv),
        (e: Error) => e instanceof UsageError && re.test(e.message),
      ));
  }
});

describe('verifier -version (for signet doctor)', () => {
  it('is asked with -version or --version alone', () => {
    assert.equal(isVersionRequest(['-version']), true);
    assert.equal(isVersionRequest(['--version']), true);
    assert.equal(isVersionRequest([]), false);
    assert.equal(isVersionRequest(['-version', '-name', 'a']), false);
    assert.equal(isVersionRequest(['-versions']), false);
  });
  it("mixed with containerd's flags it is an unknown flag, not a version request", () => {
    assert.throws(() => parseVerifierArgs(['-version', '-name', 'a', '-digest', D, '-stdin-media-type', MT]), /unknown flag "-version"/);
  });
  it('the built verifier prints "signet-verifier <package version>" and exits 0 without reading stdin', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['-version', '--version']) {
      const res = spawnSync(process.execPath, [VERIFIER, flag], { encoding: 'utf8', timeout: 10_000, stdio: ['pipe', 'pipe', 'pipe'] });
      assert.equal(res.status, 0, res.stderr);
      assert.equal(res.stdout, `signet-verifier ${version}\n`);
    }
  });
});

describe('verifier stdin descriptor', () => {
  it('accepts the descriptor containerd writes', () => {
    const d = parseStdinDescriptor(`${JSON.stringify({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: D, size: 1234 })}\n`, D);
    assert.deepEqual(d, { mediaType: 'application/vnd.oci.image.index.v1+json', digest: D, size: 1234, annotations: {} });
  });
  it('rejects a descriptor for another digest', () => {
    assert.throws(() => parseStdinDescriptor(JSON.stringify({ mediaType: 'x', digest: `sha256:${'f'.repeat(64)}`, size: 1 }), D), /does not match -digest/);
  });
  for (const [what, text] of [
    ['not JSON', '{'],
    ['no size', JSON.stringify({ mediaType: 'x', digest: D })],
    ['negative size', JSON.stringify({ mediaType: 'x', digest: D, size: -1 })],
    ['an array', '[]'],
    ['empty', ''],
  ]) {
    it(`rejects ${what}`, () => assert.throws(() => parseStdinDescriptor(text!, D), UsageError));
  }
  it('parses deadlines', () => {
    assert.equal(parseDurationMs('8s'), 8000);
    assert.equal(parseDurationMs('250ms'), 250);
    assert.throws(() => parseDurationMs('8'), UsageError);
  });
});

describe('verifier wire format agrees with the .proto', () => {
  const root = protobuf.loadSync(join(ROOT, 'proto/signet/v1/verifier.proto'));
  const Request = root.lookupType('signet.v1.VerifyImageRequest');
  const Judgement = root.lookupType('signet.v1.Judgement');

  it('encodes VerifyImageRequest as protobufjs decodes it', () => {
    const bytes = encodeVerifyImageRequest('registry.example.com/app:v1', {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: D,
      size: 2 ** 40 + 3,
      annotations: { a: 'b' },
    });
    const decoded = Request.toObject(Request.decode(bytes), { longs: Number }) as Record<string, any>;
    assert.equal(decoded['name'], 'registry.example.com/app:v1');
    assert.deepEqual(decoded['descriptor'], { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D, size: 2 ** 40 + 3, annotations: { a: 'b' } });
  });

  it('decodes a full Judgement encoded by protobufjs, skipping fields it does not need', () => {
    const msg = Judgement.fromObject({
      ok: true,
      reason: 'accepted ✓',
      decision: 'accept',
      scope: 's',
      signatures: [{ format: 'cosign', valid: true }],
      durationMs: 1.5,
      code: '',
    });
    assert.deepEqual(decodeJudgement(Buffer.from(Judgement.encode(msg).finish())), { ok: true, reason: 'accepted ✓' });
    assert.deepEqual(decodeJudgement(Buffer.alloc(0)), { ok: false, reason: '' });
  });

  it('rejects truncated input', () => {
    const full = Buffer.from(Judgement.encode(Judgement.fromObject({ ok: false, reason: 'rejected because' })).finish());
    assert.throws(() => decodeJudgement(full.subarray(0, full.length - 3)));
  });

  it('loads with @grpc/proto-loader', () => {
    assert.ok(protoLoader.loadSync('signet/v1/verifier.proto', { includeDirs: [join(ROOT, 'proto')] })['signet.v1.ImageVerifier']);
  });
});
