/**
 * The sd_notify sender (src/daemon/sd-notify.ts) against systemd's real systemd-notify, received on a
 * datagram socket bound by systemd-socket-activate (test/helpers/notify-receiver.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SdNotifier, type NotifyLog } from '../../src/daemon/sd-notify.js';
import { serviceStatusLine } from '../../src/daemon/service-status.js';
import { waitFor } from '../helpers/daemon.js';
import { startNotifyReceiver, type NotifyReceiver } from '../helpers/notify-receiver.js';
import { RAW_CONTROL } from '../helpers/raw-control.js';

interface Logged {
  level: 'error' | 'warn';
  message: string;
  meta: Record<string, unknown>;
}

function recordingLog(): NotifyLog & { lines: Logged[] } {
  const lines: Logged[] = [];
  return {
    lines,
    error: (message, meta) => lines.push({ level: 'error', message, meta }),
    warn: (message, meta) => lines.push({ level: 'warn', message, meta }),
  };
}

describe('sd_notify through systemd-notify', function () {
  this.timeout(30_000);
  let receiver: NotifyReceiver;

  beforeEach(async () => {
    receiver = await startNotifyReceiver();
  });
  afterEach(async () => {
    await receiver?.stop();
  });

  it('READY=1, RELOADING=1 (with MONOTONIC_USEC), STATUS= and STOPPING=1 arrive in the order sent, one datagram each', async () => {
    const log = recordingLog();
    const n = new SdNotifier(receiver.socket, log);
    assert.equal(n.enabled, true);
    // Not awaited one by one: the notifier keeps the order itself.
    const before = process.hrtime.bigint() / 1000n;
    const sent = await Promise.all([n.ready('serving'), n.reloading('reloading'), n.ready('serving again'), n.stopping('stopping (SIGTERM)')]);
    assert.deepEqual(sent, [true, true, true, true]);
    const m = receiver.messages;
    assert.deepEqual(
      m.map((x) => x.text.replace(/MONOTONIC_USEC=\d+/, 'MONOTONIC_USEC=N')),
      ['READY=1\nSTATUS=serving', 'RELOADING=1\nMONOTONIC_USEC=N\nSTATUS=reloading', 'READY=1\nSTATUS=serving again', 'STOPPING=1\nSTATUS=stopping (SIGTERM)'],
    );
    // CLOCK_MONOTONIC (Node's hrtime on Linux) in µs, taken when the reload was announced.
    const usec = BigInt(m[1]!.fields['MONOTONIC_USEC']!);
    assert.ok(usec >= before && usec <= process.hrtime.bigint() / 1000n, `${usec} µs`);
    // systemd-notify waited for each message to be read (its barrier), so each run was synchronous.
    await waitFor(() => receiver.barriers() === 4, 'four BARRIER=1 datagrams', 3000);
    assert.deepEqual(log.lines, []);
  });

  it('an abstract socket (@name) works the same', async () => {
    const abstract = await startNotifyReceiver({ abstract: true });
    try {
      assert.match(abstract.socket, /^@/);
      const n = new SdNotifier(abstract.socket, recordingLog());
      assert.equal(await n.ready('serving'), true);
      assert.equal(abstract.messages[0]?.text, 'READY=1\nSTATUS=serving');
    } finally {
      await abstract.stop();
    }
  });

  it('a status text cannot add a field: newlines and control characters are escaped, the length bounded', async () => {
    const n = new SdNotifier(receiver.socket, recordingLog());
    const hostile = `reload failed: \nREADY=1\nSTOPPING=1\x1b[31m${'x'.repeat(10_000)}`;
    assert.equal(await n.status(hostile), true);
    const [m] = receiver.messages;
    assert.deepEqual(Object.keys(m!.fields), ['STATUS']);
    assert.doesNotMatch(m!.text.slice('STATUS='.length), RAW_CONTROL);
    assert.ok(m!.text.length < 1100, `${m!.text.length} characters`);
    assert.match(m!.fields['STATUS']!, /^reload failed: \\nREADY=1\\nSTOPPING=1\\x1b\[31mx+…\[\d+ characters cut\]…x+$/);
  });

  it('a status line still waiting is replaced by a newer one; READY=1 and the others never are', async () => {
    const n = new SdNotifier(receiver.socket, recordingLog());
    const results = await Promise.all([n.status('one'), n.status('two'), n.ready('three'), n.status('four'), n.status('five')]);
    // 'one' runs at once; 'two' waits and is replaced by 'four', which is replaced by 'five'.
    assert.deepEqual(
      receiver.messages.map((m) => m.text),
      ['STATUS=one', 'READY=1\nSTATUS=three', 'STATUS=five'],
    );
    assert.deepEqual(results, [true, false, true, false, true]);
  });

  it('without NOTIFY_SOCKET nothing is run and nothing logged; fromEnvironment removes the variable from the environment it read', async () => {
    const log = recordingLog();
    const env: NodeJS.ProcessEnv = { PATH: '/usr/bin:/bin' };
    const off = SdNotifier.fromEnvironment(env, log, { command: '/nonexistent/systemd-notify' });
    assert.equal(off.enabled, false);
    assert.equal(await off.ready('serving'), false);
    await off.settled(1000);
    assert.deepEqual(log.lines, []);
    assert.equal(SdNotifier.fromEnvironment({ NOTIFY_SOCKET: '' }, log).enabled, false);

    const withSocket: NodeJS.ProcessEnv = { NOTIFY_SOCKET: receiver.socket, PATH: '/usr/bin:/bin' };
    const on = SdNotifier.fromEnvironment(withSocket, log);
    assert.equal(on.socket, receiver.socket);
    assert.equal('NOTIFY_SOCKET' in withSocket, false, 'processes signetd starts must not inherit NOTIFY_SOCKET');
    assert.equal(await on.ready('serving'), true);
    assert.equal(receiver.messages.length, 1);
  });

  it('systemd-notify missing while NOTIFY_SOCKET is set: one clear error, no throw, later messages dropped quietly', async () => {
    const log = recordingLog();
    const n = new SdNotifier(receiver.socket, log, { command: '/nonexistent/systemd-notify' });
    assert.equal(await n.ready('serving'), false);
    assert.equal(await n.status('still'), false);
    assert.equal(await n.stopping('bye'), false);
    assert.equal(n.enabled, false);
    assert.equal(log.lines.length, 1, JSON.stringify(log.lines));
    const [line] = log.lines;
    assert.equal(line!.level, 'error');
    assert.match(line!.message, /NOTIFY_SOCKET is set but systemd-notify cannot be run: systemd is not told that signetd is ready/);
    assert.equal(line!.meta['error'], 'ENOENT');
    assert.match(String(line!.meta['fix']), /Debian package systemd/);
    assert.equal(receiver.messages.length, 0);

    // Found in PATH or not at all: the same.
    const empty = mkdtempSync(join(tmpdir(), 'signet-nopath-'));
    try {
      const inPath = new SdNotifier(receiver.socket, recordingLog(), { path: empty });
      assert.equal(await inPath.ready('serving'), false);
      assert.equal(inPath.enabled, false);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('nobody listening at NOTIFY_SOCKET: a warning with systemd-notify’s own words, false, and the next message is still tried', async () => {
    const log = recordingLog();
    const n = new SdNotifier(join(tmpdir(), `absent-${process.pid}.sock`), log);
    assert.equal(await n.ready('serving'), false);
    assert.equal(await n.status('again'), false);
    assert.equal(log.lines.length, 2);
    assert.equal(log.lines[0]!.level, 'warn');
    assert.match(String(log.lines[0]!.meta['stderr']), /No such file or directory/);
    assert.equal(log.lines[0]!.meta['message'], 'READY STATUS');
  });

  it('a sender that hangs is killed after timeoutMs; the queue moves on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signet-hang-'));
    try {
      const hang = join(dir, 'systemd-notify');
      writeFileSync(hang, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
      const log = recordingLog();
      const n = new SdNotifier(receiver.socket, log, { command: hang, timeoutMs: 300 });
      const t0 = Date.now();
      assert.deepEqual(await Promise.all([n.ready('a'), n.stopping('b')]), [false, false]);
      assert.ok(Date.now() - t0 < 5000);
      assert.equal(log.lines.length, 2);
      assert.equal(log.lines[0]!.meta['exit'], 'SIGKILL');
      assert.equal(log.lines[0]!.meta['timeoutMs'], 300);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('settled() waits for the queue, and no longer than its bound', async () => {
    const n = new SdNotifier(receiver.socket, recordingLog());
    void n.ready('a');
    void n.status('b');
    await n.settled(10_000);
    assert.equal(receiver.messages.length, 2);
    const dir = mkdtempSync(join(tmpdir(), 'signet-hang-'));
    try {
      const hang = join(dir, 'systemd-notify');
      writeFileSync(hang, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
      const slow = new SdNotifier(receiver.socket, recordingLog(), { command: hang, timeoutMs: 1500 });
      void slow.stopping('b');
      const t0 = Date.now();
      await slow.settled(200);
      assert.ok(Date.now() - t0 < 2000);
      await slow.settled(10_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the STATUS= line', () => {
  const base = { ready: true, policyGeneration: 'sha256:abc', lastReloadError: '', keys: [] };
  it('names the socket and the policy in force, and says when none is loaded, keys are unusable or a reload failed', () => {
    assert.equal(serviceStatusLine(base, '/run/signet/signetd.sock'), 'serving /run/signet/signetd.sock; policy sha256:abc');
    assert.equal(serviceStatusLine({ ...base, ready: false }, '/s'), 'serving /s; NO POLICY LOADED: every image is rejected');
    assert.equal(
      serviceStatusLine(
        {
          ...base,
          lastReloadError: 'policy.yaml:3: bad',
          keys: [
            { name: 'a', location: 'x', lastError: 'gone' },
            { name: 'b', location: 'y' },
          ],
        },
        '/s',
      ),
      'serving /s; policy sha256:abc; 1 key unusable (signet status); last reload failed, the policy in force stays: policy.yaml:3: bad',
    );
  });
});
