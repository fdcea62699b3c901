/** hosts.toml parsing as containerd 2.1 does it (core/remotes/docker/config/hosts.go). */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryHosts } from '../../src/registry/hosts.js';

describe('hosts.toml', () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'signet-hosts-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));
  const write = (folder: string, text: string) => {
    mkdirSync(join(root, folder), { recursive: true });
    writeFileSync(join(root, folder, 'hosts.toml'), text);
  };

  it('mirrors in file order, then the server; /v2 appended unless override_path; ns on hosts other than the registry', () => {
    write(
      'reg.example',
      [
        'server = "https://reg.example"',
        '[host."https://z.mirror/team"]',
        '  capabilities = ["pull"]',
        '[host."a.mirror:5000/v2"]',
        '[host."http://raw.mirror/api"]',
        '  override_path = true',
        '  [host."http://raw.mirror/api".header]',
        '    X-Custom = ["a", "b"]',
      ].join('\n'),
    );
    const hosts = new RegistryHosts({ configPath: root }).hostsFor('reg.example');
    assert.deepEqual(
      hosts.map((h) => `${h.scheme}://${h.host}${h.path}`),
      ['https://z.mirror/team/v2', 'https://a.mirror:5000/v2', 'http://raw.mirror/api', 'https://reg.example/v2'],
    );
    assert.deepEqual([...hosts[0]!.capabilities], ['pull']);
    assert.deepEqual([...hosts[1]!.capabilities].sort(), ['pull', 'push', 'resolve']);
    assert.deepEqual(hosts[2]!.header, { 'x-custom': ['a', 'b'] });
    assert.deepEqual(
      hosts.map((h) => h.ns),
      ['reg.example', 'reg.example', 'reg.example', undefined],
    );
  });

  it('no server: the registry itself (docker.io: registry-1.docker.io, no ns); insecureRegistries make it http', () => {
    write('docker.io', '[host."https://mirror.example"]\n');
    write('_default', '[host."https://m.example"]\n');
    const hosts = new RegistryHosts({ configPath: root, insecure: ['plain.example:5000'] });
    assert.deepEqual(
      hosts.hostsFor('docker.io').map((h) => [h.host, h.ns]),
      [
        ['mirror.example', 'docker.io'],
        ['registry-1.docker.io', undefined],
      ],
    );
    assert.equal(hosts.hostsFor('plain.example:5000').at(-1)!.scheme, 'http');
    assert.equal(hosts.hostsFor('plain.example:5000')[0]!.host, 'm.example', '_default applies');
  });

  it('ca, client (string, list, pairs) relative to the folder; skip_verify', () => {
    write('reg.example', ['ca = ["ca.pem", "/abs/ca2.pem"]', 'client = [["c.cert", "c.key"], "both.pem"]', 'skip_verify = true'].join('\n'));
    const [server] = new RegistryHosts({ configPath: root }).hostsFor('reg.example');
    assert.deepEqual(server!.tls, {
      ca: [join(root, 'reg.example', 'ca.pem'), '/abs/ca2.pem'],
      clients: [
        [join(root, 'reg.example', 'c.cert'), join(root, 'reg.example', 'c.key')],
        [join(root, 'reg.example', 'both.pem'), ''],
      ],
      skipVerify: true,
    });
  });

  it('a file containerd cannot use (unknown capability, bad TOML): Docker certificate files instead, and the problem kept', () => {
    write('reg.example', '[host."https://m"]\n  capabilities = ["pull", "fly"]\n');
    writeFileSync(join(root, 'reg.example', 'ca.crt'), 'x');
    const hosts = new RegistryHosts({ configPath: root });
    const list = hosts.hostsFor('reg.example');
    assert.equal(list.length, 1);
    assert.deepEqual(list[0]!.tls?.ca, [join(root, 'reg.example', 'ca.crt')]);
    assert.match(hosts.problems.get(join(root, 'reg.example', 'hosts.toml'))!, /unknown capability "fly"/);
  });

  it('no folder for the registry and no _default: the registry alone', () => {
    assert.deepEqual(
      new RegistryHosts({ configPath: root }).hostsFor('x.example').map((h) => `${h.scheme}://${h.host}${h.path}`),
      ['https://x.example/v2'],
    );
  });
});
