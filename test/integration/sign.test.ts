/**
 * signet sign / verify / audit from the command line against Debian's docker-registry, with a SoftHSM2
 * token key and a PEM key. Signatures and attestations are checked by an independent implementation
 * written here from the cosign and DSSE specs (plain fetch + node:crypto), and by signetd.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { SIGNET, ROOT, startDaemon, waitFor } from '../helpers/daemon.js';
import { pushImage, pushIndex } from '../helpers/images.js';
import { createToken, softhsmConf, type TestToken } from '../helpers/softhsm.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { runVerifier } from '../helpers/verifier.js';

const work = mkdtempSync(join(tmpdir(), 'signet-sign-'));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('signet sign, verify and audit', function () {
  this.timeout(120_000);
  let registry: RegistryHandle;
  let host: string;
  let client: RegistryClient;
  let token: TestToken;
  let tokenKey: string;
  let tokenPub: string;
  let pemKey: string;
  let pemPub: string;
  let policyDir: string;

  const signet = (args: string[], env: NodeJS.ProcessEnv = {}): Run => {
    const r = spawnSync(process.execPath, [SIGNET, ...args], { env: { ...process.env, SOFTHSM2_CONF: softhsmConf(), ...env }, encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const insecure = () => ['--insecure-registry', host];
  const sign = (image: string, extra: string[] = [], key = tokenKey, env: NodeJS.ProcessEnv = { SIGNET_PKCS11_PIN: token.pin }) =>
    signet(['sign', '--key', key, ...insecure(), image, ...extra], env);

  /** A fixture report rewritten to name the image just pushed. */
  const report = (fixture: string, repo: string, digest: string): string => {
    const text = readFileSync(join(ROOT, 'test/fixtures/scan', `${fixture}.json`), 'utf8')
      .replaceAll('127.0.0.1:5000/signet/app', `${host}/${repo}`)
      .replaceAll('sha256:16649ba604d7f9849f179f899057ad45be3693bb1e21df3e83ea23806743ebac', digest);
    const path = join(work, `${fixture}-${repo.replaceAll('/', '_')}.json`);
    writeFileSync(path, text);
    return path;
  };

  /** Independent reading of a cosign .sig: raw registry API calls and node:crypto, nothing of ours. */
  async function independentCosignCheck(repo: string, digest: string, publicPem: string): Promise<number> {
    const base = `http://${host}/v2/${repo}`;
    const res = await fetch(`${base}/manifests/${digest.replace(':', '-')}.sig`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 200);
    const manifest = (await res.json()) as { layers: Array<{ mediaType: string; digest: string; annotations: Record<string, string> }> };
    let valid = 0;
    for (const layer of manifest.layers) {
      assert.equal(layer.mediaType, 'application/vnd.dev.cosign.simplesigning.v1+json');
      const payload = Buffer.from(await (await fetch(`${base}/blobs/${layer.digest}`)).arrayBuffer());
      assert.equal(`sha256:${createHash('sha256').update(payload).digest('hex')}`, layer.digest);
      const doc = JSON.parse(payload.toString()) as {
        critical: { identity: { 'docker-reference': string }; image: { 'docker-manifest-digest': string }; type: string };
      };
      assert.equal(doc.critical.type, 'cosign container image signature');
      assert.equal(doc.critical.image['docker-manifest-digest'], digest);
      assert.equal(doc.critical.identity['docker-reference'], `${host}/${repo}`);
      const key = createPublicKey(publicPem);
      if (
        cryptoVerify(
          key.asymmetricKeyType === 'ed25519' ? null : 'sha256',
          payload,
          key,
          Buffer.from(layer.annotations['dev.cosignproject.cosign/signature']!, 'base64'),
        )
      )
        valid++;
    }
    return valid;
  }

  before(async () => {
    registry = await startRegistry();
    host = registry.host;
    client = new RegistryClient({ insecureRegistries: [host], retries: 0 });
    token = createToken('ci-signing');
    const gen = signet(['keys', 'generate', '--key', token.uri, '--label', 'release'], { SIGNET_PKCS11_PIN: token.pin });
    assert.equal(gen.code, 0, gen.stderr);
    tokenKey = `${token.uri};object=release`;
    tokenPub = signet(['keys', 'export', '--key', `${tokenKey};type=public`]).stdout;
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    pemKey = join(work, 'cosign.key');
    writeFileSync(pemKey, pair.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'correct horse' }));
    pemPub = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    policyDir = join(work, 'policy.d');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(policyDir);
    writeFileSync(join(work, 'token.pub'), tokenPub);
    writeFileSync(join(work, 'pem.pub'), pemPub);
    writeFileSync(
      join(policyDir, 'policy.yaml'),
      [
        'apiVersion: signet/v1',
        'keys:',
        `  hsm: { file: ${join(work, 'token.pub')} }`,
        `  pem: { file: ${join(work, 'pem.pub')} }`,
        'scopes:',
        `  ${host}/ci:`,
        '    action: verify',
        '    signatures: { keys: [hsm, pem] }',
        '',
      ].join('\n'),
    );
  });
  after(async () => registry?.stop());

  it('signs with a token key; the signature checks out independently and through signetd', async () => {
    const img = await pushImage(client, { registry: host, repository: 'ci/app' }, 'v1');
    const r = sign(`${host}/ci/app:v1`, ['--output', 'json', '-a', 'build=42']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { digest: string; key: { fingerprint: string }; signature: { tag: string; signatures: number } };
    assert.equal(out.digest, img.digest);
    assert.equal(out.signature.tag, `${host}/ci/app:${img.digest.replace(':', '-')}.sig`);
    assert.equal(
      out.key.fingerprint,
      `sha256:${createHash('sha256')
        .update(createPublicKey(tokenPub).export({ type: 'spki', format: 'der' }))
        .digest('hex')}`,
    );
    assert.equal(await independentCosignCheck('ci/app', img.digest, tokenPub), 1);

    const daemon = await startDaemon({ insecureRegistries: [host], policy: readFileSync(join(policyDir, 'policy.yaml'), 'utf8') });
    try {
      await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
      const run = await runVerifier({
        socket: daemon.socket,
        name: `${host}/ci/app:v1`,
        descriptor: { mediaType: img.mediaType, digest: img.digest, size: img.size },
      });
      assert.equal(run.code, 0, run.stdout);
    } finally {
      await daemon.stop();
    }
  });

  it('signs as a sigstore bundle (cosign v3) with the token key, pushed as a referrer that signetd accepts', async () => {
    const img = await pushImage(client, { registry: host, repository: 'ci/v3' }, 'v1');
    const r = sign(`${host}/ci/v3:v1`, ['--format', 'sigstore-bundle', '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { signature: { format: string; manifestDigest: string } };
    assert.equal(out.signature.format, 'sigstore-bundle');
    const refs = await client.referrers({ registry: host, repository: 'ci/v3' }, img.digest, {
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      limit: 10,
    });
    assert.deepEqual(
      refs.map((x) => x.digest),
      [out.signature.manifestDigest],
    );
    const daemon = await startDaemon({ insecureRegistries: [host], policy: readFileSync(join(policyDir, 'policy.yaml'), 'utf8') });
    try {
      await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
      const run = await runVerifier({
        socket: daemon.socket,
        name: `${host}/ci/v3:v1`,
        descriptor: { mediaType: img.mediaType, digest: img.digest, size: img.size },
      });
      assert.equal(run.code, 0, run.stdout);
      assert.equal((daemon.audit().at(-1)!['signatures'] as Array<Record<string, unknown>>)[0]!['format'], 'sigstore-bundle');
    } finally {
      await daemon.stop();
    }
    const bad = sign(`${host}/ci/v3:v1`, ['--format', 'sigstore-bundle', '-a', 'x=y']);
    assert.equal(bad.code, 2);
  });

  it('signs with an encrypted PEM key; signing twice keeps both signatures', async () => {
    const img = await pushImage(client, { registry: host, repository: 'ci/twice' }, 'v1');
    const first = sign(`${host}/ci/twice@${img.digest}`, [], pemKey, { SIGNET_KEY_PASSPHRASE: 'correct horse' });
    assert.equal(first.code, 0, first.stderr);
    const second = sign(`${host}/ci/twice:v1`);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /\(2 signatures\)/);
    assert.equal(await independentCosignCheck('ci/twice', img.digest, pemPub), 1);
    assert.equal(await independentCosignCheck('ci/twice', img.digest, tokenPub), 1);
    const wrong = sign(`${host}/ci/twice:v1`, [], pemKey, { SIGNET_KEY_PASSPHRASE: 'wrong' });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /cannot decrypt the key/);
  });

  it('signs the digest the tag had when resolved, not where the tag points later', async () => {
    const repo = { registry: host, repository: 'ci/moving' };
    const a = await pushImage(client, repo, 'release');
    assert.equal(sign(`${host}/ci/moving:release`).code, 0);
    const b = await pushImage(client, repo, 'release');
    assert.equal(await independentCosignCheck('ci/moving', a.digest, tokenPub), 1);
    const res = await fetch(`http://${host}/v2/ci/moving/manifests/${b.digest.replace(':', '-')}.sig`);
    assert.equal(res.status, 404, 'the new digest must not be signed');
    const v = signet(['verify', `${host}/ci/moving:release`, '--policy-dir', policyDir, ...insecure()]);
    assert.equal(v.code, 1, v.stdout);
  });

  describe('the scan gate', () => {
    it('refuses a report with a CRITICAL finding, prints the blocking findings, pushes nothing', async () => {
      const img = await pushImage(client, { registry: host, repository: 'ci/vuln' }, 'v1');
      const r = sign(`${host}/ci/vuln:v1`, ['--scan-report', report('trivy-critical', 'ci/vuln', img.digest)]);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /CVE-2023-45853\s+CRITICAL\s+\S+/);
      assert.doesNotMatch(r.stdout, /CVE-2023-44487/, 'HIGH is allowed by default');
      assert.match(r.stderr, /scan gate failed: 1 finding above high/);
      assert.equal((await fetch(`http://${host}/v2/ci/vuln/manifests/${img.digest.replace(':', '-')}.sig`)).status, 404);
    });

    it('passes with only lower findings, and with --ignore of the critical one', async () => {
      const img = await pushImage(client, { registry: host, repository: 'ci/ok' }, 'v1');
      assert.equal(sign(`${host}/ci/ok:v1`, ['--scan-report', report('trivy-clean', 'ci/ok', img.digest)]).code, 0);
      const img2 = await pushImage(client, { registry: host, repository: 'ci/ignored' }, 'v1');
      const r = sign(`${host}/ci/ignored:v1`, ['--scan-report', report('trivy-critical', 'ci/ignored', img2.digest), '--ignore', 'CVE-2023-45853']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const strict = sign(`${host}/ci/ignored:v1`, ['--scan-report', report('grype-high', 'ci/ignored', img2.digest), '--max-severity', 'medium']);
      assert.equal(strict.code, 1);
      assert.match(strict.stdout, /CVE-2023-44487/);
    });

    it('refuses a report for another image', async () => {
      const img = await pushImage(client, { registry: host, repository: 'ci/other' }, 'v1');
      const foreign = await pushImage(client, { registry: host, repository: 'ci/other' }, 'v2');
      const r = sign(`${host}/ci/other:v1`, ['--scan-report', report('trivy-clean', 'ci/other', foreign.digest)]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /SCAN_REPORT_INVALID/);
      assert.equal((await fetch(`http://${host}/v2/ci/other/manifests/${img.digest.replace(':', '-')}.sig`)).status, 404);
    });

    it('attaches a signed vulnerability attestation whose DSSE signature and subject check out independently', async () => {
      const idx = await pushIndex(client, { registry: host, repository: 'ci/attested' }, 'v1');
      const r = sign(`${host}/ci/attested:v1`, ['--scan-report', report('grype-high', 'ci/attested', idx.digest), '--attest-scan', '--output', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const base = `http://${host}/v2/ci/attested`;
      const manifest = (await (
        await fetch(`${base}/manifests/${idx.digest.replace(':', '-')}.att`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
      ).json()) as { layers: Array<{ mediaType: string; digest: string; annotations: Record<string, string> }> };
      assert.equal(manifest.layers.length, 1);
      assert.equal(manifest.layers[0]!.mediaType, 'application/vnd.dsse.envelope.v1+json');
      assert.equal(manifest.layers[0]!.annotations['predicateType'], 'https://cosign.sigstore.dev/attestation/vuln/v1');
      const envelope = (await (await fetch(`${base}/blobs/${manifest.layers[0]!.digest}`)).json()) as {
        payloadType: string;
        payload: string;
        signatures: Array<{ sig: string }>;
      };
      const payload = Buffer.from(envelope.payload, 'base64');
      // DSSE v1 pre-authentication encoding, written from the spec.
      const pae = Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(envelope.payloadType)} ${envelope.payloadType} ${payload.length} `), payload]);
      assert.equal(cryptoVerify('sha256', pae, createPublicKey(tokenPub), Buffer.from(envelope.signatures[0]!.sig, 'base64')), true);
      const statement = JSON.parse(payload.toString()) as {
        _type: string;
        subject: Array<{ name: string; digest: { sha256: string } }>;
        predicateType: string;
        predicate: { scanner: { uri: string; version: string }; metadata: { scanFinishedOn: string } };
      };
      assert.equal(statement._type, 'https://in-toto.io/Statement/v1');
      assert.equal(statement.predicateType, 'https://cosign.sigstore.dev/attestation/vuln/v1');
      assert.deepEqual(
        statement.subject.map((s) => s.digest.sha256),
        [idx.digest.slice(7)],
      );
      assert.ok(statement.predicate.scanner.version);
      assert.ok(!Number.isNaN(Date.parse(statement.predicate.metadata.scanFinishedOn)));
    });
  });

  describe('verify and audit', () => {
    before(async () => {
      const repo = { registry: host, repository: 'ci/audited' };
      await pushImage(client, repo, 'signed');
      assert.equal(sign(`${host}/ci/audited:signed`).code, 0);
      await pushImage(client, repo, 'unsigned');
      await pushImage(client, repo, 'wrong');
      const strangerPath = join(work, 'stranger.key');
      writeFileSync(strangerPath, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
      assert.equal(sign(`${host}/ci/audited:wrong`, [], strangerPath, {}).code, 0);
    });

    it('verify: exit 0 and the reason for a signed image, exit 1 for unsigned and wrongly signed', () => {
      const ok = signet(['verify', `${host}/ci/audited:signed`, '--policy-dir', policyDir, ...insecure()]);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /^ACCEPT/);
      assert.match(ok.stdout, new RegExp(`scope\\s+${host}/ci`));
      assert.match(ok.stdout, /valid\s+cosign\s+key=hsm/);
      const unsigned = signet(['verify', `${host}/ci/audited:unsigned`, '--policy-dir', policyDir, ...insecure(), '--output', 'json']);
      assert.equal(unsigned.code, 1);
      assert.equal((JSON.parse(unsigned.stdout) as { code: string }).code, 'SIGNATURE_NOT_FOUND');
      const wrong = signet(['verify', `${host}/ci/audited:wrong`, '--policy-dir', policyDir, ...insecure()]);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stdout, /SIGNATURE_INVALID/);
    });

    it('audit: a row per tag, artifact tags skipped, a summary, exit 1 when anything is rejected', () => {
      const r = signet(['audit', `${host}/ci/audited`, '--policy-dir', policyDir, ...insecure(), '--output', 'json']);
      assert.equal(r.code, 1, r.stderr);
      const doc = JSON.parse(r.stdout) as {
        tags: number;
        accepted: number;
        rejected: number;
        results: Array<{ tag: string; decision: string; signers: string[] }>;
      };
      assert.deepEqual(
        doc.results.map((x) => [x.tag, x.decision, x.signers.join(',')]),
        [
          ['signed', 'accept', 'hsm'],
          ['unsigned', 'reject', ''],
          ['wrong', 'reject', ''],
        ],
      );
      assert.equal(doc.rejected, 2);
      const text = signet(['audit', `${host}/ci/audited`, '--policy-dir', policyDir, ...insecure()]);
      assert.match(text.stdout, /ci\/audited: 3 tags, 1 accepted, 2 rejected/);
    });
  });

  describe('bad input: one line, non-zero exit, no stack trace', () => {
    const cases: Array<[string, () => string[], NodeJS.ProcessEnv | undefined, RegExp]> = [
      [
        'a missing report file',
        () => ['sign', '--key', tokenKey, ...insecure(), `${host}/ci/app:v1`, '--scan-report', '/nonexistent/report.json'],
        undefined,
        /cannot read scan report/,
      ],
      [
        'a malformed report',
        () => ['sign', '--key', tokenKey, ...insecure(), `${host}/ci/app:v1`, '--scan-report', writeTemp('bad.json', '{"Results": [')],
        undefined,
        /SCAN_REPORT_INVALID/,
      ],
      [
        'an unknown report format',
        () => ['sign', '--key', tokenKey, ...insecure(), `${host}/ci/app:v1`, '--scan-report', writeTemp('other.json', '{"hello": "world"}')],
        undefined,
        /SCAN_REPORT_INVALID/,
      ],
      [
        'an unreachable registry',
        () => ['sign', '--key', tokenKey, '--insecure-registry', '127.0.0.1:9', '127.0.0.1:9/ci/app:v1'],
        undefined,
        /REGISTRY_UNAVAILABLE/,
      ],
      ['a wrong PIN', () => ['sign', '--key', tokenKey, ...insecure(), `${host}/ci/app:v1`], { SIGNET_PKCS11_PIN: '00000000' }, /PIN_INCORRECT/],
      ['an unknown option', () => ['sign', '--kee', tokenKey, `${host}/ci/app:v1`], undefined, /unknown option '--kee'/],
      ['a bad image reference', () => ['sign', '--key', tokenKey, 'Not A Reference'], undefined, /INVALID_REFERENCE/],
      ['a bad severity', () => ['sign', '--key', tokenKey, `${host}/ci/app:v1`, '--max-severity', 'extreme'], undefined, /severity/],
    ];
    for (const [what, args, env, re] of cases) {
      it(what, () => {
        const r = signet(args(), env ?? { SIGNET_PKCS11_PIN: token.pin });
        assert.notEqual(r.code, 0);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, re);
        assert.doesNotMatch(r.stderr, /\n\s+at /);
        assert.ok(!r.stderr.includes('00000000'));
      });
    }
  });
});

function writeTemp(name: string, text: string): string {
  const p = join(work, name);
  writeFileSync(p, text);
  return p;
}
