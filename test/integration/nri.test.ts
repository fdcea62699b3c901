/**
 * signetd as an NRI plugin on real containerd 2.x and 1.7: containers are created through CRI
 * (RunPodSandbox, CreateContainer, StartContainer) as kubelet creates them, from runnable busybox
 * images in a real docker-registry, and signetd decides each creation with the same engine and policy
 * as a pull. Whatever path the image took to the node — `ctr -n k8s.io image import`, CRI's local pull
 * (`use_local_image_pull = true` on 2.x, every pull on 1.7) — an image the policy refuses does not
 * become a container; an image whose key is revoked after the pull is refused at its next creation;
 * after containerd restarts, signetd registers again and enforcement resumes.
 *
 * The image watcher runs too (it always does with `containerd: { address }`), with
 * `onUnverified: report` so that it does not remove the images before creation is attempted.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { RegistryClient, type RepositoryRef } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startContainerd, writeRegistryHosts, type ContainerdHandle, type ContainerdLine } from '../helpers/containerd.js';
import { criClient, hostNetworkPod, type CriClient, type CriError, type PodSandboxConfig } from '../helpers/cri.js';
import { SIGNET, startDaemon, VERIFIER, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { makeTestKey } from '../helpers/keys.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { makeTar, pushRunnableImage, type RunnableImage } from '../helpers/runnable-image.js';
import winston from 'winston';
import { NriPlugin } from '../../src/nri/plugin.js';

/** What CRI returns when an NRI plugin refuses a container (containerd 2.1.9 and 1.7.24 alike). */
const CREATE_REFUSAL =
  /^failed to create containerd container: failed to get NRI adjustment for container: rpc error: code = PermissionDenied desc = (signet: .*)$/;
const PAUSE_ENTRYPOINT = ['/bin/sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];

describe('NRI: no container from an image the policy refuses (real containerd, signetd, docker-registry)', function () {
  this.timeout(120_000);
  let registry: RegistryHandle;
  /** The same registry behind a proxy that can make signature lookups hang. */
  let proxy: FaultProxy;
  let client: RegistryClient;
  let host: string;
  let work: string;
  const release = makeTestKey('ecdsa-p256');
  const repo = (name: string): RepositoryRef => ({ registry: host, repository: name });

  const policy = (opts: { revoked?: boolean; accept?: string } = {}) => ({
    apiVersion: 'signet/v1',
    keys: { release: { file: join(work, 'release.pub'), ...(opts.revoked ? { revoked: true } : {}) } },
    default: { action: 'reject' },
    scopes: {
      [`${host}/prod`]: { action: 'verify', signatures: { keys: ['release'] } },
      [`${proxy.host}/prod`]: { action: 'verify', signatures: { keys: ['release'] } },
      ...(opts.accept ? { [opts.accept]: { action: 'accept' } } : {}),
    },
  });

  before(async () => {
    registry = await startRegistry();
    host = registry.host;
    proxy = await startFaultProxy(host);
    client = new RegistryClient({ insecureRegistries: [host], retries: 0 });
    work = mkdtempSync(join(tmpdir(), 'signet-nri-'));
    release.writePublic(join(work, 'release.pub'));
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  async function image(name: string, signed: boolean, options: { entrypoint?: string[]; cmd?: string[] } = {}): Promise<RunnableImage> {
    const img = await pushRunnableImage(client, repo(name), { tag: 'v1', ...options });
    if (signed) await signImageCosign(client, repo(name), img.digest, release.signer, { dockerReference: `${host}/${name}` });
    return img;
  }

  /** An OCI archive for `ctr image import`, the image named `name`. */
  async function archive(img: RunnableImage, repoName: string, name: string): Promise<string> {
    const blobs = new Map<string, Buffer>([[img.digest, img.manifestBytes]]);
    for (const d of [img.config, ...img.layers]) blobs.set(d.digest, await client.getBlob(repo(repoName), d.digest));
    const index = {
      schemaVersion: 2,
      manifests: [
        {
          mediaType: img.mediaType,
          digest: img.digest,
          size: img.size,
          annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    };
    const file = join(work, `${img.digest.slice(7, 19)}.tar`);
    writeFileSync(
      file,
      makeTar([
        { path: 'oci-layout', type: 'file', content: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
        { path: 'index.json', type: 'file', content: Buffer.from(JSON.stringify(index)) },
        { path: 'blobs', type: 'dir' },
        { path: 'blobs/sha256', type: 'dir' },
        ...[...blobs].map(([digest, content]) => ({ path: `blobs/sha256/${digest.slice(7)}`, type: 'file' as const, content })),
      ]),
    );
    return file;
  }

  for (const line of ['2.x', '1.7'] as ContainerdLine[]) {
    describe(`containerd ${line}`, () => {
      const tag = line.replace('.', '');
      let ctd: ContainerdHandle;
      let daemon: DaemonHandle;
      let cri: CriClient;
      let certs: string;
      let verifierDir: string | undefined;
      let restarted: ChildProcess | undefined;
      let pod: PodSandboxConfig;
      let podId: string;
      let n = 0;

      const registrations = () =>
        daemon
          .log()
          .split('\n')
          .filter((l) => l.includes('"NRI: registered with the runtime')).length;
      const createAudit = () => daemon.audit().filter((l) => l['event'] === 'create');

      /** CreateContainer + StartContainer of `ref` in the test pod; resolves with the exit code. */
      async function run(ref: string): Promise<number> {
        const id = await cri.createContainer(
          podId,
          { metadata: { name: `c${++n}` }, image: { image: ref }, command: ['/bin/true'], logPath: `c${n}.log` },
          pod,
        );
        await cri.startContainer(id);
        await waitFor(async () => (await cri.containerStatus(id))['state'] === 'CONTAINER_EXITED', 'the container to exit', 10_000);
        return (await cri.containerStatus(id))['exitCode'] as number;
      }

      /** CreateContainer of `ref`, which must be refused by signet: returns signet's reason. */
      async function refused(ref: string): Promise<string> {
        const name = `c${++n}`;
        const err = await cri.createContainer(podId, { metadata: { name }, image: { image: ref }, command: ['/bin/true'] }, pod).then(
          (id) => assert.fail(`container ${id} was created from ${ref}`),
          (e: CriError) => e,
        );
        assert.equal(err.code, 7, `PERMISSION_DENIED expected: ${err.message}`);
        const m = CREATE_REFUSAL.exec(err.details);
        assert.ok(m, `unexpected CRI error: ${err.details}`);
        const containers = await cri.call<{ containers?: Array<{ metadata: { name: string } }> }>('runtime', 'ListContainers', {});
        assert.ok(!(containers.containers ?? []).some((c) => c.metadata.name === name), 'no container record was left behind');
        return m[1]!;
      }

      before(async () => {
        certs = writeRegistryHosts(mkdtempSync(join(tmpdir(), 'signet-certs-')), host);
        writeRegistryHosts(certs, proxy.host);
        // The pod sandbox image follows the policy too: signed, in the verified scope.
        await image(`prod/pause-${tag}`, true, { entrypoint: PAUSE_ENTRYPOINT, cmd: [] });
        if (line === '2.x') {
          // signet-verifier installed as the README says; CRI's local pull mode goes around it.
          accessSync(VERIFIER, constants.X_OK);
          verifierDir = mkdtempSync('/tmp/sv-bin-');
          symlinkSync(VERIFIER, join(verifierDir, 'signet-verifier'));
        }
        ctd = await startContainerd({
          line,
          registryConfigPath: certs,
          sandboxImage: `${host}/prod/pause-${tag}:v1`,
          ...(line === '2.x' ? { criConfig: 'use_local_image_pull = true', verifierDir: verifierDir! } : {}),
        });
        daemon = await startDaemon({
          insecureRegistries: [host, proxy.host],
          extraConfig: [`containerd: { address: ${ctd.address} }`, 'images: { onUnverified: report }', `nri: { socket: ${ctd.nriSocket}, index: "10" }`].join(
            '\n',
          ),
        });
        daemon.writePolicy('policy.yaml', policy());
        await waitFor(() => daemon.log().includes('"policy loaded"'), 'the policy', 5000);
        await waitFor(() => registrations() === 1, "signetd to register with containerd's NRI", 10_000);
        cri = criClient(ctd.address);
        pod = hostNetworkPod(`nri-${tag}`, { logDirectory: join(ctd.dir, 'pod-logs') });
        podId = await cri.runPodSandbox(pod);
      });
      after(async () => {
        cri?.close();
        await daemon?.stop();
        restarted?.kill('SIGKILL');
        await ctd?.stop();
        rmSync(certs, { recursive: true, force: true });
        if (verifierDir) rmSync(verifierDir, { recursive: true, force: true });
      });

      it('runs a container from a signed image, and audits the creation (event create, pod, container, namespace)', async () => {
        await image(`prod/signed-${tag}`, true);
        const ref = `${host}/prod/signed-${tag}:v1`;
        await cri.pullImage(ref);
        assert.equal(await run(ref), 0);
        const lines = createAudit().filter((l) => l['name'] === ref);
        assert.equal(lines.length, 1, JSON.stringify(createAudit()));
        assert.deepEqual(
          [lines[0]!['decision'], lines[0]!['action'], lines[0]!['role'], lines[0]!['namespace'], lines[0]!['pod']],
          ['accept', 'allowed', 'container', 'signet-test', `nri-${tag}`],
        );
        assert.match(String(lines[0]!['container']), /^c\d+$/);
        const sandbox = createAudit().filter((l) => l['role'] === 'sandbox');
        // 2.x names the sandbox image to NRI; on 1.7 signetd reads it from the sandbox container's record.
        assert.ok(
          sandbox.length >= 1 && sandbox.every((l) => l['decision'] === 'accept' && l['name'] === `${host}/prod/pause-${tag}:v1`),
          `the sandbox image was decided too: ${JSON.stringify(sandbox)}`,
        );
      });

      it('refuses to create a container from an unsigned image imported with ctr -n k8s.io image import', async () => {
        const img = await image(`prod/imported-${tag}`, false);
        const ref = `${host}/prod/imported-${tag}:v1`;
        const imported = await ctd.ctr(['images', 'import', await archive(img, `prod/imported-${tag}`, ref)], { namespace: 'k8s.io' });
        assert.equal(imported.code, 0, imported.stderr);
        // CRI learns about the record from containerd's event stream, as kubelet would see it.
        await waitFor(async () => (await cri.imageStatus(ref)) !== null, 'CRI to know the imported image', 5000);
        const reason = await refused(ref);
        assert.match(reason, new RegExp(`^signet: rejected ${host.replace(/\./g, '\\.')}/prod/imported-${tag}@${img.digest}: .*no (valid )?signature`));
        const line = createAudit().find((l) => l['name'] === ref)!;
        assert.deepEqual([line['decision'], line['action'], line['code'], line['digest']], ['reject', 'refused', 'SIGNATURE_NOT_FOUND', img.digest]);
      });

      it('refuses a name re-pointed at an unsigned image (ctr import over a signed tag) right after the signed image ran', async () => {
        const signedImg = await image(`prod/moved-${tag}`, true);
        const ref = `${host}/prod/moved-${tag}:v1`;
        await cri.pullImage(ref);
        // Until the name is answered from memory (the image event stream must have been up for a second).
        const fromMemory = async (): Promise<number> =>
          Number(
            JSON.parse((await promisify(execFile)(process.execPath, [SIGNET, 'status', '--socket', daemon.socket, '--output', 'json'])).stdout)['nri'][
              'namesFromMemory'
            ],
          );
        const before = await fromMemory();
        await waitFor(async () => (await run(ref)) === 0 && (await fromMemory()) > before, 'a creation answered from the name memory', 5000);
        const unsigned = await image(`prod/moved-unsigned-${tag}`, false);
        const imported = await ctd.ctr(['images', 'import', await archive(unsigned, `prod/moved-unsigned-${tag}`, ref)], { namespace: 'k8s.io' });
        assert.equal(imported.code, 0, imported.stderr);
        await waitFor(async () => (await cri.imageStatus(ref))?.id === unsigned.config.digest, 'CRI to see the name on the unsigned image', 5000);
        const reason = await refused(ref);
        assert.ok(reason.startsWith(`signet: rejected ${host}/prod/moved-${tag}@${unsigned.digest}: `), reason);
        assert.notEqual(unsigned.digest, signedImg.digest);
      });

      it(
        line === '2.x'
          ? 'refuses an unsigned image CRI pulled around the verifier (use_local_image_pull = true)'
          : 'refuses an unsigned image CRI pulled (1.7 has no verifier at all)',
        async () => {
          const img = await image(`prod/pulled-${tag}`, false);
          const ref = `${host}/prod/pulled-${tag}:v1`;
          assert.equal(await cri.pullImage(ref), img.config.digest, 'CRI stored the unsigned image');
          const reason = await refused(ref);
          assert.ok(reason.startsWith(`signet: rejected ${host}/prod/pulled-${tag}@${img.digest}: `), reason);
        },
      );

      it('refuses an image whose signing key was revoked after the pull at its next creation (and, on 2.x, a new pod whose sandbox image it signed)', async () => {
        await image(`prod/revoked-${tag}`, true);
        const ref = `${host}/prod/revoked-${tag}:v1`;
        await cri.pullImage(ref);
        assert.equal(await run(ref), 0, 'runs while the key is trusted');
        daemon.writePolicy('policy.yaml', policy({ revoked: true }));
        await waitFor(
          () =>
            daemon
              .log()
              .split('\n')
              .filter((l) => l.includes('"policy loaded"')).length >= 2,
          'the policy change',
          5000,
        );
        const reason = await refused(ref);
        assert.match(reason, /revoked/);
        const second = hostNetworkPod(`nri-${tag}-b`, { logDirectory: join(ctd.dir, 'pod-logs') });
        if (line === '2.x') {
          const err = await cri.runPodSandbox(second).then(
            () => assert.fail('a pod sandbox ran from an image signed only by a revoked key'),
            (e: CriError) => e,
          );
          assert.match(
            err.details,
            /^NRI RunPodSandbox failed: rpc error: code = PermissionDenied desc = signet: rejected \S+\/prod\/pause-2x@sha256:[a-f0-9]{64}: .*revoked.*\(the pod sandbox image\)$/,
          );
          // The README's exemption: accept the sandbox image by a scope of its own (most specific wins).
          daemon.writePolicy('policy.yaml', policy({ revoked: true, accept: `${host}/prod/pause-2x:v1` }));
          await waitFor(
            () =>
              daemon
                .log()
                .split('\n')
                .filter((l) => l.includes('"policy loaded"')).length >= 3,
            'the exemption',
            5000,
          );
          const id = await cri.runPodSandbox(second);
          await cri.stopPodSandbox(id);
          await cri.removePodSandbox(id);
        } else {
          // GAP on 1.7: the runtime does not tell NRI which image the sandbox runs.
          const id = await cri.runPodSandbox(second);
          await cri.stopPodSandbox(id);
          await cri.removePodSandbox(id);
        }
        const loads = daemon
          .log()
          .split('\n')
          .filter((l) => l.includes('"policy loaded"')).length;
        daemon.writePolicy('policy.yaml', policy());
        await waitFor(
          () =>
            daemon
              .log()
              .split('\n')
              .filter((l) => l.includes('"policy loaded"')).length > loads,
          'the key trusted again',
          5000,
        );
      });

      it("refuses, with the reason, a creation whose decision takes longer than the bound (1.5 s, before containerd's 2 s), and decides it again next time", async () => {
        const slow = await image(`prod/slow-${tag}`, false);
        // Signed for the name it is pulled by: the proxy's.
        await signImageCosign(client, repo(`prod/slow-${tag}`), slow.digest, release.signer, { dockerReference: `${proxy.host}/prod/slow-${tag}` });
        const ref = `${proxy.host}/prod/slow-${tag}:v1`;
        await cri.pullImage(ref);
        // Signature lookups for this image hang (registry overloaded); the pull itself went through.
        proxy.rules.push({ path: new RegExp(`^/v2/prod/slow-${tag}/(manifests/sha256-|referrers/)`), action: { kind: 'hang' } });
        const started = Date.now();
        const reason = await refused(ref);
        const took = Date.now() - started;
        assert.match(
          reason,
          new RegExp(
            `^signet: rejected ${proxy.host.replace(/\./g, '\\.')}/prod/slow-${tag}@sha256:[a-f0-9]{64}: no decision within 1500 ms \\(\\d+ ms elapsed\\); containerd would create the container unchecked once its plugin_request_timeout passes, so signet refuses it \\(fail closed\\)$`,
          ),
        );
        assert.ok(took >= 1400 && took < 2000, `answered after ${took} ms`);
        const line = createAudit().find((l) => l['name'] === ref)!;
        assert.deepEqual([line['decision'], line['code']], ['reject', 'DECISION_TIMEOUT']);
        assert.match(ctd.log(), /PermissionDenied desc = signet: rejected \S+ no decision within 1500 ms/);
        proxy.reset();
        assert.equal(await run(ref), 0, 'decided again (nothing was remembered of the timeout), now in time');
      });

      it("registers again within a second of containerd's NRI socket returning after a restart, and enforcement resumes", async () => {
        const signedImg = await image(`prod/after-${tag}`, true);
        const unsigned = await image(`prod/after-unsigned-${tag}`, false);
        const signedRef = `${host}/prod/after-${tag}:v1`;
        const unsignedRef = `${host}/prod/after-unsigned-${tag}:v1`;
        const before = registrations();
        // Stop containerd (its shims and the pod stay), then start it again with the same config.
        ctd.proc.kill('SIGTERM');
        await new Promise<void>((r) => (ctd.proc.exitCode !== null || ctd.proc.signalCode !== null ? r() : ctd.proc.once('exit', () => r())));
        await waitFor(() => daemon.log().includes('NRI: not registered with containerd'), 'signetd to notice', 5000);
        const PATH = [ctd.binDir, dirname(process.execPath), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');
        restarted = spawn(join(ctd.binDir, 'containerd'), ['--config', ctd.configPath], { env: { ...process.env, PATH }, stdio: 'ignore' });
        await waitFor(() => existsSync(ctd.nriSocket), 'the NRI socket to return', 20_000);
        const back = Date.now();
        await waitFor(() => registrations() > before, 'signetd to register again', 5000);
        assert.ok(Date.now() - back < 1000, `registered ${Date.now() - back} ms after the socket returned`);
        await waitFor(async () => (await ctd.ctr(['version'], { timeoutMs: 2000 })).code === 0, 'containerd to serve', 10_000);
        cri.close();
        cri = criClient(ctd.address);
        await cri.pullImage(signedRef);
        await cri.pullImage(unsignedRef);
        assert.equal(await run(signedRef), 0);
        const reason = await refused(unsignedRef);
        assert.ok(reason.startsWith(`signet: rejected ${host}/prod/after-unsigned-${tag}@${unsigned.digest}: `), reason);
        assert.ok(signedImg.digest);
        // signet status: registered again, and the creations decided so far.
        const status = (await promisify(execFile)(process.execPath, [SIGNET, 'status', '--socket', daemon.socket])).stdout;
        assert.match(
          status,
          new RegExp(
            `nri\\s+registered with containerd ${line === '2.x' ? '2\\.1' : '1\\.7'}\\S* since \\S+\\s+\\(${ctd.nriSocket.replace(/\//g, '\\/')}, index 10; decisions bounded at 1500 ms${line === '2.x' ? ', containerd waits 2000 ms' : ''}\\)`,
          ),
        );
        assert.match(
          status,
          /creations\s+\d+ images decided, [6-9] creations refused \(1 for want of a decision in time\), \d+ verdicts and [1-9]\d* names from memory/,
        );
        assert.match(status, /last refusal: signet: rejected \S+\/prod\/after-unsigned-/);
      });
    });
  }
  for (const line of ['2.x', '1.7'] as ContainerdLine[]) {
    it(`containerd ${line}: a refusal longer than containerd's 4 KiB read buffer reaches the CRI caller whole (the plugin writes frames of at most 4 KiB)`, async () => {
      const tag = line.replace('.', '');
      const certs = writeRegistryHosts(mkdtempSync(join(tmpdir(), 'signet-certs-')), host);
      await image(`prod/wire-pause-${tag}`, false, { entrypoint: PAUSE_ENTRYPOINT, cmd: [] });
      await image(`prod/wire-${tag}`, false);
      const ctd = await startContainerd({ line, registryConfigPath: certs, sandboxImage: `${host}/prod/wire-pause-${tag}:v1` });
      const long = `signet: rejected for a reason of ${'0123456789'.repeat(1000)} bytes, END`;
      const plugin = new NriPlugin(
        { socket: ctd.nriSocket, index: '10', timeoutMs: 1500 },
        { createContainer: async () => long },
        winston.createLogger({ silent: true }),
      );
      const registered = new Promise<void>((r) => plugin.onRegistered(r));
      plugin.start();
      const cri = criClient(ctd.address);
      try {
        await registered;
        await cri.pullImage(`${host}/prod/wire-${tag}:v1`);
        const pod = hostNetworkPod(`wire-${tag}`, { logDirectory: join(ctd.dir, 'pod-logs') });
        const podId = await cri.runPodSandbox(pod);
        const err = await cri
          .createContainer(podId, { metadata: { name: 'long' }, image: { image: `${host}/prod/wire-${tag}:v1` }, command: ['/bin/true'] }, pod)
          .then(
            () => assert.fail('created'),
            (e: CriError) => e,
          );
        assert.equal(CREATE_REFUSAL.exec(err.details)?.[1], long);
        assert.equal(plugin.status().registrations, 1, 'the connection held');
      } finally {
        cri.close();
        await plugin.stop();
        await ctd.stop();
        rmSync(certs, { recursive: true, force: true });
      }
    });
  }
});
