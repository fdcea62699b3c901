/**
 * `signet doctor` against real parts: containerd 2.x (signet-verifier in its bin_dir) and 1.6 started
 * by test/helpers/containerd.ts, the real signetd, Debian's docker-registry, and the CLI run as an
 * operator runs it. What is asserted is the lines doctor prints and its exit code; for --probe, also
 * what containerd really holds afterwards.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CriImageClient } from '../../src/containerd/cri-client.js';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startContainerd, writeRegistryHosts, type ContainerdHandle } from '../helpers/containerd.js';
import { SIGNET, startDaemon, VERIFIER, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { requireDebianParts } from '../helpers/debian-parts.js';
import { SHELL_VERIFIER, socketFor } from '../helpers/verifier.js';
import { makeTestKey } from '../helpers/keys.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { pushRunnableImage } from '../helpers/runnable-image.js';

interface DoctorRun {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: string[];
}

function doctor(args: string[], env: NodeJS.ProcessEnv = {}): Promise<DoctorRun> {
  return new Promise((resolve, reject) => {
    // No CONTAINERD_ADDRESS / SIGNET_SOCKET from the outside: each test names what it checks.
    const base = { ...process.env };
    delete base['CONTAINERD_ADDRESS'];
    delete base['SIGNET_SOCKET'];
    const child = spawn(process.execPath, [SIGNET, 'doctor', ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, lines: stdout.split('\n').filter(Boolean) });
    });
  });
}

const show = (r: DoctorRun): string => `exit ${r.code}\n${r.stdout}${r.stderr}`;
const line = (r: DoctorRun, re: RegExp): string => {
  const found = r.lines.find((l) => re.test(l));
  assert.ok(found, `no line matching ${re}:\n${show(r)}`);
  return found;
};

describe('signet doctor (real containerd, signetd, docker-registry)', function () {
  this.timeout(60_000);
  let registry: RegistryHandle;
  let host: string;
  let client: RegistryClient;
  let daemon: DaemonHandle;
  let verifierDir: string;
  let hostsDir: string;
  let containerd: ContainerdHandle;
  const release = makeTestKey('ecdsa-p256');

  /** containerd's environment: verifiers inherit it (both sockets, so either verifier finds signetd). */
  const verifierEnv = (): NodeJS.ProcessEnv => ({ SIGNET_SOCKET: daemon.socket, SIGNET_VERIFY_SOCKET: socketFor('sh', daemon.socket) });
  // signetd's own config names the hosts.toml folder it follows (registryConfigPath), as on a node.
  const args = (c: ContainerdHandle, d: DaemonHandle = daemon) => [
    '--containerd',
    c.address,
    '--containerd-config',
    c.configPath,
    '--socket',
    d.socket,
    '--signetd-config',
    d.configPath,
  ];

  before(async function () {
    requireDebianParts();
    try {
      accessSync(VERIFIER, constants.X_OK);
    } catch {
      throw new Error(`${VERIFIER} is missing or not executable: build with "npx tsc -p tsconfig.json" and run scripts/bootstrap.sh`);
    }
    registry = await startRegistry();
    host = registry.host;
    client = new RegistryClient({ insecureRegistries: [host], retries: 0 });
    // CRI reaches the plain-HTTP registry through hosts.toml (registry.config_path), which keeps the verifying path.
    hostsDir = writeRegistryHosts(mkdtempSync(join(tmpdir(), 'doc-hosts-')), host);
    daemon = await startDaemon({ insecureRegistries: [host], extraConfig: `registryConfigPath: ${hostsDir}` });
    release.writePublic(join(daemon.dir, 'release.pub'));
    daemon.writePolicy('policy.yaml', {
      apiVersion: 'signet/v1',
      keys: { release: { file: join(daemon.dir, 'release.pub') } },
      default: { action: 'reject' },
      scopes: { [`${host}/prod`]: { action: 'verify', signatures: { keys: ['release'] } } },
    });
    await waitFor(() => daemon.log().includes('policy loaded'), 'the first policy');
    verifierDir = mkdtempSync('/tmp/sv-doc-');
    // The shell verifier, as signet install links it where curl is present.
    symlinkSync(SHELL_VERIFIER, join(verifierDir, 'signet-verifier'));
    containerd = await startContainerd({ line: '2.x', verifierDir, registryConfigPath: hostsDir, env: verifierEnv() });
  });
  after(async () => {
    await containerd?.stop();
    await daemon?.stop();
    await registry?.stop();
    for (const d of [verifierDir, hostsDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('containerd 2.x with signet-verifier in bin_dir and a healthy signetd: every check ✔, exit 0', async () => {
    // A signetd that also watches this containerd and is registered with its NRI.
    const full = await startDaemon({
      insecureRegistries: [host],
      extraConfig: [`registryConfigPath: ${hostsDir}`, `containerd: { address: ${containerd.address} }`, `nri: { socket: ${containerd.nriSocket} }`].join('\n'),
    });
    try {
      release.writePublic(join(full.dir, 'release.pub'));
      full.writePolicy('policy.yaml', { apiVersion: 'signet/v1', keys: { release: { file: join(full.dir, 'release.pub') } }, default: { action: 'reject' } });
      await waitFor(
        () => full.log().includes('watching containerd image events') && full.log().includes('NRI: registered with the runtime'),
        'signetd to watch containerd and register with NRI',
        10_000,
      );
      const all = await doctor(args(containerd, full));
      assert.equal(all.code, 0, show(all));
      for (const l of all.lines) assert.match(l, /^✔ /, `not ✔: ${l}\n${show(all)}`);
      line(all, new RegExp(`^✔ signetd watches containerd 2\\.\\S+ at ${containerd.address}: every image that arrives is decided \\(onUnverified: report\\)$`));
      line(
        all,
        new RegExp(
          `^✔ signetd is registered with containerd \\S+'s NRI at ${containerd.nriSocket} \\(index 10\\) since \\S+: every container creation is decided$`,
        ),
      );
    } finally {
      await full.stop();
    }
    const r = await doctor(args(containerd));
    assert.equal(r.code, 0, show(r));
    for (const l of r.lines) assert.match(l, /^[✔!] /, `not ✔ or !: ${l}\n${show(r)}`);
    line(r, new RegExp(`^✔ containerd 2\\.\\d+\\.\\d+\\S* answers at ${containerd.address}$`));
    line(r, /^✔ containerd 2\.\d+\.\d+\S* runs image verifiers before pulls through its transfer service \(ctr image pull, CRI PullImage\)$/);
    line(r, /^✔ the image verifier plugin io\.containerd\.image-verifier\.v1\.bindir is loaded$/);
    line(
      r,
      new RegExp(
        `^✔ verifier bin_dir ${verifierDir} \\(set in ${containerd.configPath}\\) holds signet-verifier → ${SHELL_VERIFIER}, which starts: signet-verifier 0\\.1\\.0$`,
      ),
    );
    line(r, new RegExp(`^✔ ${verifierDir}/signet-verifier is the shell verifier \\(sh \\+ curl\\); curl is /\\S+/curl$`));
    line(
      r,
      new RegExp(
        `^✔ containerd config ${containerd.configPath}, version 3: no CRI setting takes CRI pulls off the verifier; registry.config_path ${hostsDir} \\(hosts.toml\\) keeps them on it$`,
      ),
    );
    line(r, /^✔ NRI is enabled \(socket .*nri\.sock\); signetd's NRI plugin checks every container creation there \(see the signetd lines\)$/);
    // This signetd neither watches containerd nor registers with NRI: worth knowing, not a failure.
    line(r, /^! signetd does not watch containerd \(containerd: \{ enabled: false \}\)/);
    line(r, /^! signetd's NRI plugin is off: containers are created from images already on the node without a check — add nri: \{\}/);
    line(r, new RegExp(`^✔ signetd 0\\.1\\.0 at ${daemon.socket} is SERVING with policy sha256:[a-f0-9]{64} \\(1 file in ${daemon.policyDir}\\)$`));
    line(r, /^✔ signetd's 1 key loaded without errors: release$/);
    line(r, new RegExp(`^✔ ${hostsDir} holds hosts settings for ${host}: each one usable by containerd and signet$`));

    const j = await doctor([...args(containerd), '--output', 'json']);
    assert.equal(j.code, 0, show(j));
    const checks = JSON.parse(j.stdout) as Array<Record<string, unknown>>;
    assert.ok(checks.length >= 7);
    for (const c of checks) {
      assert.deepEqual(Object.keys(c).sort(), ['check', 'detail', 'fix', 'level', 'ok']);
      assert.equal(c['ok'], true);
    }
    assert.ok(checks.some((c) => c['check'] === 'verifier.signet' && /signet-verifier 0\.1\.0/.test(String(c['detail']))));
  });

  it("--probe with an unsigned image on 2.x: ✔ refused through CRI, with signet's reason, and nothing stored", async () => {
    const img = await pushRunnableImage(client, { registry: host, repository: 'prod/probe' }, { tag: 'v1' });
    const ref = `${host}/prod/probe:v1`;
    const r = await doctor([...args(containerd), '--probe', ref]);
    assert.equal(r.code, 0, show(r));
    const l = line(r, /^✔ containerd refused to pull /);
    assert.match(
      l,
      new RegExp(
        `refused to pull ${ref} through CRI \\(as kubelet would\\): .*verifier signet-verifier rejected image \\(exit code 1\\): rejected ${host}/prod/probe\\S*@${img.digest}: no signatures found`,
      ),
    );
    const cri = new CriImageClient(containerd.address);
    try {
      assert.equal(await cri.imageStatus(ref), undefined);
    } finally {
      cri.close();
    }
  });

  it('a CRI bypass setting is named with its file and value, exit 1; --probe then shows the node pulled the image, and removes it', async () => {
    const bypass = await startContainerd({
      line: '2.x',
      verifierDir,
      registryConfigPath: hostsDir,
      criConfig: 'max_concurrent_downloads = 2',
      env: verifierEnv(),
    });
    try {
      await pushRunnableImage(client, { registry: host, repository: 'prod/probe-bypass' }, { tag: 'v1' });
      const ref = `${host}/prod/probe-bypass:v1`;
      const r = await doctor([...args(bypass), '--probe', ref]);
      assert.equal(r.code, 1, show(r));
      assert.equal(
        line(r, /^✘ CRI setting /),
        `✘ CRI setting plugins."io.containerd.cri.v1.images".max_concurrent_downloads = 2 (default 3) in ${bypass.configPath} makes CRI pull without the verifier — remove it or set 3 (set download concurrency in [plugins."io.containerd.transfer.v1.local"] max_concurrent_downloads instead)`,
      );
      // The setting doctor names is the one containerd acted on.
      assert.match(bypass.log(), /Found 'MaxConcurrentDownloads' in CRI config .*Falling back to local image pull mode/);
      assert.match(
        line(r, /^✘ the node pulled /),
        new RegExp(
          `^✘ the node pulled ${ref}, which the policy refuses \\(signetd: rejected ${host}/prod/probe-bypass\\S*@sha256:[a-f0-9]{64}: no signatures found.*\\): CRI pulls are not verified \\(image sha256:[a-f0-9]{64}; doctor removed it again\\) — remove the CRI settings named above$`,
        ),
      );
      const cri = new CriImageClient(bypass.address);
      try {
        assert.equal(await cri.imageStatus(ref), undefined, 'doctor left the probe image on the node');
      } finally {
        cri.close();
      }
      const ls = await bypass.ctr(['image', 'ls', '-q'], { namespace: 'k8s.io' });
      assert.ok(!ls.stdout.includes(ref), ls.stdout);

      // A probe image the policy accepts proves nothing, and doctor says so instead of blaming the node.
      const signedImg = await pushRunnableImage(client, { registry: host, repository: 'prod/probe-signed' }, { tag: 'v1' });
      await signImageCosign(client, { registry: host, repository: 'prod/probe-signed' }, signedImg.digest, release.signer, {
        dockerReference: `${host}/prod/probe-signed`,
      });
      const s = await doctor([...args(bypass), '--probe', `${host}/prod/probe-signed:v1`]);
      assert.equal(s.code, 1, show(s));
      assert.match(
        line(s, /^✘ the node pulled /),
        /but the policy accepts it \(signetd: accept: accepted .*\), so the probe proves nothing .* — probe with an image the policy refuses/,
      );
    } finally {
      await bypass.stop();
    }
  });

  it("containerd 1.6 (Debian 12's own): the no-verifier line and what is enforced instead, exit 1", async () => {
    const old = await startContainerd({ line: '1.6' });
    try {
      const r = await doctor(args(old));
      assert.equal(r.code, 1, show(r));
      assert.match(
        line(r, /^✘ containerd 1\.6/),
        /^✘ containerd 1\.6\.\d+\S* has no image verifier: pulls are not checked before they land; what is enforced instead: signetd's image-event watcher .*reports it .* or removes it .*after the fact and best effort — upgrade to containerd 2\.1 or later/,
      );
      assert.ok(!r.lines.some((l) => /bin_dir/.test(l)), `containerd 1.6 has no bin_dir to check:\n${show(r)}`);
      line(r, /^! containerd 1\.6\.\d+\S* has no NRI/);
      // Its CRI has no config_path, while signetd follows hostsDir: the v1 CRI plugin's key is the one to add.
      assert.equal(
        line(r, /^! containerd's CRI registry config_path/),
        `! containerd's CRI registry config_path is empty (not set in ${old.configPath}), but ${hostsDir} holds hosts settings for ${host} that signetd follows (registryConfigPath in ${daemon.configPath}): CRI pulls ignore those mirrors and certificates, so signet may look up signatures on hosts the pull did not use — add to ${old.configPath}: [plugins."io.containerd.grpc.v1.cri".registry] config_path = "${hostsDir}", then restart containerd`,
      );
    } finally {
      await old.stop();
    }
  });

  it("signetd stopped: ✘ no such file; killed with its socket left behind: ✘ nothing answers (signet status's wording, socket.ts)", async () => {
    const other = await startDaemon({ insecureRegistries: [host], policy: { apiVersion: 'signet/v1', default: { action: 'reject' } } });
    const socket = other.socket;
    other.proc.kill('SIGKILL');
    await new Promise((r) => other.proc.once('exit', r));
    try {
      const stale = await doctor(['--containerd', containerd.address, '--containerd-config', containerd.configPath, '--socket', socket]);
      assert.equal(stale.code, 1, show(stale));
      assert.match(
        line(stale, /^✘ signetd's socket /),
        new RegExp(`^✘ signetd's socket ${socket}: a socket file, but nothing answers on it \\(ECONNREFUSED\\).* — restart signetd`),
      );
    } finally {
      await other.stop();
    }
    // Stopped cleanly (the folder is gone): no socket at all. Found through SIGNET_SOCKET, as `signet status` finds it.
    const gone = await doctor(['--containerd', containerd.address, '--containerd-config', containerd.configPath], { SIGNET_SOCKET: socket });
    assert.equal(gone.code, 1, show(gone));
    assert.equal(
      line(gone, /^. signetd's socket/),
      `✘ signetd's socket ${socket}: no such file (signetd is not running, or listens elsewhere) — start signetd (systemctl enable --now signetd), or name its socket with --socket, SIGNET_SOCKET or socket: in signetd.yaml`,
    );
    // Everything else is still ✔.
    assert.deepEqual(gone.lines.filter((l) => l.startsWith('✘')).length, 1, show(gone));
  });

  it('the verifier in bin_dir: the Node one is ! (a Node start per pull); the shell one without curl on the PATH is ✘', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'doc-kind-'));
    try {
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      const cfg = join(dir, 'config.toml');
      writeFileSync(cfg, `version = 3\n[plugins."io.containerd.image-verifier.v1.bindir"]\nbin_dir = "${bin}"\n`);
      const run = (env: NodeJS.ProcessEnv = {}) => doctor(['--containerd', join(dir, 'none.sock'), '--containerd-config', cfg, '--socket', daemon.socket], env);
      symlinkSync(VERIFIER, join(bin, 'signet-verifier'));
      const node = await run();
      line(node, new RegExp(`^! ${bin}/signet-verifier is the Node verifier: a Node start per pull, so many pulls at once may outlast containerd's 10 s`));
      rmSync(join(bin, 'signet-verifier'));
      symlinkSync(SHELL_VERIFIER, join(bin, 'signet-verifier'));
      const withCurl = await run();
      line(withCurl, new RegExp(`^✔ ${bin}/signet-verifier is the shell verifier \\(sh \\+ curl\\); curl is /\\S+/curl$`));
      const noCurl = await run({ PATH: join(dir, 'empty') });
      line(
        noCurl,
        new RegExp(`^✘ ${bin}/signet-verifier is the shell verifier, but curl is not on the PATH: it refuses every pull \\(fail closed\\) — install curl`),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('containerd unreachable: the config, bin_dir and signetd are still checked; values from the config are printed escaped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'doc-cfg-'));
    try {
      const cfg = join(dir, 'config.toml');
      writeFileSync(
        cfg,
        `version = 3\n[plugins."io.containerd.image-verifier.v1.bindir"]\nbin_dir = "/nonexistent/\\u001b[31mred\\r\\nforged"\n[plugins."io.containerd.cri.v1.images"]\ndiscard_unpacked_layers = true\n`,
      );
      const r = await doctor(['--containerd', join(dir, 'none.sock'), '--containerd-config', cfg, '--socket', daemon.socket]);
      assert.equal(r.code, 1, show(r));
      assert.ok(!/[\u001b\r]/.test(r.stdout), `raw control characters reached the terminal:\n${JSON.stringify(r.stdout)}`);
      line(r, new RegExp(`^✘ containerd is not running here: no socket at ${dir}/none\\.sock`));
      line(r, /^✘ verifier bin_dir \/nonexistent\/\\x1b\[31mred\\r\\nforged \(set in .*\) does not exist: containerd lets every pull through/);
      line(
        r,
        new RegExp(
          `^✘ CRI setting plugins."io.containerd.cri.v1.images".discard_unpacked_layers = true \\(default false\\) in ${cfg} makes CRI pull without the verifier — remove it or set false$`,
        ),
      );
      line(r, /^✔ signetd 0\.1\.0 at .* is SERVING/);
      // JSON keeps the value intact for a program, and still shows no raw control character.
      const j = await doctor(['--containerd', join(dir, 'none.sock'), '--containerd-config', cfg, '--socket', daemon.socket, '--output', 'json']);
      assert.equal(j.code, 1);
      assert.ok(!/[\u001b\r]/.test(j.stdout), JSON.stringify(j.stdout));
      const binDir = (JSON.parse(j.stdout) as Array<{ check: string; ok: boolean; detail: string }>).find((c) => c.check === 'verifier.bin_dir');
      assert.equal(binDir?.ok, false);
      assert.ok(binDir.detail.includes('/nonexistent/\u001b[31mred\r\nforged'), binDir.detail);

      // A missing config file: containerd's defaults, said so.
      const d = await doctor(['--containerd', join(dir, 'none.sock'), '--containerd-config', join(dir, 'absent.toml'), '--socket', daemon.socket]);
      line(d, new RegExp(`^✔ containerd config ${dir}/absent\\.toml does not exist: containerd's defaults apply`));
      // Malformed TOML: the file, line and column.
      writeFileSync(cfg, 'version = 3\n[plugins\n');
      const m = await doctor(['--containerd', join(dir, 'none.sock'), '--containerd-config', cfg, '--socket', daemon.socket]);
      assert.equal(m.code, 1);
      line(m, new RegExp(`^✘ containerd config: ${cfg}:2:\\d+: not valid TOML .* — fix ${cfg}$`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** A self-signed certificate and its key (PEM), made by openssl. */
  const selfSigned = (dir: string, name: string): { cert: string; key: string } => {
    const cert = join(dir, `${name}.cert`);
    const key = join(dir, `${name}.key`);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-subj',
        `/CN=${name}`,
        '-days',
        '2',
      ],
      {
        stdio: 'ignore',
      },
    );
    return { cert, key };
  };

  it('hosts.toml files containerd and signet cannot use: each named with its problem; ! where containerd falls back, ✘ where its pulls fail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'doc-hostsbad-'));
    try {
      const certs = join(dir, 'certs.d');
      const folder = (name: string, toml?: string): string => {
        mkdirSync(join(certs, name), { recursive: true });
        if (toml !== undefined) writeFileSync(join(certs, name, 'hosts.toml'), toml);
        return join(certs, name);
      };
      const good = folder('good.example', 'server = "https://good.example"\n[host."https://mirror.good.example"]\n  capabilities = ["pull", "resolve"]\n');
      writeFileSync(join(good, 'ca.crt'), readFileSync(selfSigned(dir, 'good-ca').cert));
      folder('caps.example', '[host."https://mirror.caps.example"]\n  capabilities = ["pull", "fetch"]\n');
      folder('syntax.example', '[host."https://mirror.syntax.example"\n  capabilities = ["pull"]\n');
      folder('noca.example_5000_', '[host."https://mirror.noca.example"]\n  ca = "missing.crt"\n');
      const junk = folder('junkca.example', '[host."https://mirror.junkca.example"]\n  ca = ["junk.crt"]\n');
      writeFileSync(join(junk, 'junk.crt'), 'not a certificate\n');
      const pairs = folder('pair.example', '');
      const a = selfSigned(pairs, 'a');
      const b = selfSigned(pairs, 'b');
      writeFileSync(join(pairs, 'hosts.toml'), `[host."https://mirror.pair.example"]\n  client = [["${a.cert}", "${b.key}"]]\n`);
      writeFileSync(join(certs, 'hosts.toml'), 'server = "https://stray.example"\n');
      const cfg = join(dir, 'config.toml');
      writeFileSync(cfg, `version = 3\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "${certs}"\n`);
      const yaml = join(dir, 'signetd.yaml');
      writeFileSync(yaml, `registryConfigPath: ${certs}\n`);
      const r = await doctor(['--containerd', join(dir, 'none.sock'), '--containerd-config', cfg, '--socket', daemon.socket, '--signetd-config', yaml]);
      assert.equal(r.code, 1, show(r));
      const caps = join(certs, 'caps.example', 'hosts.toml');
      assert.equal(
        line(r, /caps\.example/),
        `! ${caps}: host."https://mirror.caps.example": unknown capability "fetch": containerd logs "failed to decode ${caps}" and ignores the whole file, pulling from caps.example's own host (with the folder's *.crt/*.cert files); signet does the same, so neither uses its mirrors — fix ${caps} (containerd's docs/hosts.md)`,
      );
      const syntax = join(certs, 'syntax.example', 'hosts.toml');
      assert.match(line(r, /syntax\.example/), new RegExp(`^! ${syntax}: .*containerd logs "failed to decode ${syntax}" and ignores the whole file`));
      assert.equal(
        line(r, /noca\.example/),
        `✘ CA file ${certs}/noca.example_5000_/missing.crt (${certs}/noca.example_5000_/hosts.toml) does not exist: containerd fails every pull from noca.example:5000 (it cannot build the TLS settings); signet's lookups on mirror.noca.example fail, so images it must verify from there are refused — put the registry's CA certificate (PEM) at ${certs}/noca.example_5000_/missing.crt`,
      );
      assert.match(
        line(r, /junkca\.example/),
        new RegExp(`^✘ CA file ${junk}/junk\\.crt \\(${junk}/hosts\\.toml\\) holds no PEM certificate: containerd fails every pull from junkca\\.example`),
      );
      assert.match(
        line(r, /pair\.example/),
        new RegExp(
          `^✘ client certificate ${a.cert} with key ${b.key} \\(${pairs}/hosts\\.toml\\): does not load as a certificate and its key \\(.*\\): containerd fails every pull from pair\\.example`,
        ),
      );
      line(
        r,
        new RegExp(
          `^! ${certs}/hosts\\.toml sits directly in ${certs}: containerd and signet read hosts\\.toml only in a registry's folder, so no registry uses it`,
        ),
      );
      assert.ok(!r.lines.some((l) => l.includes('good.example')), `the usable folder is not a finding:\n${show(r)}`);
      // Both read the same folder: no config_path warning.
      assert.ok(!r.lines.some((l) => /config_path is empty|but signetd from/.test(l)), show(r));

      // Fixed: one ✔ line for the folder; exit still 1 only for containerd and bin_dir.
      for (const n of ['caps.example', 'syntax.example', 'noca.example_5000_', 'junkca.example', 'pair.example']) rmSync(join(certs, n), { recursive: true });
      rmSync(join(certs, 'hosts.toml'));
      const ok = await doctor(['--containerd', join(dir, 'none.sock'), '--containerd-config', cfg, '--socket', daemon.socket, '--signetd-config', yaml]);
      const json = await doctor([
        '--containerd',
        join(dir, 'none.sock'),
        '--containerd-config',
        cfg,
        '--socket',
        daemon.socket,
        '--signetd-config',
        yaml,
        '--output',
        'json',
      ]);
      const registryChecks = (JSON.parse(json.stdout) as Array<{ check: string; level: string }>).filter((c) => c.check.startsWith('registry.'));
      assert.deepEqual(
        registryChecks.map((c) => c.level),
        ['ok'],
        json.stdout,
      );
      line(ok, new RegExp(`^✔ ${certs} holds hosts settings for good\\.example: each one usable by containerd and signet$`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('what doctor says of a bad hosts.toml is what real containerd 2.x does: a missing ca fails the pull; an unknown capability falls back to the registry itself', async () => {
    const certs = mkdtempSync(join(tmpdir(), 'doc-hostsreal-'));
    const folder = join(certs, host);
    mkdirSync(folder);
    const toml = join(folder, 'hosts.toml');
    const node = await startContainerd({ line: '2.x', verifierDir, registryConfigPath: certs, env: verifierEnv() });
    const cri = new CriImageClient(node.address);
    try {
      await pushRunnableImage(client, { registry: host, repository: 'prod/hosts' }, { tag: 'v1' });
      const ref = `${host}/prod/hosts:v1`;
      const pull = async (): Promise<string> => {
        try {
          return `pulled ${await cri.pullImage(ref)}`;
        } catch (err) {
          return (err as Error).message;
        }
      };
      const run = () => doctor(args(node));

      writeFileSync(toml, `server = "http://${host}"\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n  ca = "missing.crt"\n`);
      const ca = await run();
      assert.equal(ca.code, 1, show(ca));
      assert.match(
        line(ca, /missing\.crt/),
        new RegExp(`^✘ CA file ${folder}/missing\\.crt \\(${toml}\\) does not exist: containerd fails every pull from ${host} `),
      );
      assert.match(await pull(), new RegExp(`unable to read CA cert "${folder}/missing\\.crt"`));

      // A mirror nobody answers on, in a file containerd refuses: it is ignored, and the pull goes to the registry itself
      // (which answers: the verifier then refuses the unsigned image, with its digest).
      writeFileSync(toml, `[host."http://127.0.0.1:1"]\n  capabilities = ["pull", "fetch"]\n`);
      const caps = await run();
      assert.match(
        line(caps, /unknown capability/),
        new RegExp(`^! ${toml}: .*unknown capability "fetch": containerd logs "failed to decode ${toml}" and ignores the whole file`),
      );
      assert.match(await pull(), /verifier signet-verifier rejected image .*no signatures found/);
      assert.ok(node.log().includes(`failed to decode ${toml}`), node.log().slice(-3000));
    } finally {
      cri.close();
      await node.stop();
      rmSync(certs, { recursive: true, force: true });
    }
  });

  it('CRI config_path empty while signetd follows hosts.toml: ! with the key to add (v3 and v2 configs); different folders: !', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'doc-cfgpath-'));
    try {
      const certs = writeRegistryHosts(join(dir, 'certs.d'), 'mirror.example:5000');
      const yaml = join(dir, 'signetd.yaml');
      writeFileSync(yaml, `registryConfigPath: ${certs}\n`);
      const cfg = join(dir, 'config.toml');
      const run = () => doctor(['--containerd', join(dir, 'none.sock'), '--containerd-config', cfg, '--socket', daemon.socket, '--signetd-config', yaml]);
      const warning = (r: DoctorRun) => line(r, /^! containerd's CRI /);

      writeFileSync(cfg, 'version = 3\n');
      assert.equal(
        warning(await run()),
        `! containerd's CRI registry config_path is empty (not set in ${cfg}), but ${certs} holds hosts settings for mirror.example:5000 that signetd follows (registryConfigPath in ${yaml}): CRI pulls ignore those mirrors and certificates, so signet may look up signatures on hosts the pull did not use — add to ${cfg}: [plugins."io.containerd.cri.v1.images".registry] config_path = "${certs}", then restart containerd`,
      );
      // A version-2 config is migrated: the v1 CRI plugin's key is read (and is the one 1.6/1.7 read).
      writeFileSync(cfg, 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n');
      assert.match(warning(await run()), /— add to .*: \[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\] config_path = /);
      writeFileSync(cfg, `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${certs}"\n`);
      const same = await run();
      assert.ok(!same.lines.some((l) => l.startsWith("! containerd's CRI")), show(same));
      // No config file at all: containerd 2.1's default (empty) config_path.
      const none = await doctor([
        '--containerd',
        join(dir, 'none.sock'),
        '--containerd-config',
        join(dir, 'absent.toml'),
        '--socket',
        daemon.socket,
        '--signetd-config',
        yaml,
      ]);
      assert.match(warning(none), /^! containerd's CRI registry config_path is empty \(containerd's default\)/);

      // CRI reads another folder than signetd.
      const other = join(dir, 'other.d');
      mkdirSync(other);
      writeFileSync(cfg, `version = 3\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "${other}"\n`);
      assert.equal(
        warning(await run()),
        `! containerd's CRI reads hosts.toml from ${other} (plugins."io.containerd.cri.v1.images".registry.config_path in ${cfg}), but signetd from ${certs} (registryConfigPath in ${yaml}): signet may look up signatures on hosts the pull did not use — set registryConfigPath: ${other} in signetd.yaml and restart signetd`,
      );
      // An unreadable signetd.yaml is a ✘ of its own.
      writeFileSync(yaml, 'registryConfigPath: relative/path\n');
      line(await run(), new RegExp(`^✘ signetd's config: ${yaml}.*registryConfigPath: must be an absolute path`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--help prints the usage and exits 0; a bad --output is a usage error (exit 2)', async () => {
    const h = await doctor(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /^usage: signet doctor \[options\]\n/);
    for (const option of ['--containerd-config <FILE>', '--containerd <SOCK>', '--socket <PATH>', '--probe <IMAGE>', '--output <FORMAT>'])
      assert.ok(h.stdout.includes(option), option);
    assert.match(h.stdout, /One line per check/);
    const bad = await doctor(['--output', 'yaml']);
    assert.equal(bad.code, 2, show(bad));
  });
});
