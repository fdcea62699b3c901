/**
 * End to end on real containerd 2.x: signet-verifier sits in the image-verifier bindir, containerd runs
 * it for every pull through its transfer service (`ctr image pull`, CRI PullImage), it asks the real
 * signetd, which reads signatures from Debian's docker-registry. No emulation of containerd's side:
 * what is asserted is what containerd itself did (exit codes and messages, image store, CRI answers).
 */
import assert from 'node:assert/strict';
import { accessSync, constants, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { status as grpcStatus } from '@grpc/grpc-js';
import { RegistryClient, type RepositoryRef } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startContainerd, type ContainerdHandle } from '../helpers/containerd.js';
import { criClient, hostNetworkPod, type CriClient, type CriError } from '../helpers/cri.js';
import { startDaemon, VERIFIER, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { requireDebianParts } from '../helpers/debian-parts.js';
import { makeTestKey } from '../helpers/keys.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { pushRunnableImage, pushRunnableIndex, type RunnableImageOptions } from '../helpers/runnable-image.js';

/** What ctr prints when a verifier refuses (containerd 2.1: transfer service → bindir plugin). */
const CTR_REFUSAL =
  /ctr: image verifier bindir blocked pull of (\S+) with digest (sha256:[a-f0-9]{64}) for reason: verifier signet-verifier rejected image \(exit code 1\): (.*)/;

describe('containerd 2.x pulls through signet-verifier (real containerd, signetd, docker-registry)', function () {
  this.timeout(60_000);
  let registry: RegistryHandle;
  let client: RegistryClient;
  let host: string;
  let daemon: DaemonHandle;
  let containerd: ContainerdHandle;
  let cri: CriClient;
  let verifierDir: string;
  const release = makeTestKey('ecdsa-p256');
  const stranger = makeTestKey('ecdsa-p256');

  const repo = (name: string): RepositoryRef => ({ registry: host, repository: name });

  /** A bin_dir holding only a symlink to the built verifier, as the README installs it. */
  const makeVerifierDir = (): string => {
    try {
      accessSync(VERIFIER, constants.X_OK);
    } catch {
      throw new Error(`${VERIFIER} is missing or not executable: build with "npx tsc -p tsconfig.json" and run scripts/bootstrap.sh (it sets the mode)`);
    }
    const dir = mkdtempSync('/tmp/sv-bin-');
    symlinkSync(VERIFIER, join(dir, 'signet-verifier'));
    return dir;
  };

  async function push(name: string, tag: string, options: RunnableImageOptions = {}) {
    return pushRunnableImage(client, repo(name), { ...options, tag });
  }
  async function sign(name: string, digest: string, key = release) {
    await signImageCosign(client, repo(name), digest, key.signer, { dockerReference: `${host}/${name}` });
  }
  async function signed(name: string, tag = 'v1') {
    const img = await push(name, tag);
    await sign(name, img.digest);
    return img;
  }

  /** The audit lines signetd wrote for `digest`, waiting for the first to reach the file. */
  async function auditFor(d: DaemonHandle, digest: string): Promise<Array<Record<string, unknown>>> {
    await waitFor(() => d.audit().some((l) => l['digest'] === digest), `an audit line for ${digest}`, 3000);
    return d.audit().filter((l) => l['digest'] === digest);
  }

  const storedRefs = async (c: ContainerdHandle, namespace?: string): Promise<string[]> => {
    const ls = await c.ctr(['image', 'ls', '-q'], namespace ? { namespace } : {});
    assert.equal(ls.code, 0, ls.stderr);
    return ls.stdout.split('\n').filter(Boolean);
  };
  const contentDigests = async (c: ContainerdHandle, namespace?: string): Promise<string[]> => {
    const ls = await c.ctr(['content', 'ls', '-q'], namespace ? { namespace } : {});
    assert.equal(ls.code, 0, ls.stderr);
    return ls.stdout.split('\n').filter(Boolean);
  };
  const ctrPull = (c: ContainerdHandle, ref: string) => c.ctr(['image', 'pull', '--plain-http', ref], { timeoutMs: 30_000 });
  const criPullError = async (ref: string, client_ = cri): Promise<CriError> => {
    try {
      const id = await client_.pullImage(ref);
      assert.fail(`CRI PullImage of ${ref} succeeded (image ${id}); it should have been refused`);
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      return err as CriError;
    }
  };

  before(async function () {
    requireDebianParts();
    registry = await startRegistry();
    host = registry.host;
    client = new RegistryClient({ insecureRegistries: [host], retries: 0 });
    daemon = await startDaemon({ insecureRegistries: [host] });
    release.writePublic(join(daemon.dir, 'release.pub'));
    daemon.writePolicy('policy.yaml', {
      apiVersion: 'signet/v1',
      keys: { release: { file: join(daemon.dir, 'release.pub') } },
      default: { action: 'reject' },
      scopes: { [`${host}/prod`]: { action: 'verify', signatures: { keys: ['release'], identity: { type: 'matchRepository' } } } },
    });
    await waitFor(() => daemon.log().includes('policy loaded'), 'the first policy');
    // The pod sandbox image is pulled by CRI too, through the verifier: it must be signed.
    const pause = await push('prod/pause', '1', { entrypoint: ['/bin/sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'], cmd: [] });
    await sign('prod/pause', pause.digest);
    verifierDir = makeVerifierDir();
    // The README's install: a symlink in bin_dir, SIGNET_SOCKET in containerd's environment (verifiers inherit it).
    containerd = await startContainerd({ line: '2.x', verifierDir, sandboxImage: `${host}/prod/pause:1`, env: { SIGNET_SOCKET: daemon.socket } });
    assert.match(containerd.version, /^2\./);
    cri = criClient(containerd.address);
  });
  after(async () => {
    cri?.close();
    await containerd?.stop();
    await daemon?.stop();
    await registry?.stop();
    if (verifierDir) rmSync(verifierDir, { recursive: true, force: true });
  });

  describe('ctr image pull (transfer service)', () => {
    it('pulls a signed image, stores it, and signetd audits the name and digest containerd asked about', async () => {
      const img = await signed('prod/ctr-signed');
      const ref = `${host}/prod/ctr-signed:v1`;
      const res = await ctrPull(containerd, ref);
      assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
      assert.ok((await storedRefs(containerd)).includes(ref), 'the image is not in ctr image ls');
      const lines = await auditFor(daemon, img.digest);
      assert.equal(lines.length, 1, JSON.stringify(lines));
      assert.equal(lines[0]!['name'], ref);
      assert.equal(lines[0]!['decision'], 'accept');
      assert.equal(lines[0]!['mediaType'], 'application/vnd.oci.image.manifest.v1+json');
      // And it is a real image: it runs.
      const run = await containerd.ctr(['run', '--rm', '--net-host', ref, 'ctr-signed-run', '/bin/echo', 'ran-from-signed-image'], { timeoutMs: 20_000 });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /ran-from-signed-image/);
    });

    it("refuses an unsigned image with signet's reason, and fetches and stores nothing of it", async () => {
      const img = await push('prod/ctr-unsigned', 'v1', { file: { path: 'etc/signet-id', content: 'ctr-unsigned' } });
      const ref = `${host}/prod/ctr-unsigned:v1`;
      const contentBefore = new Set(await contentDigests(containerd));
      const res = await ctrPull(containerd, ref);
      assert.notEqual(res.code, 0, `pull succeeded: ${res.stdout}`);
      const m = CTR_REFUSAL.exec(res.stderr);
      assert.ok(m, `unexpected refusal text: ${res.stderr}`);
      assert.equal(m[1], ref);
      assert.equal(m[2], img.digest);
      assert.match(
        m[3]!,
        new RegExp(`^rejected ${host}/prod/ctr-unsigned@${img.digest}: no signatures found; needs a valid signature by release \\(scope ${host}/prod\\)`),
      );
      assert.ok(!(await storedRefs(containerd)).includes(ref), 'the refused image is in ctr image ls');
      // Refused before any fetch: not the manifest, the config or its own layer entered the content store.
      const fetched = (await contentDigests(containerd)).filter((d) => !contentBefore.has(d));
      assert.deepEqual(fetched, [], 'content fetched for the refused image');
      assert.ok(!contentBefore.has(img.layers[1]!.digest));
      const lines = await auditFor(daemon, img.digest);
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!['name'], ref);
      assert.equal(lines[0]!['decision'], 'reject');
      assert.equal(lines[0]!['code'], 'SIGNATURE_NOT_FOUND');
    });

    it('refuses an image signed by a key the policy does not trust', async () => {
      const img = await push('prod/ctr-stranger', 'v1');
      await sign('prod/ctr-stranger', img.digest, stranger);
      const ref = `${host}/prod/ctr-stranger:v1`;
      const res = await ctrPull(containerd, ref);
      assert.notEqual(res.code, 0, `pull succeeded: ${res.stdout}`);
      const m = CTR_REFUSAL.exec(res.stderr);
      assert.ok(m, `unexpected refusal text: ${res.stderr}`);
      assert.match(m[3]!, /1 signature\(s\) found: .*does not verify with key "release"/);
      assert.ok(!(await storedRefs(containerd)).includes(ref));
      assert.equal((await auditFor(daemon, img.digest))[0]!['decision'], 'reject');
    });

    it('pulls a multi-arch index signed at the index digest (the verifier is asked about the index)', async () => {
      const idx = await pushRunnableIndex(client, repo('prod/ctr-multi'), { tag: 'v1' });
      await sign('prod/ctr-multi', idx.digest);
      const ref = `${host}/prod/ctr-multi:v1`;
      const res = await ctrPull(containerd, ref);
      assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
      assert.ok((await storedRefs(containerd)).includes(ref));
      const lines = await auditFor(daemon, idx.digest);
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!['mediaType'], 'application/vnd.oci.image.index.v1+json');
      // containerd asked once, about the index: never about the platform manifest it unpacked.
      assert.equal(daemon.audit().filter((l) => l['digest'] === idx.runnable.digest).length, 0);
    });

    it('refuses a multi-arch index whose platform manifest alone is signed', async () => {
      const idx = await pushRunnableIndex(client, repo('prod/ctr-multi-child'), { tag: 'v1' });
      await sign('prod/ctr-multi-child', idx.runnable.digest);
      const res = await ctrPull(containerd, `${host}/prod/ctr-multi-child:v1`);
      assert.notEqual(res.code, 0, `pull succeeded: ${res.stdout}`);
      assert.match(res.stderr, /verifier signet-verifier rejected image \(exit code 1\): .*no signatures found/);
    });
  });

  describe("CRI PullImage (kubelet's path)", () => {
    it('pulls a signed image: ImageStatus shows it under its tag and digest', async () => {
      const img = await signed('prod/cri-signed');
      const ref = `${host}/prod/cri-signed:v1`;
      const id = await cri.pullImage(ref);
      assert.match(id, /^sha256:[a-f0-9]{64}$/);
      assert.equal(id, img.config.digest, 'CRI image id is the config digest');
      const status = await cri.imageStatus(ref);
      assert.ok(status, 'ImageStatus is empty after an accepted pull');
      assert.deepEqual(status.repoTags, [ref]);
      assert.deepEqual(status.repoDigests, [`${host}/prod/cri-signed@${img.digest}`]);
      const lines = await auditFor(daemon, img.digest);
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!['name'], ref);
      assert.equal(lines[0]!['decision'], 'accept');
    });

    it('pulls a signed image by digest', async () => {
      const img = await signed('prod/cri-bydigest');
      const ref = `${host}/prod/cri-bydigest@${img.digest}`;
      await cri.pullImage(ref);
      assert.ok(await cri.imageStatus(ref));
      assert.equal((await auditFor(daemon, img.digest))[0]!['name'], ref);
    });

    it("refuses an unsigned image: the gRPC error carries signet's reason, ImageStatus stays empty", async () => {
      const img = await push('prod/cri-unsigned', 'v1', { file: { path: 'etc/signet-id', content: 'cri-unsigned' } });
      const ref = `${host}/prod/cri-unsigned:v1`;
      const contentBefore = new Set(await contentDigests(containerd, 'k8s.io'));
      const err = await criPullError(ref);
      assert.equal(err.code, grpcStatus.UNKNOWN, err.message);
      assert.match(
        err.details,
        new RegExp(
          `^failed to pull and unpack image "${ref}": image verifier bindir blocked pull of ${ref} with digest ${img.digest} for reason: verifier signet-verifier rejected image \\(exit code 1\\): rejected ${host}/prod/cri-unsigned@${img.digest}: no signatures found; needs a valid signature by release \\(scope ${host}/prod\\)`,
        ),
      );
      assert.equal(await cri.imageStatus(ref), null);
      assert.equal(await cri.imageStatus(`${host}/prod/cri-unsigned@${img.digest}`), null);
      assert.ok(
        !(await cri.listImages()).some((i) => i.repoTags.includes(ref) || i.repoDigests.some((d) => d.endsWith(img.digest))),
        'ListImages shows the refused image',
      );
      const fetched = (await contentDigests(containerd, 'k8s.io')).filter((d) => !contentBefore.has(d));
      assert.deepEqual(fetched, [], 'content fetched for the refused image');
      assert.ok(!contentBefore.has(img.layers[1]!.digest));
      const lines = await auditFor(daemon, img.digest);
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!['name'], ref);
      assert.equal(lines[0]!['code'], 'SIGNATURE_NOT_FOUND');
    });

    it('refuses an image signed by a key the policy does not trust', async () => {
      const img = await push('prod/cri-stranger', 'v1');
      await sign('prod/cri-stranger', img.digest, stranger);
      const ref = `${host}/prod/cri-stranger:v1`;
      const err = await criPullError(ref);
      assert.match(err.details, /verifier signet-verifier rejected image \(exit code 1\): .*does not verify with key "release"/);
      assert.equal(await cri.imageStatus(ref), null);
    });

    it('refuses an image outside every verify scope (policy default: reject)', async () => {
      const img = await signed('elsewhere/cri-app');
      const err = await criPullError(`${host}/elsewhere/cri-app:v1`);
      assert.match(err.details, /scope default rejects/);
      assert.equal((await auditFor(daemon, img.digest))[0]!['scope'], 'default');
    });

    it('pulls a multi-arch index signed at the index digest', async () => {
      const idx = await pushRunnableIndex(client, repo('prod/cri-multi'), { tag: 'v1' });
      await sign('prod/cri-multi', idx.digest);
      const ref = `${host}/prod/cri-multi:v1`;
      const id = await cri.pullImage(ref);
      assert.equal(id, idx.runnable.config.digest, 'the linux/amd64 platform image was unpacked');
      const status = await cri.imageStatus(ref);
      assert.ok(status);
      assert.deepEqual(status.repoDigests, [`${host}/prod/cri-multi@${idx.digest}`]);
      assert.equal((await auditFor(daemon, idx.digest))[0]!['decision'], 'accept');
    });

    it('runs a container from a signed image in a pod whose sandbox image was verified too', async () => {
      const img = await push('prod/cri-run', 'v1', { file: { path: 'etc/signet-id', content: 'signed-and-running' } });
      await sign('prod/cri-run', img.digest);
      const ref = `${host}/prod/cri-run:v1`;
      await cri.pullImage(ref);
      const pod = hostNetworkPod('signet-run', { logDirectory: join(containerd.dir, 'pod-logs') });
      const podId = await cri.runPodSandbox(pod);
      try {
        const cid = await cri.createContainer(
          podId,
          { metadata: { name: 'app' }, image: { image: ref }, command: ['/bin/cat', '/etc/signet-id'], logPath: 'app.log' },
          pod,
        );
        await cri.startContainer(cid);
        await waitFor(async () => (await cri.containerStatus(cid))['state'] === 'CONTAINER_EXITED', 'the container to exit', 10_000);
        assert.equal((await cri.containerStatus(cid))['exitCode'], 0);
      } finally {
        await cri.stopPodSandbox(podId);
        await cri.removePodSandbox(podId);
      }
      const pauseLines = daemon.audit().filter((l) => l['name'] === `${host}/prod/pause:1`);
      assert.ok(pauseLines.length >= 1, 'the sandbox image pull never reached signetd');
      assert.ok(pauseLines.every((l) => l['decision'] === 'accept'));
    });
  });

  describe('signetd down', () => {
    let down: DaemonHandle;
    let ctd: ContainerdHandle;
    let downCri: CriClient;
    before(async () => {
      down = await startDaemon({ insecureRegistries: [host] });
      release.writePublic(join(down.dir, 'release.pub'));
      down.writePolicy('policy.yaml', {
        apiVersion: 'signet/v1',
        keys: { release: { file: join(down.dir, 'release.pub') } },
        default: { action: 'reject' },
        scopes: { [`${host}/prod`]: { action: 'verify', signatures: { keys: ['release'] } } },
      });
      await waitFor(() => down.log().includes('policy loaded'), 'the policy');
      ctd = await startContainerd({ line: '2.x', verifierDir, env: { SIGNET_SOCKET: down.socket } });
      downCri = criClient(ctd.address);
    });
    after(async () => {
      downCri?.close();
      await ctd?.stop();
      await down?.stop();
    });

    it('refuses even a signed image once signetd is stopped (fail closed), via ctr and CRI, and stores nothing', async () => {
      // While signetd runs, this containerd pulls signed images: the refusal below is signetd's absence.
      const earlier = await signed('prod/down-before');
      const ok = await ctrPull(ctd, `${host}/prod/down-before:v1`);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((await auditFor(down, earlier.digest))[0]!['decision'], 'accept');

      await down.stop();
      await signed('prod/down-after');
      const ref = `${host}/prod/down-after:v1`;
      const res = await ctrPull(ctd, ref);
      assert.notEqual(res.code, 0, `pull succeeded with signetd down: ${res.stdout}`);
      assert.match(
        res.stderr,
        new RegExp(
          `verifier signet-verifier rejected image \\(exit code 1\\): signet: cannot get a decision from signetd at ${down.socket} \\(.*\\); rejecting ${ref} \\(fail closed\\)`,
        ),
      );
      assert.ok(!(await storedRefs(ctd)).includes(ref));

      const err = await criPullError(ref, downCri);
      assert.match(err.details, /verifier signet-verifier rejected image \(exit code 1\): signet: cannot get a decision from signetd .*\(fail closed\)/);
      assert.equal(await downCri.imageStatus(ref), null);
    });
  });

  describe('CRI settings that leave the transfer service', () => {
    let ctd: ContainerdHandle;
    let fbCri: CriClient;
    before(async () => {
      ctd = await startContainerd({ line: '2.x', verifierDir, criConfig: 'max_concurrent_downloads = 2', env: { SIGNET_SOCKET: daemon.socket } });
      fbCri = criClient(ctd.address);
    });
    after(async () => {
      fbCri?.close();
      await ctd?.stop();
    });

    it('GAP: with max_concurrent_downloads = 2 in the CRI images section, CRI PullImage stores an unsigned image without running the verifier', async () => {
      assert.match(
        ctd.log(),
        /Found 'MaxConcurrentDownloads' in CRI config which is incompatible with transfer service.*Falling back to local image pull mode/,
      );
      const img = await push('prod/fallback-unsigned', 'v1');
      const ref = `${host}/prod/fallback-unsigned:v1`;
      const id = await fbCri.pullImage(ref);
      assert.equal(id, img.config.digest);
      const status = await fbCri.imageStatus(ref);
      assert.ok(status, 'the unsigned image should have been stored (this is the gap)');
      assert.deepEqual(status.repoDigests, [`${host}/prod/fallback-unsigned@${img.digest}`]);
      // signet-verifier was never asked: no decision, no audit line.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(daemon.audit().filter((l) => l['digest'] === img.digest).length, 0, 'signetd was asked after all');
    });

    it('GAP: with use_local_image_pull = true, CRI PullImage stores an unsigned image without running the verifier, and containerd logs no warning at all', async () => {
      const local = await startContainerd({ line: '2.x', verifierDir, criConfig: 'use_local_image_pull = true', env: { SIGNET_SOCKET: daemon.socket } });
      const localCri = criClient(local.address);
      try {
        const img = await push('prod/local-pull-unsigned', 'v1');
        const ref = `${host}/prod/local-pull-unsigned:v1`;
        assert.equal(await localCri.pullImage(ref), img.config.digest);
        assert.ok(await localCri.imageStatus(ref), 'the unsigned image should have been stored (this is the gap)');
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(daemon.audit().filter((l) => l['digest'] === img.digest).length, 0, 'signetd was asked after all');
        assert.doesNotMatch(local.log(), /Falling back to local image pull mode/);
      } finally {
        localCri.close();
        await local.stop();
      }
    });

    it('still verifies ctr image pull on that containerd (the transfer service is unaffected)', async () => {
      const img = await push('prod/fallback-ctr', 'v1');
      const res = await ctrPull(ctd, `${host}/prod/fallback-ctr:v1`);
      assert.notEqual(res.code, 0, `pull succeeded: ${res.stdout}`);
      assert.match(res.stderr, /verifier signet-verifier rejected image \(exit code 1\): .*no signatures found/);
      assert.equal((await auditFor(daemon, img.digest))[0]!['decision'], 'reject');
    });
  });

  describe('containerd 1.6 and 1.7: no image-verifier plugin', () => {
    for (const line of ['1.7', '1.6'] as const) {
      it(`GAP: containerd ${line} has no bindir verifier, so CRI PullImage stores an unsigned image`, async () => {
        const old = await startContainerd({ line });
        const oldCri = criClient(old.address);
        try {
          assert.match(old.version, new RegExp(`^${line.replace('.', '\\.')}\\.`));
          const plugins = await old.ctr(['plugins', 'ls']);
          assert.equal(plugins.code, 0, plugins.stderr);
          assert.doesNotMatch(plugins.stdout, /image-verifier/);
          const img = await push(`prod/containerd-${line.replace('.', '')}-unsigned`, 'v1');
          const ref = `${host}/prod/containerd-${line.replace('.', '')}-unsigned:v1`;
          assert.equal(await oldCri.pullImage(ref), img.config.digest);
          assert.ok(await oldCri.imageStatus(ref));
          const res = await ctrPull(old, ref);
          assert.equal(res.code, 0, res.stderr);
        } finally {
          oldCri.close();
          await old.stop();
        }
      });
    }
  });
});
