/**
 * signetd under a Type=notify unit, with systemd's side played by a datagram socket at $NOTIFY_SOCKET
 * (test/helpers/notify-receiver.ts): READY=1 only once the gRPC socket answers, RELOADING=1 … READY=1
 * around a SIGHUP reload, STOPPING=1 on SIGTERM, and a clear error (no crash) when systemd-notify is
 * missing. The messages are sent by the real systemd-notify.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, verifierServiceClient } from '../../src/daemon/grpc-server.js';
import { startDaemon, waitFor, waitForSocket, type DaemonHandle } from '../helpers/daemon.js';
import { startNotifyReceiver, type NotifyReceiver } from '../helpers/notify-receiver.js';

const POLICY = { apiVersion: 'signet/v1', default: { action: 'reject' } };

type StatusClient = grpc.Client & {
  Status(request: object, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void): void;
};

/** One Status call, no retry: does signetd answer on its socket right now? */
async function statusNow(socket: string): Promise<Record<string, unknown>> {
  const Client = verifierServiceClient(loadProtos());
  const client = new Client(`unix://${socket}`, grpc.credentials.createInsecure()) as unknown as StatusClient;
  try {
    return await new Promise((resolve, reject) => {
      client.Status({}, { deadline: new Date(Date.now() + 2000) }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  } finally {
    client.close();
  }
}

describe('signetd tells systemd (sd_notify) when it is ready, reloading and stopping', function () {
  this.timeout(60_000);
  let receiver: NotifyReceiver;
  let daemon: DaemonHandle | undefined;

  beforeEach(async () => {
    receiver = await startNotifyReceiver();
  });
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    await receiver?.stop();
  });

  it('READY=1 is its first message and comes once the socket answers with the policy loaded; STATUS= names both', async () => {
    daemon = await startDaemon({ noWait: true, policy: POLICY, env: { NOTIFY_SOCKET: receiver.socket } });
    const ready = await receiver.next((m) => m.fields['READY'] === '1', 20_000);
    // At the moment systemd would start containerd (ordered after signetd), signetd answers, policy loaded.
    const status = await statusNow(daemon.socket);
    assert.equal(status['ready'], true, JSON.stringify(status));
    assert.equal(receiver.messages[0], ready, `messages before READY=1: ${JSON.stringify(receiver.messages.map((m) => m.text))}`);
    assert.match(ready.fields['STATUS']!, new RegExp(`^serving ${daemon.socket}; policy \\S+$`));
    assert.ok(ready.fields['STATUS']!.includes(String(status['policyGeneration'])), ready.text);
    assert.ok(daemon.log().includes('signetd listening'));
    assert.doesNotMatch(daemon.log(), /systemd-notify/, 'nothing went wrong sending');
  });

  it('SIGHUP: RELOADING=1 (MONOTONIC_USEC) then READY=1 whose STATUS says the reload failed and the policy in force stays; SIGTERM: STOPPING=1', async () => {
    daemon = await startDaemon({ policy: POLICY, env: { NOTIFY_SOCKET: receiver.socket } });
    await receiver.next((m) => m.fields['READY'] === '1', 20_000);
    // A broken policy file: the reload keeps the last good policy and says why.
    daemon.writePolicy('broken.yaml', 'apiVersion: signet/v1\ndefault: [not, a, mapping]\n');
    const from = receiver.messages.length;
    daemon.proc.kill('SIGHUP');
    const reloading = await receiver.next((m) => m.fields['RELOADING'] === '1', 15_000, from);
    assert.match(reloading.fields['MONOTONIC_USEC'] ?? '', /^\d+$/);
    assert.match(reloading.fields['STATUS']!, /reloading policy and keys \(SIGHUP\)/);
    const after = receiver.messages.indexOf(reloading);
    const readyAgain = await receiver.next((m) => m.fields['READY'] === '1', 15_000, after + 1);
    assert.match(readyAgain.fields['STATUS']!, /; last reload failed, the policy in force stays: .*broken\.yaml/);
    assert.equal((await statusNow(daemon.socket))['ready'], true);

    const exited = new Promise<number | null>((r) => daemon!.proc.once('exit', (code) => r(code)));
    daemon.proc.kill('SIGTERM');
    const stopping = await receiver.next((m) => m.fields['STOPPING'] === '1', 15_000);
    assert.equal(stopping.fields['STATUS'], 'stopping (SIGTERM)');
    assert.equal(await exited, 0, daemon.log().slice(-2000));
  });

  it('NOTIFY_SOCKET set but no systemd-notify in PATH: signetd serves anyway and says clearly why systemd will not hear READY=1', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'signet-nopath-'));
    try {
      daemon = await startDaemon({ noWait: true, policy: POLICY, env: { NOTIFY_SOCKET: receiver.socket, PATH: empty } });
      await waitForSocket(daemon.socket, daemon.proc, () => daemon!.log());
      await waitFor(() => daemon!.log().includes('systemd-notify cannot be run'), 'the error about systemd-notify', 10_000);
      const line = JSON.parse(
        daemon
          .log()
          .split('\n')
          .find((l) => l.includes('systemd-notify cannot be run'))!,
      ) as Record<string, unknown>;
      assert.equal(line['level'], 'error');
      assert.equal(line['error'], 'ENOENT');
      assert.match(String(line['message']), /systemd is not told that signetd is ready/);
      daemon.proc.kill('SIGHUP');
      await waitFor(
        () =>
          daemon!
            .log()
            .split('\n')
            .filter((l) => l.includes('SIGHUP')).length > 0,
        'the reload',
        10_000,
      );
      assert.equal((await statusNow(daemon.socket))['ready'], true);
      assert.equal(
        daemon
          .log()
          .split('\n')
          .filter((l) => l.includes('systemd-notify')).length,
        1,
        'said once',
      );
      assert.equal(receiver.messages.length, 0);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('without NOTIFY_SOCKET nothing is sent and nothing is said about it', async () => {
    daemon = await startDaemon({ policy: POLICY, env: { NOTIFY_SOCKET: undefined } });
    daemon.proc.kill('SIGHUP');
    await waitFor(() => daemon!.log().includes('SIGHUP'), 'the reload', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(daemon.log(), /systemd-notify|NOTIFY_SOCKET/);
    assert.equal(receiver.messages.length, 0);
  });
});
