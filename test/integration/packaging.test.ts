/**
 * What `npm pack` ships, and signet on a host without pkcs11js (a host without make and g++ cannot
 * build it): PEM keys verify end to end, a PKCS#11 key gives an error saying what to install. The
 * missing package is simulated by a preload that makes `require('pkcs11js')` fail, as on such a host.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { ROOT, SIGNET } from '../helpers/daemon.js';
import { pushImage } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';

describe('packaging: npm pack, and signet without pkcs11js', function () {
  this.timeout(180_000);
  const work = mkdtempSync(join(tmpdir(), 'signet-pack-'));
  const blocker = join(work, 'no-pkcs11js.cjs');
  writeFileSync(
    blocker,
    `const M = require('module'); const r = M._resolveFilename; M._resolveFilename = function (req, ...a) { if (req === 'pkcs11js') { const e = new Error("Cannot find module 'pkcs11js'"); e.code = 'MODULE_NOT_FOUND'; throw e; } return r.call(this, req, ...a); };\n`,
  );
  const withoutPkcs11 = (script: string, args: string[]) => {
    const r = spawnSync(process.execPath, ['--require', blocker, script, ...args], { encoding: 'utf8', timeout: 30_000, input: '' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  after(() => rmSync(work, { recursive: true, force: true }));

  describe('npm pack', () => {
    let files: string[];
    let unpacked: string;
    before(() => {
      // prepack builds (tsc) and writes the man page and the completion from the command definitions.
      const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 170_000,
      });
      const info = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>;
      files = info[0]!.files.map((f) => f.path);
      unpacked = join(work, 'unpacked');
      mkdirSync(unpacked);
      execFileSync('tar', ['xzf', join(work, info[0]!.filename), '-C', unpacked]);
    });

    it('ships the built executables, the man page, the completion, the unit and the protos; no tests', () => {
      for (const f of [
        'dist/src/cli/signet.js',
        'dist/src/cli/signetd.js',
        'dist/src/cli/signet-verifier.js',
        'verifier/signet-verifier.sh',
        'man/signet.1',
        'completion/signet.bash',
        'systemd/signetd.service',
        'package.json',
      ])
        assert.ok(files.includes(f), `${f} is missing from the tarball`);
      assert.ok(files.some((f) => f.startsWith('proto/')));
      assert.ok(!files.some((f) => f.startsWith('dist/test/') || f.startsWith('src/')), 'tests and sources stay out');
    });

    it('pkcs11js is an optional dependency; the man page in the tarball is the generated one', () => {
      const pkg = JSON.parse(readFileSync(join(unpacked, 'package', 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
        optionalDependencies?: Record<string, string>;
      };
      assert.equal(pkg.dependencies['pkcs11js'], undefined);
      assert.ok(pkg.optionalDependencies?.['pkcs11js']);
      assert.equal(
        readFileSync(join(unpacked, 'package', 'man', 'signet.1'), 'utf8'),
        spawnSync(process.execPath, [SIGNET, 'man'], { encoding: 'utf8' }).stdout,
      );
    });

    it('the unpacked package runs without pkcs11js: --version on all three, --help, and a clear error for PKCS#11', () => {
      // The dependencies as npm would install them next to it (this checkout's), pkcs11js blocked.
      symlinkSync(join(ROOT, 'node_modules'), join(unpacked, 'package', 'node_modules'));
      const bin = (name: string) => join(unpacked, 'package', 'dist', 'src', 'cli', `${name}.js`);
      assert.match(withoutPkcs11(bin('signet'), ['--version']).stdout, /^signet \d/);
      assert.match(withoutPkcs11(bin('signetd'), ['--version']).stdout, /^signetd \d/);
      assert.match(withoutPkcs11(bin('signet-verifier'), ['-version']).stdout, /^signet-verifier \d/);
      // The shell verifier, executable as npm unpacks it, reads the version of the package it sits in.
      assert.equal(
        spawnSync(join(unpacked, 'package', 'verifier', 'signet-verifier.sh'), ['-version'], { encoding: 'utf8', input: '' }).stdout,
        `signet-verifier ${(JSON.parse(readFileSync(join(unpacked, 'package', 'package.json'), 'utf8')) as { version: string }).version}\n`,
      );
      assert.match(withoutPkcs11(bin('signet'), ['keys', 'generate', '--help']).stdout, /^usage: signet keys generate/);
      const keys = withoutPkcs11(bin('signet'), ['keys', 'list', '--key', 'pkcs11:token=x']);
      assert.equal(keys.code, 1);
      assert.match(keys.stderr, /KEY_UNAVAILABLE: PKCS#11 keys need the optional package pkcs11js.*make, g\+\+/);
    });
  });

  describe('verification without pkcs11js', () => {
    let registry: RegistryHandle;
    let policyDir: string;
    let image: string;
    before(async () => {
      registry = await startRegistry();
      const client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
      const key = makeTestKey('ecdsa-p256');
      const repo = { registry: registry.host, repository: 'prod/app' };
      const img = await pushImage(client, repo, 'v1');
      await signImageCosign(client, repo, img.digest, key.signer, { dockerReference: `${registry.host}/prod/app` });
      image = `${registry.host}/prod/app:v1`;
      policyDir = join(work, 'policy');
      mkdirSync(policyDir);
      key.writePublic(join(work, 'release.pub'));
      writeFileSync(
        join(policyDir, 'p.yaml'),
        JSON.stringify({
          apiVersion: 'signet/v1',
          keys: { release: { file: join(work, 'release.pub') } },
          scopes: { [`${registry.host}/prod`]: { action: 'verify', signatures: { keys: ['release'] } } },
        }),
      );
    });
    after(async () => registry?.stop());

    it('a PEM key verifies a signed image (exit 0)', () => {
      const r = withoutPkcs11(SIGNET, ['verify', image, '--policy-dir', policyDir, '--insecure-registry', registry.host]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^ACCEPT/);
    });

    it('a policy naming a PKCS#11 key: refused, the reason says pkcs11js is missing', () => {
      const dir = join(work, 'policy-hsm');
      mkdirSync(dir);
      writeFileSync(
        join(dir, 'p.yaml'),
        JSON.stringify({
          apiVersion: 'signet/v1',
          keys: { hsm: { pkcs11: 'pkcs11:token=t;object=k' } },
          scopes: { [`${registry.host}/prod`]: { action: 'verify', signatures: { keys: ['hsm'] } } },
        }),
      );
      const r = withoutPkcs11(SIGNET, ['verify', image, '--policy-dir', dir, '--insecure-registry', registry.host]);
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /pkcs11js/);
    });
  });
});
