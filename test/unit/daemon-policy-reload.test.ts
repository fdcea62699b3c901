/**
 * signetd's view of policy reloads (issue 11 item 3): the reload error in status is about the
 * present, not the past: once the broken file is gone, status says so, even though the policy
 * that loads is the one already in force. And the rescan interval comes from the config.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import { DEFAULT_CONFIG, parseConfig, type DaemonConfig } from '../../src/daemon/config.js';
import { Daemon } from '../../src/daemon/daemon.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, predicate: () => boolean, ms = 2000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > ms) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(10);
  }
}

describe('signetd: policy reload status', function () {
  this.timeout(10_000);
  let root: string;
  let daemon: Daemon | undefined;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'signetd-reload-'));
  });
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    rmSync(root, { recursive: true, force: true });
  });

  it('clears the reload error once the broken file is removed, though the policy in force did not change', async () => {
    const policyDir = join(root, 'policy.d');
    const config: DaemonConfig = {
      ...DEFAULT_CONFIG,
      policyDir,
      auditLog: join(root, 'audit.log'),
      socket: join(root, 's.sock'),
      containerd: { ...DEFAULT_CONFIG.containerd, enabled: false },
    };
    mkdirSync(policyDir);
    writeFileSync(join(policyDir, 'policy.yaml'), 'apiVersion: signet/v1\ndefault: { action: accept }\n');
    daemon = new Daemon(config, winston.createLogger({ silent: true }));
    await daemon.start();
    const generation = daemon.status().policyGeneration;
    assert.notEqual(generation, '');
    writeFileSync(join(policyDir, 'broken.yaml'), 'apiVersion: signet/v1\nscopes: [\n');
    await until('the reload error in status', () => daemon!.status().lastReloadError !== '');
    assert.match(daemon.status().lastReloadError, /broken\.yaml/);
    unlinkSync(join(policyDir, 'broken.yaml'));
    await until('the reload error cleared', () => daemon!.status().lastReloadError === '');
    assert.equal(daemon.status().policyGeneration, generation);
  });

  it('policyRescanInterval: 30 s by default, set in the config, at least 1 s, 0 turns it off', () => {
    const c = DEFAULT_CONFIG as DaemonConfig & { policyRescanIntervalMs: number };
    assert.equal(c.policyRescanIntervalMs, 30_000);
    assert.equal((parseConfig('policyRescanInterval: 5m\n', 'c.yaml') as typeof c).policyRescanIntervalMs, 300_000);
    assert.equal((parseConfig('policyRescanInterval: 0s\n', 'c.yaml') as typeof c).policyRescanIntervalMs, 0);
    assert.throws(() => parseConfig('policyRescanInterval: 10ms\n', 'c.yaml'), /c\.yaml:1: policyRescanInterval: .*at least 1s/);
    assert.throws(() => parseConfig('policyRescanInterval: soon\n', 'c.yaml'), /c\.yaml:1: policyRescanInterval/);
  });
});
