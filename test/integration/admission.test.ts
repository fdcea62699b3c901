/**
 * signetd's admission control end to end: a decision beyond the bounds is refused at once with
 * RESOURCE_EXHAUSTED and signet-verifier fails closed saying why; a decision that waited for its turn
 * still gets its full verifyTimeout (deadlines start when work starts), so a burst against a registry
 * at capacity no longer refuses validly signed images with REGISTRY_TIMEOUT.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { SIGNET, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { verifyClient } from '../helpers/grpc-verify.js';
import { startHostileRegistry, type HostileRegistry } from '../helpers/hostile-registry.js';
import { pushImage } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { runVerifier } from '../helpers/verifier.js';

describe('signetd admission control', function () {
  this.timeout(60_000);
  const key = makeTestKey();
  let registry: HostileRegistry;
  let image: { name: string; descriptor: { mediaType: string; digest: string; size: number } };

  before(async () => {
    registry = await startHostileRegistry();
    const client = new RegistryClient({ insecureRegistries: [registry.host] });
    const repo = { registry: registry.host, repository: 'adm/app' };
    const pushed = await pushImage(client, repo, 'v1');
    await signImageCosign(client, repo, pushed.digest, key.signer, { dockerReference: `${registry.host}/adm/app` });
    image = { name: `${registry.host}/adm/app:v1`, descriptor: { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size } };
  });
  after(() => registry?.stop());
  afterEach(() => registry.reset());

  async function daemon(extraConfig: string): Promise<DaemonHandle> {
    // No verdict or content cache: each decision walks the registry itself (what admission is about).
    const d = await startDaemon({
      insecureRegistries: [registry.host],
      extraConfig: `cacheTTL: 0s\nnegativeCacheTTL: 0s\ncontentCacheSize: 0\n${extraConfig}`,
    });
    key.writePublic(join(d.dir, 'release.pub'));
    d.writePolicy('policy.yaml', {
      apiVersion: 'signet/v1',
      keys: { release: { file: join(d.dir, 'release.pub') } },
      scopes: { [registry.host]: { action: 'verify', formats: ['cosign'], signatures: { keys: ['release'] } } },
    });
    await waitFor(() => d.log().includes('policy loaded'), 'policy');
    return d;
  }

  it('refuses a decision beyond the queue at once with RESOURCE_EXHAUSTED; the verifier fails closed and says why', async () => {
    const d = await daemon('maxConcurrentDecisions: 1\nmaxQueuedDecisions: 0');
    try {
      registry.reset(); // forget the pushes of before(): wait for this decision's own request
      registry.on(/\/manifests\/sha256-/, { kind: 'delay', ms: 1500 });
      const slow = runVerifier({ socket: d.socket, name: image.name, descriptor: image.descriptor });
      await waitFor(() => registry.seen.some((s) => s.path.includes('/manifests/sha256-')), 'the first decision to reach the registry');
      const shed = await runVerifier({ socket: d.socket, name: image.name, descriptor: image.descriptor });
      assert.equal(shed.code, 1, shed.stdout);
      assert.match(
        shed.stdout,
        /RESOURCE_EXHAUSTED: signetd is overloaded: 1 decisions in progress and 0 waiting .*maxConcurrentDecisions 1, maxQueuedDecisions 0.*fail closed/,
      );
      assert.ok(shed.ms < 1500, `refused after ${shed.ms} ms, before the slow decision ended`);
      const first = await slow;
      assert.equal(first.code, 0, first.stdout);
      assert.match(d.log(), /overloaded: refusing decisions/);
      // The refused call was not a decision: one audit line, for the admitted one.
      await waitFor(() => d.audit().length === 1, 'one audit line');
      // signet status shows the load and what was refused for it.
      const status = spawnSync(process.execPath, [SIGNET, 'status', '--socket', d.socket, '--output', 'json'], { encoding: 'utf8' });
      const admission = (JSON.parse(status.stdout) as { admission?: Record<string, number> }).admission;
      assert.deepEqual(
        { ...admission, admitted: undefined },
        { inFlight: 0, queued: 0, maxInFlight: 1, maxQueued: 0, admitted: undefined, refusedQueueFull: 1, refusedQueueTimeout: 0, abandoned: 0, peakQueued: 0 },
        status.stdout + status.stderr,
      );
      const text = spawnSync(process.execPath, [SIGNET, 'status', '--socket', d.socket], { encoding: 'utf8' }).stdout;
      assert.match(text, /^load +0\/1 deciding, 0\/0 waiting \(peak 0\); 1 refused as overloaded \(RESOURCE_EXHAUSTED\)$/m);
    } finally {
      await d.stop();
    }
  });

  it('a decision that waited for its turn gets its full verifyTimeout: a burst against a registry at capacity is all accepted', async () => {
    // The registry answers one signature lookup at a time, 400 ms each. Four decisions at once used to run
    // together, their 1 s deadlines running while the registry worked through the others: the last ones were
    // refused with REGISTRY_TIMEOUT. Admitted one at a time, each has its full second.
    const d = await daemon('maxConcurrentDecisions: 1\nmaxQueuedDecisions: 16\nverifyTimeout: 1s\nregistryTimeout: 1s');
    const client = verifyClient(d.socket);
    try {
      registry.on(/\/manifests\/sha256-/, { kind: 'delay', ms: 400, serial: true });
      const answers = await Promise.all(Array.from({ length: 4 }, () => client.verify(image.name, image.descriptor, 8000)));
      assert.deepEqual(
        answers.map((a) => (a.ok ? 'accept' : `${a.status} ${a.code} ${a.reason || a.details}`)),
        ['accept', 'accept', 'accept', 'accept'],
      );
    } finally {
      client.close();
      await d.stop();
    }
  });

  it("a queued decision is refused with RESOURCE_EXHAUSTED just before its caller's deadline, not left to time out", async () => {
    const d = await daemon('maxConcurrentDecisions: 1\nmaxQueuedDecisions: 16');
    const client = verifyClient(d.socket);
    try {
      registry.reset();
      registry.on(/\/manifests\/sha256-/, { kind: 'delay', ms: 1600 });
      const slow = client.verify(image.name, image.descriptor, 8000);
      await waitFor(() => registry.seen.some((s) => s.path.includes('/manifests/sha256-')), 'the first decision to reach the registry');
      const queued = await client.verify(image.name, image.descriptor, 1000);
      assert.equal(queued.status, 8, `${queued.status} ${queued.details}`);
      assert.match(queued.details, /no decision slot came free within \d+ ms/);
      assert.equal((await slow).ok, true);
    } finally {
      client.close();
      await d.stop();
    }
  });
});
