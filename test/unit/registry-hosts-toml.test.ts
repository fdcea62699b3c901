/** hosts.toml parsing as containerd 2.1 does it (core/remotes/docker/config/hosts.go). */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGoDuration, RegistryHosts } from '../../src/registry/hosts.js';

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

  it('an http:// host with TLS settings is asked over https first, with plain HTTP as fallback; on port 80, or without TLS settings, plain HTTP', () => {
    write(
      'reg.example',
      [
        'server = "http://reg.example:5000"',
        'ca = "ca.pem"',
        '[host."http://a.mirror:5000"]',
        '  skip_verify = false',
        '[host."http://b.mirror:80"]',
        '  skip_verify = true',
        '[host."http://c.mirror"]',
        '  client = "c.pem"',
        '[host."http://d.mirror:5000"]',
      ].join('\n'),
    );
    const hosts = new RegistryHosts({ configPath: root }).hostsFor('reg.example');
    assert.deepEqual(
      hosts.map((h) => `${h.scheme}://${h.host} ${h.httpFallback === true ? 'fallback' : '-'}`),
      ['https://a.mirror:5000 fallback', 'http://b.mirror -', 'https://c.mirror fallback', 'http://d.mirror:5000 -', 'https://reg.example:5000 fallback'],
    );
  });

  it('dial_timeout as a Go duration, per host; one that is not a duration makes the file unusable, as in containerd', () => {
    write(
      'reg.example',
      [
        'dial_timeout = "1m30s"',
        '[host."https://a.mirror"]',
        '  dial_timeout = "250ms"',
        '[host."https://b.mirror"]',
        '  dial_timeout = "0"',
        '[host."https://c.mirror"]',
      ].join('\n'),
    );
    const hosts = new RegistryHosts({ configPath: root });
    assert.deepEqual(
      hosts.hostsFor('reg.example').map((h) => h.dialTimeoutMs),
      [250, undefined, undefined, 90_000],
    );
    for (const bad of ['"1"', '"soon"', '"-1s"', '5']) {
      write('reg.example', `[host."https://a.mirror"]\n  dial_timeout = ${bad}\n`);
      assert.deepEqual(
        hosts.hostsFor('reg.example').map((h) => h.host),
        ['reg.example'],
        bad,
      );
      assert.match(hosts.problems.get(join(root, 'reg.example', 'hosts.toml'))!, /dial_timeout/, bad);
    }
  });

  it('Go durations: units, fractions, sums', () => {
    assert.equal(parseGoDuration('1.5s'), 1500);
    assert.equal(parseGoDuration('2h45m'), 9_900_000);
    assert.equal(parseGoDuration('300us'), 0.3);
    assert.equal(parseGoDuration('1000ns'), 0.001);
    assert.equal(parseGoDuration('0'), 0);
    assert.equal(parseGoDuration('-2s'), -2000);
    for (const bad of ['', '1', 's', '1s2', '1 s', '1.s.s', '+']) assert.equal(parseGoDuration(bad), undefined, bad);
  });

  it('no folder for the registry and no _default: the registry alone', () => {
    assert.deepEqual(
      new RegistryHosts({ configPath: root }).hostsFor('x.example').map((h) => `${h.scheme}://${h.host}${h.path}`),
      ['https://x.example/v2'],
    );
  });
});
