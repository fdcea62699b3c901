/**
 * The registry client against real docker-registry instances on 127.0.0.1, configured as containerd's
 * hosts.toml folder says: mirrors in order, falling through; capabilities; _default and host_port_
 * folders; a TLS registry with a test CA (openssl), client certificates and skip_verify; plain HTTP vs
 * TLS mismatches; HTTP(S)_PROXY/NO_PROXY through a CONNECT proxy in this process; Docker credential
 * helpers (a fake docker-credential-test on PATH) and DOCKER_CONFIG.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient, type RepositoryRef } from '../../src/registry/client.js';
import { pushImage } from '../helpers/images.js';
import { freePort, REGISTRY_BIN, startRegistry, type RegistryHandle } from '../helpers/registry.js';

function writeHosts(root: string, folder: string, lines: string[]): void {
  mkdirSync(join(root, folder), { recursive: true });
  writeFileSync(join(root, folder, 'hosts.toml'), `${lines.join('\n')}\n`);
}

const expectError = async (p: Promise<unknown>, check: (e: Error & { code?: string }) => void): Promise<void> => {
  try {
    await p;
  } catch (err) {
    check(err as Error & { code?: string });
    return;
  }
  assert.fail('expected an error');
};

describe('registry hosts as containerd sees them (hosts.toml), proxies and credential helpers', function () {
  this.timeout(60_000);
  let m1: RegistryHandle;
  let m2: RegistryHandle;
  let upstream: string;
  let root: string;
  let sigTag: string;
  let digest: string;
  const plain = (h: string) => new RegistryClient({ insecureRegistries: [h], retries: 0 });

  before(async () => {
    m1 = await startRegistry();
    m2 = await startRegistry();
    upstream = `127.0.0.1:${await freePort()}`; // nothing listens there
    // m1 has the image only; m2 has the image and a "signature" tag.
    const img = await pushImage(plain(m1.host), { registry: m1.host, repository: 'prod/app' }, 'v1');
    await copyImage(plain(m1.host), { registry: m1.host, repository: 'prod/app' }, plain(m2.host), { registry: m2.host, repository: 'prod/app' }, 'v1');
    digest = img.digest;
    sigTag = `${digest.replace(':', '-')}.sig`;
    await pushImage(plain(m2.host), { registry: m2.host, repository: 'prod/app' }, sigTag);
  });
  after(async () => {
    await m1?.stop();
    await m2?.stop();
  });
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'signet-certs-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const repo = (): RepositoryRef => ({ registry: upstream, repository: 'prod/app' });
  const client = () => new RegistryClient({ registryConfigPath: root, retries: 0, requestTimeoutMs: 3000 });

  describe('mirrors', () => {
    it('reads from the first mirror that has the content; a mirror without the signature falls through to the next', async () => {
      writeHosts(root, upstream, [
        `server = "http://${upstream}"`,
        `[host."http://${m1.host}"]`,
        '  capabilities = ["pull", "resolve"]',
        `[host."http://${m2.host}"]`,
        '  capabilities = ["pull", "resolve"]',
      ]);
      const c = client();
      assert.equal((await c.getManifest(repo(), 'v1')).digest, digest);
      const sig = await c.tryGetManifest(repo(), sigTag);
      assert.ok(sig, 'the signature tag is on the second mirror');
      // Absent on both mirrors, and the server cannot be asked: that failure is the answer (containerd's firstErr), not "absent".
      await expectError(c.tryGetManifest(repo(), 'absent-everywhere'), (e) => assert.match(e.message, new RegExp(`${upstream}.*connection refused`)));
    });

    it('without hosts.toml the same lookups go to the (unreachable) registry itself', async () => {
      await expectError(client().getManifest(repo(), 'v1'), (e) => assert.match(e.message, /connection refused/));
    });

    it('a mirror that is down gives way to the next', async () => {
      const down = `127.0.0.1:${await freePort()}`;
      writeHosts(root, upstream, [`server = "http://${upstream}"`, `[host."http://${down}"]`, `[host."http://${m2.host}"]`]);
      assert.ok(await client().tryGetManifest(repo(), sigTag));
    });

    it('a pull-only mirror is asked by digest, never to resolve a tag (containerd: resolve is a trusted operation)', async () => {
      writeHosts(root, upstream, [`server = "http://${upstream}"`, `[host."http://${m2.host}"]`, '  capabilities = ["pull"]']);
      const c = client();
      assert.equal((await c.getManifest(repo(), digest)).digest, digest);
      await expectError(c.getManifest(repo(), 'v1'), (e) => assert.match(e.message, new RegExp(`${upstream}.*connection refused`)));
    });

    it('the server itself can be the mirror; host_port_ is preferred over host:port, _default applies to any registry', async () => {
      writeHosts(root, upstream.replace(':', '_') + '_', [`server = "http://${m2.host}"`]);
      writeHosts(root, upstream, [`server = "http://${m1.host}"`]);
      assert.ok(await client().tryGetManifest(repo(), sigTag), 'host_port_ (m2) wins over host:port (m1)');
      rmSync(join(root, upstream.replace(':', '_') + '_'), { recursive: true });
      assert.equal(await client().tryGetManifest(repo(), sigTag), undefined, 'now host:port (m1, no signature) applies');
      rmSync(join(root, upstream), { recursive: true });
      writeHosts(root, '_default', [`[host."http://${m2.host}"]`]);
      assert.ok(await client().tryGetManifest(repo(), sigTag), '_default sends every registry to m2 first');
    });

    it('pushes go to the first host with the push capability', async () => {
      writeHosts(root, upstream, [
        `server = "http://${upstream}"`,
        '  capabilities = ["pull", "resolve"]',
        `[host."http://${m1.host}"]`,
        '  capabilities = ["pull", "resolve", "push"]',
      ]);
      const pushed = await pushImage(client(), repo(), 'pushed-through-hosts');
      assert.equal((await plain(m1.host).getManifest({ registry: m1.host, repository: 'prod/app' }, 'pushed-through-hosts')).digest, pushed.digest);
    });
  });

  describe('TLS: CA, client certificates, skip_verify, and plain HTTP vs TLS', () => {
    let pki: string;
    let tlsRegistry: { host: string; proc: ChildProcess; dir: string };

    before(async () => {
      pki = mkdtempSync(join(tmpdir(), 'signet-pki-'));
      const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: 'pipe' });
      ssl(
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '2',
        '-subj',
        '/CN=signet test CA',
      );
      writeFileSync(join(pki, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
      ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
      ssl(
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'server.pem',
        '-days',
        '2',
        '-extfile',
        'server.ext',
      );
      writeFileSync(join(pki, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
      ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=signet node');
      ssl(
        'x509',
        '-req',
        '-in',
        'client.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'client.pem',
        '-days',
        '2',
        '-extfile',
        'client.ext',
      );
      // Debian's docker-registry serving TLS and demanding a client certificate signed by the test CA.
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'signet-tls-registry-'));
      writeFileSync(
        join(dir, 'config.yml'),
        [
          'version: 0.1',
          'log: { level: error, accesslog: { disabled: true } }',
          `storage: { filesystem: { rootdirectory: ${join(dir, 'storage')} }, cache: {} }`,
          `http: { addr: 127.0.0.1:${port}, secret: s, tls: { certificate: ${join(pki, 'server.pem')}, key: ${join(pki, 'server.key')}, clientcas: [${join(pki, 'ca.pem')}] } }`,
          '',
        ].join('\n'),
      );
      const proc = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
      tlsRegistry = { host: `127.0.0.1:${port}`, proc, dir };
      for (let i = 0; ; i++) {
        const up = await new Promise<boolean>((resolve) => {
          const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
          s.on('error', () => resolve(false));
        });
        if (up) break;
        if (i > 200) throw new Error('the TLS registry did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    after(() => {
      tlsRegistry?.proc.kill('SIGKILL');
      if (tlsRegistry) rmSync(tlsRegistry.dir, { recursive: true, force: true });
      if (pki) rmSync(pki, { recursive: true, force: true });
    });

    const tlsRepo = (): RepositoryRef => ({ registry: tlsRegistry.host, repository: 'tls/app' });

    it('a CA and a client pair from hosts.toml (paths relative to its folder) reach a registry that demands both', async () => {
      for (const f of ['ca.pem', 'client.pem', 'client.key']) writeFileSync(join(root, f), readFileSync(join(pki, f)));
      writeHosts(root, tlsRegistry.host, [
        `server = "https://${tlsRegistry.host}"`,
        `ca = "${join(root, 'ca.pem')}"`,
        'client = [["../client.pem", "../client.key"]]',
      ]);
      // Relative paths are relative to the host's folder: ../client.pem is root/client.pem.
      const pushed = await pushImage(client(), tlsRepo(), 'v1');
      assert.equal((await client().getManifest(tlsRepo(), 'v1')).digest, pushed.digest);
    });

    it('without the CA: a TLS verification error that says where a CA goes', async () => {
      await expectError(client().getManifest(tlsRepo(), 'v1'), (e) => assert.match(e.message, /TLS verification failed .*ca = /));
    });

    it('with the CA but no client certificate: refused by the registry (the client pair is what let it in)', async () => {
      writeHosts(root, tlsRegistry.host, [`ca = "${join(pki, 'ca.pem')}"`]);
      await expectError(client().getManifest(tlsRepo(), 'v1'), (e) => assert.equal(e.code, 'REGISTRY_UNAVAILABLE'));
    });

    it('skip_verify = true with the client pair: no CA needed', async () => {
      writeHosts(root, tlsRegistry.host, ['skip_verify = true', `client = "${join(pki, 'client.pem')}"`]);
      writeFileSync(join(pki, 'client-both.pem'), Buffer.concat([readFileSync(join(pki, 'client.pem')), readFileSync(join(pki, 'client.key'))]));
      writeHosts(root, tlsRegistry.host, ['skip_verify = true', `client = "${join(pki, 'client-both.pem')}"`]);
      assert.ok(await client().tryGetManifest(tlsRepo(), 'v1'));
    });

    it('a host named http:// with TLS settings is asked over HTTPS first (containerd): the TLS registry answers', async () => {
      writeHosts(root, tlsRegistry.host, [
        `server = "http://${tlsRegistry.host}"`,
        `ca = "${join(pki, 'ca.pem')}"`,
        `client = [["${join(pki, 'client.pem')}", "${join(pki, 'client.key')}"]]`,
      ]);
      assert.ok(await client().tryGetManifest(tlsRepo(), 'v1'));
    });

    it('…and a plain-HTTP one so named answers over HTTP after its TLS handshake is answered in plain HTTP, on every later request too', async () => {
      // A TCP relay in front of the plain registry notes how each connection starts: a TLS record (0x16) or HTTP.
      const relay = await startFirstByteRelay(m1.host);
      try {
        writeHosts(root, upstream, [`[host."http://${relay.host}"]`, '  capabilities = ["pull", "resolve"]', '  skip_verify = true']);
        const c = client();
        assert.equal((await c.getManifest(repo(), 'v1')).digest, digest);
        assert.equal((await c.getManifest(repo(), digest)).digest, digest);
        assert.equal(relay.starts[0], 'tls', relay.starts.join(' '));
        assert.ok(relay.starts.length >= 2 && relay.starts.slice(1).every((k) => k === 'http'), relay.starts.join(' '));
      } finally {
        relay.close();
      }
    });

    it('a plain-HTTP registry asked over TLS: says so and names insecureRegistries (not a bare EPROTO)', async () => {
      await expectError(new RegistryClient({ retries: 0 }).getManifest({ registry: m1.host, repository: 'prod/app' }, 'v1'), (e) => {
        assert.match(e.message, /does not speak TLS/);
        assert.match(e.message, /insecureRegistries/);
        assert.match(e.message, /--insecure-registry/);
      });
    });

    it('a TLS registry listed as insecure: says it speaks TLS', async () => {
      await expectError(new RegistryClient({ retries: 0, insecureRegistries: [tlsRegistry.host] }).getManifest(tlsRepo(), 'v1'), (e) =>
        assert.match(e.message, /speaks TLS|not HTTP/),
      );
    });

    it("through an HTTPS_PROXY (CONNECT) with the host's CA and client pair inside the tunnel", async () => {
      const proxy = await startConnectProxy();
      const saved = { ...process.env };
      try {
        process.env['HTTPS_PROXY'] = proxy.url;
        delete process.env['NO_PROXY'];
        delete process.env['no_proxy'];
        writeHosts(root, tlsRegistry.host, [`ca = "${join(pki, 'ca.pem')}"`, `client = [["${join(pki, 'client.pem')}", "${join(pki, 'client.key')}"]]`]);
        assert.ok(await client().tryGetManifest(tlsRepo(), 'v1'));
        assert.ok(proxy.tunnels.includes(tlsRegistry.host), `the proxy saw ${proxy.tunnels.join(', ')}`);
      } finally {
        process.env = saved;
        await proxy.stop();
      }
    });
  });

  describe('dial_timeout', () => {
    let hole: BlackHole;
    before(async () => (hole = await blackHole()));
    after(() => hole?.close());

    it('a host that never takes the connection is given up after its dial_timeout, well within the request timeout', async () => {
      writeHosts(root, upstream, [`server = "http://${hole.host}"`, 'dial_timeout = "300ms"']);
      const started = Date.now();
      await expectError(client().getManifest(repo(), 'v1'), (e) => {
        assert.equal(e.code, 'REGISTRY_UNAVAILABLE');
        assert.match(e.message, /no connection within 300 ms \(dial_timeout in its hosts\.toml\)/);
      });
      const took = Date.now() - started;
      assert.ok(took >= 250 && took < 2000, `${took} ms (the request timeout is 3000 ms)`);
      // The same over TLS (the connect is bounded, not the handshake after it).
      writeHosts(root, upstream, [`server = "https://${hole.host}"`, 'dial_timeout = "300ms"']);
      const tlsStarted = Date.now();
      await expectError(client().getManifest(repo(), 'v1'), (e) => assert.match(e.message, /no connection within 300 ms/));
      assert.ok(Date.now() - tlsStarted < 2000, `${Date.now() - tlsStarted} ms`);
    });

    it('a mirror that never takes the connection gives way to the next host after its dial_timeout', async () => {
      writeHosts(root, upstream, [`server = "http://${upstream}"`, `[host."http://${hole.host}"]`, '  dial_timeout = "200ms"', `[host."http://${m1.host}"]`]);
      const started = Date.now();
      assert.equal((await client().getManifest(repo(), 'v1')).digest, digest);
      assert.ok(Date.now() - started < 2000, `${Date.now() - started} ms`);
    });

    it('without dial_timeout the request timeout is what ends it', async () => {
      writeHosts(root, upstream, [`server = "http://${hole.host}"`]);
      const c = new RegistryClient({ registryConfigPath: root, retries: 0, requestTimeoutMs: 800 });
      await expectError(c.getManifest(repo(), 'v1'), (e) => assert.equal(e.code, 'REGISTRY_TIMEOUT'));
    });
  });

  describe('HTTP_PROXY and NO_PROXY', () => {
    it('plain-HTTP registry requests go through HTTP_PROXY, and around it for NO_PROXY hosts', async () => {
      const proxy = await startConnectProxy();
      const saved = { ...process.env };
      try {
        process.env['HTTP_PROXY'] = proxy.url;
        delete process.env['NO_PROXY'];
        delete process.env['no_proxy'];
        const c = plain(m2.host);
        assert.ok(await c.tryGetManifest({ registry: m2.host, repository: 'prod/app' }, sigTag));
        assert.ok(proxy.tunnels.includes(m2.host), `the proxy saw ${proxy.tunnels.join(', ')}`);
        const before = proxy.tunnels.length;
        process.env['NO_PROXY'] = '127.0.0.1';
        assert.ok(await c.tryGetManifest({ registry: m2.host, repository: 'prod/app' }, sigTag));
        assert.equal(proxy.tunnels.length, before, 'NO_PROXY: no tunnel');
      } finally {
        process.env = saved;
        await proxy.stop();
      }
    });

    it('a proxy that refuses the tunnel is an error naming the operation', async () => {
      const proxy = await startConnectProxy({ refuse: true });
      const saved = { ...process.env };
      try {
        process.env['HTTP_PROXY'] = proxy.url;
        delete process.env['NO_PROXY'];
        await expectError(plain(m2.host).getManifest({ registry: m2.host, repository: 'prod/app' }, 'v1'), (e) => assert.match(e.message, /fetching manifest/));
      } finally {
        process.env = saved;
        await proxy.stop();
      }
    });
  });

  describe('Docker credential helpers and DOCKER_CONFIG', () => {
    let locked: RegistryHandle;
    let bin: string;
    const creds = { user: 'ci', password: 'helper-secret-pw' };
    let savedPath: string | undefined;

    before(async () => {
      locked = await startRegistry({ htpasswd: creds });
      bin = mkdtempSync(join(tmpdir(), 'signet-helpers-'));
      // Records the server it was asked about; answers per $HELPER_MODE.
      const script = `#!/bin/sh
[ "$1" = get ] || exit 3
read server
echo "$server" >> "${join(bin, 'asked')}"
case "$(cat "${join(bin, 'mode')}")" in
  ok) printf '{"ServerURL":"%s","Username":"${creds.user}","Secret":"${creds.password}"}' "$server" ;;
  notfound) echo "credentials not found in native keychain"; exit 1 ;;
  fail) echo "boom: leaked ${creds.password}"; echo "stderr ${creds.password}" >&2; exit 4 ;;
  hang) sleep 30 ;;
esac
`;
      writeFileSync(join(bin, 'docker-credential-test'), script);
      chmodSync(join(bin, 'docker-credential-test'), 0o755);
      savedPath = process.env['PATH'];
      process.env['PATH'] = `${bin}:${savedPath}`;
      await pushImage(
        new RegistryClient({
          insecureRegistries: [locked.host],
          retries: 0,
          dockerConfigPath: config({ auths: { [locked.host]: { username: creds.user, password: creds.password } } }),
        }),
        { registry: locked.host, repository: 'private/app' },
        'v1',
      );
    });
    after(async () => {
      process.env['PATH'] = savedPath;
      await locked?.stop();
      rmSync(bin, { recursive: true, force: true });
    });

    function config(doc: unknown): string {
      const dir = mkdtempSync(join(tmpdir(), 'signet-docker-'));
      writeFileSync(join(dir, 'config.json'), JSON.stringify(doc));
      return join(dir, 'config.json');
    }
    const mode = (m: string) => writeFileSync(join(bin, 'mode'), m);
    const lockedRepo = (): RepositoryRef => ({ registry: locked.host, repository: 'private/app' });
    const withConfig = (doc: unknown, timeout?: number) =>
      new RegistryClient({
        insecureRegistries: [locked.host],
        retries: 0,
        dockerConfigPath: config(doc),
        ...(timeout ? { credentialHelperTimeoutMs: timeout } : {}),
      });

    it('credHelpers: docker-credential-test get is asked for the host and its answer is used', async () => {
      mode('ok');
      rmSync(join(bin, 'asked'), { force: true });
      assert.ok(await withConfig({ credHelpers: { [locked.host]: 'test' } }).tryGetManifest(lockedRepo(), 'v1'));
      assert.equal(readFileSync(join(bin, 'asked'), 'utf8').trim(), locked.host);
    });

    it('credsStore applies to every registry; "credentials not found" means anonymous (refused by this registry)', async () => {
      mode('ok');
      assert.ok(await withConfig({ credsStore: 'test' }).tryGetManifest(lockedRepo(), 'v1'));
      mode('notfound');
      await expectError(withConfig({ credsStore: 'test' }).getManifest(lockedRepo(), 'v1'), (e) => assert.equal(e.code, 'REGISTRY_UNAUTHORIZED'));
    });

    it('a failing helper: the error names the helper and its exit status, never its output', async () => {
      mode('fail');
      await expectError(withConfig({ credHelpers: { [locked.host]: 'test' } }).getManifest(lockedRepo(), 'v1'), (e) => {
        assert.match(e.message, /docker-credential-test/);
        assert.match(e.message, /status 4/);
        assert.ok(!e.message.includes(creds.password), e.message);
      });
    });

    it('a helper that hangs is cut off at the timeout; a missing helper says it is not on the PATH', async () => {
      mode('hang');
      const t0 = Date.now();
      await expectError(withConfig({ credHelpers: { [locked.host]: 'test' } }, 500).getManifest(lockedRepo(), 'v1'), (e) =>
        assert.match(e.message, /no answer within 500 ms/),
      );
      assert.ok(Date.now() - t0 < 5000);
      await expectError(withConfig({ credsStore: 'absent-helper' }).getManifest(lockedRepo(), 'v1'), (e) =>
        assert.match(e.message, /docker-credential-absent-helper.*not found on the PATH/),
      );
    });

    it('DOCKER_CONFIG: its config.json is read when no file is given', async () => {
      const saved = process.env['DOCKER_CONFIG'];
      try {
        const file = config({ auths: { [locked.host]: { username: creds.user, password: creds.password } } });
        process.env['DOCKER_CONFIG'] = join(file, '..');
        assert.ok(await new RegistryClient({ insecureRegistries: [locked.host], retries: 0 }).tryGetManifest(lockedRepo(), 'v1'));
        delete process.env['DOCKER_CONFIG'];
        await expectError(new RegistryClient({ insecureRegistries: [locked.host], retries: 0 }).getManifest(lockedRepo(), 'v1'), (e) =>
          assert.equal(e.code, 'REGISTRY_UNAUTHORIZED'),
        );
      } finally {
        if (saved === undefined) delete process.env['DOCKER_CONFIG'];
        else process.env['DOCKER_CONFIG'] = saved;
      }
    });
  });
});

/** The same image (same digest) on another registry: its blobs and its manifest bytes. */
async function copyImage(from: RegistryClient, src: RepositoryRef, to: RegistryClient, dst: RepositoryRef, tag: string): Promise<void> {
  const m = await from.getManifest(src, tag);
  const doc = JSON.parse(m.bytes.toString('utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
  for (const d of [doc.config, ...doc.layers]) await to.pushBlob(dst, await from.getBlob(src, d.digest));
  await to.pushManifest(dst, tag, m.bytes, m.mediaType);
}

/** A tiny HTTP CONNECT proxy on 127.0.0.1 that records the tunnels it opened. */
async function startConnectProxy(options: { refuse?: boolean } = {}): Promise<{ url: string; tunnels: string[]; stop(): Promise<void> }> {
  const tunnels: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, client: Socket) => {
    sockets.add(client);
    if (options.refuse) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const [host, port] = (req.url ?? '').split(':');
    if (host !== '127.0.0.1') {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n'); // tests talk to 127.0.0.1 only
      return;
    }
    tunnels.push(req.url!);
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels,
    stop: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

interface BlackHole {
  host: string;
  close(): void;
}

/**
 * A local address that never takes a connection: a child process listens with a backlog of 1 (0 is Node's 511) and then
 * blocks its event loop (it never accepts); the test fills the kernel's accept queue, after which the
 * kernel drops further SYNs, so a connect hangs as it would towards an unreachable host.
 */
async function blackHole(): Promise<BlackHole> {
  const code =
    "const s = require('net').createServer(); s.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {" +
    " require('fs').writeSync(1, s.address().port + '\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); });";
  const proc = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    proc.once('exit', () => reject(new Error('the black hole exited')));
  });
  const fillers: Socket[] = [];
  for (let i = 0; ; i++) {
    if (i > 64) {
      for (const s of fillers) s.destroy();
      proc.kill('SIGKILL');
      throw new Error('the accept queue did not fill');
    }
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
    const connected = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 300);
      s.once('connect', () => (clearTimeout(t), resolve(true)));
    });
    if (!connected) break;
  }
  return {
    host: `127.0.0.1:${port}`,
    close: () => {
      for (const s of fillers) s.destroy();
      proc.kill('SIGKILL');
    },
  };
}

/** A TCP relay to `target` that records whether each connection began with a TLS record or plain text. */
async function startFirstByteRelay(target: string): Promise<{ host: string; starts: Array<'tls' | 'http'>; close(): void }> {
  const [targetHost, targetPort] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const starts: Array<'tls' | 'http'> = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((client) => {
    sockets.add(client);
    client.once('data', (first: Buffer) => {
      starts.push(first[0] === 0x16 ? 'tls' : 'http');
      const upstream = connect(targetPort, targetHost, () => {
        upstream.write(first);
        client.pipe(upstream).pipe(client);
      });
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      upstream.on('close', () => client.destroy());
    });
    client.on('error', () => {});
    client.on('close', () => sockets.delete(client));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as { port: number }).port}`,
    starts,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
