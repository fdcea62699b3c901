/**
 * signetd against a hostile registry, through the whole path (signet-verifier → signetd → registry).
 * Every case asserts the same four things: the image is refused within the deadline, the reason is one
 * bounded line with no control characters, signetd is still alive and serving (a control image is
 * accepted right after), and its resident memory stays bounded.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { buildImageBundle, pushBundleReferrer } from '../../src/signing/bundle-sign.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { startHostileRegistry, type HostileAction, type HostileRegistry } from '../helpers/hostile-registry.js';
import { pushImage } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { isAlive, memoryOf } from '../helpers/proc-stats.js';
import { runVerifier } from '../helpers/verifier.js';

const VERIFY_TIMEOUT_MS = 5000; // startDaemon's verifyTimeout
/** Longest reason accepted: one line a person can read (containerd shows it). */
const MAX_REASON = 1024;
/** Resident memory signetd may grow by over the whole suite. */
const MAX_RSS_GROWTH_MIB = 128;
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

interface Image {
  name: string;
  descriptor: { mediaType: string; digest: string; size: number };
}

interface HostileCase {
  name: string;
  /** Which image the case targets. */
  target: 'cosign' | 'referrers';
  /** Arm the registries; `h` is the registry the image lives in, `other` is another host (127.0.0.2). */
  arm(h: HostileRegistry, other: HostileRegistry, image: Image): void;
  /** What the refusal must say, besides being bounded. */
  reason?: RegExp;
  /** Decide this many times in a row (some failures only show the second time). */
  repeat?: number;
  /** Further checks on what the registries saw. */
  check?(h: HostileRegistry, other: HostileRegistry): void;
}

const sigTag = /\/manifests\/sha256-[0-9a-f]{64}\.sig$/;
const blob = /\/blobs\/sha256:/;
const referrers = /\/referrers\/sha256:/;
const forged = `\u001b[2K\r\u001b[32mOK: image accepted\u001b[0m\u0007\n${'A'.repeat(20_000)}`;
const ociError = (message: string) => Buffer.from(JSON.stringify({ errors: [{ code: 'DENIED', message }] }));
/** A challenge only the right token passes: a token cached by an earlier case is refused, and signetd asks the realm again. */
const challenge = (other: HostileRegistry): HostileAction => ({ kind: 'challenge', realm: `${other.url}/token`, token: 'the-right-token' });
const token = (value: unknown) => Buffer.from(JSON.stringify({ token: value, expires_in: 300 }));

const CASES: HostileCase[] = [
  { name: 'a signature manifest declared as 1 GiB', target: 'cosign', arm: (h) => void h.on(sigTag, { kind: 'oversize', declared: 1 << 30 }), reason: /limit/ },
  { name: 'a signature manifest that never ends (chunked, no length)', target: 'cosign', arm: (h) => void h.on(sigTag, { kind: 'endless' }), reason: /limit/ },
  { name: 'a payload blob that never ends', target: 'cosign', arm: (h) => void h.on(blob, { kind: 'endless', chunk: 'x'.repeat(16384) }), reason: /limit/ },
  {
    name: 'a signature manifest trickling one byte every 100 ms',
    target: 'cosign',
    arm: (h) => void h.on(sigTag, { kind: 'trickle', intervalMs: 100 }),
    reason: /no complete answer within/,
  },
  { name: 'a registry that accepts and never answers', target: 'cosign', arm: (h) => void h.on(sigTag, { kind: 'hang' }), reason: /no complete answer within/ },
  { name: 'a connection reset on every request', target: 'cosign', arm: (h) => void h.on(sigTag, { kind: 'reset' }) },
  { name: 'a redirect loop', target: 'cosign', arm: (h) => void h.on(sigTag, { kind: 'redirect', to: (p) => p }), reason: /redirects/ },
  {
    name: 'redirects bouncing between two hosts',
    target: 'cosign',
    arm: (h, other) => {
      h.on(sigTag, { kind: 'redirect', to: (p) => `${other.url}${p}` });
      other.on(/./, { kind: 'redirect', to: (p) => `${h.url}${p}` });
    },
    reason: /redirects/,
  },
  {
    name: 'a blob redirected to another host that serves other bytes',
    target: 'cosign',
    arm: (h, other) => {
      h.on(blob, { kind: 'redirect', to: (p) => `${other.url}${p}`, status: 307 });
      other.on(/./, {
        kind: 'body',
        body: Buffer.from(
          '{"critical":{"identity":{"docker-reference":"evil"},"image":{"docker-manifest-digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"type":"cosign container image signature"},"optional":null}',
        ),
      });
    },
    reason: /does not match its digest|tampered/,
  },
  {
    name: 'a blob redirected to another host, with a registry token in hand: the token stays home',
    target: 'cosign',
    arm: (h, other) => {
      h.on(/\/token/, { kind: 'body', body: token('registry-token-for-this-host-only') });
      h.on(blob, { kind: 'redirect', to: (p) => `${other.url}${p}`, status: 307 });
      h.on(/./, { kind: 'challenge', realm: `${h.url}/token`, token: 'registry-token-for-this-host-only' });
      other.on(/./, { kind: 'body', body: Buffer.from('not the payload') });
    },
    reason: /does not match its digest|tampered/,
    check: (h, other) => {
      assert.ok(
        h.seen.some((s) => s.authorization === 'Bearer registry-token-for-this-host-only'),
        'the registry got its token',
      );
      assert.ok(other.seen.length > 0, 'the redirect was followed');
      assert.deepEqual(
        other.seen.filter((s) => s.authorization !== undefined),
        [],
        'no Authorization to the other host',
      );
    },
  },
  {
    name: 'a payload blob that does not match its digest',
    target: 'cosign',
    arm: (h) => void h.on(blob, { kind: 'body', body: Buffer.from('{"not":"the payload"}') }),
    reason: /does not match its digest|tampered/,
  },
  {
    name: 'a signature manifest of 5 MiB',
    target: 'cosign',
    arm: (h) => void h.on(sigTag, { kind: 'body', body: Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [], padding: 'x'.repeat(5 << 20) })) }),
    reason: /limit/,
  },
  {
    name: 'a signature manifest with 12,000 signature layers (under the size cap)',
    target: 'cosign',
    arm: (h) => {
      const layer = {
        mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
        digest: `sha256:${'a'.repeat(64)}`,
        size: 200,
        annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ==' },
      };
      h.on(sigTag, {
        kind: 'body',
        body: Buffer.from(
          JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: Array.from({ length: 12_000 }, () => layer) }),
        ),
      });
    },
  },
  {
    name: 'a signature manifest nested 5,000 levels deep, three times',
    target: 'cosign',
    arm: (h) => void h.on(sigTag, { kind: 'body', body: Buffer.from(`{"schemaVersion":2,"layers":${'['.repeat(5000)}${']'.repeat(5000)}}`) }),
    reason: /nested deeper than/,
    repeat: 3,
  },
  {
    name: 'a bundle referrer manifest nested 5,000 levels deep, three times',
    target: 'referrers',
    arm: (h, _other, image) => {
      h.on(referrers, {
        kind: 'body',
        body: Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.index.v1+json',
            manifests: [
              {
                mediaType: 'application/vnd.oci.image.manifest.v1+json',
                digest: `sha256:${'e'.repeat(64)}`,
                size: 10,
                artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
              },
            ],
          }),
        ),
      });
      h.on(new RegExp(`/manifests/sha256:${'e'.repeat(64)}$`), { kind: 'body', body: Buffer.from(`{"layers":${'['.repeat(5000)}${']'.repeat(5000)}}`) });
      void image;
    },
    repeat: 3,
  },
  {
    name: 'an error message with escape sequences, a forged line and 20 kB of text',
    target: 'cosign',
    arm: (h) => void h.on(sigTag, { kind: 'body', status: 500, body: ociError(forged) }),
  },
  {
    name: 'a 404 whose error code and message are full of control characters',
    target: 'cosign',
    arm: (h) =>
      void h.on(sigTag, {
        kind: 'body',
        status: 404,
        body: Buffer.from(JSON.stringify({ errors: [{ code: '\u001b]0;pwned\u0007MANIFEST_UNKNOWN', message: forged }] })),
      }),
  },
  { name: 'a 64 KiB response header', target: 'cosign', arm: (h) => void h.on(sigTag, { kind: 'headers', headers: { 'x-filler': 'y'.repeat(64 * 1024) } }) },
  {
    name: 'a token realm on another host answering a 2 MiB token',
    target: 'cosign',
    arm: (h, other) => {
      h.on(/./, challenge(other));
      other.on(/\/token/, { kind: 'body', body: token('t'.repeat(2 << 20)) });
    },
    reason: /limit|token/,
  },
  {
    name: 'a token realm answering a 200 KiB token (under the body cap)',
    target: 'cosign',
    arm: (h, other) => {
      h.on(/./, challenge(other));
      other.on(/\/token/, { kind: 'body', body: token('t'.repeat(200 * 1024)) });
    },
    reason: /token/,
  },
  {
    name: 'a token with a line break and an escape sequence in it',
    target: 'cosign',
    arm: (h, other) => {
      h.on(/./, challenge(other));
      other.on(/\/token/, { kind: 'body', body: token('abc\r\nX-Injected: 1\u001b[31m') });
    },
    reason: /token/,
  },
  {
    name: 'a token answer that is not JSON',
    target: 'cosign',
    arm: (h, other) => {
      h.on(/./, challenge(other));
      other.on(/\/token/, { kind: 'body', body: Buffer.from(`<html>\u001b[32m${'garbage '.repeat(5000)}</html>`) });
    },
    reason: /token/,
  },
  {
    name: 'a token that is not a string',
    target: 'cosign',
    arm: (h, other) => {
      h.on(/./, challenge(other));
      other.on(/\/token/, { kind: 'body', body: token({ nested: ['a'] }) });
    },
    reason: /token/,
  },
  {
    name: 'a token realm that never answers',
    target: 'cosign',
    arm: (h, other) => {
      h.on(/./, challenge(other));
      other.on(/\/token/, { kind: 'hang' });
    },
    reason: /no complete answer within|deadline/,
  },
  {
    name: 'a token that the registry keeps refusing',
    target: 'cosign',
    arm: (h, other) => {
      h.on(/./, { kind: 'status', status: 401, headers: { 'www-authenticate': `Bearer realm="${other.url}/token",service="x"` } });
      other.on(/\/token/, { kind: 'body', body: token('fine-token') });
    },
    reason: /unauthorized/,
  },
  {
    name: 'a referrers listing whose Link points back to itself',
    target: 'referrers',
    arm: (h) => void h.on(referrers, { kind: 'headers', headers: (p) => ({ link: `<${new URL(p, 'http://x').pathname}>; rel="next"` }) }),
    reason: /loops back/,
  },
  {
    name: 'a referrers listing paginating without end',
    target: 'referrers',
    arm: (h) =>
      void h.on(referrers, {
        kind: 'headers',
        headers: (p) => {
          const u = new URL(p, 'http://x');
          return { link: `<${u.pathname}?page=${Number(u.searchParams.get('page') ?? 0) + 1}>; rel="next"` };
        },
      }),
    reason: /more than 100 pages/,
  },
  {
    name: 'a referrers index of 5 MiB',
    target: 'referrers',
    arm: (h) => void h.on(referrers, { kind: 'body', body: Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [], padding: 'x'.repeat(5 << 20) })) }),
    reason: /limit/,
  },
  {
    name: 'a referrers index listing 25,000 bundles that do not exist',
    target: 'referrers',
    arm: (h) => {
      const manifests = Array.from({ length: 25_000 }, (_, i) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: `sha256:${i.toString(16).padStart(64, '0')}`,
        size: 500,
        artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      }));
      h.on(referrers, {
        kind: 'body',
        body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests })),
      });
    },
  },
  {
    name: 'a referrers listing answering 500 with escape sequences',
    target: 'referrers',
    arm: (h) => void h.on(referrers, { kind: 'body', status: 500, body: ociError(forged) }),
  },
  {
    name: 'a referrers listing that is not JSON',
    target: 'referrers',
    arm: (h) => void h.on(referrers, { kind: 'body', body: Buffer.from(`\u001b[31m${'['.repeat(100_000)}`) }),
  },
  {
    name: 'a referrers listing nested 100,000 levels deep',
    target: 'referrers',
    arm: (h) => void h.on(referrers, { kind: 'body', body: Buffer.from(`{"manifests":${'['.repeat(100_000)}${']'.repeat(100_000)}}`) }),
  },
];

describe('signetd against a hostile registry', function () {
  this.timeout(120_000);
  const key = makeTestKey();
  let h: HostileRegistry;
  let other: HostileRegistry;
  let daemon: DaemonHandle;
  let images: Record<'cosign' | 'referrers', Image>;
  let baseline: number;

  before(async () => {
    h = await startHostileRegistry();
    other = await startHostileRegistry({ address: '127.0.0.2' });
    const client = new RegistryClient({ insecureRegistries: [h.host] });
    const cosignRepo = { registry: h.host, repository: 'hostile/cosign' };
    const cosignImage = await pushImage(client, cosignRepo, 'v1');
    await signImageCosign(client, cosignRepo, cosignImage.digest, key.signer, { dockerReference: `${h.host}/hostile/cosign` });
    const refRepo = { registry: h.host, repository: 'hostile/referrers' };
    const refImage = await pushImage(client, refRepo, 'v1');
    const subject = { mediaType: refImage.mediaType, digest: refImage.digest, size: refImage.size };
    await pushBundleReferrer(client, refRepo, subject, await buildImageBundle(`${h.host}/hostile/referrers`, refImage.digest, key.signer));
    images = {
      cosign: { name: `${h.host}/hostile/cosign:v1`, descriptor: { mediaType: cosignImage.mediaType, digest: cosignImage.digest, size: cosignImage.size } },
      referrers: { name: `${h.host}/hostile/referrers:v1`, descriptor: subject },
    };
    // No verdict or content cache: every case must reach the hostile registry, and the control after it too.
    daemon = await startDaemon({
      insecureRegistries: [h.host, other.host],
      extraConfig: 'logLevel: warn\ncacheTTL: 0s\nnegativeCacheTTL: 0s\ncontentCacheSize: 0',
    });
    key.writePublic(join(daemon.dir, 'release.pub'));
    daemon.writePolicy('policy.yaml', {
      apiVersion: 'signet/v1',
      keys: { release: { file: join(daemon.dir, 'release.pub') } },
      scopes: {
        [`${h.host}/hostile/cosign`]: { action: 'verify', formats: ['cosign'], signatures: { keys: ['release'] } },
        [`${h.host}/hostile/referrers`]: { action: 'verify', formats: ['sigstore-bundle'], signatures: { keys: ['release'] } },
      },
    });
    await waitFor(async () => (await verify('cosign')).code === 0, 'the policy to load and the control image to be accepted', 10_000);
    const ref = await verify('referrers');
    assert.equal(ref.code, 0, `control (referrers): ${ref.stdout}`);
    baseline = memoryOf(daemon.proc.pid!).rssMiB;
  });
  after(async () => {
    await daemon?.stop();
    await h?.stop();
    await other?.stop();
  });
  afterEach(() => {
    h.reset();
    other.reset();
  });

  const verify = (target: 'cosign' | 'referrers') =>
    runVerifier({ socket: daemon.socket, name: images[target].name, descriptor: images[target].descriptor, timeoutMs: 15_000 });

  for (const c of CASES) {
    it(`${c.name}: refused within the deadline, bounded reason, daemon alive, memory bounded`, async () => {
      c.arm(h, other, images[c.target]);
      for (let i = 0; i < (c.repeat ?? 1); i++) {
        const run = await verify(c.target);
        assert.equal(run.code, 1, `refused (exit 1): ${run.stdout}`);
        assert.ok(run.ms < VERIFY_TIMEOUT_MS + 1500, `answered in ${run.ms} ms`);
        assert.ok(run.stdout.length > 0 && run.stdout.length <= MAX_REASON, `reason of ${run.stdout.length} characters: ${run.stdout.slice(0, 300)}`);
        assert.ok(!run.stdout.includes('\n'), 'one line');
        assert.ok(!CONTROL.test(run.stdout), `no control characters: ${JSON.stringify(run.stdout.slice(0, 300))}`);
        if (c.reason) assert.match(run.stdout, c.reason);
        assert.doesNotMatch(run.stdout, /cannot get a decision from signetd/, 'signetd itself answered');
      }
      c.check?.(h, other);
      // Alive and serving: the control image is accepted right after.
      h.reset();
      other.reset();
      assert.ok(isAlive(daemon.proc.pid!), 'signetd is alive');
      const control = await verify(c.target);
      assert.equal(control.code, 0, `control accepted after the case: ${control.stdout}`);
      const rss = memoryOf(daemon.proc.pid!).rssMiB;
      assert.ok(rss - baseline < MAX_RSS_GROWTH_MIB, `RSS ${rss} MiB, ${rss - baseline} MiB above the ${baseline} MiB at start`);
    });
  }

  it('over the whole suite: peak memory bounded, no crash in the log', () => {
    const m = memoryOf(daemon.proc.pid!);
    console.log(`      signetd RSS ${baseline} MiB at start, ${m.rssMiB} MiB now, peak ${m.peakMiB} MiB`);
    assert.ok(m.peakMiB - baseline < 2 * MAX_RSS_GROWTH_MIB, `peak ${m.peakMiB} MiB`);
    assert.doesNotMatch(daemon.log(), /unhandled rejection|verification crashed/);
  });
});
