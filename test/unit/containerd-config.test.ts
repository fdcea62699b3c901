/**
 * The containerd config reader: the CRI settings that send CRI pulls around the verifier (each named,
 * in both config forms), bin_dir, imports, versions and errors, without containerd. The rules are
 * containerd 2.1's (see src/containerd/containerd-config.ts), several of them confirmed on the real
 * containerd 2.1 of this machine (test/integration/doctor.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ContainerdConfigError,
  DEFAULT_VERIFIER_BIN_DIR,
  fsSource,
  parseGoDurationMs,
  readContainerdConfig,
  type ConfigSource,
} from '../../src/containerd/containerd-config.js';

/** Files in memory; `*` in imports matched within one folder, sorted, as Go's filepath.Glob does. */
function memory(files: Record<string, string>): ConfigSource {
  return {
    readFile: (p) => files[p],
    glob: (pattern) => {
      const re = new RegExp(
        `^${pattern
          .replace(/[.+^${}()|\\]/g, '\\$&')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')}$`,
      );
      return Object.keys(files)
        .filter((p) => re.test(p))
        .sort();
    },
  };
}

const MAIN = '/etc/containerd/config.toml';
const read = (text: string, more: Record<string, string> = {}) => readContainerdConfig(MAIN, memory({ [MAIN]: text, ...more }));

const V3 = 'plugins."io.containerd.cri.v1.images"';
const V2 = 'plugins."io.containerd.grpc.v1.cri"';

/** Each setting that moves CRI to local pull: TOML in version-3 form, the same in version-2 form, the key reported for each. */
const SETTINGS: Array<{ name: string; v3: string; v2: string; key3: string; key2: string; value: string; default: string }> = [
  {
    name: 'UseLocalImagePull',
    v3: `[${V3}]\nuse_local_image_pull = true`,
    // There is no version-2 key for it (the migration does not copy one): in a version-2 file it is written in the version-3 table.
    v2: `[${V3}]\nuse_local_image_pull = true`,
    key3: `${V3}.use_local_image_pull`,
    key2: `${V3}.use_local_image_pull`,
    value: 'true',
    default: 'false',
  },
  {
    name: 'DisableSnapshotAnnotations',
    v3: `[${V3}]\ndisable_snapshot_annotations = false`,
    v2: `[${V2}.containerd]\ndisable_snapshot_annotations = false`,
    key3: `${V3}.disable_snapshot_annotations`,
    key2: `${V2}.containerd.disable_snapshot_annotations`,
    value: 'false',
    default: 'true',
  },
  {
    name: 'DiscardUnpackedLayers',
    v3: `[${V3}]\ndiscard_unpacked_layers = true`,
    v2: `[${V2}.containerd]\ndiscard_unpacked_layers = true`,
    key3: `${V3}.discard_unpacked_layers`,
    key2: `${V2}.containerd.discard_unpacked_layers`,
    value: 'true',
    default: 'false',
  },
  {
    name: 'Registry.Mirrors',
    v3: `[${V3}.registry.mirrors."docker.io"]\nendpoint = ["https://mirror.example"]`,
    v2: `[${V2}.registry.mirrors."docker.io"]\nendpoint = ["https://mirror.example"]`,
    key3: `${V3}.registry.mirrors`,
    key2: `${V2}.registry.mirrors`,
    value: '{ "docker.io" }',
    default: 'none',
  },
  {
    name: 'Registry.Configs',
    v3: `[${V3}.registry.configs."r.example".tls]\ninsecure_skip_verify = true`,
    v2: `[${V2}.registry.configs."r.example".tls]\ninsecure_skip_verify = true`,
    key3: `${V3}.registry.configs`,
    key2: `${V2}.registry.configs`,
    value: '{ "r.example" }',
    default: 'none',
  },
  {
    name: 'Registry.Auths',
    v3: `[${V3}.registry.auths."https://r.example"]\nusername = "u"`,
    v2: `[${V2}.registry.auths."https://r.example"]\nusername = "u"`,
    key3: `${V3}.registry.auths`,
    key2: `${V2}.registry.auths`,
    value: '{ "https://r.example" }',
    default: 'none',
  },
  {
    name: 'MaxConcurrentDownloads',
    v3: `[${V3}]\nmax_concurrent_downloads = 2`,
    v2: `[${V2}]\nmax_concurrent_downloads = 2`,
    key3: `${V3}.max_concurrent_downloads`,
    key2: `${V2}.max_concurrent_downloads`,
    value: '2',
    default: '3',
  },
  {
    name: 'ImagePullWithSyncFs',
    v3: `[${V3}]\nimage_pull_with_sync_fs = true`,
    v2: `[${V2}]\nimage_pull_with_sync_fs = true`,
    key3: `${V3}.image_pull_with_sync_fs`,
    key2: `${V2}.image_pull_with_sync_fs`,
    value: 'true',
    default: 'false',
  },
];

describe('containerd config: CRI settings that bypass the verifier', () => {
  for (const s of SETTINGS) {
    it(`names ${s.key3} in a version 3 file`, () => {
      const r = read(`version = 3\n${s.v3}\n`);
      assert.equal(r.criBypass.length, 1, JSON.stringify(r.criBypass));
      assert.deepEqual(
        { ...r.criBypass[0]!, fix: undefined },
        { name: s.name, key: s.key3, value: s.value, default: s.default, files: [MAIN], fix: undefined },
      );
      assert.ok(r.criBypass[0]!.fix.length > 0);
    });
    it(`names ${s.key2} in a version 2 file`, () => {
      const r = read(`version = 2\n${s.v2}\n`);
      assert.equal(r.criBypass.length, 1, JSON.stringify(r.criBypass));
      assert.equal(r.criBypass[0]!.name, s.name);
      assert.equal(r.criBypass[0]!.key, s.key2);
      assert.equal(r.criBypass[0]!.value, s.value);
      assert.deepEqual(r.criBypass[0]!.files, [MAIN]);
    });
  }

  it('the fix for max_concurrent_downloads says to set 3 and where concurrency goes instead', () => {
    const [b] = read(`version = 3\n[${V3}]\nmax_concurrent_downloads = 2\n`).criBypass;
    assert.match(b!.fix, /^remove it or set 3/);
    assert.match(b!.fix, /io\.containerd\.transfer\.v1\.local/);
  });

  it('the default values and registry.config_path alone keep CRI on the verifying path', () => {
    const r = read(
      [
        'version = 3',
        `[${V3}]`,
        'max_concurrent_downloads = 3',
        'disable_snapshot_annotations = true',
        'discard_unpacked_layers = false',
        'image_pull_with_sync_fs = false',
        'use_local_image_pull = false',
        `[${V3}.registry]`,
        'config_path = "/etc/containerd/certs.d"',
        `[${V3}.registry.mirrors]`,
        `[${V3}.registry.headers]`,
        'X-Node = ["n1"]',
      ].join('\n'),
    );
    assert.deepEqual(r.criBypass, []);
    assert.deepEqual(r.registryConfigPath, { value: '/etc/containerd/certs.d', file: MAIN, key: `${V3}.registry.config_path` });
    assert.deepEqual(r.problems, []);
  });

  it('names every setting at once, not only the first (containerd logs only the first)', () => {
    const r = read(`version = 3\n[${V3}]\nmax_concurrent_downloads = 5\ndiscard_unpacked_layers = true\n[${V3}.registry.mirrors."docker.io"]\nendpoint = []\n`);
    assert.deepEqual(r.criBypass.map((b) => b.name).sort(), ['DiscardUnpackedLayers', 'MaxConcurrentDownloads', 'Registry.Mirrors']);
  });

  it('use_local_image_pull = true is the cause by itself: the others are not listed with it', () => {
    const r = read(`version = 3\n[${V3}]\nuse_local_image_pull = true\nmax_concurrent_downloads = 5\n`);
    assert.deepEqual(
      r.criBypass.map((b) => b.name),
      ['UseLocalImagePull'],
    );
  });

  it('version 3: the version-2 CRI keys are ignored by containerd 2.x, so they are not reported', () => {
    const r = read(`version = 3\n[${V2}]\nmax_concurrent_downloads = 2\n[${V2}.registry.mirrors."docker.io"]\nendpoint = []\n`);
    assert.deepEqual(r.criBypass, []);
  });

  it('no version (a version 1 file): migrated straight to 3, so the version-2 CRI keys are ignored too', () => {
    const r = read(`[${V2}]\nmax_concurrent_downloads = 2\n`);
    assert.equal(r.version.value, 3);
    assert.deepEqual(r.criBypass, []);
  });

  it('version 2: use_local_image_pull in the version-2 table is not migrated (containerd ignores it)', () => {
    assert.deepEqual(read(`version = 2\n[${V2}]\nuse_local_image_pull = true\n`).criBypass, []);
  });

  it('version 2: a version-2 key wins over the same key in the version-3 table (the migration copies it over)', () => {
    const r = read(`version = 2\n[${V3}]\nmax_concurrent_downloads = 3\n[${V2}]\nmax_concurrent_downloads = 4\n`);
    assert.deepEqual(
      r.criBypass.map((b) => [b.key, b.value]),
      [[`${V2}.max_concurrent_downloads`, '4']],
    );
    // And the version-2 registry table replaces the version-3 one whole (config_path included).
    const r2 = read(`version = 2\n[${V3}.registry]\nconfig_path = "/a"\n[${V2}.registry.configs."x".tls]\ninsecure_skip_verify = true\n`);
    assert.equal(r2.registryConfigPath, undefined);
    assert.deepEqual(
      r2.criBypass.map((b) => b.name),
      ['Registry.Configs'],
    );
  });

  it('mirrors together with config_path: containerd refuses to load the CRI image service, and both are reported', () => {
    const r = read(`version = 3\n[${V3}.registry]\nconfig_path = "/c"\n[${V3}.registry.mirrors."docker.io"]\nendpoint = []\n`);
    assert.deepEqual(
      r.criBypass.map((b) => b.name),
      ['Registry.Mirrors'],
    );
    assert.equal(r.problems.length, 1);
    assert.match(r.problems[0]!, /cannot be set when `config_path` is provided/);
  });
});

describe('containerd config: imports', () => {
  it('follows imports (relative to the importing file, globbed, breadth first) and names the file a setting is in', () => {
    const r = readContainerdConfig(
      MAIN,
      memory({
        [MAIN]: 'version = 3\nimports = ["conf.d/*.toml", "/opt/extra.toml"]\n',
        '/etc/containerd/conf.d/10-cri.toml': `[${V3}]\nimage_pull_with_sync_fs = true\n`,
        '/etc/containerd/conf.d/20-verifier.toml':
          'imports = ["../deep.toml"]\n[plugins."io.containerd.image-verifier.v1.bindir"]\nbin_dir = "/srv/verifiers"\n',
        '/etc/containerd/conf.d/README': 'not toml at all [',
        '/opt/extra.toml': `[${V3}.registry.auths."r.example"]\nusername = "x"\n`,
        '/etc/containerd/deep.toml': `[${V3}]\nmax_concurrent_downloads = 1\n`,
      }),
    );
    assert.deepEqual(r.files, [
      MAIN,
      '/etc/containerd/conf.d/10-cri.toml',
      '/etc/containerd/conf.d/20-verifier.toml',
      '/opt/extra.toml',
      '/etc/containerd/deep.toml',
    ]);
    const where = Object.fromEntries(r.criBypass.map((b) => [b.name, b.files]));
    assert.deepEqual(where, {
      ImagePullWithSyncFs: ['/etc/containerd/conf.d/10-cri.toml'],
      'Registry.Auths': ['/opt/extra.toml'],
      MaxConcurrentDownloads: ['/etc/containerd/deep.toml'],
    });
    assert.deepEqual(r.binDir, {
      value: '/srv/verifiers',
      file: '/etc/containerd/conf.d/20-verifier.toml',
      key: 'plugins."io.containerd.image-verifier.v1.bindir".bin_dir',
    });
  });

  it('a later file overrides an earlier value, false and 3 included; tables merge key by key', () => {
    const r = readContainerdConfig(
      MAIN,
      memory({
        [MAIN]: `version = 3\nimports = ["/d/*.toml"]\n[${V3}]\ndiscard_unpacked_layers = true\nmax_concurrent_downloads = 2\n[${V3}.registry]\nconfig_path = "/c"\n`,
        '/d/a.toml': `[${V3}]\ndiscard_unpacked_layers = false\n`,
        '/d/b.toml': `[${V3}]\nmax_concurrent_downloads = 3\n[${V3}.registry]\nheaders = { X = ["y"] }\n`,
      }),
    );
    assert.deepEqual(r.criBypass, []);
    assert.equal(r.registryConfigPath?.value, '/c');
  });

  it("a version-3 import turns off the migration of the main version-2 file's CRI keys (as containerd 2.1 does)", () => {
    const files = { [MAIN]: `version = 2\nimports = ["/d/x.toml"]\n[${V2}]\nmax_concurrent_downloads = 2\n`, '/d/x.toml': 'version = 3\n' };
    const r = readContainerdConfig(MAIN, memory(files));
    assert.deepEqual(r.version, { value: 3, file: '/d/x.toml', key: 'version' });
    assert.deepEqual(r.criBypass, []);
    // Without that import, the same main file trips.
    assert.equal(read(files[MAIN]!.replace('imports = ["/d/x.toml"]\n', '')).criBypass.length, 1);
  });

  it('reads each file once, even with circular imports', () => {
    const r = readContainerdConfig(MAIN, memory({ [MAIN]: 'version = 3\nimports = ["/a.toml"]\n', '/a.toml': `imports = ["${MAIN}", "/a.toml"]\n` }));
    assert.deepEqual(r.files, [MAIN, '/a.toml']);
  });

  it('a missing import is an error naming it (containerd does not start)', () => {
    assert.throws(
      () => read('version = 3\nimports = ["/nope.toml"]\n'),
      (e: Error) => e instanceof ContainerdConfigError && e.file === '/nope.toml' && /\/nope\.toml \(imported\) does not exist/.test(e.message),
    );
  });

  it('a glob that matches nothing is not an error', () => {
    assert.deepEqual(read('version = 3\nimports = ["/none/*.toml"]\n').files, [MAIN]);
  });

  it('version 1 files: short plugin names are migrated (disabled_plugins too)', () => {
    const r = readContainerdConfig(
      MAIN,
      memory({ [MAIN]: 'version = 2\nimports = ["/v1.toml"]\n', '/v1.toml': 'disabled_plugins = ["cri"]\n[plugins.cri]\nmax_concurrent_downloads = 2\n' }),
    );
    assert.deepEqual(r.disabledPlugins, [{ id: 'io.containerd.grpc.v1.cri', file: '/v1.toml' }]);
    assert.deepEqual(
      r.criBypass.map((b) => b.key),
      ['plugins.cri.max_concurrent_downloads'],
    );
  });
});

describe('containerd config: files and defaults', () => {
  it("a missing file means containerd's defaults", () => {
    const r = readContainerdConfig('/nowhere/config.toml', memory({}));
    assert.equal(r.exists, false);
    assert.deepEqual(r.files, []);
    assert.deepEqual(r.version, { value: 3 });
    assert.deepEqual(r.binDir, { value: DEFAULT_VERIFIER_BIN_DIR });
    assert.deepEqual(r.maxVerifiers, { value: 10 });
    assert.deepEqual(r.perVerifierTimeout, { value: '10s', ms: 10_000 });
    assert.deepEqual(r.criBypass, []);
    assert.deepEqual(r.nri, {});
    assert.deepEqual(r.disabledPlugins, []);
  });

  it('malformed TOML is an error naming the file, line and column', () => {
    assert.throws(
      () => read('version = 3\n[plugins."io.containerd.cri.v1.images"\nmax_concurrent_downloads = 2\n'),
      (e: Error) => e instanceof ContainerdConfigError && e.file === MAIN && /^\/etc\/containerd\/config\.toml:2:\d+: not valid TOML/.test(e.message),
    );
    assert.throws(
      () => readContainerdConfig(MAIN, memory({ [MAIN]: 'imports = ["/b.toml"]\n', '/b.toml': 'a = \n' })),
      (e: Error) => e instanceof ContainerdConfigError && e.file === '/b.toml' && /^\/b\.toml:1:\d+: not valid TOML/.test(e.message),
    );
  });

  it('a version above 3 is an error', () => {
    assert.throws(() => read('version = 4\n'), /version = 4; containerd 2\.x reads versions up to 3/);
  });

  it('reads the bindir plugin, NRI, disabled_plugins and the grpc address', () => {
    const r = read(
      [
        'version = 3',
        'disabled_plugins = ["io.containerd.image-verifier.v1.bindir"]',
        '[grpc]',
        'address = "/run/k/containerd.sock"',
        '[plugins."io.containerd.image-verifier.v1.bindir"]',
        'bin_dir = "/v"',
        'max_verifiers = 1',
        'per_verifier_timeout = "2m30s"',
        '[plugins."io.containerd.nri.v1.nri"]',
        'disable = true',
        'socket_path = "/run/nri/x.sock"',
      ].join('\n'),
    );
    assert.equal(r.binDir.value, '/v');
    assert.equal(r.maxVerifiers.value, 1);
    assert.equal(r.perVerifierTimeout.ms, 150_000);
    assert.equal(r.nri.disable?.value, true);
    assert.equal(r.nri.socketPath?.value, '/run/nri/x.sock');
    assert.deepEqual(r.disabledPlugins, [{ id: 'io.containerd.image-verifier.v1.bindir', file: MAIN }]);
    assert.equal(r.grpcAddress?.value, '/run/k/containerd.sock');
  });

  it('parses Go durations', () => {
    assert.equal(parseGoDurationMs('10s'), 10_000);
    assert.equal(parseGoDurationMs('1m30s'), 90_000);
    assert.equal(parseGoDurationMs('500ms'), 500);
    assert.equal(parseGoDurationMs('1.5s'), 1500);
    assert.equal(parseGoDurationMs('0'), 0);
    assert.equal(parseGoDurationMs('10'), undefined);
    assert.equal(parseGoDurationMs('10x'), undefined);
    assert.equal(parseGoDurationMs(''), undefined);
  });
});

describe('containerd config: on disk (fsSource)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ctd-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('globs imports like Go (sorted, literal parts must exist) and reads them', () => {
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(join(dir, 'config.toml'), 'version = 3\nimports = ["conf.d/*.toml", "conf.d/[b]*.toml"]\n');
    writeFileSync(join(dir, 'conf.d', 'b1.toml'), `[${V3}]\nimage_pull_with_sync_fs = true\n`);
    writeFileSync(join(dir, 'conf.d', 'a1.toml'), '');
    writeFileSync(join(dir, 'conf.d', 'c.conf'), 'not toml [');
    const r = readContainerdConfig(join(dir, 'config.toml'), fsSource);
    assert.deepEqual(r.files, [join(dir, 'config.toml'), join(dir, 'conf.d', 'a1.toml'), join(dir, 'conf.d', 'b1.toml')]);
    assert.deepEqual(
      r.criBypass.map((b) => b.files),
      [[join(dir, 'conf.d', 'b1.toml')]],
    );
  });

  it("only a path with * is globbed (containerd's rule): `?` and `[…]` alone are literal", () => {
    writeFileSync(join(dir, 'literal.toml'), 'version = 3\nimports = ["conf.d/[ab]?.toml"]\n');
    assert.throws(() => readContainerdConfig(join(dir, 'literal.toml'), fsSource), /\[ab\]\?\.toml \(imported\) does not exist/);
  });

  it('a missing file on disk means defaults', () => {
    assert.equal(readContainerdConfig(join(dir, 'absent.toml'), fsSource).exists, false);
  });
});
