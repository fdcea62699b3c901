/** signetd's own life: bad configuration, a socket already served, no policy yet, a clean stop. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIGNETD, startDaemon, waitFor } from '../helpers/daemon.js';
import { runVerifier } from '../helpers/verifier.js';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, verifierServiceClient } from '../../src/daemon/grpc-server.js';

describe('signetd lifecycle', function () {
  this.timeout(30_000);

  it('refuses a broken configuration with one line naming file and line, exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signetd-conf-'));
    writeFileSync(join(dir, 'c.yaml'), 'socket: /tmp/x.sock\nverifyTimout: 5s\n');
    const r = spawnSync(process.execPath, [SIGNETD, '--config', join(dir, 'c.yaml')], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr.trim(), /^signetd: CONFIG_INVALID: .*c\.yaml:2: verifyTimout: unknown setting/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  it('rejects every image, and reports NOT ready, until a valid policy loads', async () => {
    const daemon = await startDaemon({});
    try {
      const digest = `sha256:${'c'.repeat(64)}`;
      const run = await runVerifier({
        socket: daemon.socket,
        name: 'registry.example.com/app:v1',
        descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1 },
      });
      assert.equal(run.code, 1);
      assert.match(run.stdout, /no valid trust policy is loaded/);
      daemon.writePolicy('p.yaml', { apiVersion: 'signet/v1', default: { action: 'accept' } });
      await waitFor(
        async () =>
          (await runVerifier({ socket: daemon.socket, name: 'registry.example.com/app:v1', descriptor: { mediaType: 'x', digest, size: 1 } })).code === 0,
        'the policy to load',
        3000,
      );
    } finally {
      await daemon.stop();
    }
  });

  it('will not take over a socket another signetd is serving', async () => {
    const first = await startDaemon({});
    try {
      const second = spawnSync(process.execPath, [SIGNETD, '--config', first.configPath], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(second.status, 1);
      assert.match(second.stderr, /another process is serving .*signetd\.sock/);
      assert.ok(existsSync(first.socket), 'the first daemon keeps its socket');
    } finally {
      await first.stop();
    }
  });

  it('stops cleanly on SIGTERM and removes its socket', async () => {
    const daemon = await startDaemon({});
    const exited = new Promise<number | null>((r) => daemon.proc.once('exit', (code) => r(code)));
    daemon.proc.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(existsSync(daemon.socket), false);
    await daemon.stop();
  });

  it('never crashes on malformed requests: bad requests get INVALID_ARGUMENT or a rejection, and it keeps serving', async () => {
    const daemon = await startDaemon({ policy: { apiVersion: 'signet/v1', default: { action: 'accept' } } });
    try {
      await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
      const Verifier = verifierServiceClient(loadProtos());
      const c = new Verifier(`unix://${daemon.socket}`, grpc.credentials.createInsecure()) as unknown as Record<
        string,
        (req: unknown, cb: (e: grpc.ServiceError | null, r: Record<string, unknown>) => void) => void
      >;
      const call = (req: unknown) =>
        new Promise<{ err: grpc.ServiceError | null; res: Record<string, unknown> }>((resolve) => c['VerifyImage']!(req, (err, res) => resolve({ err, res })));
      const noDescriptor = await call({ name: 'registry.example.com/app:v1' });
      assert.equal(noDescriptor.err?.code, grpc.status.INVALID_ARGUMENT);
      const noName = await call({ descriptor: { digest: `sha256:${'a'.repeat(64)}` } });
      assert.equal(noName.err?.code, grpc.status.INVALID_ARGUMENT);
      for (const name of ['x'.repeat(100_000), 'UPPER/case:tag', '../../etc/passwd', 'a@sha256:zz', '\u0000']) {
        const r = await call({ name, descriptor: { mediaType: 'x', digest: `sha256:${'a'.repeat(64)}`, size: 1 } });
        assert.equal(r.err, null);
        assert.equal(r.res['ok'], false, `accepted ${name.slice(0, 40)}`);
        assert.equal(r.res['code'], 'INVALID_REFERENCE');
      }
      const badDigest = await call({ name: 'registry.example.com/app:v1', descriptor: { mediaType: 'x', digest: 'md5:abc', size: 1 } });
      assert.equal(badDigest.err?.code, grpc.status.INVALID_ARGUMENT);
      const status = await new Promise<Record<string, unknown>>((resolve, reject) => c['Status']!({}, (e, r) => (e ? reject(e) : resolve(r))));
      assert.equal(status['ready'], true);
      assert.equal(daemon.proc.exitCode, null, 'signetd is still running');
      (c as unknown as grpc.Client).close();
    } finally {
      await daemon.stop();
    }
  });
});
