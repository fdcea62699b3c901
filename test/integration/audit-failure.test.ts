/**
 * The audit trail is never lost silently: a write failure (full disk, here /dev/full) is logged once
 * per episode, counted, shown in `signet status` and as Health NOT_SERVING, and with the default
 * `auditFailure: reject` a decision that cannot be recorded is refused with a reason saying why.
 * The file is reopened after errors, after rotation (logrotate's `create`), when deleted, and on SIGHUP.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../src/daemon/grpc-server.js';
import { SIGNET, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { runVerifier } from '../helpers/verifier.js';

const run = promisify(execFile);
const POLICY = { apiVersion: 'signet/v1', default: { action: 'accept' } };
let n = 0;
/** One decision through the verifier, as containerd asks; an accept scope needs no registry. */
const decide = (d: DaemonHandle) =>
  runVerifier({
    socket: d.socket,
    name: `127.0.0.1:1/app:v${++n}`,
    descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${n.toString(16).padStart(64, '0')}`, size: 1 },
  });

async function health(d: DaemonHandle): Promise<string> {
  const root = loadProtos() as any;
  const h = new root.grpc.health.v1.Health(`unix://${d.socket}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((res, rej) => h.Check({ service: '' }, (e: Error | null, r: { status: string }) => (e ? rej(e) : res(r.status))));
  } finally {
    h.close();
  }
}

async function status(d: DaemonHandle): Promise<{ code: number; stdout: string }> {
  return run(process.execPath, [SIGNET, 'status', '--socket', d.socket]).then(
    (r) => ({ code: 0, stdout: r.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
  );
}

const lines = (file: string) =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];

describe('audit log failures', function () {
  this.timeout(30_000);
  let daemon: DaemonHandle | undefined;
  const cleanups: Array<() => void> = [];
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    for (const c of cleanups.splice(0)) c();
  });

  /** signetd whose audit log path is a symlink we can point at /dev/full (a full disk) and back. */
  async function withFullDisk(extraConfig = ''): Promise<{ d: DaemonHandle; real: string; heal: () => void }> {
    // The audit log path is a symlink we point at /dev/full (a full disk), then at a real file.
    const dir = mkdtempSync(join(tmpdir(), 'signet-audit-'));
    const link = join(dir, 'audit.log');
    symlinkSync('/dev/full', link);
    const d = await startDaemon({ policy: POLICY, extraConfig: `auditLog: ${link}\n${extraConfig}` });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    await waitFor(() => d.log().includes('policy loaded'), 'the policy');
    const real = join(dir, 'audit-real.log');
    return {
      d,
      real,
      heal: () => {
        writeFileSync(real, '');
        unlinkSync(link);
        symlinkSync(real, link);
      },
    };
  }

  it('refuses decisions it cannot record (auditFailure: reject), says why, logs once, shows it, and recovers when the disk has room', async () => {
    const { d, real, heal } = await withFullDisk();
    daemon = d;
    const refused = [await decide(d), await decide(d), await decide(d)];
    for (const r of refused) {
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /cannot be recorded in the audit log .*ENOSPC.*auditFailure: reject/);
    }
    assert.equal(
      d
        .log()
        .split('\n')
        .filter((l) => l.includes('cannot write the audit log')).length,
      1,
      'one log line per episode',
    );
    assert.equal(await health(d), 'NOT_SERVING');
    const s = await status(d);
    assert.equal(s.code, 1, 'status exits 1 while the audit log fails');
    assert.match(s.stdout, /audit\s+FAILING since \S+: ENOSPC.*3 records lost; every image is refused/);

    heal();
    await new Promise((r) => setTimeout(r, 1100)); // the file is looked at again at most once a second
    const ok = await decide(d);
    assert.equal(ok.code, 0, ok.stdout);
    assert.equal(lines(real).length, 1, 'the record is in the file at the path now');
    assert.equal(await health(d), 'SERVING');
    assert.match(d.log(), /audit log writable again/);
    const after = await status(d);
    assert.equal(after.code, 0);
    assert.match(after.stdout, /audit\s+\S+ {2}\d+ records, 3 lost earlier/);
  });

  it('allows decisions on, unrecorded, with auditFailure: allow (and still reports the failure)', async () => {
    const { d } = await withFullDisk('auditFailure: allow');
    daemon = d;
    const r = await decide(d);
    assert.equal(r.code, 0, r.stdout);
    assert.equal(await health(d), 'NOT_SERVING');
    assert.match((await status(d)).stdout, /FAILING.*decisions go on unrecorded \(auditFailure: allow\)/);
  });

  it("follows logrotate's create rotation and a deleted file: new records go to the file at the path", async () => {
    daemon = await startDaemon({ policy: POLICY });
    const d = daemon;
    await waitFor(() => d.log().includes('policy loaded'), 'the policy');
    await decide(d);
    assert.equal(lines(d.auditLog).length, 1);
    renameSync(d.auditLog, `${d.auditLog}.1`);
    writeFileSync(d.auditLog, ''); // logrotate create
    await new Promise((r) => setTimeout(r, 1100));
    await decide(d);
    assert.equal(lines(`${d.auditLog}.1`).length, 1, 'the rotated file keeps the old record only');
    assert.equal(lines(d.auditLog).length, 1, 'the new record is in the new file');

    rmSync(d.auditLog);
    await new Promise((r) => setTimeout(r, 1100));
    await decide(d);
    assert.equal(lines(d.auditLog).length, 1, 'a deleted log is recreated');
  });

  it('reopens the file on SIGHUP at once', async () => {
    daemon = await startDaemon({ policy: POLICY });
    const d = daemon;
    await waitFor(() => d.log().includes('policy loaded'), 'the policy');
    await decide(d);
    renameSync(d.auditLog, `${d.auditLog}.1`);
    d.proc.kill('SIGHUP');
    await waitFor(() => existsSync(d.auditLog), 'the reopened file');
    await decide(d);
    assert.equal(lines(d.auditLog).length, 1);
    assert.equal(lines(`${d.auditLog}.1`).length, 1);
  });
});
