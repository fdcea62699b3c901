/** signet policy check / explain / schema: the operator's tools to change a policy safely. */
import { generateKeyPairSync } from 'node:crypto';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, SIGNET } from '../helpers/daemon.js';

const signet = (args: string[]) => {
  const r = spawnSync(process.execPath, [SIGNET, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('signet policy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'signet-policy-cli-'));
  const good = join(dir, 'good');
  const bad = join(dir, 'bad');
  before(() => {
    mkdirSync(good);
    mkdirSync(bad);
    const soon = new Date(Date.now() + 5 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    // policy check reads every key file the policy names: they must exist.
    for (const k of ['old', 'new', 'gone'])
      writeFileSync(join(dir, `${k}.pub`), generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(
      join(good, 'keys.yaml'),
      `apiVersion: signet/v1\nkeys:\n  old: { file: ${join(dir, 'old.pub')}, notAfter: "${soon}" }\n  new: { file: ${join(dir, 'new.pub')} }\n  gone: { file: ${join(dir, 'gone.pub')}, revoked: true }\n`,
    );
    writeFileSync(
      join(good, 'scopes.yaml'),
      'apiVersion: signet/v1\ndefault: { action: reject }\nscopes:\n  registry.example.com/prod:\n    action: verify\n    signatures: { keys: [old, new, gone], threshold: 1 }\n    rejectIfSignedBy: [gone]\n  registry.example.com: { action: accept }\n',
    );
    writeFileSync(
      join(bad, 'a.yaml'),
      'apiVersion: signet/v1\nscopes:\n  registry.example.com/prod:\n    action: verify\n    signatures: { keys: [ghost], threshold: 2 }\n',
    );
  });

  it('check: exit 0 with a summary for a valid directory', () => {
    const r = signet(['policy', 'check', good]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok: 2 file\(s\), 3 key\(s\), 2 scope\(s\), generation sha256:[a-f0-9]{64}/);
  });

  it('check: exit 1 listing every problem with file and line', () => {
    const r = signet(['policy', 'check', bad, '--output', 'json']);
    assert.equal(r.code, 1);
    const doc = JSON.parse(r.stdout) as { ok: boolean; problems: Array<{ file: string; line: number; message: string }> };
    assert.equal(doc.ok, false);
    assert.deepEqual(
      doc.problems.map((p) => [p.file.endsWith('a.yaml'), p.line]),
      [
        [true, 5],
        [true, 5],
      ],
    );
    const text = signet(['policy', 'check', bad]);
    assert.match(text.stdout, /a\.yaml:5:\d+: key "ghost" is not defined/);
    assert.match(text.stdout, /2 problem\(s\); signetd would keep its last good policy/);
  });

  it('explain: the matched scope, why it beat the others, and which keys count today', () => {
    const r = signet(['policy', 'explain', 'registry.example.com/prod/app:v1', '--policy-dir', good]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /scope {3}registry\.example\.com\/prod {2}\(defined at .*scopes\.yaml:4\)/);
    assert.match(r.stdout, /registry\.example\.com\/prod\/app {2}\(not in the policy\)\n {2}→ registry\.example\.com\/prod {2}matched/);
    assert.match(r.stdout, /counts\s+old .*expires on/);
    assert.match(r.stdout, /IGNORED\s+gone .*revoked/);
    assert.match(r.stdout, /refused if signed by: gone/);
    const other = signet(['policy', 'explain', 'registry.example.com/tools/x', '--policy-dir', good, '--output', 'json']);
    assert.equal((JSON.parse(other.stdout) as { scope: string; action: string }).scope, 'registry.example.com');
  });

  it('explain refuses a broken policy with a pointer to check', () => {
    const r = signet(['policy', 'explain', 'registry.example.com/prod/app', '--policy-dir', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /run signet policy check/);
  });

  it('schema: prints the published JSON Schema', () => {
    const r = signet(['policy', 'schema']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, readFileSync(join(ROOT, 'schema/policy.schema.json'), 'utf8'));
    assert.equal((JSON.parse(r.stdout) as { title: string }).title.includes('signet'), true);
  });
});
