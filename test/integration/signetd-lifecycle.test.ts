/** signetd's own life: bad configuration, a socket already served, no policy yet, a clean stop. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIGNETD, startDaemon, waitFor } from '../helpers/daemon.js';
import { runVerifier } from '../helpers/verifier.js';

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
      const run = await runVerifier({ socket: daemon.socket, name: 'registry.example.com/app:v1', descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1 } });
      assert.equal(run.code, 1);
      assert.match(run.stdout, /no valid trust policy is loaded/);
      daemon.writePolicy('p.yaml', { apiVersion: 'signet/v1', default: { action: 'accept' } });
      await waitFor(async () => (await runVerifier({ socket: daemon.socket, name: 'registry.example.com/app:v1', descriptor: { mediaType: 'x', digest, size: 1 } })).code === 0, 'the policy to load', 3000);
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
});
