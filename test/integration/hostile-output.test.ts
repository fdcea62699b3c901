/**
 * Forged and unbounded output: a registry that answers with terminal escape sequences and huge error
 * texts, and names full of them, must reach no output raw or unbounded — not the verifier's stdout
 * (what containerd shows), not the audit line, not the daemon log, not `signet verify` (text, JSON,
 * error messages), not `signet policy test`, not `signet status`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, verifierServiceClient } from '../../src/daemon/grpc-server.js';
import { SIGNET, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { startHostileRegistry, type HostileRegistry } from '../helpers/hostile-registry.js';
import { rawControlAt } from '../helpers/raw-control.js';
import { runVerifier } from '../helpers/verifier.js';

/** Clears the line, goes back to its start and prints a green acceptance, then rings; C1 CSI and a bidi override too. */
const FORGED = '\x1b[2K\r\x1b[32mOK: image accepted\x1b[0m\x07\n\x9b1A\u202e';
const HUGE = 'A'.repeat(1 << 20);
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

/** The CLI as a child, asynchronously: the hostile registry lives in this process and must keep answering. */
function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SIGNET, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

function assertClean(what: string, text: string, maxLine: number): void {
  const at = rawControlAt(text.replace(/\n/g, ''));
  assert.equal(at, undefined, `${what}: raw control character ${at}`);
  for (const line of text.split('\n')) assert.ok(line.length <= maxLine, `${what}: a line of ${line.length} characters`);
}

describe('untrusted text in every output: escaped and bounded', function () {
  this.timeout(60_000);
  let registry: HostileRegistry;
  let daemon: DaemonHandle;
  let image: string;
  let digest: string;
  let policyDir: string;

  before(async () => {
    registry = await startHostileRegistry();
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST_TYPE,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: 2 },
        layers: [],
      }),
    );
    digest = registry.putManifest('app', '1', manifest, MANIFEST_TYPE);
    image = `${registry.host}/app:1`;
    // Everything but the image itself: signature tags, referrers, bad tags — a 400 full of escape sequences.
    registry.on(/^\/v2\/app\/(manifests\/(?!1$|sha256:[a-f0-9]{64}$)|referrers\/)/, {
      kind: 'status',
      status: 400,
      code: `DENIED${FORGED}`,
      message: `${FORGED}${HUGE}`,
    });
    // The image "evil": a HEAD that says too little (so the client GETs the manifest), then a forged 400.
    registry.on(/^\/v2\/evil\//, { kind: 'body', body: Buffer.from('{}'), contentType: 'text/plain' }, { method: 'HEAD' });
    registry.on(/^\/v2\/evil\//, { kind: 'status', status: 400, code: `X${FORGED}`, message: `${FORGED}${HUGE}` }, { method: 'GET' });
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    daemon = await startDaemon({ insecureRegistries: [registry.host] });
    policyDir = daemon.policyDir;
    writeFileSync(join(daemon.dir, 'ci.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    daemon.writePolicy(
      'policy.yaml',
      `apiVersion: signet/v1\nkeys:\n  ci: { file: ${join(daemon.dir, 'ci.pub')} }\ndefault:\n  action: verify\n  signatures:\n    - { keys: [ci] }\n`,
    );
    await waitFor(() => daemon.log().includes('policy loaded'), 'the policy to load');
  });
  after(async () => {
    await daemon?.stop();
    await registry?.stop();
  });

  it("the verifier prints a refusal quoting the registry's forged error escaped, bounded, on one line", async () => {
    const run = await runVerifier({ socket: daemon.socket, name: image, descriptor: { mediaType: MANIFEST_TYPE, digest, size: 100 } });
    assert.equal(run.code, 1, run.stdout);
    assertClean('verifier stdout', run.stdout, 4096);
    assert.equal(run.stdout.split('\n').length, 1);
    assert.match(
      run.stdout,
      /^rejected .*\\x1b\[2K\\r\\x1b\[32mOK: image accepted\\x1b\[0m\\x07\\n\\x9b1A\\u\{202e\}/,
      'the forged text is visible as what it is',
    );
  });

  it('the verifier and the audit line bound a name full of escape sequences (through gRPC, 1,000,000 characters)', async () => {
    const Verifier = verifierServiceClient(loadProtos());
    const client = new Verifier(`unix://${daemon.socket}`, grpc.credentials.createInsecure()) as unknown as Record<
      string,
      (req: unknown, cb: (e: grpc.ServiceError | null, r: Record<string, unknown>) => void) => void
    >;
    const name = `${registry.host}/app${FORGED}${'n'.repeat(1_000_000)}:1`;
    const before = daemon.audit().length;
    const res = await new Promise<Record<string, unknown>>((resolve, reject) =>
      client['VerifyImage']!({ name, descriptor: { mediaType: MANIFEST_TYPE, digest, size: 1 } }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    (client as unknown as grpc.Client).close();
    assert.equal(res['ok'], false);
    for (const field of ['reason', 'image']) assertClean(`Judgement.${field}`, String(res[field]), 4096);
    assert.match(String(res['reason']), /characters cut/);
    await waitFor(() => daemon.audit().length > before, 'the audit line');
    const lines = readFileSync(daemon.auditLog, 'utf8').split('\n').filter(Boolean);
    const line = lines.at(-1)!;
    assertClean('audit line', line, 32 * 1024);
    const record = JSON.parse(line) as Record<string, string>;
    assert.ok(record['name']!.length <= 512 && record['image']!.length <= 512, 'names cut');
    assert.equal(rawControlAt(JSON.stringify(record).replace(/\\[nrt]/g, '')), undefined, 'nothing raw after decoding either');
  });

  it('every audit line and every daemon log line is clean and bounded', async () => {
    // A policy file an attacker managed to drop, with escape sequences in a key name, for the daemon log.
    daemon.writePolicy('zz-evil.yaml', `apiVersion: signet/v1\nkeys:\n  "evil\\e[32mOK\\x9b\\u202e": { file: /nonexistent${FORGED.replace(/[\\"]/g, '')} }\n`);
    await waitFor(() => /policy not loaded/.test(daemon.log()), 'the reload error', 5000);
    for (const line of readFileSync(daemon.auditLog, 'utf8').split('\n').filter(Boolean)) assertClean('audit line', line, 64 * 1024);
    for (const line of daemon.log().split('\n').filter(Boolean)) assertClean('daemon log line', line, 64 * 1024);
    const status = await run(['status', '--socket', daemon.socket]);
    assertClean('signet status', status.stdout, 8192);
    assert.match(status.stdout, /reload error/);
    const json = await run(['status', '--socket', daemon.socket, '--output', 'json']);
    assertClean('signet status --output json', json.stdout, 1 << 20);
    assert.equal(typeof JSON.parse(json.stdout), 'object');
    daemon.writePolicy('zz-evil.yaml', 'apiVersion: signet/v1\n');
  });

  const signet = (args: string[]) => run([...args, '--policy-dir', policyDir, '--insecure-registry', registry.host]);

  it("signet verify (text and JSON) and policy test print the registry's forged error escaped and bounded", async () => {
    for (const [what, args] of [
      ['verify', ['verify', image]],
      ['verify --output json', ['verify', image, '--output', 'json']],
      ['policy test', ['policy', 'test', image]],
    ] as const) {
      const r = await signet([...args]);
      assert.equal(r.status, 1, `${what}: ${r.stdout}${r.stderr}`);
      assertClean(`signet ${what} stdout`, r.stdout, 8192);
      assertClean(`signet ${what} stderr`, r.stderr, 8192);
      assert.match(r.stdout, /\\x1b\[32mOK: image accepted/, what);
    }
  });

  it("signet verify's error message (the registry refuses the image itself) is escaped and bounded; so is an image name from the command line", async () => {
    const r = await signet(['verify', `${registry.host}/evil:1`]);
    assert.equal(r.status, 1);
    assertClean('signet verify error', r.stderr, 4200);
    assert.match(r.stderr, /^signet verify: REGISTRY_PROTOCOL: .*\\x1b\[2K\\r\\x1b\[32mOK: image accepted/);
    const named = await signet(['verify', `${registry.host}/app:1${FORGED}`]);
    assertClean('signet verify error for a forged name', named.stderr, 4200);
    const explain = await run(['policy', 'explain', `${registry.host}/app${'\x9b'}x:1`, '--policy-dir', policyDir]);
    assertClean('policy explain', explain.stdout + explain.stderr, 8192);
  });
});
