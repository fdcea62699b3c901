/**
 * No secret in any output: a PKCS#11 PIN (one with ";", which the old redaction only partly removed)
 * and a registry password, configured the ways an operator configures them, are looked for in every
 * surface — the daemon log, the audit log, `signet status` (text and JSON), `signet policy explain`
 * and `policy test`, `signet verify`, error messages, the verifier's answer — and in what a token realm
 * on another host was sent. None may carry either.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIGNET, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { startHostileRealm, startHostileRegistry, type HostileRegistry } from '../helpers/hostile-registry.js';
import { SOFTHSM_MODULE, softhsmConf } from '../helpers/softhsm.js';
import { runVerifier } from '../helpers/verifier.js';

const PIN = '73;91-PIN-SECRET';
const PASSWORD = 'Reg-pa55-SECRET';
const USER = 'builder';
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

/** Every form a leak could take: the PIN, the part after its ";", the password, Basic's base64 of it. */
const SECRETS = [PIN, 'PIN-SECRET', PASSWORD, 'pa55-SECRET', Buffer.from(`${USER}:${PASSWORD}`).toString('base64'), Buffer.from(PASSWORD).toString('base64')];

function assertNoSecret(surface: string, text: string): void {
  if (process.env['SIGNET_TEST_SHOW']) process.stdout.write(`\n===== ${surface}\n${text.slice(0, 3000)}\n`);
  for (const secret of SECRETS)
    assert.ok(
      !text.includes(secret),
      `${surface} contains a secret (${secret}):\n${text.slice(Math.max(0, text.indexOf(secret) - 300), text.indexOf(secret) + 100)}`,
    );
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SIGNET, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, out });
    });
  });
}

describe('no PIN and no registry password in any output', function () {
  this.timeout(90_000);
  let registry: HostileRegistry;
  let realm: Awaited<ReturnType<typeof startHostileRealm>>;
  let daemon: DaemonHandle;
  let dockerConfig: string;
  let dir: string;
  let digest: string;
  const surfaces: Array<[string, string]> = [];

  before(async () => {
    // A token realm on another host (127.0.0.2): the registry is plain HTTP, so credentials must not go there.
    realm = await startHostileRealm({ body: JSON.stringify({ token: 'tok', expires_in: 300 }) }, { address: '127.0.0.2' });
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
    registry.putManifest('basic', '1', manifest, MANIFEST_TYPE);
    // app: signatures need a Bearer token from the foreign realm; basic: Basic credentials, refused.
    registry.on(/^\/v2\/app\/(manifests\/sha256-|referrers\/)/, { kind: 'challenge', realm: realm.url });
    registry.on(/^\/v2\/basic\/(manifests\/sha256-|referrers\/)/, {
      kind: 'status',
      status: 401,
      code: 'UNAUTHORIZED',
      message: 'who are you',
      headers: { 'www-authenticate': 'Basic realm="hostile"' },
    });
    dir = mkdtempSync(join(tmpdir(), 'signet-secrets-'));
    dockerConfig = join(dir, 'docker-config.json');
    writeFileSync(dockerConfig, JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
    daemon = await startDaemon({
      insecureRegistries: [registry.host],
      env: { SOFTHSM2_CONF: softhsmConf() },
      extraConfig: `pkcs11: { module: ${SOFTHSM_MODULE} }\ndockerConfig: ${dockerConfig}`,
    });
    daemon.writePolicy(
      'policy.yaml',
      [
        'apiVersion: signet/v1',
        'keys:',
        `  hsm: { pkcs11: "pkcs11:token=signet-absent;object=release;type=public?pin-value=${PIN}" }`,
        `  odd: { pkcs11: "pkcs11:token=signet-absent;colour=red?PIN-VALUE=${PIN}" }`,
        `  tok: { pkcs11: "pkcs11:token=signet-absent;object=x?module-path=${SOFTHSM_MODULE}&pin-value=${PIN}", verifyOn: token }`,
        'default:',
        '  action: verify',
        '  signatures:',
        '    - { keys: [hsm, odd, tok] }',
      ].join('\n'),
    );
    await waitFor(() => daemon.log().includes('policy loaded'), 'the policy to load', 10_000);
  });
  after(async () => {
    await daemon?.stop();
    await registry?.stop();
    await realm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the daemon and its verifier: answers, audit lines, daemon log, signet status (text and JSON)', async () => {
    for (const repo of ['app', 'basic']) {
      const v = await runVerifier({ socket: daemon.socket, name: `${registry.host}/${repo}:1`, descriptor: { mediaType: MANIFEST_TYPE, digest, size: 100 } });
      assert.equal(v.code, 1, v.stdout);
      surfaces.push([`verifier (${repo})`, v.stdout + v.stderr]);
    }
    const status = await run(['status', '--socket', daemon.socket]);
    surfaces.push(['signet status', status.out]);
    assert.match(status.out, /pkcs11:token=signet-absent;object=release;type=public/, 'the key is listed, without its PIN');
    surfaces.push(['signet status --output json', (await run(['status', '--socket', daemon.socket, '--output', 'json'])).out]);
    await waitFor(() => daemon.audit().length >= 2, 'the audit lines');
    surfaces.push(['audit log', readFileSync(daemon.auditLog, 'utf8')]);
    surfaces.push(['daemon log', daemon.log()]);
    assert.match(daemon.log(), /key unavailable/);
    for (const [surface, text] of surfaces) assertNoSecret(surface, text);
  });

  it('the command line: policy explain and test, verify (text and JSON), keys and sign errors, a broken config.json', async () => {
    const policyDir = daemon.policyDir;
    const registryArgs = ['--policy-dir', policyDir, '--insecure-registry', registry.host, '--docker-config', dockerConfig];
    const outputs: Array<[string, Promise<{ status: number | null; out: string }>]> = [
      ['policy explain', run(['policy', 'explain', `${registry.host}/app:1`, '--policy-dir', policyDir])],
      ['policy explain --output json', run(['policy', 'explain', `${registry.host}/app:1`, '--policy-dir', policyDir, '--output', 'json'])],
      ['policy test', run(['policy', 'test', `${registry.host}/app:1`, ...registryArgs], { SOFTHSM2_CONF: softhsmConf() })],
      ['verify', run(['verify', `${registry.host}/app:1`, ...registryArgs, '--pkcs11-module', SOFTHSM_MODULE], { SOFTHSM2_CONF: softhsmConf() })],
      ['verify (Basic)', run(['verify', `${registry.host}/basic:1`, ...registryArgs, '--output', 'json'], { SOFTHSM2_CONF: softhsmConf() })],
      [
        'keys list',
        run(['keys', 'list', '--key', `pkcs11:token=signet-absent?pin-value=${PIN}`, '--module', SOFTHSM_MODULE], { SOFTHSM2_CONF: softhsmConf() }),
      ],
      ['keys list (bad URI)', run(['keys', 'list', '--key', `pkcs11:token=signet-absent;colour=red?pin-value=${PIN}`])],
      [
        'sign',
        run(
          [
            'sign',
            `${registry.host}/app:1`,
            '--key',
            `pkcs11:token=signet-absent;object=k?pin-value=${PIN}`,
            '--pkcs11-module',
            SOFTHSM_MODULE,
            '--insecure-registry',
            registry.host,
            '--docker-config',
            dockerConfig,
          ],
          { SOFTHSM2_CONF: softhsmConf() },
        ),
      ],
    ];
    const broken = join(daemon.dir, 'broken-config.json');
    writeFileSync(broken, `{"auths": {"${registry.host}": {"username": "${USER}", "password": "${PASSWORD}"}}`);
    outputs.push([
      'verify with a broken config.json',
      run(['verify', `${registry.host}/app:1`, '--policy-dir', policyDir, '--insecure-registry', registry.host, '--docker-config', broken]),
    ]);
    for (const [surface, pending] of outputs) {
      const r = await pending;
      assert.ok(r.out.length > 0, `${surface} said something`);
      assertNoSecret(`signet ${surface}`, r.out);
    }
    const explain = await outputs[0]![1];
    assert.match(explain.out, /hsm\s+pkcs11:token=signet-absent;object=release;type=public/);
  });

  it('a token realm on another host was never sent the registry password', () => {
    assert.ok(
      registry.seen.some((r) => r.path.startsWith('/v2/app/')),
      'the registry was asked',
    );
    for (const r of realm.seen) assert.equal(r.authorization, undefined, `the realm on 127.0.0.2 got ${r.authorization}`);
    assertNoSecret('requests to the foreign realm', JSON.stringify(realm.seen));
  });
});
