/**
 * A fleet's policy from the registry, end to end: `signet policy push` (the real CLI) into Debian's
 * docker-registry, the real signetd polling it (`policySource`, 1 s interval), asked over its gRPC
 * socket and read through `signet status`, its audit log and its metrics.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cosignSignatureTag } from '../../src/formats/cosign.js';
import { buildPolicyArtifact } from '../../src/policy-source/artifact.js';
import { RegistryClient } from '../../src/registry/client.js';
import { MEDIA_TYPES } from '../../src/registry/types.js';
import { SIGNET, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { verifyClient } from '../helpers/grpc-verify.js';
import { makeTestKey } from '../helpers/keys.js';
import { freePort, startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { createToken, SOFTHSM_MODULE, softhsmConf } from '../helpers/softhsm.js';

const DESCRIPTOR = { mediaType: MEDIA_TYPES.ociManifest, digest: `sha256:${'a'.repeat(64)}`, size: 100 };

function signet(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [SIGNET, ...args], { encoding: 'utf8', env: { ...process.env, DOCKER_CONFIG: '/nonexistent' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function metricsText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The sum of a metric's samples whose labels contain every `match` (`key="value"`). */
function total(text: string, name: string, ...match: string[]): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && match.every((m) => l.includes(m)))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('policySource: a signed policy from the registry', function () {
  this.timeout(120_000);
  let registry: RegistryHandle;
  let work: string;
  const fleet = makeTestKey();
  const other = makeTestKey();
  let fleetKey: string;
  let otherKey: string;
  let fleetPub: string;
  let client: RegistryClient;
  let ref: string;
  const daemons: DaemonHandle[] = [];

  /** A policy directory accepting exactly the repositories named. */
  const policyDir = (name: string, accepted: string[], extra = ''): string => {
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    const scopes = accepted.map((r) => `  ${registry.host}/${r}: { action: accept }`).join('\n');
    writeFileSync(join(dir, 'policy.yaml'), `apiVersion: signet/v1\ndefault: { action: reject }\nscopes:\n${scopes}\n${extra}`);
    return dir;
  };
  const push = (dir: string, key: string, to = ref): string => {
    const r = signet(['policy', 'push', dir, to, '--key', key, '--insecure-registry', registry.host]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const digest = r.stdout.trim();
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    return digest;
  };
  const sourceConfig = (cacheDir: string, extra = '') =>
    [`policySource:`, `  ref: ${ref}`, `  keys: { fleet: { file: ${fleetPub} } }`, `  interval: 1s`, `  cacheDir: ${cacheDir}`, extra].join('\n');
  const start = async (cacheDir: string, extra = '', options: { policy?: string } = {}): Promise<DaemonHandle> => {
    const d = await startDaemon({
      insecureRegistries: [registry.host],
      extraConfig: sourceConfig(cacheDir, extra),
      ...(options.policy ? { policy: options.policy } : {}),
    });
    daemons.push(d);
    return d;
  };
  const status = (d: DaemonHandle): { code: number; json: Record<string, any>; text: string } => {
    const j = signet(['status', '--socket', d.socket, '--output', 'json']);
    const t = signet(['status', '--socket', d.socket]);
    return { code: j.status, json: JSON.parse(j.stdout) as Record<string, any>, text: t.stdout };
  };
  const decide = async (d: DaemonHandle, repo: string): Promise<string> => {
    const c = verifyClient(d.socket);
    try {
      return (await c.verify(`${registry.host}/${repo}:1`, DESCRIPTOR)).decision;
    } finally {
      c.close();
    }
  };

  before(async () => {
    registry = await startRegistry();
    work = mkdtempSync(join(tmpdir(), 'signet-policy-source-'));
    fleetKey = join(work, 'fleet.key');
    otherKey = join(work, 'other.key');
    writeFileSync(fleetKey, fleet.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(otherKey, other.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    fleetPub = fleet.writePublic(join(work, 'fleet.pub'));
    client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    ref = `${registry.host}/security/node-policy:prod`;
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop();
  });
  after(async () => {
    await registry?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('push is deterministic: the same files give the same digest, whatever their times; other files another', () => {
    const dir = policyDir('det', ['app-a']);
    const first = push(dir, fleetKey, `${registry.host}/security/det:1`);
    utimesSync(join(dir, 'policy.yaml'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    const second = push(dir, otherKey, `${registry.host}/security/det:2`);
    assert.equal(second, first);
    const third = push(policyDir('det2', ['app-b']), fleetKey, `${registry.host}/security/det:3`);
    assert.notEqual(third, first);
  });

  it('push refuses a policy signetd would refuse, and pushes nothing', async () => {
    const dir = policyDir('broken', ['app-a'], 'unknownField: 1\n');
    const r = signet(['policy', 'push', dir, `${registry.host}/security/broken:1`, '--key', fleetKey, '--insecure-registry', registry.host]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /unknownField/);
    assert.match(r.stdout, /nothing was pushed/);
    assert.equal(await client.tryGetManifest({ registry: registry.host, repository: 'security/broken' }, '1'), undefined);
  });

  it('signet policy status tells which digest the reference points to now', () => {
    const d1 = push(policyDir('st1', ['app-a']), fleetKey, `${registry.host}/security/st:prod`);
    let r = signet(['policy', 'status', `${registry.host}/security/st:prod`, '--insecure-registry', registry.host]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`security/st:prod  ${d1}`));
    assert.match(r.stdout, /1 file\(s\): policy\.yaml/);
    assert.match(r.stdout, /1 cosign signature/);
    const d2 = push(policyDir('st2', ['app-b']), fleetKey, `${registry.host}/security/st:prod`);
    r = signet(['policy', 'status', `${registry.host}/security/st:prod`, '--insecure-registry', registry.host, '--output', 'json']);
    assert.equal((JSON.parse(r.stdout) as { digest: string }).digest, d2);
  });

  it('a node enforces a pushed policy within the interval, names its digest everywhere, and polls with one HEAD', async () => {
    const d1 = push(policyDir('p1', ['app-a']), fleetKey);
    const port = await freePort();
    const d = await start(join(work, 'cache-rollout'), `metrics: { listen: "127.0.0.1:${port}" }`);
    assert.equal(status(d).json['policySource']['digest'], d1);
    assert.equal(status(d).json['policyGeneration'], d1);
    assert.equal(await decide(d, 'app-a'), 'accept');
    assert.equal(await decide(d, 'app-b'), 'reject');
    assert.equal(d.audit().at(-1)!['policyGeneration'], d1);

    const d2 = push(policyDir('p2', ['app-b']), fleetKey);
    const pushedAt = Date.now();
    await waitFor(() => status(d).json['policySource']['digest'] === d2, 'the new policy', 5000);
    assert.ok(Date.now() - pushedAt < 2 * 1000 + 1500, 'within two intervals (and a status call)');
    assert.equal(await decide(d, 'app-a'), 'reject');
    assert.equal(await decide(d, 'app-b'), 'accept');
    assert.equal(d.audit().at(-1)!['policyGeneration'], d2);
    const s = status(d);
    assert.equal(s.code, 0, s.text);
    assert.match(s.text, new RegExp(`source   ${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  ${d2} verified`));

    // Unchanged: one HEAD per check, nothing else.
    const before = await metricsText(port);
    await new Promise((r) => setTimeout(r, 3500));
    const after = await metricsText(port);
    const heads = total(after, 'signet_registry_requests_total', 'method="HEAD"') - total(before, 'signet_registry_requests_total', 'method="HEAD"');
    const gets = total(after, 'signet_registry_requests_total', 'method="GET"') - total(before, 'signet_registry_requests_total', 'method="GET"');
    assert.ok(heads >= 2 && heads <= 5, `HEAD requests in 3.5 s: ${heads}`);
    assert.equal(gets, 0);
    assert.ok(total(after, 'signet_policy_source_checks_total', 'result="unchanged"') >= 2);
    assert.equal(total(after, 'signet_policy_source_info', `digest="${d2}"`), 1);
    assert.equal(total(after, 'signet_policy_generation_info', `generation="${d2}"`), 1);
  });

  it("an artifact signed by another key, unsigned, or carrying another artifact's signature changes nothing, and is logged, counted and shown", async () => {
    const good = push(policyDir('good', ['app-a']), fleetKey);
    const port = await freePort();
    const d = await start(join(work, 'cache-refuse'), `metrics: { listen: "127.0.0.1:${port}" }`);
    assert.equal(status(d).json['policySource']['digest'], good);
    const repo = { registry: registry.host, repository: 'security/node-policy' };
    const refuse = async (digest: string, what: RegExp): Promise<void> => {
      await waitFor(
        () => status(d).json['policySource']['remoteDigest'] === digest && status(d).json['policySource']['lastError'] !== '',
        `the refusal of ${digest}`,
        5000,
      );
      const s = status(d);
      assert.equal(s.json['policySource']['digest'], good);
      assert.equal(s.json['policyGeneration'], good);
      assert.match(s.json['policySource']['lastError'], what);
      assert.match(s.json['policySource']['lastError'], new RegExp(`${good} stays in force`));
      assert.equal(s.code, 1);
      assert.match(s.text, /source error: policy artifact .* refused/);
      assert.match(s.text, /PROBLEMS: .*policy source/);
      assert.equal(await decide(d, 'app-a'), 'accept');
      assert.equal(await decide(d, 'app-b'), 'reject');
      assert.ok(d.log().includes(digest) && /policy artifact refused; nothing changes/.test(d.log()));
    };

    // Signed by a key the node does not trust.
    const byOther = push(policyDir('evil1', ['app-a', 'app-b']), otherKey);
    await refuse(byOther, /SIGNATURE_INVALID|no valid signature|not verified/);

    // Not signed at all.
    const unsigned = buildPolicyArtifact([{ name: 'policy.yaml', bytes: Buffer.from(`apiVersion: signet/v1\ndefault: { action: accept }\n`) }]);
    await client.pushBlob(repo, unsigned.config);
    await client.pushBlob(repo, unsigned.layer);
    await client.pushManifest(repo, 'prod', unsigned.manifest, MEDIA_TYPES.ociManifest);
    await refuse(unsigned.digest, /no signatures found|SIGNATURE_NOT_FOUND|not verified/);

    // Tampered: the good artifact's signature copied onto another artifact.
    const tampered = buildPolicyArtifact([{ name: 'policy.yaml', bytes: Buffer.from(`apiVersion: signet/v1\ndefault: { action: accept }\nmode: enforce\n`) }]);
    await client.pushBlob(repo, tampered.config);
    await client.pushBlob(repo, tampered.layer);
    await client.pushManifest(repo, tampered.digest, tampered.manifest, MEDIA_TYPES.ociManifest);
    const sig = await client.getManifest(repo, cosignSignatureTag(good), { accept: [MEDIA_TYPES.ociManifest] });
    await client.pushManifest(repo, cosignSignatureTag(tampered.digest), sig.bytes, MEDIA_TYPES.ociManifest);
    await client.pushManifest(repo, 'prod', tampered.manifest, MEDIA_TYPES.ociManifest);
    await refuse(tampered.digest, /DIGEST_MISMATCH|another|digest/i);

    const m = await metricsText(port);
    assert.ok(total(m, 'signet_policy_source_checks_total', 'result="rejected"') >= 3);
    assert.equal(total(m, 'signet_policy_source_failing'), 1);
    assert.equal(status(d).json['policySource']['rejected'], 3);

    // A good push afterwards is enforced: refusals are not sticky for new digests.
    const next = push(policyDir('next', ['app-b']), fleetKey);
    await waitFor(() => status(d).json['policySource']['digest'] === next, 'the next good policy', 5000);
    assert.equal(status(d).json['policySource']['lastError'], '');
    assert.equal(await decide(d, 'app-b'), 'accept');
  });

  it('is merged with a local policyDir by the same rules as two files; a conflicting artifact changes nothing', async () => {
    const art = push(policyDir('merge', ['app-a']), fleetKey);
    const local = `apiVersion: signet/v1\nscopes:\n  ${registry.host}/local-app: { action: accept }\n`;
    const d = await start(join(work, 'cache-merge'), '', { policy: local });
    let s = status(d).json;
    assert.equal(s['policySource']['digest'], art);
    assert.match(s['policyGeneration'], new RegExp(`^${art}\\+sha256:[0-9a-f]{64}$`));
    assert.equal(await decide(d, 'app-a'), 'accept');
    assert.equal(await decide(d, 'local-app'), 'accept');
    assert.equal(await decide(d, 'app-b'), 'reject');
    assert.equal(d.audit().at(-1)!['policyGeneration'], s['policyGeneration']);
    // A local edit takes effect with the artifact still merged in.
    d.writePolicy('policy.yaml', `${local}  ${registry.host}/app-c: { action: accept }\n`);
    await waitFor(async () => (await decide(d, 'app-c')) === 'accept', 'the local edit', 5000);
    assert.equal(await decide(d, 'app-a'), 'accept');
    // An artifact defining a scope the local directory defines too does not merge: refused, nothing changes.
    const generation = status(d).json['policyGeneration'];
    const clash = push(policyDir('clash', ['app-b', 'local-app']), fleetKey);
    await waitFor(() => status(d).json['policySource']['lastError'] !== '', 'the refusal', 5000);
    s = status(d).json;
    assert.match(s['policySource']['lastError'], /already defined/);
    assert.equal(s['policySource']['digest'], art);
    assert.equal(s['policySource']['remoteDigest'], clash);
    assert.equal(s['policyGeneration'], generation);
    assert.equal(await decide(d, 'app-b'), 'reject');
  });

  it('a refused artifact is verified again after SIGHUP, with the keys read again (the key file replaced)', async () => {
    const rotating = join(work, 'rotating.pub');
    writeFileSync(rotating, fleet.publicPem);
    const repo = 'security/rotating:prod';
    const good = push(policyDir('rot1', ['app-a']), fleetKey, `${registry.host}/${repo}`);
    const d = await startDaemon({
      insecureRegistries: [registry.host],
      extraConfig: `policySource: { ref: "${registry.host}/${repo}", keys: { fleet: { file: ${rotating} } }, interval: 1s, cacheDir: ${join(work, 'cache-rot')} }`,
    });
    daemons.push(d);
    assert.equal(status(d).json['policySource']['digest'], good);
    const next = push(policyDir('rot2', ['app-b']), otherKey, `${registry.host}/${repo}`);
    await waitFor(() => status(d).json['policySource']['remoteDigest'] === next && status(d).json['policySource']['lastError'] !== '', 'the refusal', 5000);
    // Not verified again on its own, however long it waits.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(status(d).json['policySource']['rejected'], 1);
    assert.equal(status(d).json['policySource']['digest'], good);
    writeFileSync(rotating, other.publicPem);
    d.proc.kill('SIGHUP');
    await waitFor(() => status(d).json['policySource']['digest'] === next, 'the artifact verified with the new key', 5000);
    assert.equal(status(d).json['policySource']['lastError'], '');
    assert.equal(await decide(d, 'app-b'), 'accept');
  });

  it('a key that cannot be read is "could not check", not a refusal: tried again at every check, and the policy follows once it is there', async () => {
    const later = join(work, 'later.pub');
    const repo = `${registry.host}/security/later:prod`;
    const digest = push(policyDir('later', ['app-a']), fleetKey, repo);
    const d = await startDaemon({
      insecureRegistries: [registry.host],
      extraConfig: `policySource: { ref: "${repo}", keys: { fleet: { file: ${later} } }, interval: 1s, cacheDir: ${join(work, 'cache-later')} }`,
    });
    daemons.push(d);
    let s = status(d).json;
    assert.equal(s['ready'], false);
    assert.match(s['policySource']['lastError'], /KEY_UNAVAILABLE|cannot|not loaded|no such file|ENOENT/i);
    assert.equal(s['policySource']['rejected'], 0);
    writeFileSync(later, fleet.publicPem);
    await waitFor(() => status(d).json['policySource']['digest'] === digest, 'the policy once the key is readable', 5000);
    s = status(d).json;
    assert.equal(s['ready'], true);
    assert.equal(s['policySource']['lastError'], '');
  });

  it('PKCS#11: pushed with a key on a token, verified by a node that names the token object by pkcs11: URI', async () => {
    softhsmConf();
    const token = createToken('policy');
    const gen = signet(['keys', 'generate', '--key', token.uri, '--label', 'policy-signer', '--pkcs11-module', SOFTHSM_MODULE]);
    assert.notEqual(gen.status, 0, 'no PIN given: refused');
    const env = { ...process.env, DOCKER_CONFIG: '/nonexistent', SIGNET_PKCS11_PIN: token.pin };
    const run = (args: string[]) => spawnSync(process.execPath, [SIGNET, ...args], { encoding: 'utf8', env });
    const g = run(['keys', 'generate', '--key', token.uri, '--label', 'policy-signer', '--pkcs11-module', SOFTHSM_MODULE]);
    assert.equal(g.status, 0, g.stderr);
    const hsmRef = `${registry.host}/security/hsm-policy:prod`;
    const r = run([
      'policy',
      'push',
      policyDir('hsm', ['app-hsm']),
      hsmRef,
      '--key',
      `${token.uri};object=policy-signer`,
      '--pkcs11-module',
      SOFTHSM_MODULE,
      '--insecure-registry',
      registry.host,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const digest = r.stdout.trim();
    const d = await startDaemon({
      insecureRegistries: [registry.host],
      extraConfig: [
        `pkcs11: { module: ${SOFTHSM_MODULE} }`,
        `policySource: { ref: "${hsmRef}", keys: { hsm: { pkcs11: "${token.uri};object=policy-signer;type=public" } }, interval: 1s, cacheDir: ${join(work, 'cache-hsm')} }`,
      ].join('\n'),
    });
    daemons.push(d);
    const s = status(d).json;
    assert.equal(s['policySource']['digest'], digest, JSON.stringify(s['policySource']));
    assert.equal(await decide(d, 'app-hsm'), 'accept');
    // The same artifact's trust does not come from anywhere else: a node naming another key refuses it.
    const d2 = await startDaemon({
      insecureRegistries: [registry.host],
      extraConfig: `policySource: { ref: "${hsmRef}", keys: { fleet: { file: ${fleetPub} } }, interval: 1s, cacheDir: ${join(work, 'cache-hsm2')} }`,
    });
    daemons.push(d2);
    assert.equal(status(d2).json['ready'], false);
    assert.match(status(d2).json['policySource']['lastError'], /refused/);
    assert.equal(await decide(d2, 'app-hsm'), 'reject');
  });

  it('a node that boots without the registry enforces the last policy it verified, from cacheDir, and not a tampered one', async () => {
    const cacheDir = join(work, 'cache-offline');
    const first = push(policyDir('offline0', ['app-a']), fleetKey);
    let d = await start(cacheDir);
    assert.equal(status(d).json['policySource']['digest'], first);
    await d.stop();
    daemons.splice(0);
    // Pushed while the node was down: the kept artifact first, then the registry's newer one.
    const last = push(policyDir('offline', ['app-b']), fleetKey);
    d = await start(cacheDir);
    await waitFor(() => status(d).json['policySource']['digest'] === last && status(d).json['policySource']['fromCache'] === false, 'the newer artifact', 5000);
    assert.ok(
      d
        .log()
        .split('\n')
        .some((l) => l.includes('kept in cacheDir verified again and in force') && l.includes(first)),
      d.log(),
    );
    await d.stop();
    daemons.splice(0);
    await registry.stop();

    // A registry that accepts connections and never answers: signetd still serves at once, with the kept policy.
    const port = Number(registry.host.split(':')[1]);
    const hanging: Socket[] = [];
    const blackhole = createServer((sock) => hanging.push(sock));
    await new Promise<void>((r) => blackhole.listen(port, '127.0.0.1', () => r()));
    try {
      const t0 = Date.now();
      d = await start(cacheDir, 'registryTimeout: 6s\nregistryRetries: 1');
      assert.ok(Date.now() - t0 < 6000, `signetd served after ${Date.now() - t0} ms, not after the registry's timeouts`);
      let s = status(d);
      assert.equal(s.json['ready'], true);
      assert.equal(s.json['policySource']['digest'], last);
      assert.equal(s.json['policySource']['fromCache'], true);
      assert.equal(s.json['policyGeneration'], last);
      assert.match(s.text, /from cacheDir/);
      assert.equal(await decide(d, 'app-b'), 'accept');
      assert.equal(await decide(d, 'app-a'), 'reject');
      assert.equal(d.audit().at(-1)!['policyGeneration'], last);
      await waitFor(() => /cannot resolve/.test(status(d).json['policySource']['lastError']), 'the registry check failing', 20_000);
      s = status(d);
      assert.equal(s.code, 1);
      assert.equal(s.json['policySource']['digest'], last);
      await d.stop();
      daemons.splice(0);
    } finally {
      for (const sock of hanging) sock.destroy();
      await new Promise((r) => blackhole.close(r));
    }

    // Nothing listening at all.
    d = await start(cacheDir);
    assert.equal(status(d).json['policySource']['digest'], last);
    assert.equal(await decide(d, 'app-b'), 'accept');
    await d.stop();
    daemons.splice(0);

    // The cache is verified again with the policySource keys: a cached layer changed on disk is refused.
    const index = JSON.parse(readFileSync(join(cacheDir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const manifest = JSON.parse(readFileSync(join(cacheDir, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {
      layers: Array<{ digest: string }>;
    };
    const layerPath = join(cacheDir, 'blobs', 'sha256', manifest.layers[0]!.digest.slice(7));
    writeFileSync(layerPath, readFileSync(layerPath, 'latin1').replace('app-b', 'app-x'), 'latin1');
    d = await start(cacheDir);
    const s = status(d);
    assert.equal(s.json['ready'], false);
    assert.equal(s.json['policySource']['digest'], '');
    assert.match(d.log(), /kept in [^ ]*cache-offline \(sha256:[0-9a-f]{64}\) is not used: .*(DIGEST_MISMATCH|does not match)/);
    assert.equal(s.json['policySource']['rejected'], 1);
    assert.equal(await decide(d, 'app-b'), 'reject');
  });
});
