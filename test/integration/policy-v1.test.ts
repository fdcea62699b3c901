/**
 * Trust policy v1 through the containerd contract: k-of-n thresholds, groups that must all hold,
 * rejectIfSignedBy, key windows and revocation, deny lists, warn mode, expiry warnings.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { appendArtifactLayer } from '../../src/signing/artifact-manifest.js';
import { createVulnAttestation } from '../../src/attest/vuln.js';
import type { ScanReport } from '../../src/scan/report.js';
import { SIGNET, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { pushImage, type PushedImage } from '../helpers/images.js';
import { makeTestKey, type TestKey } from '../helpers/keys.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { runVerifier } from '../helpers/verifier.js';

const DAY = 86_400_000;
const iso = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString().replace(/\.\d+Z$/, 'Z');

describe('trust policy v1 through the containerd contract', function () {
  this.timeout(90_000);
  let registry: RegistryHandle;
  let daemon: DaemonHandle;
  let client: RegistryClient;
  let host: string;
  const keys: Record<string, TestKey> = {};
  const names = ['a', 'b', 'c', 'release', 'security', 'compromised', 'expired', 'future', 'revoked', 'expiring'];
  let denied: PushedImage;
  let scopeDenied: PushedImage;

  before(async () => {
    registry = await startRegistry();
    host = registry.host;
    client = new RegistryClient({ insecureRegistries: [host], retries: 0 });
    daemon = await startDaemon({ insecureRegistries: [host] });
    for (const n of names) {
      keys[n] = makeTestKey(n === 'b' ? 'ed25519' : n === 'c' ? 'rsa' : 'ecdsa-p256');
      keys[n]!.writePublic(join(daemon.dir, `${n}.pub`));
    }
    denied = await pushImage(client, { registry: host, repository: 'open/denied' }, 'v1');
    scopeDenied = await pushImage(client, { registry: host, repository: 'open/scope-denied' }, 'v1');
    const key = (n: string, extra: Record<string, unknown> = {}) => ({ file: join(daemon.dir, `${n}.pub`), ...extra });
    daemon.writePolicy('keys.yaml', {
      apiVersion: 'signet/v1',
      keys: {
        a: key('a'),
        b: key('b'),
        c: key('c'),
        release: key('release'),
        security: key('security'),
        compromised: key('compromised'),
        expired: key('expired', { notAfter: iso(-DAY) }),
        future: key('future', { notBefore: iso(10 * DAY) }),
        revoked: key('revoked', { revoked: true }),
        expiring: key('expiring', { notBefore: iso(-10 * DAY), notAfter: iso(3 * DAY), expiryWarning: '7d' }),
      },
    });
    daemon.writePolicy('scopes.yaml', {
      apiVersion: 'signet/v1',
      deny: { digests: [denied.digest] },
      default: { action: 'reject' },
      scopes: {
        [`${host}/kofn`]: { action: 'verify', signatures: { keys: ['a', 'b', 'c'], threshold: 2 } },
        [`${host}/groups`]: { action: 'verify', signatures: [{ keys: ['release'] }, { keys: ['security'] }] },
        [`${host}/guarded`]: { action: 'verify', signatures: { keys: ['release'] }, rejectIfSignedBy: ['compromised'] },
        [`${host}/lifecycle`]: { action: 'verify', signatures: { keys: ['expired', 'future', 'revoked', 'expiring'] } },
        [`${host}/open`]: { action: 'accept', deny: { digests: [scopeDenied.digest] } },
        [`${host}/trial`]: { action: 'verify', mode: 'warn', signatures: { keys: ['release'] } },
        [`${host}/scanned`]: {
          action: 'verify',
          signatures: { keys: ['release'] },
          attestations: [
            {
              predicateType: 'https://cosign.sigstore.dev/attestation/vuln/v1',
              keys: ['security'],
              maxAge: '24h',
              maxSeverity: 'high',
              ignore: ['CVE-2024-0001'],
            },
          ],
        },
      },
    });
    await waitFor(() => daemon.log().includes('"keys":10'), 'the policy with all keys');
  });
  after(async () => {
    await daemon?.stop();
    await registry?.stop();
  });

  async function image(repo: string, signers: string[]) {
    const r = { registry: host, repository: repo };
    const img = await pushImage(client, r, 'v1');
    for (const s of signers) await signImageCosign(client, r, img.digest, keys[s]!.signer, { dockerReference: `${host}/${repo}` });
    return img;
  }
  const verify = (repo: string, img: PushedImage) =>
    runVerifier({ socket: daemon.socket, name: `${host}/${repo}:v1`, descriptor: { mediaType: img.mediaType, digest: img.digest, size: img.size } });
  const auditOf = (img: PushedImage) =>
    daemon
      .audit()
      .filter((l) => l['digest'] === img.digest)
      .at(-1)!;

  it('k-of-n: one of three keys is not enough for a threshold of 2; two distinct keys are', async () => {
    const one = await image('kofn/one', ['a', 'a']);
    const r1 = await verify('kofn/one', one);
    assert.equal(r1.code, 1);
    assert.match(r1.stdout, /needs valid signatures by 2 of a, b, c \(only a valid\)/);
    const two = await image('kofn/two', ['a', 'c']);
    const r2 = await verify('kofn/two', two);
    assert.equal(r2.code, 0, r2.stdout);
    assert.match(r2.stdout, /signed by a, c/);
  });

  it('groups: release AND security must both sign', async () => {
    const half = await image('groups/half', ['release']);
    const r1 = await verify('groups/half', half);
    assert.equal(r1.code, 1);
    assert.match(r1.stdout, /1 of 2 requirements not met: needs a valid signature by security/);
    const both = await image('groups/both', ['release', 'security']);
    assert.equal((await verify('groups/both', both)).code, 0);
  });

  it('rejectIfSignedBy: a signature by a compromised key refuses the image although another is valid', async () => {
    const img = await image('guarded/app', ['release', 'compromised']);
    const r = await verify('guarded/app', img);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /signed by compromised, which scope .* refuses \(rejectIfSignedBy\)/);
    assert.equal(auditOf(img)['code'], 'SIGNED_BY_REJECTED_KEY');
    assert.equal((await verify('guarded/clean', await image('guarded/clean', ['release']))).code, 0);
  });

  it('key windows and revocation: signatures by expired, not-yet-valid and revoked keys do not count, each with its reason', async () => {
    for (const [k, re, code] of [
      ['expired', /key "expired" expired on/, 'KEY_EXPIRED'],
      ['future', /key "future" is not valid before/, 'KEY_NOT_YET_VALID'],
      ['revoked', /key "revoked" is revoked/, 'KEY_REVOKED'],
    ] as const) {
      const img = await image(`lifecycle/${k}`, [k]);
      const r = await verify(`lifecycle/${k}`, img);
      assert.equal(r.code, 1, `${k}: ${r.stdout}`);
      assert.match(r.stdout, re);
      assert.equal(auditOf(img)['code'], code);
    }
  });

  it('a key near the end of its window still counts, with a warning in the audit line and in Status', async () => {
    const img = await image('lifecycle/expiring', ['expiring']);
    const r = await verify('lifecycle/expiring', img);
    assert.equal(r.code, 0, r.stdout);
    assert.match(String((auditOf(img)['warnings'] as string[])[0]), /key "expiring" expires on .* \(in [23] days\)/);
    const status = spawnSync(process.execPath, [SIGNET, 'status', '--socket', daemon.socket], { encoding: 'utf8' });
    assert.match(status.stdout, /warning: key "expiring" expires on/);
    assert.match(status.stdout, /warning: key "expired" expired on/);
  });

  it('deny lists win over everything: policy-wide and per scope, even in an accept scope', async () => {
    const r1 = await verify('open/denied', denied);
    assert.equal(r1.code, 1);
    assert.match(r1.stdout, /on the policy's deny list/);
    const r2 = await verify('open/scope-denied', scopeDenied);
    assert.equal(r2.code, 1);
    assert.match(r2.stdout, /on the deny list of scope/);
    const other = await pushImage(client, { registry: host, repository: 'open/fine' }, 'v1');
    assert.equal((await verify('open/fine', other)).code, 0);
  });

  it('warn mode: the refusal is computed and recorded as warn, and the image is allowed', async () => {
    const img = await image('trial/app', []);
    const r = await verify('trial/app', img);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /^warn .*would have rejected .*no signatures found/);
    const line = auditOf(img);
    assert.equal(line['decision'], 'warn');
    assert.equal(line['code'], 'SIGNATURE_NOT_FOUND');
  });

  describe('attestation requirements (scan attestations)', () => {
    const report = (severities: Array<'low' | 'medium' | 'high' | 'critical'>, ids?: string[]): ScanReport =>
      ({
        source: 'test',
        scanner: { name: 'trivy', version: '0.58.1' },
        target: { digests: [], repoDigests: [] },
        findings: severities.map((severity, i) => ({
          id: ids?.[i] ?? `CVE-2024-${1000 + i}`,
          severity,
          package: 'openssl',
          installedVersion: '3.0.1',
          fixedVersions: ['3.0.2'],
          aliases: [],
        })),
      }) as unknown as ScanReport;

    async function attested(repo: string, scan: ScanReport | undefined, finishedAgoMs = 60_000, by = 'security', aboutDigest?: string) {
      const img = await image(repo, ['release']);
      if (scan) {
        const att = await createVulnAttestation(scan, { repository: `${host}/${repo}`, digest: aboutDigest ?? img.digest }, keys[by]!.signer, {
          scanFinishedOn: new Date(Date.now() - finishedAgoMs).toISOString(),
        });
        att.tag = `${img.digest.replace(':', '-')}.att`;
        await appendArtifactLayer(client, { registry: host, repository: repo }, att.tag, att.envelopeBytes, {
          mediaType: att.layerMediaType,
          annotations: att.layerAnnotations,
        });
      }
      return img;
    }

    it('accepts a signed image with a recent, clean enough scan attestation by the required key', async () => {
      const img = await attested('scanned/ok', report(['low', 'high', 'critical'], ['CVE-2024-0100', 'CVE-2024-0101', 'CVE-2024-0001']));
      const r = await verify('scanned/ok', img);
      assert.equal(r.code, 0, r.stdout);
      assert.match(r.stdout, /signed by release and https:\/\/cosign.sigstore.dev\/attestation\/vuln\/v1 attested by security/);
      const att = (auditOf(img)['signatures'] as Array<Record<string, unknown>>).find((x) => x['format'] === 'in-toto')!;
      assert.equal(att['valid'], true);
      assert.match(String(att['reason']), /attestation by key "security": scan by .* no finding above high \(1 ignored\)/);
    });

    it('refuses without an attestation, with a too old scan, with a finding above the maximum, for another digest, or attested by another key', async () => {
      const none = await attested('scanned/none', undefined);
      const r1 = await verify('scanned/none', none);
      assert.equal(r1.code, 1);
      assert.match(r1.stdout, /no attestations found; needs 1 https:\/\/cosign.sigstore.dev\/attestation\/vuln\/v1 attestation by security/);
      assert.equal(auditOf(none)['code'], 'ATTESTATION_NOT_FOUND');

      const old = await attested('scanned/old', report([]), 3 * DAY);
      const r2 = await verify('scanned/old', old);
      assert.equal(r2.code, 1);
      assert.match(r2.stdout, /scan is too old/);

      const bad = await attested('scanned/critical', report(['critical'], ['CVE-2024-6666']));
      const r3 = await verify('scanned/critical', bad);
      assert.equal(r3.code, 1);
      assert.match(r3.stdout, /CVE-2024-6666 \(critical\)/);
      assert.equal(auditOf(bad)['code'], 'ATTESTATION_REJECTED');

      const elsewhere = await attested('scanned/elsewhere', report([]), 60_000, 'security', `sha256:${'3'.repeat(64)}`);
      const r5 = await verify('scanned/elsewhere', elsewhere);
      assert.equal(r5.code, 1);
      assert.match(r5.stdout, /attestation by key "security" is not about sha256:/);

      const stranger = await attested('scanned/stranger', report([]), 60_000, 'a');
      const r4 = await verify('scanned/stranger', stranger);
      assert.equal(r4.code, 1);
      assert.match(r4.stdout, /attestation does not verify with key "security"/);
    });
  });
});
