/**
 * Hot reload against a real directory and chokidar: edits, broken edits, recovery, deletes,
 * rename-into-place, kubectl's symlink swap, bursts, a directory that appears later.
 * Every wait is bounded by the 2 s the issue allows for an edit to take effect.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SignetError } from '../../src/errors.js';
import { loadPolicyDir, PolicyLoadError } from '../../src/policy/load.js';
import type { Policy } from '../../src/policy/types.js';
import { PolicyWatcher } from '../../src/policy/watcher.js';

const EDIT_DEADLINE_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const policyText = (scope: string, action = 'accept') => `apiVersion: signet/v1\ndefault: { action: reject }\nscopes:\n  ${scope}: { action: ${action} }\n`;

/** What a daemon does with the handlers: swap the policy in with one assignment, log errors. */
class Recorder {
  current: Policy | undefined;
  policies: Policy[] = [];
  errors: SignetError[] = [];
  readonly handlers = {
    onPolicy: (p: Policy) => {
      this.policies.push(p);
      this.current = p;
    },
    onError: (e: SignetError) => {
      this.errors.push(e);
    },
  };
  async until(what: string, predicate: () => boolean, ms = EDIT_DEADLINE_MS): Promise<number> {
    const start = Date.now();
    while (!predicate()) {
      if (Date.now() - start > ms) assert.fail(`not within ${ms} ms: ${what}; policies: ${this.policies.map((p) => Object.keys(p.scopes).join(',')).join(' | ')}; errors: ${this.errors.map((e) => e.message).join(' | ')}`);
      await sleep(10);
    }
    return Date.now() - start;
  }
  hasScope(scope: string): boolean {
    return this.current?.scopes[scope] !== undefined;
  }
}

describe('policy-watcher', function () {
  this.timeout(10_000);
  let root: string;
  let dir: string;
  let rec: Recorder;
  let watcher: PolicyWatcher | undefined;
  const file = (name: string) => join(dir, name);
  const start = async (): Promise<Policy | undefined> => {
    watcher = new PolicyWatcher(dir, rec.handlers);
    return watcher.start();
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'signet-policy-watch-'));
    dir = join(root, 'policy.d');
    mkdirSync(dir);
    rec = new Recorder();
  });
  afterEach(async () => {
    await watcher?.close();
    watcher = undefined;
    rmSync(root, { recursive: true, force: true });
  });

  it('loads at start, returns the policy and hands it over once', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    const p = await start();
    assert.ok(p?.scopes['quay.io']);
    assert.equal(rec.policies.length, 1);
    assert.equal(rec.current, p);
    assert.deepEqual(rec.errors, []);
  });

  it('an edit takes effect within 2 s', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    await start();
    writeFileSync(file('policy.yaml'), policyText('ghcr.io'));
    const ms = await rec.until('the edit', () => rec.hasScope('ghcr.io'));
    assert.ok(ms < EDIT_DEADLINE_MS);
    assert.equal(rec.policies.length, 2);
    assert.notEqual(rec.policies[0]!.generation, rec.policies[1]!.generation);
  });

  it('a broken edit is reported with file and line and keeps the last good policy; fixing it recovers', async () => {
    writeFileSync(file('a.yaml'), policyText('quay.io'));
    const good = await start();
    writeFileSync(file('a.yaml'), 'apiVersion: signet/v1\nscopes:\n  quay.io:\n    action: allow\n');
    await rec.until('the error', () => rec.errors.length > 0);
    const err = rec.errors[0]!;
    assert.ok(err instanceof PolicyLoadError, String(err));
    assert.equal(err.code, 'POLICY_INVALID');
    assert.equal(err.problems[0]!.file, file('a.yaml'));
    assert.equal(err.problems[0]!.line, 4);
    assert.match(err.message, new RegExp(`${file('a.yaml')}:4:\\d+: "action" must be one of`));
    assert.equal(rec.current, good);
    assert.equal(rec.policies.length, 1);

    writeFileSync(file('a.yaml'), policyText('ghcr.io'));
    await rec.until('the recovery', () => rec.hasScope('ghcr.io'));
    assert.equal(rec.policies.length, 2);
  });

  it('a semantic error in a second file keeps the last good policy', async () => {
    writeFileSync(file('a.yaml'), policyText('quay.io'));
    const good = await start();
    writeFileSync(file('b.yaml'), 'apiVersion: signet/v1\nscopes:\n  quay.io: { action: reject }\n');
    await rec.until('the duplicate scope error', () => rec.errors.length > 0);
    const err = rec.errors[0] as PolicyLoadError;
    assert.equal(err.problems.length, 1, err.message);
    assert.equal(err.problems[0]!.file, file('b.yaml'));
    assert.equal(err.problems[0]!.line, 3);
    assert.match(err.problems[0]!.message, /already defined in .*a\.yaml:4/);
    assert.equal(rec.current, good);
  });

  it('a deleted file takes its scopes away; deleting the last one is an error and keeps the policy', async () => {
    writeFileSync(file('a.yaml'), policyText('quay.io'));
    writeFileSync(file('b.yaml'), 'apiVersion: signet/v1\nscopes:\n  ghcr.io: { action: accept }\n');
    await start();
    assert.ok(rec.hasScope('ghcr.io'));
    unlinkSync(file('b.yaml'));
    await rec.until('the delete', () => !rec.hasScope('ghcr.io'));
    assert.ok(rec.hasScope('quay.io'));
    assert.deepEqual(rec.current!.files, [file('a.yaml')]);
    const kept = rec.current;
    unlinkSync(file('a.yaml'));
    await rec.until('the empty-dir error', () => rec.errors.length > 0);
    assert.equal(rec.errors[0]!.code, 'POLICY_NOT_FOUND');
    assert.equal(rec.current, kept);
  });

  it('sees a file replaced by rename (editors, config management)', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    await start();
    // A half-written temporary file is a dotfile, never loaded.
    writeFileSync(file('.policy.yaml.tmp'), 'apiVersion: signet/v1\nscopes:\n');
    await sleep(30);
    writeFileSync(file('.policy.yaml.tmp'), policyText('ghcr.io'));
    renameSync(file('.policy.yaml.tmp'), file('policy.yaml'));
    await rec.until('the renamed file', () => rec.hasScope('ghcr.io'));
    assert.deepEqual(rec.errors, []);
    // And again: the watch survived the first replacement.
    writeFileSync(file('.policy.yaml.tmp'), policyText('gcr.io'));
    renameSync(file('.policy.yaml.tmp'), file('policy.yaml'));
    await rec.until('the second renamed file', () => rec.hasScope('gcr.io'));
  });

  it("sees kubectl's ConfigMap update (the ..data symlink swapped by rename)", async () => {
    const version = (n: number, scope: string) => {
      mkdirSync(file(`..v${n}`));
      writeFileSync(file(`..v${n}/policy.yaml`), policyText(scope));
      symlinkSync(`..v${n}`, file('..data_tmp'));
      renameSync(file('..data_tmp'), file('..data'));
    };
    version(1, 'quay.io');
    symlinkSync('..data/policy.yaml', file('policy.yaml'));
    await start();
    assert.ok(rec.hasScope('quay.io'));
    version(2, 'ghcr.io');
    rmSync(file('..v1'), { recursive: true });
    await rec.until('the swapped ConfigMap', () => rec.hasScope('ghcr.io'));
  });

  it('a burst of writes ends on the last content, with no load after it settles', async () => {
    writeFileSync(file('policy.yaml'), policyText('r0.example.com'));
    await start();
    for (let i = 1; i <= 30; i++) {
      writeFileSync(file('policy.yaml'), policyText(`r${i}.example.com`));
      await sleep(i % 5 === 0 ? 60 : 3);
    }
    await rec.until('the last write', () => rec.hasScope('r30.example.com'));
    const n = rec.policies.length;
    await sleep(500);
    assert.equal(rec.policies.length, n, 'a policy arrived after the last one');
    assert.deepEqual(Object.keys(rec.current!.scopes), ['r30.example.com']);
    // Debounced: far fewer loads than writes.
    assert.ok(n < 20, `${n} policies for 30 writes`);
  });

  it('serialises reloads: never two at once, and a change during a slow load is loaded after it', async () => {
    let running = 0;
    let maxRunning = 0;
    let loads = 0;
    const slowLoad = async (d: string): Promise<Policy> => {
      running++;
      loads++;
      maxRunning = Math.max(maxRunning, running);
      try {
        const p = await loadPolicyDir(d);
        await sleep(300);
        return p;
      } finally {
        running--;
      }
    };
    writeFileSync(file('policy.yaml'), policyText('r0.example.com'));
    watcher = new PolicyWatcher(dir, rec.handlers, { load: slowLoad });
    await watcher.start();
    writeFileSync(file('policy.yaml'), policyText('r1.example.com'));
    await rec.until('the first load to begin', () => loads === 2);
    // This change arrives while that load sleeps with r1 read: it must be loaded afterwards.
    writeFileSync(file('policy.yaml'), policyText('r2.example.com'));
    await sleep(150);
    writeFileSync(file('policy.yaml'), policyText('r3.example.com'));
    await rec.until('the newest content', () => rec.hasScope('r3.example.com'));
    assert.equal(maxRunning, 1);
    await sleep(500);
    assert.ok(rec.hasScope('r3.example.com'));
  });

  it('does not hand over the same policy again (comment-only change, touch), but does a real change after', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    await start();
    writeFileSync(file('policy.yaml'), `# a comment\n${policyText('quay.io')}`);
    await sleep(300);
    writeFileSync(file('policy.yaml'), `# a comment\n${policyText('quay.io')}`);
    writeFileSync(file('other.json'), '{"apiVersion": "signet/v1"}');
    await sleep(500);
    assert.equal(rec.policies.length, 1);
    assert.deepEqual(rec.errors, []);
    writeFileSync(file('policy.yaml'), policyText('ghcr.io'));
    await rec.until('the real change', () => rec.hasScope('ghcr.io'));
    assert.equal(rec.policies.length, 2);
  });

  it('starts on a directory that does not exist yet, and loads it when it appears', async () => {
    rmSync(dir, { recursive: true });
    assert.equal(await start(), undefined);
    assert.equal(rec.errors[0]!.code, 'POLICY_NOT_FOUND');
    mkdirSync(dir);
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    await rec.until('the new directory', () => rec.hasScope('quay.io'));
  });

  it('starts on an empty directory, and loads the first file written right after start', async () => {
    assert.equal(await start(), undefined);
    assert.equal(rec.errors[0]!.code, 'POLICY_NOT_FOUND');
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    await rec.until('the first file', () => rec.hasScope('quay.io'));
  });

  it('keeps the policy when the directory is removed, and follows it when it comes back', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    const good = await start();
    rmSync(dir, { recursive: true });
    await rec.until('the missing-directory error', () => rec.errors.some((e) => e.code === 'POLICY_NOT_FOUND'));
    assert.equal(rec.current, good);
    mkdirSync(dir);
    writeFileSync(file('policy.yaml'), policyText('ghcr.io'));
    await rec.until('the directory back', () => rec.hasScope('ghcr.io'), 3000);
  });

  it('reload() loads now and waits for it', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    await start();
    writeFileSync(file('policy.yaml'), policyText('ghcr.io'));
    await watcher!.reload();
    assert.ok(rec.hasScope('ghcr.io'));
  });

  it('calls nothing after close', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    await start();
    await watcher!.close();
    writeFileSync(file('policy.yaml'), policyText('ghcr.io'));
    writeFileSync(file('broken.yaml'), 'x: [');
    await sleep(400);
    assert.equal(rec.policies.length, 1);
    assert.deepEqual(rec.errors, []);
  });
});
