/**
 * SIGHUP at any moment of signetd's life is a reload request, never a death (issue 11 item 6):
 * `systemctl reload` can come while the daemon is still starting (loading policy and keys).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { startDaemon, waitFor } from '../helpers/daemon.js';

describe('signetd: SIGHUP during start-up', function () {
  this.timeout(30_000);

  it('handles SIGHUP before it starts any work: a storm from the moment the handler exists survives', async () => {
    const daemon = await startDaemon({ noWait: true });
    let sent = 0;
    let logBeforeHandler = '';
    try {
      const caught = () => {
        try {
          const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${daemon.proc.pid}/status`, 'utf8'));
          return m !== null && (BigInt(`0x${m[1]}`) & 1n) === 1n;
        } catch {
          return false;
        }
      };
      await waitFor(() => caught() || daemon.proc.exitCode !== null, 'a SIGHUP handler', 10_000);
      logBeforeHandler = daemon.log();
      while (daemon.proc.exitCode === null && daemon.proc.signalCode === null && !(existsSync(daemon.socket) && sent > 20)) {
        daemon.proc.kill('SIGHUP');
        sent++;
        await new Promise((r) => setTimeout(r, 1));
      }
      assert.equal(logBeforeHandler, '', 'signetd was already at work (logging) before it handled SIGHUP');
      assert.equal(daemon.proc.signalCode, null, `killed by ${String(daemon.proc.signalCode)} after ${sent} SIGHUP(s)`);
      await waitFor(() => daemon.log().includes('signetd listening'), 'signetd to listen');
    } finally {
      await daemon.stop();
    }
  });

  it('survives SIGHUPs sent while it is still starting, then serves and reloads once started', async () => {
    // No policy yet: start-up logs "policy not loaded" before it listens, a moment the test can see.
    const daemon = await startDaemon({ noWait: true });
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => daemon.proc.once('exit', (code, signal) => r({ code, signal })));
    try {
      await new Promise<void>((resolve) => {
        const onData = (d: Buffer) => {
          if (!d.toString().includes('policy not loaded')) return;
          daemon.proc.stderr!.off('data', onData);
          // From here until the socket is served, and a little after: a SIGHUP every millisecond.
          const fire = () => {
            if (daemon.proc.exitCode !== null || daemon.proc.signalCode !== null) return resolve();
            daemon.proc.kill('SIGHUP');
            sent++;
            if (existsSync(daemon.socket) && sent > 20) return resolve();
            timer = setTimeout(fire, 1);
          };
          fire();
        };
        daemon.proc.stderr!.on('data', onData);
        daemon.proc.once('exit', () => resolve());
      });
      assert.equal(daemon.proc.signalCode, null, `signetd was killed by ${String(daemon.proc.signalCode)} after ${sent} SIGHUP(s) during start-up`);
      assert.equal(daemon.proc.exitCode, null, `signetd exited (${String(daemon.proc.exitCode)}):\n${daemon.log()}`);
      await waitFor(() => daemon.log().includes('signetd listening'), 'signetd to listen');
      // A policy written now is loaded: the daemon works normally after the storm.
      daemon.writePolicy('p.yaml', { apiVersion: 'signet/v1', default: { action: 'accept' } });
      await waitFor(() => daemon.log().includes('policy loaded'), 'the policy to load');
      daemon.proc.kill('SIGHUP');
      await waitFor(() => (daemon.log().match(/SIGHUP: reloading policy and keys/g) ?? []).length >= 1, 'the reload after start-up');
      assert.equal(daemon.proc.exitCode, null);
    } finally {
      if (timer) clearTimeout(timer);
      void exited;
      await daemon.stop();
    }
  });
});
