/**
 * End to end on real containerd 2.x: an image named after a registry this node cannot reach is pulled
 * through a hosts.toml mirror (registry.config_path for CRI, --hosts-dir for ctr), and signetd, reading
 * the same hosts.toml folder, finds its signatures on the mirror. The upstream is a closed port on
 * 127.0.0.1: any request signetd sent there would fail, so an acceptance proves the mirror answered.
 */
import assert from 'node:assert/strict';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RegistryClient, type RepositoryRef } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startContainerd, type ContainerdHandle } from '../helpers/containerd.js';
import { criClient, type CriClient, type CriError } from '../helpers/cri.js';
import { startDaemon, VERIFIER, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { requireDebianParts } from '../helpers/debian-parts.js';
import { makeTestKey } from '../helpers/keys.js';
import { freePort, startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { pushRunnableImage } from '../helpers/runnable-image.js';

describe('containerd 2.x pulls through a hosts.toml mirror; signetd verifies against the mirror', function () {
  this.timeout(90_000);
  let mirror: RegistryHandle;
  let upstream: string;
  let certs: string;
  let verifierDir: string;
  let daemon: DaemonHandle;
  let containerd: ContainerdHandle;
  let cri: CriClient;
  let mirrorClient: RegistryClient;
  const release = makeTestKey('ecdsa-p256');

  /** The repository on the mirror, as the mirror stores it (same path as upstream). */
  const onMirror = (name: string): RepositoryRef => ({ registry: mirror.host, repository: name });

  before(async function () {
    requireDebianParts();
    accessSync(VERIFIER, constants.X_OK);
    mirror = await startRegistry();
    // Nothing listens here: the registry the images are named after is unreachable from this node.
    upstream = `127.0.0.1:${await freePort()}`;
    certs = mkdtempSync('/tmp/signet-certs-');
    const folder = join(certs, upstream);
    mkdirSync(folder);
    writeFileSync(
      join(folder, 'hosts.toml'),
      [`server = "http://${upstream}"`, '', `[host."http://${mirror.host}"]`, '  capabilities = ["pull", "resolve"]', ''].join('\n'),
    );
    mirrorClient = new RegistryClient({ insecureRegistries: [mirror.host], retries: 0 });

    daemon = await startDaemon({ extraConfig: `registryConfigPath: ${certs}` });
    release.writePublic(join(daemon.dir, 'release.pub'));
    daemon.writePolicy('policy.yaml', {
      apiVersion: 'signet/v1',
      keys: { release: { file: join(daemon.dir, 'release.pub') } },
      default: { action: 'reject' },
      scopes: { [`${upstream}/prod`]: { action: 'verify', signatures: { keys: ['release'] } } },
    });
    await waitFor(() => daemon.log().includes('policy loaded'), 'the first policy');
    verifierDir = mkdtempSync('/tmp/sv-bin-');
    symlinkSync(VERIFIER, join(verifierDir, 'signet-verifier'));
    containerd = await startContainerd({ line: '2.x', verifierDir, registryConfigPath: certs, env: { SIGNET_SOCKET: daemon.socket } });
    assert.match(containerd.version, /^2\./);
    cri = criClient(containerd.address);
  });
  after(async () => {
    cri?.close();
    await containerd?.stop();
    await daemon?.stop();
    await mirror?.stop();
    if (verifierDir) rmSync(verifierDir, { recursive: true, force: true });
    if (certs) rmSync(certs, { recursive: true, force: true });
  });

  it('ctr pull --hosts-dir: a signed image on the mirror is pulled, signetd found its signature there', async () => {
    const img = await pushRunnableImage(mirrorClient, onMirror('prod/app'), { tag: 'v1' });
    await signImageCosign(mirrorClient, onMirror('prod/app'), img.digest, release.signer, { dockerReference: `${upstream}/prod/app` });
    const ref = `${upstream}/prod/app:v1`;
    const res = await containerd.ctr(['image', 'pull', '--hosts-dir', certs, ref], { timeoutMs: 30_000 });
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    await waitFor(() => daemon.audit().some((l) => l['digest'] === img.digest), 'the audit line', 3000);
    const line = daemon.audit().find((l) => l['digest'] === img.digest)!;
    assert.equal(line['decision'], 'accept', JSON.stringify(line));
    assert.equal(line['name'], ref);
  });

  it('ctr pull --hosts-dir: an unsigned image on the mirror is refused (no signatures found), nothing stored', async () => {
    await pushRunnableImage(mirrorClient, onMirror('prod/unsigned'), { tag: 'v1', file: { path: 'etc/id', content: 'unsigned-on-mirror' } });
    const ref = `${upstream}/prod/unsigned:v1`;
    const res = await containerd.ctr(['image', 'pull', '--hosts-dir', certs, ref], { timeoutMs: 30_000 });
    assert.notEqual(res.code, 0, res.stdout);
    assert.match(res.stderr, /verifier signet-verifier rejected image/);
    assert.match(res.stderr, /no signatures found/);
  });

  it('CRI PullImage (registry.config_path): a signed image on the mirror is pulled; a signature by another key is refused', async () => {
    const img = await pushRunnableImage(mirrorClient, onMirror('prod/cri'), { tag: 'v1', file: { path: 'etc/id', content: 'cri-on-mirror' } });
    await signImageCosign(mirrorClient, onMirror('prod/cri'), img.digest, release.signer, { dockerReference: `${upstream}/prod/cri` });
    const id = await cri.pullImage(`${upstream}/prod/cri:v1`);
    assert.ok(id.length > 0);

    const stranger = makeTestKey('ecdsa-p256');
    const other = await pushRunnableImage(mirrorClient, onMirror('prod/cri-stranger'), { tag: 'v1', file: { path: 'etc/id', content: 'stranger-on-mirror' } });
    await signImageCosign(mirrorClient, onMirror('prod/cri-stranger'), other.digest, stranger.signer, { dockerReference: `${upstream}/prod/cri-stranger` });
    let refused: CriError | undefined;
    try {
      await cri.pullImage(`${upstream}/prod/cri-stranger:v1`);
    } catch (err) {
      refused = err as CriError;
    }
    assert.ok(refused, 'a signature by a key the policy does not name must not let the image in');
    assert.match(refused.details ?? refused.message, /rejected/);
  });
});
