import assert from 'node:assert/strict';
import { DEFAULT_CONFIG, parseConfig } from '../../src/daemon/config.js';

describe('signetd config', () => {
  it('has defaults for everything', () => {
    assert.deepEqual(parseConfig('', 'c.yaml'), DEFAULT_CONFIG);
    assert.equal(DEFAULT_CONFIG.socket, '/run/signet/signetd.sock');
    assert.equal(DEFAULT_CONFIG.policyDir, '/etc/signet/policy.d');
  });
  it('reads the documented keys', () => {
    const c = parseConfig(
      'socket: /tmp/s.sock\npolicyDir: /tmp/p\nauditLog: /tmp/a.log\ninsecureRegistries: ["127.0.0.1:5000"]\nverifyTimeout: 3s\npkcs11: { module: /usr/lib/softhsm/libsofthsm2.so }\n',
      'c.yaml',
    );
    assert.equal(c.socket, '/tmp/s.sock');
    assert.deepEqual(c.insecureRegistries, ['127.0.0.1:5000']);
    assert.equal(c.verifyTimeoutMs, 3000);
    assert.equal(c.pkcs11Module, '/usr/lib/softhsm/libsofthsm2.so');
  });
  const bad: Array<[string, string, RegExp]> = [
    ['an unknown key', 'socket: /s\nsokcet: /x\n', /c\.yaml:2: sokcet: unknown setting/],
    ['a relative path', 'policyDir: policy.d\n', /c\.yaml:1: policyDir: must be an absolute path/],
    ['a bad duration', 'verifyTimeout: soon\n', /verifyTimeout/],
    ['a timeout above the verifier deadline', 'verifyTimeout: 9s\n', /below 8s/],
    ['a URL as insecure registry', 'insecureRegistries: ["http://x:5000"]\n', /not a host/],
    ['duplicate keys', 'socket: /a\nsocket: /b\n', /c\.yaml:2/],
    ['not a mapping', '- a\n', /must be a YAML mapping/],
  ];
  for (const [what, text, re] of bad) {
    it(`rejects ${what} with file and line`, () =>
      assert.throws(
        () => parseConfig(text, 'c.yaml'),
        (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && re.test(e.message),
      ));
  }
});

describe('signetd config: containerd and images', () => {
  it('watches containerd at its default socket, all namespaces, reporting, hourly', () => {
    const c = parseConfig('', 'c.yaml');
    assert.deepEqual(c.containerd, { enabled: true, address: '/run/containerd/containerd.sock' });
    assert.deepEqual(c.images, { onUnverified: 'report', reverifyIntervalMs: 3_600_000 });
  });
  it('reads address, namespaces, onUnverified and reverifyInterval', () => {
    const c = parseConfig(
      'containerd: { address: /run/k3s/containerd.sock, namespaces: [k8s.io, default] }\nimages: { onUnverified: remove, reverifyInterval: 10m }\n',
      'c.yaml',
    );
    assert.deepEqual(c.containerd, { enabled: true, address: '/run/k3s/containerd.sock', namespaces: ['k8s.io', 'default'] });
    assert.deepEqual(c.images, { onUnverified: 'remove', reverifyIntervalMs: 600_000 });
    assert.equal(parseConfig('containerd: { enabled: false }\n', 'c.yaml').containerd.enabled, false);
  });
  const bad: Array<[string, string, RegExp]> = [
    ['an unknown containerd setting', 'containerd: { adress: /x }\n', /containerd: unknown setting "adress"/],
    ['a relative containerd address', 'containerd: { address: run/c.sock }\n', /absolute path/],
    ['an empty namespace list', 'containerd: { namespaces: [] }\n', /non-empty list/],
    ['another onUnverified', 'images: { onUnverified: delete }\n', /report or remove/],
    ['a reverifyInterval below 1s', 'images: { reverifyInterval: 10ms }\n', /at least 1s/],
    ['images as a list', 'images: [remove]\n', /must be a mapping/],
  ];
  for (const [what, text, re] of bad) {
    it(`rejects ${what}`, () =>
      assert.throws(
        () => parseConfig(text, 'c.yaml'),
        (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && re.test(e.message),
      ));
  }
});

describe('signetd config: auditFailure', () => {
  it('refuses what cannot be audited by default, and reads allow', () => {
    assert.equal(parseConfig('', 'c.yaml').auditFailure, 'reject');
    assert.equal(parseConfig('auditFailure: allow\n', 'c.yaml').auditFailure, 'allow');
    assert.throws(() => parseConfig('auditFailure: ignore\n', 'c.yaml'), /auditFailure: must be reject/);
  });
});

describe('signetd config: nri', () => {
  it("is off unless present; `nri:` alone turns it on with containerd's default socket, index 10 and a 1.5 s bound", () => {
    assert.equal(parseConfig('', 'c.yaml').nri, undefined);
    assert.deepEqual(parseConfig('nri:\n', 'c.yaml').nri, { socket: '/var/run/nri/nri.sock', index: '10', timeoutMs: 1500 });
    assert.deepEqual(parseConfig('nri: {}\n', 'c.yaml').nri, { socket: '/var/run/nri/nri.sock', index: '10', timeoutMs: 1500 });
  });
  it('reads socket, index (a string, or a number made two digits) and timeout', () => {
    assert.deepEqual(parseConfig('nri: { socket: /run/ctd/nri.sock, index: "05", timeout: 800ms }\n', 'c.yaml').nri, {
      socket: '/run/ctd/nri.sock',
      index: '05',
      timeoutMs: 800,
    });
    assert.equal(parseConfig('nri: { index: 7 }\n', 'c.yaml').nri!.index, '07');
    assert.equal(parseConfig('nri: { index: 42 }\n', 'c.yaml').nri!.index, '42');
  });
  const bad: Array<[string, string, RegExp]> = [
    ['a relative socket', 'nri: { socket: nri.sock }\n', /c\.yaml:1: nri: socket must be the absolute path/],
    ['a three-digit index', 'nri: { index: "100" }\n', /nri: index must be two digits/],
    ['a one-digit string index', 'nri: { index: "5" }\n', /nri: index must be two digits/],
    ['a timeout too long', 'nri: { timeout: 2m }\n', /nri: timeout must be from 100ms to 60s/],
    ['a timeout that is no duration', 'nri: { timeout: soon }\n', /nri: .*timeout/],
    ['an unknown setting', 'nri: { sock: /x }\n', /nri: unknown setting "sock" \(known: socket, index, timeout\)/],
    ['a list', 'nri: [a]\n', /nri: must be a mapping/],
  ];
  for (const [what, text, re] of bad) {
    it(`rejects ${what}`, () =>
      assert.throws(
        () => parseConfig(text, 'c.yaml'),
        (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && re.test(e.message),
      ));
  }
});
