/**
 * Sigstore bundles with Rekor v2 entries through the containerd contract: bundles made by the fake
 * Fulcio CA, Rekor v2 log and timestamp authority (test/helpers/sigstore-fake.ts) pushed as OCI 1.1
 * referrers to a real docker-registry, a real signetd, and the verifier spawned as containerd runs it.
 * Keyless (a `sigstore` key) and key-based with an HSM key on SoftHSM2 (`tlog: required` against the
 * trusted root): each valid bundle is accepted; a changed checkpoint, proof hash or timestamp, a
 * checkpoint of another origin, a log the trusted root does not name and a bundle without timestamp are
 * refused with signet's reason.
 */
import assert from 'node:assert/strict';
import { closeAllModules } from '../../src/keys/pkcs11/module.js';
import { Pkcs11Signer } from '../../src/keys/pkcs11/signer.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pushBundleReferrer } from '../../src/signing/bundle-sign.js';
import { startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { pushImage, type PushedImage } from '../helpers/images.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { createFakeRekorV2 } from '../helpers/rekor-v2-fake.js';
import { createFakeSigstore, type RekorV2BundleOptions } from '../helpers/sigstore-fake.js';
import { createToken, SOFTHSM_MODULE, softhsmConf, type TestToken } from '../helpers/softhsm.js';
import { runVerifier } from '../helpers/verifier.js';

type Doc = {
  verificationMaterial: {
    tlogEntries: Array<{ inclusionProof: { hashes: string[]; checkpoint: { envelope: string } } }>;
    timestampVerificationData: { rfc3161Timestamps: Array<{ signedTimestamp: string }> };
  };
};
const flipBase64 = (b64: string, i: number) => {
  const b = Buffer.from(b64, 'base64');
  b[i] = b[i]! ^ 0x01;
  return b.toString('base64');
};

describe('sigstore bundles with Rekor v2 entries through the containerd contract', function () {
  this.timeout(120_000);
  const fake = createFakeSigstore('release@example.com', 'https://token.actions.example.com');
  let registry: RegistryHandle;
  let client: RegistryClient;
  let daemon: DaemonHandle;
  let token: TestToken;
  let host: string;
  const images = new Map<string, PushedImage>();
  const platforms = ['amd64', 'arm64', 's390x', 'ppc64le', '386', 'riscv64', 'mips64le', 'arm'];
  let next = 0;

  const verify = (repository: string, tag: string) => {
    const image = images.get(`${repository}:${tag}`)!;
    return runVerifier({
      socket: daemon.socket,
      name: `${host}/${repository}:${tag}`,
      descriptor: { mediaType: image.mediaType, digest: image.digest, size: image.size },
    });
  };

  before(async () => {
    registry = await startRegistry();
    host = registry.host;
    client = new RegistryClient({ insecureRegistries: [host], retries: 0 });
    token = createToken('rekor-v2-contract');
    token.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'release', '--id', '01']);
    const hsm = await Pkcs11Signer.open(`${token.uri};object=release`, { pin: token.pin });
    // The image digest is only known once pushed: each bundle is made for its image.
    const bundleFor = async (repository: string, tag: string, options: Omit<RekorV2BundleOptions, 'content'>, change?: (doc: Doc) => void) => {
      const repo = { registry: host, repository };
      const image = await pushImage(client, repo, tag, { architecture: platforms[next++ % platforms.length]!, os: 'linux' });
      images.set(`${repository}:${tag}`, image);
      const bundle = await fake.rekorV2Bundle({ ...options, content: { dsse: { repository: `${host}/${repository}`, digest: image.digest } } });
      let blob = bundle;
      if (change) {
        const doc = JSON.parse(bundle.toString('utf8')) as Doc;
        change(doc);
        blob = Buffer.from(JSON.stringify(doc));
      }
      await pushBundleReferrer(client, repo, { mediaType: image.mediaType, digest: image.digest, size: image.size }, blob);
    };
    await bundleFor('rekor2/keyless', 'good', {});
    await bundleFor('rekor2/keyless', 'dsse-entry', { entryKind: 'dsse' });
    await bundleFor('rekor2/keyless', 'checkpoint', {}, (d) => {
      const cp = d.verificationMaterial.tlogEntries[0]!.inclusionProof.checkpoint;
      cp.envelope = cp.envelope.replace(/^(\S+)\n7\n/, '$1\n6\n');
    });
    await bundleFor('rekor2/keyless', 'proof-hash', {}, (d) => {
      const hashes = d.verificationMaterial.tlogEntries[0]!.inclusionProof.hashes;
      hashes[1] = flipBase64(hashes[1]!, 7);
    });
    await bundleFor('rekor2/keyless', 'timestamp', {}, (d) => {
      const ts = d.verificationMaterial.timestampVerificationData.rfc3161Timestamps[0]!;
      ts.signedTimestamp = flipBase64(ts.signedTimestamp, Buffer.from(ts.signedTimestamp, 'base64').length - 20);
    });
    await bundleFor('rekor2/keyless', 'origin', { checkpointOrigin: 'log2026-9.rekor.signet.test' });
    await bundleFor('rekor2/keyless', 'foreign-log', { log: createFakeRekorV2(fake.rekorV2.origin) });
    await bundleFor('rekor2/keyless', 'no-timestamp', { timestamp: false });
    await bundleFor('rekor2/keyless', 'expired', { signer: 'expired-certificate' });
    await bundleFor('rekor2/hsm', 'good', { signer: hsm });
    await bundleFor('rekor2/hsm', 'checkpoint-signature', { signer: hsm }, (d) => {
      const cp = d.verificationMaterial.tlogEntries[0]!.inclusionProof.checkpoint;
      const [note, line] = cp.envelope.split('\n\n') as [string, string];
      const [dash, name, sig] = line.trimEnd().split(' ') as [string, string, string];
      cp.envelope = `${note}\n\n${dash} ${name} ${flipBase64(sig, 30)}\n`;
    });
    await bundleFor('rekor2/hsm', 'no-timestamp', { signer: hsm, timestamp: false });
    await hsm.close?.();
    closeAllModules();
    daemon = await startDaemon({
      insecureRegistries: [host],
      env: { SOFTHSM2_CONF: softhsmConf() },
      extraConfig: `pkcs11: { module: ${SOFTHSM_MODULE} }`,
      policy: {
        apiVersion: 'signet/v1',
        keys: {
          ci: { sigstore: { trustedRoot: fake.trustedRootPath, issuer: fake.issuer, subject: fake.identity } },
          hsm: { pkcs11: `${token.uri};object=release;type=public`, tlog: 'required', trustedRoot: fake.trustedRootPath },
        },
        scopes: {
          [`${host}/rekor2/keyless`]: { action: 'verify', signatures: { keys: ['ci'] } },
          [`${host}/rekor2/hsm`]: { action: 'verify', signatures: { keys: ['hsm'] } },
        },
      },
    });
    await waitFor(() => daemon.log().includes('policy loaded'), 'policy', 15_000);
  });
  after(async () => {
    await daemon?.stop();
    await registry?.stop();
    token?.delete();
  });

  it('accepts keyless bundles (hashedrekord and dsse 0.0.2 entries) and an HSM-signed bundle whose key requires the log', async () => {
    for (const [repository, tag, key] of [
      ['rekor2/keyless', 'good', 'ci'],
      ['rekor2/keyless', 'dsse-entry', 'ci'],
      ['rekor2/hsm', 'good', 'hsm'],
    ] as const) {
      const r = await verify(repository, tag);
      assert.equal(r.code, 0, `${repository}:${tag}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, new RegExp(`signed by ${key}`));
    }
  });

  it('refuses each altered or unvouched bundle, saying why', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['rekor2/keyless', 'checkpoint', /its checkpoint \(tree size 6\) is not the tree of its inclusion proof \(tree size 7\)/],
      ['rekor2/keyless', 'proof-hash', /inclusion proof or its checkpoint does not verify/],
      ['rekor2/keyless', 'timestamp', /TIMESTAMP_ERROR/],
      ['rekor2/keyless', 'origin', /checkpoint is for the log "log2026-9\.rekor\.signet\.test", not "log2026-1\.rekor\.signet\.test"/],
      ['rekor2/keyless', 'foreign-log', /not a log of the trusted root/],
      ['rekor2/keyless', 'no-timestamp', /no time evidence: its Rekor v2 entries carry no integrated time/],
      ['rekor2/keyless', 'expired', /CERTIFICATE_ERROR/],
      ['rekor2/hsm', 'checkpoint-signature', /checkpoint is not signed by the log/],
      ['rekor2/hsm', 'no-timestamp', /no time evidence/],
    ];
    for (const [repository, tag, reason] of cases) {
      const r = await verify(repository, tag);
      assert.equal(r.code, 1, `${repository}:${tag} was not refused: ${r.stdout}`);
      assert.match(r.stdout, reason, `${repository}:${tag}: ${r.stdout}`);
    }
  });
});
