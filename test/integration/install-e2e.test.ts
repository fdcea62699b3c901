/**
 * An operator's install, end to end on a temporary root: `npm pack` → `npm install -g --prefix` of the
 * tarball (its dependencies from the npm registry; install scripts are not run, so pkcs11js stays
 * unbuilt, as on a host without a compiler) → the installed `signet install --prefix <root>` → signetd
 * started from the installed package with the installed signetd.yaml, as the Type=notify unit starts it
 * (NOTIFY_SOCKET; containerd, ordered after signetd, starts once READY=1 arrives) → real containerd 2.x
 * whose config imports the installed drop-in (conf.d/signet.toml) → `ctr image pull` of an unsigned
 * image: allowed with a `warn` audit line under the example policy (warn mode), refused with signet's
 * reason once the operator changes the example policy's mode to enforce. Then images named after a
 * registry this host cannot reach (a closed port) are pulled through a hosts.toml mirror (a second
 * docker-registry) in /etc/containerd/certs.d, the folder the installed signetd.yaml names and the one
 * the operator gives containerd (CRI `config_path`; `ctr --hosts-dir`): signed on the mirror, accepted
 * (the signature was found on the mirror, the only host that answers); unsigned there, refused.
 *
 * What install writes names the host's absolute paths (/etc/signet/…, /run/signet/…, /var/log/signet/…,
 * /opt/containerd/image-verifier/bin). On a temporary root nothing is chrooted, so the test rewrites those
 * paths to the same paths under the root, as a chroot would see them, and nothing else. In signetd.yaml
 * it also: drops `nri: {}` (it would dial the host's /var/run/nri/nri.sock; NRI is tested in
 * nri.test.ts), turns the watch of containerd's API off (it would watch the host's
 * /run/containerd/containerd.sock) and names the test registry in insecureRegistries (plain HTTP). The
 * example policy's key file is written where the policy names it, as the operator is told to.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { RegistryClient, type RepositoryRef } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startContainerd, type ContainerdHandle } from '../helpers/containerd.js';
import { criClient, type CriClient } from '../helpers/cri.js';
import { ROOT, waitFor, waitForSocket } from '../helpers/daemon.js';
import { requireDebianParts } from '../helpers/debian-parts.js';
import { makeTestKey } from '../helpers/keys.js';
import { startNotifyReceiver, type NotifyReceiver } from '../helpers/notify-receiver.js';
import { freePort, startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { pushRunnableImage } from '../helpers/runnable-image.js';

describe('install end to end: npm pack, npm install -g, signet install, containerd 2.x enforcing the example policy', function () {
  this.timeout(180_000);
  let work: string;
  let root: string;
  let npmPrefix: string;
  let registry: RegistryHandle;
  let mirror: RegistryHandle;
  /** The registry the mirrored images are named after: a closed port, unreachable. */
  let upstream: string;
  let notify: NotifyReceiver | undefined;
  let containerd: ContainerdHandle | undefined;
  let cri: CriClient | undefined;
  let signetd: ChildProcess | undefined;
  let signetdLog = '';
  let installOut = '';
  let installCode: number | null = null;
  const at = (p: string) => join(root, p);
  const PATH = [dirname(process.execPath), process.env['PATH'] ?? ''].join(':');
  const installed = (name: string) => join(npmPrefix, 'bin', name);
  const audit = (): Array<Record<string, unknown>> => {
    const file = at('/var/log/signet/audit.log');
    return existsSync(file)
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];
  };
  /** The host's absolute paths in an installed file, under the temporary root instead. */
  const rooted = (text: string) => text.replace(/(?<=[\s":])\/(etc|run|var|opt)\//g, `${root}/$1/`);

  before(async function () {
    requireDebianParts();
    // Short: signetd's socket lives under the root, and unix socket paths are limited to 108 bytes.
    root = mkdtempSync('/tmp/sroot-');
    work = mkdtempSync(join(tmpdir(), 'signet-e2e-'));
    npmPrefix = join(work, 'npm');
    // prepack builds the tarball's dist/ (tsc), the man page and the completion.
    const pack = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 }),
    ) as Array<{ filename: string }>;
    const tarball = join(work, pack[0]!.filename);
    execFileSync('npm', ['install', '-g', '--prefix', npmPrefix, '--no-audit', '--no-fund', tarball], {
      cwd: work,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
      env: { ...process.env, PATH },
    });
    const r = spawnSync(installed('signet'), ['install', '--prefix', root], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PATH } });
    installOut = r.stdout + r.stderr;
    installCode = r.status;
    registry = await startRegistry();
    mirror = await startRegistry();
    upstream = `127.0.0.1:${await freePort()}`;
  });
  after(async () => {
    cri?.close();
    await containerd?.stop();
    if (signetd && signetd.exitCode === null && signetd.signalCode === null) {
      signetd.kill('SIGTERM');
      await new Promise<void>((r) => {
        const t = setTimeout(() => (signetd!.kill('SIGKILL'), r()), 5000);
        signetd!.once('exit', () => (clearTimeout(t), r()));
      });
    }
    await registry?.stop();
    await mirror?.stop();
    await notify?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the installed package has all three commands, each answering --help', () => {
    for (const name of ['signet', 'signetd']) {
      const r = spawnSync(installed(name), ['--help'], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, PATH } });
      assert.equal(r.status, 0, `${name} --help: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, new RegExp(`usage: ${name}`, 'i'));
    }
    const v = spawnSync(installed('signet-verifier'), ['-version'], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, PATH }, input: '' });
    assert.match(v.stdout, /^signet-verifier \d/, v.stdout + v.stderr);
  });

  it('signet install on the temporary root writes the unit, signetd.yaml, the example policy, the verifier link and the drop-in', () => {
    assert.equal(installCode, 0, installOut);
    for (const p of [
      '/etc/systemd/system/signetd.service',
      '/etc/signet/signetd.yaml',
      '/etc/signet/policy.d/00-example.yaml',
      '/etc/containerd/conf.d/signet.toml',
      '/etc/containerd/config.toml',
    ])
      assert.ok(existsSync(at(p)), `${p} missing:\n${installOut}`);
    // The verifier in bin_dir is the installed package's shell verifier (curl is here), not this checkout's.
    const link = at('/opt/containerd/image-verifier/bin/signet-verifier');
    assert.equal(realpathSync(readlinkSync(link)), realpathSync(join(npmPrefix, 'lib/node_modules/signet/verifier/signet-verifier.sh')));
    assert.match(spawnSync(link, ['-version'], { encoding: 'utf8', input: '' }).stdout, /^signet-verifier \d+\.\d+\.\d+\n$/);
    accessSync(link, constants.X_OK);
    assert.match(readFileSync(at('/etc/signet/policy.d/00-example.yaml'), 'utf8'), /^ {2}mode: warn$/m);
    // The unit: signetd signals readiness itself (sd_notify), run by the installed package.
    const unitPath = at('/etc/systemd/system/signetd.service');
    const unit = readFileSync(unitPath, 'utf8');
    assert.match(unit, /^Type=notify$/m);
    assert.match(unit, /^NotifyAccess=all$/m);
    assert.doesNotMatch(unit, /^ExecStartPost=/m);
    assert.equal(unit.match(/^TimeoutStartSec=/gm)?.length, 1, unit);
    assert.match(unit, /^ExecStart=\S+ \S+\/lib\/node_modules\/signet\/dist\/src\/cli\/signetd\.js --config \/etc\/signet\/signetd\.yaml$/m);
    // systemd's own reading of the unit: every setting known and valid, the ExecStart executable there.
    const verify = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', verify.stderr);
  });

  describe('on containerd 2.x', () => {
    const release = makeTestKey('ecdsa-p256');
    let client: RegistryClient;
    let policyFile: string;
    const loads = () => signetdLog.split('\n').filter((l) => l.includes('policy loaded')).length;

    before(async function () {
      assert.equal(installCode, 0, installOut);
      client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
      // signetd.yaml as installed, its paths under the root (see the header for the three changes).
      const yamlPath = at('/etc/signet/signetd.yaml');
      const yaml = rooted(readFileSync(yamlPath, 'utf8')).replace(/^nri: \{\}$/m, '# nri: {} (off in this test: the host NRI socket)');
      writeFileSync(yamlPath, `${yaml}containerd: { enabled: false }\ninsecureRegistries: [${JSON.stringify(registry.host)}]\nregistryRetries: 0\n`);
      // The operator puts the release key where the example policy says.
      policyFile = at('/etc/signet/policy.d/00-example.yaml');
      writeFileSync(policyFile, rooted(readFileSync(policyFile, 'utf8')));
      mkdirSync(at('/etc/signet/keys'), { recursive: true });
      release.writePublic(at('/etc/signet/keys/release.pub'));
      // The drop-in's bin_dir under the root.
      const dropIn = at('/etc/containerd/conf.d/signet.toml');
      writeFileSync(dropIn, rooted(readFileSync(dropIn, 'utf8')));
      mkdirSync(at('/run/signet'), { recursive: true });
      mkdirSync(at('/var/log/signet'), { recursive: true });
      // The operator's mirror for the unreachable upstream, where containerd and the installed signetd.yaml look.
      const hostsDir = at(`/etc/containerd/certs.d/${upstream}`);
      mkdirSync(hostsDir, { recursive: true });
      writeFileSync(
        join(hostsDir, 'hosts.toml'),
        [`server = "http://${upstream}"`, '', `[host."http://${mirror.host}"]`, '  capabilities = ["pull", "resolve"]', ''].join('\n'),
      );

      // signetd from the installed package, with the installed configuration, as the Type=notify unit runs it.
      notify = await startNotifyReceiver();
      signetd = spawn(installed('signetd'), ['--config', yamlPath], {
        env: { ...process.env, PATH, NOTIFY_SOCKET: notify.socket },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      signetd.stderr!.on('data', (d: Buffer) => (signetdLog += d.toString()));
      const exited = new Promise<never>((_, reject) => signetd!.once('exit', (code) => reject(new Error(`signetd exited with ${code}:\n${signetdLog}`))));
      // systemd starts containerd (ordered after signetd) once READY=1 arrives: by then signetd answers, its policy loaded.
      const ready = await Promise.race([notify.next((m) => m.fields['READY'] === '1', 30_000), exited]);
      assert.match(ready.fields['STATUS'] ?? '', /^serving \S+signetd\.sock; policy \S+$/, ready.text);
      await waitForSocket(at('/run/signet/signetd.sock'), signetd, () => signetdLog, 1000);
      assert.ok(loads() > 0, signetdLog);
      // containerd imports the installed drop-in; the verifier finds signetd's socket under the root; CRI's
      // config_path is the hosts.toml folder (the operator's setting; containerd 2.1's own default is none).
      containerd = await startContainerd({
        line: '2.x',
        imports: [dropIn],
        nri: false,
        registryConfigPath: at('/etc/containerd/certs.d'),
        env: { SIGNET_SOCKET: at('/run/signet/signetd.sock'), SIGNET_VERIFY_SOCKET: at('/run/signet/verify.sock') },
      });
      assert.match(containerd.version, /^2\./);
      cri = criClient(containerd.address);
    });

    it('containerd loaded the drop-in: its bin_dir is the installed verifier folder', async () => {
      // containerd's own view of its configuration, imports merged.
      const dump = spawnSync(join(containerd!.binDir, 'containerd'), ['--config', containerd!.configPath, 'config', 'dump'], {
        encoding: 'utf8',
        timeout: 15_000,
      });
      assert.equal(dump.status, 0, dump.stderr);
      assert.ok(dump.stdout.includes(`bin_dir = '${at('/opt/containerd/image-verifier/bin')}'`), dump.stdout);
      // NRI on (the drop-in; this config alone has it off), its socket still the test's own: the import merges into the table, never replaces it.
      assert.ok(dump.stdout.includes(`[plugins.'io.containerd.nri.v1.nri']\n    disable = false\n    socket_path = '${containerd!.nriSocket}'\n`), dump.stdout);
    });

    it('warn mode (as installed): an unsigned image is pulled, the audit line says warn', async () => {
      const img = await pushRunnableImage(client, { registry: registry.host, repository: 'prod/unsigned' }, { tag: 'v1' });
      const ref = `${registry.host}/prod/unsigned:v1`;
      const res = await containerd!.ctr(['image', 'pull', '--plain-http', ref], { timeoutMs: 30_000 });
      assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}\n${signetdLog.slice(-2000)}`);
      await waitFor(() => audit().some((l) => l['digest'] === img.digest), `the audit line:\n${signetdLog.slice(-2000)}`, 5000);
      const line = audit().find((l) => l['digest'] === img.digest)!;
      assert.equal(line['decision'], 'warn', JSON.stringify(line));
    });

    it("the operator sets mode: enforce in the example policy: the same pull is refused with signet's reason", async () => {
      const before = loads();
      const text = readFileSync(policyFile, 'utf8');
      assert.match(text, /^ {2}mode: warn$/m);
      // Write then rename, as an editor or configuration management does.
      writeFileSync(`${policyFile}.tmp`, text.replace(/^ {2}mode: warn$/m, '  mode: enforce'));
      renameSync(`${policyFile}.tmp`, policyFile);
      await waitFor(() => loads() > before, `the edited policy to load:\n${signetdLog.slice(-2000)}`, 10_000);
      const ref = `${registry.host}/prod/unsigned:v1`;
      const rm = await containerd!.ctr(['image', 'rm', ref], { timeoutMs: 10_000 });
      assert.equal(rm.code, 0, rm.stderr);
      const res = await containerd!.ctr(['image', 'pull', '--plain-http', ref], { timeoutMs: 30_000 });
      assert.notEqual(res.code, 0, res.stdout);
      assert.match(res.stderr, /verifier signet-verifier rejected image/);
      assert.match(res.stderr, /no signatures found/);
      const listed = await containerd!.ctr(['image', 'ls', '-q'], { timeoutMs: 10_000 });
      assert.ok(!listed.stdout.includes(ref), listed.stdout);
    });

    describe('through a hosts.toml mirror (the upstream unreachable), under the enforced example policy', () => {
      let mirrorClient: RegistryClient;
      /** A repository on the mirror, stored under the same path as upstream. */
      const onMirror = (name: string): RepositoryRef => ({ registry: mirror.host, repository: name });
      const hostsDir = () => at('/etc/containerd/certs.d');
      const auditOf = async (digest: string) => {
        await waitFor(() => audit().some((l) => l['digest'] === digest), `the audit line:\n${signetdLog.slice(-2000)}`, 5000);
        return audit().find((l) => l['digest'] === digest)!;
      };

      before(() => {
        mirrorClient = new RegistryClient({ insecureRegistries: [mirror.host], retries: 0 });
        assert.match(readFileSync(policyFile, 'utf8'), /^ {2}mode: enforce$/m, 'the previous test set mode: enforce');
      });

      it('ctr pull --hosts-dir: signed on the mirror by the release key, accepted; signetd found the signature on the mirror', async () => {
        const img = await pushRunnableImage(mirrorClient, onMirror('prod/app'), { tag: 'v1', file: { path: 'etc/id', content: 'mirror-signed' } });
        await signImageCosign(mirrorClient, onMirror('prod/app'), img.digest, release.signer, { dockerReference: `${upstream}/prod/app` });
        const ref = `${upstream}/prod/app:v1`;
        const res = await containerd!.ctr(['image', 'pull', '--hosts-dir', hostsDir(), ref], { timeoutMs: 30_000 });
        assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}\n${signetdLog.slice(-2000)}`);
        const line = await auditOf(img.digest);
        assert.equal(line['decision'], 'accept', JSON.stringify(line));
        assert.equal(line['name'], ref);
      });

      it('CRI PullImage (config_path, as kubelet pulls): signed on the mirror, accepted', async () => {
        const img = await pushRunnableImage(mirrorClient, onMirror('prod/cri'), { tag: 'v1', file: { path: 'etc/id', content: 'mirror-cri' } });
        await signImageCosign(mirrorClient, onMirror('prod/cri'), img.digest, release.signer, { dockerReference: `${upstream}/prod/cri` });
        const id = await cri!.pullImage(`${upstream}/prod/cri:v1`);
        assert.ok(id.length > 0);
        assert.equal((await auditOf(img.digest))['decision'], 'accept');
      });

      it("ctr pull --hosts-dir: the mirror has the image unsigned: refused with signet's reason, nothing stored", async () => {
        const img = await pushRunnableImage(mirrorClient, onMirror('prod/unsigned'), { tag: 'v1', file: { path: 'etc/id', content: 'mirror-unsigned' } });
        const ref = `${upstream}/prod/unsigned:v1`;
        const res = await containerd!.ctr(['image', 'pull', '--hosts-dir', hostsDir(), ref], { timeoutMs: 30_000 });
        assert.notEqual(res.code, 0, res.stdout);
        assert.match(res.stderr, /verifier signet-verifier rejected image/);
        assert.match(res.stderr, /no signatures found/);
        const line = await auditOf(img.digest);
        assert.equal(line['decision'], 'reject', JSON.stringify(line));
        assert.equal(line['name'], ref);
        const listed = await containerd!.ctr(['image', 'ls', '-q'], { timeoutMs: 10_000 });
        assert.ok(!listed.stdout.includes(ref), listed.stdout);
      });
    });
  });
});
