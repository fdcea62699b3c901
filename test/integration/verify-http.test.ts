/**
 * signetd's HTTP socket for the shell verifier, spoken to raw: what a broken or hostile client gets
 * (a status and one line, never a crash or a hang), and the same admission control as gRPC VerifyImage,
 * seen through the shell verifier (503 → RESOURCE_EXHAUSTED, fail closed). Real signetd, real registry.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { startHostileRegistry, type HostileRegistry } from '../helpers/hostile-registry.js';
import { pushImage } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { runVerifier, socketFor } from '../helpers/verifier.js';

/** Send `request` as raw bytes (optionally leaving the connection open), and read until the server closes or `ms` pass. */
function raw(socket: string, request: string | Buffer, options: { end?: boolean; ms?: number } = {}): Promise<{ text: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const s = connect(socket);
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ text, ms: Date.now() - started });
    }, options.ms ?? 5000);
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text, ms: Date.now() - started });
    });
    s.write(request);
    if (options.end !== false) s.end();
  });
}

describe('signetd verifier HTTP socket', function () {
  this.timeout(60_000);
  const key = makeTestKey();
  let registry: HostileRegistry;
  let daemon: DaemonHandle;
  let socket: string;
  let image: { name: string; descriptor: { mediaType: string; digest: string; size: number } };

  before(async () => {
    registry = await startHostileRegistry();
    const client = new RegistryClient({ insecureRegistries: [registry.host] });
    const repo = { registry: registry.host, repository: 'http/app' };
    const pushed = await pushImage(client, repo, 'v1');
    await signImageCosign(client, repo, pushed.digest, key.signer, { dockerReference: `${registry.host}/http/app` });
    image = { name: `${registry.host}/http/app:v1`, descriptor: { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size } };
    // No caches: each decision walks the registry (the overload case needs a decision that takes time).
    daemon = await startDaemon({
      insecureRegistries: [registry.host],
      extraConfig: 'cacheTTL: 0s\nnegativeCacheTTL: 0s\ncontentCacheSize: 0\nmaxConcurrentDecisions: 1\nmaxQueuedDecisions: 0',
    });
    key.writePublic(join(daemon.dir, 'release.pub'));
    daemon.writePolicy('policy.yaml', {
      apiVersion: 'signet/v1',
      keys: { release: { file: join(daemon.dir, 'release.pub') } },
      scopes: { [registry.host]: { action: 'verify', formats: ['cosign'], signatures: { keys: ['release'] } } },
    });
    await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
    socket = socketFor('sh', daemon.socket);
  });
  after(async () => {
    await daemon?.stop();
    await registry?.stop();
  });
  afterEach(() => registry.reset());

  const status = (text: string): string => /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? `no status in ${JSON.stringify(text.slice(0, 200))}`;
  const body = (text: string): string => text.slice(text.indexOf('\r\n\r\n') + 4);

  it('answers what is not HTTP with 400, another method with 405, another path with 404', async () => {
    assert.equal(status((await raw(socket, 'hello\r\n\r\n')).text), '400');
    assert.equal(status((await raw(socket, '\x1b[2J\x00\xff\r\n\r\n')).text), '400');
    assert.equal(status((await raw(socket, 'GET /v1/verify HTTP/1.1\r\nhost: x\r\n\r\n')).text), '405');
    const other = await raw(socket, 'POST /v1/other HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n');
    assert.equal(status(other.text), '404');
    assert.match(body(other.text), /^signetd serves POST \/v1\/verify here$/);
  });

  it('refuses a declared body over the limit at once with 413, without reading it', async () => {
    const r = await raw(socket, 'POST /v1/verify HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n', { end: false });
    assert.equal(status(r.text), '413');
    assert.match(body(r.text), /larger than 1 MiB/);
  });

  it('answers a body that stops coming with 400 within about 2 s', async () => {
    const r = await raw(socket, 'POST /v1/verify HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nname=\r\n', { end: false, ms: 6000 });
    assert.equal(status(r.text), '400');
    assert.match(body(r.text), /stdin was not closed within 2000 ms/);
    assert.ok(r.ms < 4000, `answered after ${r.ms} ms`);
  });

  it('escapes what it quotes: an unknown field with control characters is described, a bad value never echoed raw', async () => {
    const form = 'name=a&digest=b&%1b%5b2J=1';
    const r = await raw(socket, `POST /v1/verify HTTP/1.1\r\nhost: x\r\ncontent-length: ${form.length}\r\n\r\n${form}`);
    assert.equal(status(r.text), '400');
    assert.equal(body(r.text), 'a field with an unknown name');
    const digest = `name=a&digest=${encodeURIComponent('\x1b]0;x\x07')}&stdin-media-type=x&descriptor=x`;
    const d = await raw(socket, `POST /v1/verify HTTP/1.1\r\nhost: x\r\ncontent-length: ${digest.length}\r\n\r\n${digest}`);
    assert.equal(status(d.text), '400');
    assert.doesNotMatch(d.text, /[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]/);
    assert.match(body(d.text), /-digest "\\x1b\]0;x\\x07" is not a sha256 or sha512 digest/);
  });

  it('sheds a decision beyond the bounds with 503: the shell verifier fails closed saying RESOURCE_EXHAUSTED', async () => {
    registry.reset();
    registry.on(/\/manifests\/sha256-/, { kind: 'delay', ms: 1500 });
    const slow = runVerifier({ kind: 'sh', socket, name: image.name, descriptor: image.descriptor });
    await waitFor(() => registry.seen.some((s) => s.path.includes('/manifests/sha256-')), 'the first decision to reach the registry');
    const shed = await runVerifier({ kind: 'sh', socket, name: image.name, descriptor: image.descriptor });
    assert.equal(shed.code, 1, shed.stdout);
    assert.match(shed.stdout, /^RESOURCE_EXHAUSTED: signetd is overloaded: 1 decisions in progress and 0 waiting .*fail closed\)$/);
    assert.ok(shed.ms < 1500, `refused after ${shed.ms} ms`);
    const first = await slow;
    assert.equal(first.code, 0, first.stdout);
  });

  it('still serves after all of it, and a slow peer holding connections open does not hold up a verifier', async () => {
    const idle = await Promise.all(
      Array.from(
        { length: 50 },
        () =>
          new Promise<ReturnType<typeof connect>>((resolve) => {
            const s = connect(socket, () => resolve(s));
            s.on('error', () => undefined);
          }),
      ),
    );
    try {
      const r = await runVerifier({ kind: 'sh', socket, name: image.name, descriptor: image.descriptor });
      assert.equal(r.code, 0, r.stdout);
      assert.match(r.stdout, /accepted/);
    } finally {
      for (const s of idle) s.destroy();
    }
    assert.equal(daemon.proc.exitCode, null, daemon.log());
  });

  it('will not start when another process serves its verify socket: exit 1 naming it, and no gRPC socket left behind', async () => {
    const other = await startDaemon({ noWait: true, extraConfig: `verifySocket: ${socket}` });
    try {
      const code = await new Promise<number | null>((r) => other.proc.once('exit', (c) => r(c)));
      assert.equal(code, 1, other.log());
      assert.match(other.log(), new RegExp(`another process is serving ${socket.replace(/[.]/g, '\\.')}`));
      assert.equal(existsSync(other.socket), false, 'the gRPC socket it bound first is removed');
      const r = await runVerifier({ kind: 'sh', socket, name: image.name, descriptor: image.descriptor });
      assert.equal(r.code, 0, `the first signetd still answers: ${r.stdout}`);
    } finally {
      await other.stop();
    }
  });
});
