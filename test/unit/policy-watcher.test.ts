/**
 * Hot reload against a real directory and chokidar: edits, broken edits, recovery, deletes,
 * rename-into-place, kubectl's symlink swap, bursts, a directory that appears later.
 * Every wait is bounded by the 2 s the issue allows for an edit to take effect.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SignetError } from '../../src/errors.js';
import { buildPolicy, loadPolicyDir, PolicyLoadError } from '../../src/policy/load.js';
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
  recovered: Policy[] = [];
  readonly handlers = {
    onPolicy: (p: Policy) => {
      this.policies.push(p);
      this.current = p;
    },
    onError: (e: SignetError) => {
      this.errors.push(e);
    },
    onRecovered: (p: Policy) => {
      this.recovered.push(p);
    },
  };
  async until(what: string, predicate: () => boolean, ms = EDIT_DEADLINE_MS): Promise<number> {
    const start = Date.now();
    while (!predicate()) {
      if (Date.now() - start > ms)
        assert.fail(
          `not within ${ms} ms: ${what}; policies: ${this.policies.map((p) => Object.keys(p.scopes).join(',')).join(' | ')}; errors: ${this.errors.map((e) => e.message).join(' | ')}`,
        );
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

/**
 * Issue 11 item 3: after the directory was swapped, unreadable for a moment, or deleted and recreated,
 * the watch must come back by itself: each case ends with two edits that must both take effect (the
 * first right after the disturbance, the second once things settled, which only a live watch sees).
 * The periodic rescan is left at its 30 s default here, far beyond these deadlines, so it is the
 * watch that is tested; the rescan has tests of its own below.
 */
describe('policy-watcher: the watch survives what config management and operators do', function () {
  this.timeout(15_000);
  let root: string;
  let dir: string;
  let rec: Recorder;
  let watcher: PolicyWatcher | undefined;
  const file = (name: string, d = dir) => join(d, name);
  const start = async (options: ConstructorParameters<typeof PolicyWatcher>[2] = {}): Promise<Policy | undefined> => {
    watcher = new PolicyWatcher(dir, rec.handlers, options);
    return watcher.start();
  };
  /** Two edits after a disturbance, both must take effect: the second proves the watch is alive again. */
  const editsTakeEffect = async (what: string) => {
    writeFileSync(file('policy.yaml'), policyText('edit1.example.com'));
    await rec.until(`the first edit after ${what}`, () => rec.hasScope('edit1.example.com'), 3000);
    await sleep(300);
    writeFileSync(file('policy.yaml'), policyText('edit2.example.com'));
    await rec.until(`the second edit after ${what}`, () => rec.hasScope('edit2.example.com'), 3000);
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'signet-policy-survive-'));
    dir = join(root, 'policy.d');
    mkdirSync(dir);
    rec = new Recorder();
  });
  afterEach(async () => {
    await watcher?.close();
    watcher = undefined;
    rmSync(root, { recursive: true, force: true });
  });

  it('rename-swap (mv policy.d policy.old; mv policy.new policy.d), the old directory kept', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    await start();
    const next = join(root, 'policy.new');
    mkdirSync(next);
    writeFileSync(file('policy.yaml', next), policyText('ghcr.io'));
    renameSync(dir, join(root, 'policy.old'));
    renameSync(next, dir);
    await rec.until('the swapped-in directory', () => rec.hasScope('ghcr.io'));
    await editsTakeEffect('the swap');
    // The old directory is no longer the policy: an edit there changes nothing.
    writeFileSync(join(root, 'policy.old', 'policy.yaml'), policyText('old.example.com'));
    await sleep(500);
    assert.ok(rec.hasScope('edit2.example.com'));
    assert.deepEqual(rec.errors, []);
  });

  it('rename-swap with the old directory removed at once', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    await start();
    const next = join(root, 'policy.new');
    mkdirSync(next);
    writeFileSync(file('policy.yaml', next), policyText('ghcr.io'));
    renameSync(dir, join(root, 'policy.old'));
    renameSync(next, dir);
    rmSync(join(root, 'policy.old'), { recursive: true });
    await rec.until('the swapped-in directory', () => rec.hasScope('ghcr.io'));
    await editsTakeEffect('the swap');
  });

  it('deleted and recreated at once (rm -rf; mkdir; write)', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    await start();
    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    writeFileSync(file('policy.yaml'), policyText('ghcr.io'));
    await rec.until('the recreated directory', () => rec.hasScope('ghcr.io'));
    await editsTakeEffect('the re-creation');
  });

  it('deleted, missing for a while (reported), then recreated', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    const good = await start();
    rmSync(dir, { recursive: true });
    await rec.until('the missing-directory error', () => rec.errors.some((e) => e.code === 'POLICY_NOT_FOUND'));
    assert.equal(rec.current, good);
    mkdirSync(dir);
    await editsTakeEffect('the re-creation');
  });

  it('unreadable for a moment, as root sees it: the directory replaced by a plain file, then put back', async () => {
    // As root, chmod 000 does not stop reading (the next test runs the watcher unprivileged for that);
    // a file where the directory was makes readdir fail (ENOTDIR) for root too.
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    const good = await start();
    renameSync(dir, join(root, 'aside'));
    writeFileSync(dir, 'not a directory\n');
    await rec.until('the unreadable-directory error', () => rec.errors.length > 0);
    assert.match(rec.errors[0]!.message, /cannot read the policy directory: (ENOTDIR|ENOENT)/);
    assert.equal(rec.current, good);
    unlinkSync(dir);
    renameSync(join(root, 'aside'), dir);
    await editsTakeEffect('the directory came back');
  });

  it('reload() (SIGHUP) restores the watch, not only the policy', async () => {
    writeFileSync(file('policy.yaml'), policyText('quay.io'));
    await start();
    const next = join(root, 'policy.new');
    mkdirSync(next);
    writeFileSync(file('policy.yaml', next), policyText('ghcr.io'));
    renameSync(dir, join(root, 'policy.old'));
    renameSync(next, dir);
    await watcher!.reload();
    assert.ok(rec.hasScope('ghcr.io'));
    await editsTakeEffect('SIGHUP');
  });

  describe('chmod 000 then back, with the watcher running unprivileged (uid 65534 when the tests run as root)', () => {
    const CHILD = fileURLToPath(new URL('../helpers/policy-watcher-child.js', import.meta.url));
    let child: ChildProcess | undefined;
    let lines: Array<{ started?: boolean; scopes?: string[]; error?: string; code?: string }>;

    afterEach(() => {
      child?.stdin?.end();
      child?.kill();
      child = undefined;
    });

    const startChild = async () => {
      lines = [];
      chmodSync(root, 0o755);
      const asNobody = process.getuid?.() === 0;
      if (asNobody) {
        chownSync(dir, 65534, 65534);
        chownSync(file('policy.yaml'), 65534, 65534);
      }
      child = spawn(process.execPath, [CHILD, dir], { stdio: ['pipe', 'pipe', 'inherit'], ...(asNobody ? { uid: 65534, gid: 65534 } : {}) });
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buf.slice(0, nl)) as (typeof lines)[number]);
          buf = buf.slice(nl + 1);
        }
      });
      await waitLine('the child to start', (l) => l.started === true);
    };
    const waitLine = async (what: string, predicate: (l: (typeof lines)[number]) => boolean, ms = 3000) => {
      const start = Date.now();
      while (!lines.some(predicate)) {
        if (Date.now() - start > ms) assert.fail(`not within ${ms} ms: ${what}; child said: ${JSON.stringify(lines)}`);
        if (child?.exitCode !== null) assert.fail(`the watcher process exited (${String(child?.exitCode)}) before ${what}: ${JSON.stringify(lines)}`);
        await sleep(10);
      }
    };
    const lastScopes = () => [...lines].reverse().find((l) => l.scopes)?.scopes ?? [];
    const childEditsTakeEffect = async (what: string) => {
      writeFileSync(file('policy.yaml'), policyText('edit1.example.com'));
      await waitLine(`the first edit after ${what}`, () => lastScopes()[0] === 'edit1.example.com');
      await sleep(300);
      writeFileSync(file('policy.yaml'), policyText('edit2.example.com'));
      await waitLine(`the second edit after ${what}`, () => lastScopes()[0] === 'edit2.example.com');
    };

    it('unreadable long enough to be noticed: reported, then edits take effect again', async () => {
      writeFileSync(file('policy.yaml'), policyText('quay.io'));
      await startChild();
      assert.deepEqual(lastScopes(), ['quay.io']);
      chmodSync(dir, 0o000);
      await waitLine('the EACCES error', (l) => /EACCES/.test(l.error ?? ''));
      chmodSync(dir, 0o755);
      await childEditsTakeEffect('chmod 755');
    });

    it('unreadable for a few milliseconds only', async () => {
      writeFileSync(file('policy.yaml'), policyText('quay.io'));
      await startChild();
      chmodSync(dir, 0o000);
      await sleep(5);
      chmodSync(dir, 0o755);
      await sleep(300);
      await childEditsTakeEffect('a brief chmod 000');
    });
  });
});

describe('policy-watcher: the periodic rescan (policyRescanInterval)', function () {
  this.timeout(10_000);
  let dir: string;
  let rec: Recorder;
  let watcher: PolicyWatcher | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'signet-policy-rescan-'));
    rec = new Recorder();
  });
  afterEach(async () => {
    await watcher?.close();
    watcher = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads at every rescan, events or not: a change nothing reported is in force within the interval', async () => {
    // The load reads no file, so no watch can see this change: only the rescan can.
    let scope = 'quay.io';
    let loads = 0;
    const load = async () => {
      loads++;
      return buildPolicy([{ path: join(dir, 'policy.yaml'), text: policyText(scope) }]);
    };
    const options = { rescanMs: 200, load };
    watcher = new PolicyWatcher(dir, rec.handlers, options);
    await watcher.start();
    assert.ok(rec.hasScope('quay.io'));
    scope = 'ghcr.io';
    await rec.until('the rescan', () => rec.hasScope('ghcr.io'), 1000);
    const before = loads;
    await sleep(700);
    assert.ok(loads >= before + 2, `${loads - before} rescans in 700 ms`);
    assert.equal(rec.policies.length, 2, 'an unchanged policy is not handed over again');
    assert.deepEqual(rec.errors, []);
  });

  it('reports a failure once, not at every rescan, and says when it is over (same policy as before: onRecovered)', async () => {
    let broken = false;
    const load = async () => {
      if (broken) throw new PolicyLoadError([{ file: join(dir, 'bad.yaml'), line: 1, message: 'broken' }]);
      return buildPolicy([{ path: join(dir, 'policy.yaml'), text: policyText('quay.io') }]);
    };
    const options = { rescanMs: 100, load };
    watcher = new PolicyWatcher(dir, rec.handlers, options);
    const good = await watcher.start();
    broken = true;
    await rec.until('the failure', () => rec.errors.length > 0, 1000);
    await sleep(600);
    assert.equal(rec.errors.length, 1, rec.errors.map((e) => e.message).join(' | '));
    broken = false;
    await rec.until('the recovery', () => rec.recovered.length > 0, 1000);
    assert.equal(rec.recovered[0]!.generation, good!.generation);
    assert.equal(rec.policies.length, 1);
  });

  it('a broken file removed again: the error is over (onRecovered), the policy is the same', async () => {
    writeFileSync(join(dir, 'policy.yaml'), policyText('quay.io'));
    watcher = new PolicyWatcher(dir, rec.handlers);
    await watcher.start();
    writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: signet/v1\nscopes: [\n');
    await rec.until('the error', () => rec.errors.length > 0);
    unlinkSync(join(dir, 'bad.yaml'));
    await rec.until('the recovery', () => rec.recovered.length > 0);
    assert.equal(rec.policies.length, 1);
  });
});
