/**
 * A decision uses one policy generation from start to end, keys included. Policy A requires key
 * `ci` (ci.pub) in prod; policy B maps the name `ci` to dev.pub and requires `release` (ci.pub).
 * An image signed with the dev key is refused by A and by B. A decision that starts under A and
 * whose registry answer is held back until B is in force must still be A's, with A's keys: refused.
 * (Before keys were part of the snapshot, it was accepted: A's policy with B's key `ci`.)
 */
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { pushImage } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { runVerifier } from '../helpers/verifier.js';

/** A proxy in front of the registry that holds requests matching `path` until `release()` (a slow registry, on cue). */
async function startGate(target: string, path: RegExp): Promise<{ host: string; held: () => number; release: () => void; stop: () => Promise<void> }> {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => (open = r));
  let held = 0;
  const server: Server = createServer((req, res) => {
    const forward = (): void => {
      const [host, port] = target.split(':');
      const up = request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (path.test(req.url ?? '')) {
      held++;
      void gate.then(forward);
    } else forward();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    held: () => held,
    release: () => open(),
    stop: () => new Promise((r) => server.close(() => r())),
  };
}

describe('policy reload during a decision (one snapshot of policy and keys)', function () {
  this.timeout(30_000);
  let registry: RegistryHandle;
  let daemon: DaemonHandle;
  let gate: Awaited<ReturnType<typeof startGate>>;
  const ci = makeTestKey('ecdsa-p256');
  const dev = makeTestKey('ecdsa-p256');

  before(async () => {
    registry = await startRegistry();
    gate = await startGate(registry.host, /\/manifests\/sha256-[a-f0-9]{64}\.sig$/);
    daemon = await startDaemon({ insecureRegistries: [gate.host], extraConfig: 'verifyTimeout: 7s\nregistryTimeout: 7s' });
    ci.writePublic(join(daemon.dir, 'ci.pub'));
    dev.writePublic(join(daemon.dir, 'dev.pub'));
  });
  after(async () => {
    gate?.release();
    await daemon?.stop();
    await gate?.stop();
    await registry?.stop();
  });

  it('refuses a dev-signed image decided while a policy that renames keys arrives, with the generation it started under', async () => {
    const host = gate.host;
    const client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    const repo = { registry: registry.host, repository: 'prod/app' };
    const img = await pushImage(client, repo, 'v1');
    await signImageCosign(client, repo, img.digest, dev.signer, { dockerReference: `${host}/prod/app` });

    const policyA = {
      apiVersion: 'signet/v1',
      keys: { ci: { file: join(daemon.dir, 'ci.pub') } },
      default: { action: 'reject' },
      scopes: { [`${host}/prod`]: { action: 'verify', signatures: { keys: ['ci'] } } },
    };
    const policyB = {
      apiVersion: 'signet/v1',
      keys: { ci: { file: join(daemon.dir, 'dev.pub') }, release: { file: join(daemon.dir, 'ci.pub') } },
      default: { action: 'reject' },
      scopes: { [`${host}/prod`]: { action: 'verify', signatures: { keys: ['release'] } } },
    };
    daemon.writePolicy('policy.json', policyA);
    await waitFor(
      () =>
        daemon
          .log()
          .split('\n')
          .filter((l) => l.includes('policy loaded')).length === 1,
      'policy A',
    );

    const decision = runVerifier({
      socket: daemon.socket,
      name: `${host}/prod/app:v1`,
      descriptor: { mediaType: img.mediaType, digest: img.digest, size: img.size },
    });
    await waitFor(() => gate.held() > 0, 'the decision to reach the registry');
    daemon.writePolicy('policy.json', policyB);
    await waitFor(
      () =>
        daemon
          .log()
          .split('\n')
          .filter((l) => l.includes('policy loaded')).length === 2,
      'policy B',
    );
    gate.release();
    const run = await decision;

    assert.equal(run.code, 1, `accepted what neither policy allows: ${run.stdout}`);
    assert.match(run.stdout, /needs a valid signature by ci/);
    const generations = daemon
      .log()
      .split('\n')
      .filter((l) => l.includes('policy loaded'))
      .map((l) => (JSON.parse(l) as { generation: string }).generation);
    await waitFor(() => daemon.audit().some((l) => l['digest'] === img.digest), 'the audit line');
    const line = daemon.audit().find((l) => l['digest'] === img.digest)!;
    assert.equal(line['decision'], 'reject');
    assert.equal(line['policyGeneration'], generations[0], 'the decision is recorded under the generation it started with');

    // Under B itself the image is refused too (it needs release), and the signature by `ci` = dev.pub is valid there.
    const again = await runVerifier({
      socket: daemon.socket,
      name: `${host}/prod/app:v1`,
      descriptor: { mediaType: img.mediaType, digest: img.digest, size: img.size },
    });
    assert.equal(again.code, 1);
    assert.match(again.stdout, /needs a valid signature by release/);
  });
});
