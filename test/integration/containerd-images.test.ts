/**
 * Images that reach containerd without the verifier — `ctr image import`, `ctr image pull --local`,
 * CRI's local pull fallback, and every pull on containerd 1.6/1.7 — seen by signetd in containerd's
 * event stream and decided; images already on the node decided again after a policy change; and
 * `signet node audit`. Real containerd (2.x, 1.7, 1.6), real signetd, real docker-registry.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RegistryClient, type RepositoryRef } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startContainerd, writeRegistryHosts, type ContainerdHandle, type ContainerdLine } from '../helpers/containerd.js';
import { criClient } from '../helpers/cri.js';
import { SIGNET, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { makeTestKey } from '../helpers/keys.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { makeTar, pushRunnableImage, type RunnableImage } from '../helpers/runnable-image.js';

const run = promisify(execFile);

describe('images that reach containerd by any path (image events, reverification, node audit)', function () {
  this.timeout(120_000);
  let registry: RegistryHandle;
  let client: RegistryClient;
  let host: string;
  let keyDir: string;
  const release = makeTestKey('ecdsa-p256');

  const repo = (name: string): RepositoryRef => ({ registry: host, repository: name });

  const policy = (opts: { revoked?: boolean } = {}) => ({
    apiVersion: 'signet/v1',
    keys: { release: { file: join(keyDir, 'release.pub'), ...(opts.revoked ? { revoked: true } : {}) } },
    default: { action: 'reject' },
    scopes: { [`${host}/prod`]: { action: 'verify', signatures: { keys: ['release'] } } },
  });

  before(async () => {
    registry = await startRegistry();
    host = registry.host;
    client = new RegistryClient({ insecureRegistries: [host], retries: 0 });
    keyDir = mkdtempSync(join(tmpdir(), 'signet-keys-'));
    release.writePublic(join(keyDir, 'release.pub'));
  });
  after(async () => {
    await registry?.stop();
    rmSync(keyDir, { recursive: true, force: true });
  });

  async function image(name: string, signed: boolean): Promise<RunnableImage> {
    const img = await pushRunnableImage(client, repo(name), { tag: 'v1' });
    if (signed) await signImageCosign(client, repo(name), img.digest, release.signer, { dockerReference: `${host}/${name}` });
    return img;
  }

  /** An OCI archive (`ctr image import` input) of an image in the registry, named `name`. */
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
    const tar = makeTar([
      { path: 'oci-layout', type: 'file', content: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
      { path: 'index.json', type: 'file', content: Buffer.from(JSON.stringify(index)) },
      { path: 'blobs', type: 'dir' },
      { path: 'blobs/sha256', type: 'dir' },
      ...[...blobs].map(([digest, content]) => ({ path: `blobs/sha256/${digest.slice(7)}`, type: 'file' as const, content })),
    ]);
    const file = join(keyDir, `${img.digest.slice(7, 19)}.tar`);
    writeFileSync(file, tar);
    return file;
  }

  const auditFor = (daemon: DaemonHandle, name: string, event: string) => daemon.audit().filter((l) => l['event'] === event && l['name'] === name);
  /** Lines about an image that arrived after signetd started: from its event, or from a sweep that was running then. */
  const caught = (daemon: DaemonHandle, name: string) =>
    daemon.audit().filter((l) => (l['event'] === 'image-event' || l['event'] === 'reverify') && l['name'] === name);
  const imageNames = async (ctd: ContainerdHandle, namespace = 'default') =>
    (await ctd.ctr(['images', 'ls', '-q'], { namespace })).stdout.split('\n').filter(Boolean);

  async function startWatchingDaemon(ctd: ContainerdHandle, onUnverified: 'report' | 'remove'): Promise<DaemonHandle> {
    const daemon = await startDaemon({
      insecureRegistries: [host],
      extraConfig: `containerd: { address: ${ctd.address} }\nimages: { onUnverified: ${onUnverified} }`,
    });
    daemon.writePolicy('policy.yaml', policy());
    await waitFor(() => daemon.log().includes('watching containerd image events'), 'signetd to watch containerd', 10_000);
    await waitFor(() => daemon.log().includes('reverified the images on the node'), 'the first sweep over the node', 10_000);
    return daemon;
  }

  for (const line of ['2.x', '1.7', '1.6'] as ContainerdLine[]) {
    describe(`containerd ${line}: ctr image import${line === '2.x' ? '' : ', ctr image pull and CRI pulls (no verifier on 1.x)'}`, () => {
      let ctd: ContainerdHandle;
      let certs: string;
      before(async () => {
        certs = writeRegistryHosts(mkdtempSync(join(tmpdir(), 'signet-certs-')), host);
        ctd = await startContainerd({ line, registryConfigPath: certs });
      });
      after(async () => {
        await ctd?.stop();
        rmSync(certs, { recursive: true, force: true });
      });

      if (line !== '2.x') {
        it('removes unsigned images pulled with ctr image pull and through CRI, which 1.x never verifies', async () => {
          const daemon = await startWatchingDaemon(ctd, 'remove');
          const cri = criClient(ctd.address);
          try {
            const tag = line.replace('.', '');
            await image(`prod/ctr-${tag}`, false);
            await image(`prod/cri-${tag}`, false);
            const ctrName = `${host}/prod/ctr-${tag}:v1`;
            const criName = `${host}/prod/cri-${tag}:v1`;
            const pulled = await ctd.ctr(['images', 'pull', '--plain-http', ctrName]);
            assert.equal(pulled.code, 0, `containerd ${line} pulls without asking anyone: ${pulled.stderr}`);
            await cri.pullImage(criName);
            await waitFor(async () => !(await imageNames(ctd)).includes(ctrName), 'the image pulled with ctr to be removed', 2000);
            await waitFor(async () => (await cri.imageStatus(criName)) === null, 'the image CRI pulled to be removed', 2000);
            await waitFor(() => caught(daemon, ctrName).length > 0 && caught(daemon, criName).length > 0, 'the audit lines', 1000);
            assert.equal(caught(daemon, ctrName).at(-1)?.['action'], 'removed');
            assert.equal(caught(daemon, criName).at(-1)?.['action'], 'removed');
          } finally {
            cri.close();
            await daemon.stop();
          }
        });
      }

      it('reports an unsigned imported image within 2 s (audit line, status), and keeps it with onUnverified: report', async () => {
        const daemon = await startWatchingDaemon(ctd, 'report');
        try {
          const img = await image(`prod/report-${line.replace('.', '')}`, false);
          const name = `${host}/prod/report-${line.replace('.', '')}:v1`;
          const imported = await ctd.ctr(['images', 'import', await archive(img, `prod/report-${line.replace('.', '')}`, name)]);
          assert.equal(imported.code, 0, imported.stderr);
          const started = Date.now();
          await waitFor(() => auditFor(daemon, name, 'image-event').length > 0, 'the image-event audit line', 2000);
          const lineRec = auditFor(daemon, name, 'image-event')[0]!;
          assert.ok(Date.now() - started <= 2000);
          assert.equal(lineRec['decision'], 'reject');
          assert.equal(lineRec['code'], 'SIGNATURE_NOT_FOUND');
          assert.equal(lineRec['namespace'], 'default');
          assert.equal(lineRec['action'], 'reported');
          assert.equal(lineRec['digest'], img.digest);
          assert.ok((await imageNames(ctd)).includes(name), 'report must not remove the image');
          const status = await run(process.execPath, [SIGNET, 'status', '--socket', daemon.socket]);
          assert.match(status.stdout, /containerd\s+connected/);
          assert.match(status.stdout, new RegExp(`default/${name.replace(/[.]/g, '\\.')}`));
        } finally {
          await daemon.stop();
        }
      });

      it('removes an unsigned imported image within 2 s with onUnverified: remove, and keeps a signed one', async () => {
        const daemon = await startWatchingDaemon(ctd, 'remove');
        try {
          const tag = line.replace('.', '');
          const unsigned = await image(`prod/remove-${tag}`, false);
          const signed = await image(`prod/kept-${tag}`, true);
          const unsignedName = `${host}/prod/remove-${tag}:v1`;
          const signedName = `${host}/prod/kept-${tag}:v1`;
          for (const [img, r, n] of [
            [unsigned, `prod/remove-${tag}`, unsignedName],
            [signed, `prod/kept-${tag}`, signedName],
          ] as const) {
            const imported = await ctd.ctr(['images', 'import', await archive(img, r, n)]);
            assert.equal(imported.code, 0, imported.stderr);
          }
          await waitFor(async () => !(await imageNames(ctd)).includes(unsignedName), 'the unsigned image to be removed', 2000);
          await waitFor(() => caught(daemon, signedName).length > 0, 'the decision on the signed image', 2000);
          // The audit file is written asynchronously: the line may follow the removal by a moment.
          await waitFor(() => caught(daemon, unsignedName).length > 0, 'the audit line of the removal', 1000);
          const removed = caught(daemon, unsignedName).at(-1)!;
          assert.equal(removed['action'], 'removed');
          assert.equal(removed['decision'], 'reject');
          const kept = caught(daemon, signedName).at(-1)!;
          assert.equal(kept['decision'], 'accept');
          assert.equal(kept['action'], 'none');
          assert.ok((await imageNames(ctd)).includes(signedName), 'the signed image stays');
          assert.match(daemon.log(), /removed an image the policy refuses/);
        } finally {
          await daemon.stop();
        }
      });
    });
  }

  describe('containerd 2.x: the paths that skip the verifier', () => {
    let ctd: ContainerdHandle;
    let daemon: DaemonHandle;
    let certs: string;
    before(async () => {
      certs = writeRegistryHosts(mkdtempSync(join(tmpdir(), 'signet-certs-')), host);
      // max_concurrent_downloads other than 3 sends CRI down the local pull path, past the verifier.
      ctd = await startContainerd({ line: '2.x', criConfig: 'max_concurrent_downloads = 2', registryConfigPath: certs });
      daemon = await startWatchingDaemon(ctd, 'remove');
    });
    after(async () => {
      await daemon?.stop();
      await ctd?.stop();
      rmSync(certs, { recursive: true, force: true });
    });

    it('removes an unsigned image pulled with ctr image pull --local', async () => {
      await image('prod/local', false);
      const name = `${host}/prod/local:v1`;
      const pulled = await ctd.ctr(['images', 'pull', '--local', '--plain-http', name]);
      assert.equal(pulled.code, 0, `ctr pull --local does not run the verifier, so it succeeds: ${pulled.stderr}`);
      await waitFor(() => caught(daemon, name).length > 0, 'the decision on the image pulled with --local', 2000);
      await waitFor(async () => !(await imageNames(ctd)).includes(name), 'the image pulled with --local to be removed', 2000);
      assert.equal(caught(daemon, name).at(-1)?.['action'], 'removed', JSON.stringify(daemon.audit().slice(-3)));
    });

    it('removes an unsigned image CRI pulled through its local-pull fallback, with its digest and ID records', async () => {
      const img = await image('prod/cri-fallback', false);
      const name = `${host}/prod/cri-fallback:v1`;
      const cri = criClient(ctd.address);
      try {
        await cri.pullImage(name);
        assert.match(ctd.log(), /Falling back to local image pull mode/);
        await waitFor(async () => (await cri.imageStatus(name)) === null, 'CRI to no longer know the image', 2000);
        await waitFor(() => daemon.audit().some((l) => l['name'] === img.config.digest && l['action'] === 'removed'), 'the audit line of the ID record', 1000);
        const records = await imageNames(ctd, 'k8s.io');
        assert.deepEqual(
          records.filter((r) => r.includes('cri-fallback') || r === img.config.digest),
          [],
          'no record of the image is left',
        );
        const lines = daemon.audit().filter((l) => l['event'] === 'image-event' && l['digest'] === img.digest && l['namespace'] === 'k8s.io');
        assert.ok(
          lines.some((l) => l['name'] === img.config.digest && l['action'] === 'removed'),
          'the ID record is removed too',
        );
      } finally {
        cri.close();
      }
    });
  });

  describe('images already on the node', () => {
    let ctd: ContainerdHandle;
    before(async () => {
      ctd = await startContainerd({ line: '2.x' });
    });
    after(async () => ctd?.stop());

    it('decides them again when the policy changes (a key revoked today), and signet node audit names them', async () => {
      const img = await image('prod/revoked', true);
      const name = `${host}/prod/revoked:v1`;
      assert.equal((await ctd.ctr(['images', 'import', await archive(img, 'prod/revoked', name)])).code, 0);
      const policyDir = mkdtempSync(join(tmpdir(), 'signet-policy-'));
      try {
        writeFileSync(join(policyDir, 'policy.json'), JSON.stringify(policy()));
        const audit = (): Promise<{ code: number; stdout: string; stderr: string }> =>
          run(process.execPath, [
            SIGNET,
            'node',
            'audit',
            '--containerd',
            ctd.address,
            '--policy-dir',
            policyDir,
            '--insecure-registry',
            host,
            '--output',
            'json',
          ]).then(
            (r) => ({ code: 0, ...r }),
            (e: { code: number; stdout: string; stderr: string }) => e,
          );
        const before = await audit();
        assert.equal(before.code, 0, before.stderr);
        const ok = JSON.parse(before.stdout) as { results: Array<Record<string, unknown>> };
        assert.deepEqual(
          ok.results.filter((r) => r['name'] === name).map((r) => r['decision']),
          ['accept'],
        );

        const daemon = await startWatchingDaemon(ctd, 'report');
        try {
          await waitFor(() => auditFor(daemon, name, 'reverify').some((l) => l['decision'] === 'accept'), 'the start-up reverification', 5000);
          daemon.writePolicy('policy.yaml', policy({ revoked: true }));
          await waitFor(() => auditFor(daemon, name, 'reverify').some((l) => l['decision'] === 'reject'), 'the reverification after the policy change', 5000);
          const refused = auditFor(daemon, name, 'reverify').find((l) => l['decision'] === 'reject')!;
          assert.match(String(refused['reason']), /revoked/);
          assert.equal(refused['action'], 'reported');
          const status = await run(process.execPath, [SIGNET, 'status', '--socket', daemon.socket]);
          assert.match(status.stdout, /reverify\s+\S+ \(policy\): \d+ images, 1 refused/);
        } finally {
          await daemon.stop();
        }

        writeFileSync(join(policyDir, 'policy.json'), JSON.stringify(policy({ revoked: true })));
        const after = await audit();
        assert.equal(after.code, 1, 'node audit exits 1 when an image is refused');
        const bad = JSON.parse(after.stdout) as { refused: number; results: Array<Record<string, unknown>> };
        assert.equal(bad.refused, 1);
        assert.match(String(bad.results.find((r) => r['name'] === name)!['reason']), /revoked/);
        const text = await run(process.execPath, [
          SIGNET,
          'node',
          'audit',
          '--containerd',
          ctd.address,
          '--policy-dir',
          policyDir,
          '--insecure-registry',
          host,
        ]).catch((e: { stdout: string }) => e);
        assert.match(text.stdout, /NAMESPACE\s+IMAGE\s+DIGEST\s+DECISION/);
        assert.match(text.stdout, /1 images, 0 accepted, 1 refused/);
      } finally {
        rmSync(policyDir, { recursive: true, force: true });
      }
    });
  });
});
