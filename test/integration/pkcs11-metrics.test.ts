/**
 * PKCS#11 session-pool metrics on SoftHSM2 (issue 14): sessions open, in use and waiting per token, and
 * failed Cryptoki calls by function and CKR code. In process against the pool itself (all 8 sessions
 * held, a ninth caller waiting), and end to end on the real signetd's /metrics endpoint after on-token
 * verifications and a key whose PIN the token refuses.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pkcs11PoolStats } from '../../src/keys/pkcs11/pool-stats.js';
import { closeAllModules, moduleFor } from '../../src/keys/pkcs11/module.js';
import { Pkcs11Signer } from '../../src/keys/pkcs11/signer.js';
import { parsePkcs11Uri } from '../../src/keys/pkcs11/uri.js';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { verifyClient } from '../helpers/grpc-verify.js';
import { pushImage } from '../helpers/images.js';
import { metricsText, metricSample } from '../helpers/metrics.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { createToken, SOFTHSM_MODULE, softhsmConf, type TestToken } from '../helpers/softhsm.js';

describe('PKCS#11 session-pool metrics on SoftHSM2', function () {
  this.timeout(120_000);
  let token: TestToken;
  let other: TestToken;

  before(() => {
    softhsmConf();
    // Tokens are created before the module is first initialised here: SoftHSM lists tokens at C_Initialize.
    other = createToken('pool-pin');
    token = createToken('pool');
    token.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'release', '--id', '01']);
  });
  after(() => closeAllModules());

  it('in process: all 8 sessions of a token held and a ninth caller waiting, then all idle again', async () => {
    const module = moduleFor(SOFTHSM_MODULE);
    const uri = parsePkcs11Uri(token.uri);
    const gauge = () => pkcs11PoolStats.pools().find((p) => p.token === token.label && p.module === SOFTHSM_MODULE);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const started: number[] = [];
    const calls = Array.from({ length: 9 }, (_, i) =>
      module.withSession(uri, undefined, 'test', async () => {
        started.push(i);
        await held;
      }),
    );
    await waitFor(() => started.length === 8, 'eight sessions in use');
    assert.deepEqual(gauge(), { module: SOFTHSM_MODULE, token: token.label, open: 8, inUse: 8, waiters: 1 });
    release();
    await Promise.all(calls);
    assert.deepEqual(gauge(), { module: SOFTHSM_MODULE, token: token.label, open: 8, inUse: 0, waiters: 0 });
  });

  it('in process: a refused PIN counts as C_Login CKR_PIN_INCORRECT', async () => {
    const before = pkcs11PoolStats.errors().find((e) => e.operation === 'C_Login' && e.code === 'CKR_PIN_INCORRECT')?.count ?? 0;
    await assert.rejects(Pkcs11Signer.open(`${other.uri};object=x`, { module: SOFTHSM_MODULE, pin: '000000' }), /PIN was refused/);
    const after = pkcs11PoolStats.errors().find((e) => e.operation === 'C_Login' && e.code === 'CKR_PIN_INCORRECT')?.count ?? 0;
    assert.equal(after - before, 1);
  });

  describe('signetd', () => {
    let registry: RegistryHandle;
    let daemon: DaemonHandle;
    let metricsDir: string;
    const socket = (): string => join(metricsDir, 'metrics.sock');

    before(async () => {
      registry = await startRegistry();
      metricsDir = mkdtempSync(join(tmpdir(), 'signet-pkcs11-metrics-'));
    });
    after(async () => {
      await daemon?.stop();
      await registry?.stop();
      rmSync(metricsDir, { recursive: true, force: true });
    });

    it('/metrics: sessions of the token used for on-token verification, none in use after, and the refused PIN of another key', async () => {
      const client = new RegistryClient({ insecureRegistries: [registry.host] });
      const repo = { registry: registry.host, repository: 'hsm/app' };
      const image = await pushImage(client, repo, 'v1');
      const signer = await Pkcs11Signer.open(`${token.uri};object=release`, { module: SOFTHSM_MODULE, pin: token.pin });
      await signImageCosign(client, repo, image.digest, signer, { dockerReference: `${registry.host}/hsm/app` });
      closeAllModules();
      const locked = createToken('pool-wrong-pin');
      locked.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'other', '--id', '02']);
      daemon = await startDaemon({
        insecureRegistries: [registry.host],
        env: { SOFTHSM2_CONF: softhsmConf() },
        extraConfig: `metrics: { listen: ${socket()} }\ncacheTTL: 0s\nnegativeCacheTTL: 0s`,
        policy: {
          apiVersion: 'signet/v1',
          keys: {
            release: { pkcs11: `${token.uri};object=release;type=public`, verifyOn: 'token' },
            other: { pkcs11: `${locked.uri};object=other;type=public?pin-value=000000` },
          },
          scopes: { [`${registry.host}/hsm`]: { action: 'verify', formats: ['cosign'], signatures: { keys: ['release'] } } },
        },
      });
      await waitFor(() => daemon.log().includes('policy loaded'), 'policy', 10_000);
      const grpc = verifyClient(daemon.socket, 4);
      try {
        const answers = await Promise.all(
          Array.from({ length: 40 }, () => grpc.verify(`${registry.host}/hsm/app:v1`, { mediaType: image.mediaType, digest: image.digest, size: image.size })),
        );
        assert.ok(
          answers.every((a) => a.ok),
          JSON.stringify(answers.find((a) => !a.ok)),
        );
      } finally {
        grpc.close();
      }
      const text = await metricsText(socket());
      const labels = `module="${SOFTHSM_MODULE}",token="${token.label}"`;
      const open = metricSample(text, `signet_pkcs11_sessions_open{${labels}}`);
      assert.ok(
        open !== undefined && open >= 1 && open <= 8,
        `${open} sessions open\n${text
          .split('\n')
          .filter((l) => l.includes('pkcs11'))
          .join('\n')}`,
      );
      assert.equal(metricSample(text, `signet_pkcs11_sessions_in_use{${labels}}`), 0);
      assert.equal(metricSample(text, `signet_pkcs11_session_waiters{${labels}}`), 0);
      assert.ok((metricSample(text, 'signet_pkcs11_errors_total{operation="C_Login",code="CKR_PIN_INCORRECT"}') ?? 0) >= 1, text);
      assert.match(text, /^# TYPE signet_pkcs11_errors_total counter$/m);
    });
  });
});
