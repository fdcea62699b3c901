/**
 * `signet install` and `signet uninstall` on a temporary root: what is written, read back as signetd
 * and containerd read it (signetd.yaml, the policy, containerd's config with its imports); the
 * operator's own config.toml never rewritten; uninstall leaving the tree as it was.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { readContainerdConfig } from '../../src/containerd/containerd-config.js';
import { parseConfig } from '../../src/daemon/config.js';
import { loadPolicyDir } from '../../src/policy/load.js';
import { ROOT, SIGNET, startDaemon } from '../helpers/daemon.js';
import { CONTAINERD_BIN } from '../helpers/debian-parts.js';

function signet(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [SIGNET, ...args], { encoding: 'utf8', timeout: 30_000, env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every path under `root` with its content (links: their target), for before/after comparisons. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const r = spawnSync('find', [root, '-mindepth', '1'], { encoding: 'utf8' });
  for (const p of r.stdout.split('\n').filter(Boolean).sort()) {
    const rel = relative(root, p);
    const kind = spawnSync('stat', ['-c', '%F', p], { encoding: 'utf8' }).stdout.trim();
    out[rel] = kind === 'symbolic link' ? `-> ${readlinkSync(p)}` : kind === 'directory' ? 'dir' : readFileSync(p, 'utf8');
  }
  return out;
}

describe('signet install / uninstall on a temporary root', function () {
  this.timeout(60_000);
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'signet-root-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('on an empty root: unit, config, warn-mode example policy, verifier in bin_dir, containerd config importing the drop-in; uninstall leaves nothing', () => {
    const r = signet(['install', '--prefix', root]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const p of [
      '/etc/systemd/system/signetd.service',
      '/etc/signet/signetd.yaml',
      '/etc/signet/policy.d/00-example.yaml',
      '/etc/containerd/conf.d/signet.toml',
      '/opt/containerd/image-verifier/bin/signet-verifier',
    ]) {
      assert.match(r.stdout, new RegExp(`(wrote|linked) +${join(root, p).replace(/[.]/g, '\\.')}`), p);
    }
    // signetd reads its config; the example policy loads and is in warn mode.
    const config = parseConfig(readFileSync(join(root, 'etc/signet/signetd.yaml'), 'utf8'), 'signetd.yaml');
    assert.equal(config.registryConfigPath, '/etc/containerd/certs.d');
    assert.ok(config.nri, 'NRI is on');
    return loadPolicyDir(join(root, 'etc/signet/policy.d')).then((policy) => {
      assert.equal(policy.default.mode, 'warn');
      assert.equal(policy.default.action, 'verify');
      // containerd reads config.toml, follows its import to the drop-in: bin_dir and NRI from there.
      const ctd = readContainerdConfig(join(root, 'etc/containerd/config.toml'));
      assert.ok(ctd.files.includes(join(root, 'etc/containerd/conf.d/signet.toml')), ctd.files.join(', '));
      assert.equal(ctd.binDir.value, '/opt/containerd/image-verifier/bin');
      assert.equal(ctd.nri.disable?.value, false);
      assert.ok(existsSync(readlinkSync(join(root, 'opt/containerd/image-verifier/bin/signet-verifier'))), 'the link points at the installed verifier');
      const unit = readFileSync(join(root, 'etc/systemd/system/signetd.service'), 'utf8');
      assert.match(unit, /^Before=containerd\.service/m);
      // signetd signals readiness itself (sd_notify, sent by its child systemd-notify).
      assert.equal(unit.match(/^Type=/gm)?.length, 1, unit);
      assert.match(unit, /^Type=notify$/m);
      assert.match(unit, /^NotifyAccess=all$/m);
      assert.doesNotMatch(unit, /^ExecStartPost=/m);
      assert.match(unit, /^ExecStart=\S+ \S+signetd\.js --config \/etc\/signet\/signetd\.yaml$/m);

      assert.notEqual(signet(['install', '--prefix', root]).code, 0, 'a second install refuses');
      const u = signet(['uninstall', '--prefix', root]);
      assert.equal(u.code, 0, u.stdout + u.stderr);
      assert.deepEqual(tree(root), {}, 'uninstall removes everything install wrote');
    });
  });

  it("an operator's config.toml without imports is not rewritten: install names the line to add (exit 1); their policy is kept; uninstall restores the tree", () => {
    mkdirSync(join(root, 'etc/containerd'), { recursive: true });
    writeFileSync(join(root, 'etc/containerd/config.toml'), 'version = 3\n[plugins."io.containerd.image-verifier.v1.bindir"]\n  bin_dir = "/srv/verifiers"\n');
    mkdirSync(join(root, 'etc/signet/policy.d'), { recursive: true });
    writeFileSync(join(root, 'etc/signet/policy.d/prod.yaml'), 'apiVersion: signet/v1\ndefault: { action: reject }\n');
    const before = tree(root);
    const r = signet(['install', '--prefix', root]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /does not import \S+conf\.d\/signet\.toml; signet did not change it/);
    assert.match(r.stdout, /imports = \["\/etc\/containerd\/conf\.d\/signet\.toml"\]/);
    assert.match(r.stdout, /kept +\S+policy\.d \(holds a policy already\)/);
    assert.equal(readFileSync(join(root, 'etc/containerd/config.toml'), 'utf8'), before['etc/containerd/config.toml']);
    assert.ok(!existsSync(join(root, 'etc/signet/policy.d/00-example.yaml')));
    // The operator's bin_dir is where the verifier goes.
    assert.ok(existsSync(join(root, 'srv/verifiers/signet-verifier')) || readlinkSync(join(root, 'srv/verifiers/signet-verifier')));
    assert.match(readFileSync(join(root, 'etc/containerd/conf.d/signet.toml'), 'utf8'), /bin_dir = "\/srv\/verifiers"/);
    assert.equal(signet(['uninstall', '--prefix', root]).code, 0);
    assert.deepEqual(tree(root), before);
  });

  it("the drop-in keeps an operator's own containerd settings, config version 1, 2 or 3, as containerd 2.x and 1.7 read them", () => {
    assert.equal(signet(['install', '--prefix', root]).code, 0);
    const dropIn = join(root, 'etc/containerd/conf.d/signet.toml');
    const operator: Record<string, string> = {
      '1': `imports = [${JSON.stringify(dropIn)}]\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "example.com/pause:9"\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/srv/certs.d"\n`,
      '2': `version = 2\nimports = [${JSON.stringify(dropIn)}]\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "example.com/pause:9"\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/srv/certs.d"\n`,
      '3': `version = 3\nimports = [${JSON.stringify(dropIn)}]\n[plugins."io.containerd.cri.v1.images".pinned_images]\n  sandbox = "example.com/pause:9"\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/srv/certs.d"\n`,
    };
    const dump = (line: '2.x' | '1.7', config: string) => {
      const file = join(root, `operator-${line}.toml`);
      writeFileSync(file, config);
      const r = spawnSync(join(CONTAINERD_BIN[line], 'containerd'), ['--config', file, 'config', 'dump'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    for (const [version, config] of Object.entries(operator)) {
      const two = dump('2.x', config);
      assert.match(two, /config_path = '\/srv\/certs\.d'/, `2.x, operator version ${version}: their registry config_path kept`);
      assert.match(two, /sandbox = 'example\.com\/pause:9'/, `2.x, operator version ${version}: their sandbox image kept`);
      assert.match(two, /bin_dir = '\/opt\/containerd\/image-verifier\/bin'/, `2.x, operator version ${version}: signet's bin_dir`);
      if (version === '3') continue; // containerd 1.7 reads versions 1 and 2 only
      const seven = dump('1.7', config);
      assert.match(seven, /config_path = "\/srv\/certs\.d"/, `1.7, operator version ${version}`);
      assert.match(seven, /sandbox_image = "example\.com\/pause:9"/, `1.7, operator version ${version}`);
    }
  });

  it('links the shell verifier where curl is on the PATH, the Node verifier with a warning where it is not', () => {
    const link = join(root, 'opt/containerd/image-verifier/bin/signet-verifier');
    const withCurl = signet(['install', '--prefix', root]);
    assert.equal(withCurl.code, 0, withCurl.stdout + withCurl.stderr);
    assert.equal(readlinkSync(link), join(ROOT, 'verifier/signet-verifier.sh'));
    assert.doesNotMatch(withCurl.stdout, /curl is not on the PATH/);
    assert.equal(signet(['uninstall', '--prefix', root]).code, 0);
    const withoutCurl = signet(['install', '--prefix', root], { ...process.env, PATH: join(root, 'no-such-dir') });
    assert.equal(withoutCurl.code, 0, withoutCurl.stdout + withoutCurl.stderr);
    assert.equal(readlinkSync(link), join(ROOT, 'dist/src/cli/signet-verifier.js'));
    assert.match(withoutCurl.stdout, /! +curl is not on the PATH: linking the Node verifier/);
  });

  it('uninstall keeps a file changed since install, and says so (exit 1)', () => {
    assert.equal(signet(['install', '--prefix', root]).code, 0);
    writeFileSync(join(root, 'etc/signet/signetd.yaml'), 'socket: /run/signet/other.sock\n');
    const u = signet(['uninstall', '--prefix', root]);
    assert.equal(u.code, 1);
    assert.match(u.stdout, /kept +\S+signetd\.yaml \(changed since install\)/);
    assert.deepEqual(Object.keys(tree(root)).sort(), ['etc', 'etc/signet', 'etc/signet/signetd.yaml']);
  });

  it("the unit's readiness check: status --wait --ready exits 0 once signetd answers, 3 when it never does", async () => {
    const t0 = Date.now();
    const none = signet(['status', '--socket', join(root, 'absent.sock'), '--wait', '600ms', '--ready']);
    assert.equal(none.code, 3);
    assert.ok(Date.now() - t0 >= 600, 'it kept trying for the whole wait');
    const d = await startDaemon();
    try {
      const ok = signet(['status', '--socket', d.socket, '--wait', '10s', '--ready']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout, '');
    } finally {
      await d.stop();
    }
  });
});
