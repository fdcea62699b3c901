/**
 * Registry credentials and token realms: a registry in insecureRegistries (plain HTTP) that points its
 * Bearer challenge at another host must not receive the password there in clear text.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialsMayGoTo } from '../../src/registry/auth.js';
import { RegistryClient } from '../../src/registry/client.js';

const PASSWORD = 'Reg1stry-pa55word';

interface Peer {
  server: Server;
  port: number;
  host: string;
  seen: Array<{ url: string; authorization: string | undefined }>;
}

async function listen(
  host: string,
  handler: (req: IncomingMessage, peer: Peer) => { status: number; headers?: Record<string, string>; body?: string },
): Promise<Peer> {
  const peer = { seen: [] } as unknown as Peer;
  peer.server = createServer((req, res) => {
    peer.seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    const answer = handler(req, peer);
    res.writeHead(answer.status, answer.headers ?? {});
    res.end(answer.body ?? '');
  });
  await new Promise<void>((r) => peer.server.listen(0, host, r));
  peer.port = (peer.server.address() as { port: number }).port;
  peer.host = host;
  return peer;
}

const tokenAnswer = () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'tok', expires_in: 300 }) });

describe("registry credentials go to a token realm only over HTTPS or on the registry's own host", function () {
  this.timeout(20_000);
  let dir: string;
  const peers: Peer[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'signet-realm-'));
  });
  after(async () => {
    for (const p of peers) await new Promise((r) => p.server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  async function registryWithRealm(realm: (registry: Peer) => string): Promise<{ registry: Peer; client: RegistryClient }> {
    const registry = await listen('127.0.0.1', (req, self): { status: number; headers: Record<string, string>; body?: string } =>
      req.headers.authorization === 'Bearer tok'
        ? { status: 404, headers: { 'content-type': 'application/json' }, body: '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"none"}]}' }
        : { status: 401, headers: { 'www-authenticate': `Bearer realm="${realm(self)}",service="reg"` } },
    );
    peers.push(registry);
    const config = join(dir, `config-${registry.port}.json`);
    writeFileSync(config, JSON.stringify({ auths: { [`127.0.0.1:${registry.port}`]: { auth: Buffer.from(`builder:${PASSWORD}`).toString('base64') } } }));
    return {
      registry,
      client: new RegistryClient({ insecureRegistries: [`127.0.0.1:${registry.port}`], dockerConfigPath: config, retries: 0, requestTimeoutMs: 3000 }),
    };
  }

  it('refuses to send them in clear text to a realm on another host, and says why without the password', async () => {
    const elsewhere = await listen('127.0.0.2', tokenAnswer);
    peers.push(elsewhere);
    const { registry, client } = await registryWithRealm(() => `http://127.0.0.2:${elsewhere.port}/token`);
    await assert.rejects(client.getManifest({ registry: `127.0.0.1:${registry.port}`, repository: 'app' }, 'v1'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'REGISTRY_PROTOCOL');
      assert.match(e.message, /token endpoint http:\/\/127\.0\.0\.2:\d+ is neither HTTPS nor the registry's own host; credentials are not sent there/);
      assert.ok(!e.message.includes(PASSWORD));
      return true;
    });
    assert.deepEqual(elsewhere.seen, [], 'the other host heard nothing, least of all the password');
  });

  it("sends them to a realm on the registry's own host (another port) over plain HTTP", async () => {
    const sameHost = await listen('127.0.0.1', tokenAnswer);
    peers.push(sameHost);
    const { registry, client } = await registryWithRealm(() => `http://127.0.0.1:${sameHost.port}/token`);
    assert.equal(await client.tryGetManifest({ registry: `127.0.0.1:${registry.port}`, repository: 'app' }, 'v1'), undefined);
    assert.equal(sameHost.seen.length, 1);
    assert.equal(sameHost.seen[0]!.authorization, `Basic ${Buffer.from(`builder:${PASSWORD}`).toString('base64')}`);
  });

  it('credentialsMayGoTo: HTTPS anywhere; plain HTTP only from a plain-HTTP registry to its own host', () => {
    const insecure = new URL('http://10.0.0.5:5000/v2/');
    const secure = new URL('https://registry.example.com/v2/');
    assert.equal(credentialsMayGoTo(new URL('https://auth.example.com/token'), insecure), true);
    assert.equal(credentialsMayGoTo(new URL('https://auth.example.com/token'), secure), true);
    assert.equal(credentialsMayGoTo(new URL('http://10.0.0.5:5001/token'), insecure), true);
    assert.equal(credentialsMayGoTo(new URL('http://10.0.0.6:5001/token'), insecure), false);
    assert.equal(credentialsMayGoTo(new URL('http://evil.example/token'), insecure), false);
    assert.equal(credentialsMayGoTo(new URL('http://registry.example.com/token'), secure), false, 'no downgrade from an HTTPS registry');
    assert.equal(credentialsMayGoTo(new URL('ftp://10.0.0.5/token'), insecure), false);
  });
});
