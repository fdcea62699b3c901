/**
 * The whole path as containerd drives it: the verifier executable spawned with the seven arguments
 * and the descriptor on stdin, against the real signetd, against Debian's docker-registry. Every case
 * runs against both verifiers: the shell one (sh + curl → signetd's HTTP socket, what signet install
 * links) and the Node one (gRPC, the fallback where curl is missing).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { loadProtos, verifierServiceClient } from '../../src/daemon/grpc-server.js';
import { ROOT, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { pushImage, pushIndex } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { startRegistry } from '../helpers/registry.js';
import { runVerifier, SHELL_VERIFIER, socketFor, VERIFIER_KINDS, type DescriptorLike, type VerifierKind } from '../helpers/verifier.js';

type Registry = Awaited<ReturnType<typeof startRegistry>>;

for (const kind of VERIFIER_KINDS) contract(kind);

function contract(kind: VerifierKind): void {
  describe(`containerd contract: signet-verifier (${kind === 'sh' ? 'sh + curl' : 'Node'}) → signetd → docker-registry`, function () {
    this.timeout(60_000);
    let registry: Registry;
    let daemon: DaemonHandle;
    let client: RegistryClient;
    let host: string;
    const release = makeTestKey('ecdsa-p256');
    const stranger = makeTestKey('ecdsa-p256');

    const repo = (name: string) => ({ registry: host, repository: name });
    const desc = (img: { digest: string; size: number; mediaType: string }): DescriptorLike => ({
      mediaType: img.mediaType,
      digest: img.digest,
      size: img.size,
    });
    const socket = (): string => socketFor(kind, daemon.socket);
    const run = (options: Omit<Parameters<typeof runVerifier>[0], 'kind' | 'socket'> & { socket?: string }) =>
      runVerifier({ socket: socket(), ...options, kind });
    const verify = (name: string, img: { digest: string; size: number; mediaType: string }, env?: NodeJS.ProcessEnv) =>
      run({ name, descriptor: desc(img), ...(env ? { env } : {}) });

    const policy = () => ({
      apiVersion: 'signet/v1',
      keys: { release: { file: join(daemon.dir, 'release.pub') } },
      default: { action: 'reject' },
      scopes: {
        [`${host}/prod`]: { action: 'verify', signatures: { keys: ['release'], threshold: 1, identity: { type: 'matchRepository' } } },
        [`${host}/prod/special`]: { action: 'accept' },
        [`${host}/public`]: { action: 'accept' },
        [`${host}/exact`]: { action: 'verify', signatures: { keys: ['release'], identity: { type: 'matchExact' } } },
      },
    });

    before(async () => {
      registry = await startRegistry();
      host = registry.host;
      client = new RegistryClient({ insecureRegistries: [host], retries: 0 });
      // Tests here sign an image again between two verifications: no cached refusal in between.
      daemon = await startDaemon({ insecureRegistries: [host], extraConfig: 'negativeCacheTTL: 0s' });
      release.writePublic(join(daemon.dir, 'release.pub'));
      daemon.writePolicy('policy.yaml', policy());
      await waitFor(() => daemon.log().includes('policy loaded'), 'the first policy');
    });
    after(async () => {
      await daemon?.stop();
      await registry?.stop();
    });

    async function signedImage(name: string, tag = 'v1') {
      const img = await pushImage(client, repo(name), tag);
      await signImageCosign(client, repo(name), img.digest, release.signer, { dockerReference: `${host}/${name}` });
      return img;
    }

    it('accepts a signed image by tag, and records the decision in the audit log', async () => {
      const img = await signedImage('prod/app');
      const run = await verify(`${host}/prod/app:v1`, img);
      assert.equal(run.code, 0, run.stdout);
      assert.match(run.stdout, /accepted .*signed by release/);
      const line = daemon.audit().find((l) => l['digest'] === img.digest);
      assert.ok(line, 'no audit line for the decision');
      assert.equal(line['decision'], 'accept');
      assert.equal(line['scope'], `${host}/prod`);
      assert.equal(line['image'], `${host}/prod/app:v1`);
      assert.match(String(line['policyGeneration']), /^sha256:[a-f0-9]{64}$/);
      assert.equal(typeof line['durationMs'], 'number');
      assert.match(String(line['time']), /^\d{4}-\d\d-\d\dT/);
      assert.deepEqual(
        (line['signatures'] as Array<Record<string, unknown>>).map((s) => [s['key'], s['valid']]),
        [['release', true]],
      );
    });

    it('accepts a signed image by digest', async () => {
      const img = await signedImage('prod/bydigest');
      const run = await verify(`${host}/prod/bydigest@${img.digest}`, img);
      assert.equal(run.code, 0, run.stdout);
    });

    it('accepts a signed multi-arch index', async () => {
      const idx = await pushIndex(client, repo('prod/multi'), 'v1');
      assert.equal(idx.mediaType, 'application/vnd.oci.image.index.v1+json');
      await signImageCosign(client, repo('prod/multi'), idx.digest, release.signer, { dockerReference: `${host}/prod/multi` });
      const run = await verify(`${host}/prod/multi:v1`, idx);
      assert.equal(run.code, 0, run.stdout);
      // A platform manifest of the index was not signed itself: pulled by its own digest it is refused.
      const child = idx.children[0]!;
      const runChild = await verify(`${host}/prod/multi@${child.digest}`, child);
      assert.equal(runChild.code, 1, runChild.stdout);
    });

    it('rejects an unsigned image', async () => {
      const img = await pushImage(client, repo('prod/unsigned'), 'v1');
      const run = await verify(`${host}/prod/unsigned:v1`, img);
      assert.equal(run.code, 1);
      assert.match(run.stdout, /no signatures found/);
    });

    it('rejects an image signed by an untrusted key', async () => {
      const img = await pushImage(client, repo('prod/stranger'), 'v1');
      await signImageCosign(client, repo('prod/stranger'), img.digest, stranger.signer, { dockerReference: `${host}/prod/stranger` });
      const run = await verify(`${host}/prod/stranger:v1`, img);
      assert.equal(run.code, 1);
      assert.match(run.stdout, /does not verify with key "release"/);
    });

    it('rejects a signature made for another digest (an image changed after signing)', async () => {
      const signed = await signedImage('prod/swapped', 'v1');
      const other = await pushImage(client, repo('prod/swapped'), 'v2');
      // Copy the valid signature manifest of v1 to the signature tag of v2.
      const sig = await client.getManifest(repo('prod/swapped'), `${signed.digest.replace(':', '-')}.sig`);
      await client.pushManifest(repo('prod/swapped'), `${other.digest.replace(':', '-')}.sig`, sig.bytes, sig.mediaType);
      const run = await verify(`${host}/prod/swapped:v2`, other);
      assert.equal(run.code, 1);
      assert.match(run.stdout, new RegExp(`is for digest ${signed.digest}, not ${other.digest}`));
    });

    it('rejects a signature whose payload was tampered with in the registry storage', async () => {
      const img = await signedImage('prod/tampered');
      const sig = await client.getManifest(repo('prod/tampered'), `${img.digest.replace(':', '-')}.sig`);
      const payloadDigest = (JSON.parse(sig.bytes.toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
      const hex = payloadDigest.slice('sha256:'.length);
      const blob = join(registry.storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
      const text = readFileSync(blob, 'utf8');
      writeFileSync(blob, text.replace('prod/tampered', 'prod/tampereX'));
      const run = await verify(`${host}/prod/tampered:v1`, img);
      assert.equal(run.code, 1);
      assert.match(run.stdout, /does not match its digest: tampered/);
    });

    it('rejects a signature whose signed identity is another repository', async () => {
      const img = await pushImage(client, repo('prod/renamed'), 'v1');
      await signImageCosign(client, repo('prod/renamed'), img.digest, release.signer, { dockerReference: `${host}/prod/original` });
      const run = await verify(`${host}/prod/renamed:v1`, img);
      assert.equal(run.code, 1);
      assert.match(run.stdout, new RegExp(`${host}/prod/original`));
      assert.equal(daemon.audit().find((l) => l['digest'] === img.digest)?.['code'], 'IDENTITY_MISMATCH');
    });

    it('applies matchExact: the signed reference must carry the tag', async () => {
      const img = await pushImage(client, repo('exact/app'), 'v1');
      await signImageCosign(client, repo('exact/app'), img.digest, release.signer, { dockerReference: `${host}/exact/app` });
      assert.equal((await verify(`${host}/exact/app:v1`, img)).code, 1);
      await signImageCosign(client, repo('exact/app'), img.digest, release.signer, { dockerReference: `${host}/exact/app:v1` });
      const run = await verify(`${host}/exact/app:v1`, img);
      assert.equal(run.code, 0, run.stdout);
    });

    it('accepts without signatures in an accept scope, and rejects in the default scope', async () => {
      const pub = await pushImage(client, repo('public/tool'), 'v1');
      const runPub = await verify(`${host}/public/tool:v1`, pub);
      assert.equal(runPub.code, 0, runPub.stdout);
      assert.match(runPub.stdout, new RegExp(`scope ${host}/public accepts`));
      const other = await pushImage(client, repo('elsewhere/tool'), 'v1');
      const runOther = await verify(`${host}/elsewhere/tool:v1`, other);
      assert.equal(runOther.code, 1);
      assert.match(runOther.stdout, /scope default rejects/);
    });

    it('resolves the most specific scope', async () => {
      const special = await pushImage(client, repo('prod/special/x'), 'v1');
      const run = await verify(`${host}/prod/special/x:v1`, special);
      assert.equal(run.code, 0, run.stdout);
      assert.match(run.stdout, new RegExp(`scope ${host}/prod/special accepts`));
      const nested = await pushImage(client, repo('prod/team/x'), 'v1');
      const runNested = await verify(`${host}/prod/team/x:v1`, nested);
      assert.equal(runNested.code, 1);
      assert.match(runNested.stdout, new RegExp(`scope ${host}/prod\\)`));
    });

    it('rejects when the name pins another digest than the one resolved', async () => {
      const a = await signedImage('prod/pinned', 'a');
      const b = await signedImage('prod/pinned', 'b');
      const run = await verify(`${host}/prod/pinned@${a.digest}`, b);
      assert.equal(run.code, 1);
      assert.match(run.stdout, /pins/);
    });

    it('reloads the policy within 2 s of an edit, and keeps the last good policy when an edit is broken', async () => {
      const img = await pushImage(client, repo('reload/app'), 'v1');
      assert.equal((await verify(`${host}/reload/app:v1`, img)).code, 1);
      const p = policy();
      (p.scopes as Record<string, unknown>)[`${host}/reload`] = { action: 'accept' };
      const edited = Date.now();
      daemon.writePolicy('policy.yaml', p);
      const took = await waitFor(async () => (await verify(`${host}/reload/app:v1`, img)).code === 0, 'the edit to take effect', 2000);
      assert.ok(Date.now() - edited <= 2500, `took ${took} ms`);

      const logBefore = daemon.log().length;
      daemon.writePolicy('policy.yaml', 'apiVersion: signet/v1\nscopes:\n  bad: [unclosed\n');
      await waitFor(() => /policy not loaded/.test(daemon.log().slice(logBefore)), 'the broken policy to be reported', 3000);
      assert.match(daemon.log().slice(logBefore), /policy\.yaml:\d+:\d+/);
      const run = await verify(`${host}/reload/app:v1`, img);
      assert.equal(run.code, 0, 'the last good policy must stay in force');

      daemon.writePolicy('policy.yaml', policy());
      await waitFor(async () => (await verify(`${host}/reload/app:v1`, img)).code === 1, 'the restored policy', 3000);
    });

    it('answers Status and health over gRPC, on a socket only its owner can open', async () => {
      assert.equal(statSync(daemon.socket).mode & 0o777, 0o600);
      assert.equal(statSync(socketFor('sh', daemon.socket)).mode & 0o777, 0o600, 'the verifier HTTP socket is 0600 too');
      const root = loadProtos();
      const Verifier = verifierServiceClient(root);
      const c = new Verifier(`unix://${daemon.socket}`, grpc.credentials.createInsecure());
      const status = await new Promise<Record<string, any>>((res, rej) =>
        (c as any).Status({}, (e: Error | null, r: Record<string, any>) => (e ? rej(e) : res(r))),
      );
      assert.equal(status['ready'], true);
      assert.match(status['policyGeneration'], /^sha256:/);
      assert.equal(status['keys'][0].name, 'release');
      assert.match(status['keys'][0].fingerprint, /^sha256:[a-f0-9]{64}$/);
      assert.ok(status['uptimeSeconds'] > 0);
      assert.ok(status['decisions'] > 0);
      const Health = (root as any).grpc.health.v1.Health as grpc.ServiceClientConstructor;
      const h = new Health(`unix://${daemon.socket}`, grpc.credentials.createInsecure());
      const health = await new Promise<Record<string, any>>((res, rej) =>
        (h as any).Check({ service: '' }, (e: Error | null, r: Record<string, any>) => (e ? rej(e) : res(r))),
      );
      assert.equal(health['status'], 'SERVING');
      c.close();
      h.close();
    });

    describe('malformed input to the verifier', () => {
      const D = `sha256:${'a'.repeat(64)}`;
      const MT = 'application/vnd.oci.descriptor.v1+json';
      type Case = [string, string[], string | null | undefined, RegExp];
      const cases: Case[] = [
        ['missing -digest', ['-name', 'x', '-stdin-media-type', MT], undefined, /missing -digest/],
        ['an unknown flag', ['-name', 'x', '-digest', D, '-stdin-media-type', MT, '-x', '1'], undefined, /unknown flag/],
        ['stdin that is not JSON', ['-name', 'x', '-digest', D, '-stdin-media-type', MT], 'hello\n', /not a JSON OCI descriptor/],
        [
          'a descriptor for another digest',
          ['-name', 'x', '-digest', D, '-stdin-media-type', MT],
          JSON.stringify({ mediaType: 'x', digest: `sha256:${'b'.repeat(64)}`, size: 1 }),
          /does not match -digest/,
        ],
        ['a repeated flag', ['-name', 'x', '-name', 'y', '-digest', D, '-stdin-media-type', MT], undefined, /flag "-name" given twice/],
        ['a flag without its value', ['-name', 'x', '-digest', D, '-stdin-media-type'], undefined, /needs a value/],
        ['a bare argument', ['-name', 'x', '-digest', D, '-stdin-media-type', MT, 'extra'], undefined, /unexpected argument "extra"/],
        ['another stdin media type', ['-name', 'x', '-digest', D, '-stdin-media-type', 'text/plain'], undefined, /is not supported/],
        ['a short digest', ['-name', 'x', '-digest', 'sha256:abc', '-stdin-media-type', MT], undefined, /is not a sha256 or sha512 digest/],
        ['a name with a space', ['-name', 'x y', '-digest', D, '-stdin-media-type', MT], undefined, /-name is not an image reference/],
        ['a bare argument with an escape in it', ['-name', 'x', '-digest', D, '-stdin-media-type', MT, 'a\x1b[2Jb'], undefined, /unexpected argument/],
        ['an empty stdin', ['-name', 'x', '-digest', D, '-stdin-media-type', MT], '', /not a JSON OCI descriptor/],
        ['2 MiB on stdin', ['-name', 'x', '-digest', D, '-stdin-media-type', MT], JSON.stringify({ x: 'a'.repeat(2 << 20) }), /larger than 1 MiB/],
        ['5 MiB on stdin', ['-name', 'x', '-digest', D, '-stdin-media-type', MT], '%'.repeat(5 << 20), /larger than 1 MiB/],
        ...(kind === 'node' ? [['stdin never closed', ['-name', 'x', '-digest', D, '-stdin-media-type', MT], null, /not closed/] as Case] : []),
      ];
      for (const [what, args, stdin, re] of cases) {
        it(`rejects ${what} with one line and a non-zero exit`, async () => {
          // A stdin never closed is bounded by the verifier's whole wait, shortened here.
          const r = await run({ args, ...(stdin !== undefined ? { stdin } : {}), ...(stdin === null ? { env: { SIGNET_VERIFIER_TIMEOUT: '1s' } } : {}) });
          assert.equal(r.code, 2, r.stdout);
          assert.match(r.stdout, re);
          assert.equal(r.stdout.split('\n').length, 1);
          assert.doesNotMatch(r.stdout, /\x1b/, 'no raw escape reaches the output');
        });
      }
      if (kind === 'sh') {
        // curl reads stdin to its end before it connects: a stdin never closed (containerd always closes it) is
        // ended by containerd's own per-verifier timeout, which kills the process group: no pull.
        it('never accepts when stdin is never closed: the caller kills it at its timeout', async () => {
          const r = await run({ args: ['-name', 'x', '-digest', D, '-stdin-media-type', MT], stdin: null, timeoutMs: 1500 });
          assert.notEqual(r.code, 0);
        });
      }
    });

    describe('hostile input through the whole path', () => {
      it('passes a name full of shell syntax as data: refused by signetd with an escaped reason, nothing evaluated', async () => {
        const img = await pushImage(client, repo('prod/shell'), 'v1');
        const marker = join(daemon.dir, 'evaluated');
        const name = `${host}/prod/shell:v1$(touch${'${IFS}'}${marker})\`touch${'${IFS}'}${marker}\`;"'&digest=x%41+\x1b[31m`;
        const r = await verify(name, img);
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stdout, /invalid image reference/);
        assert.ok(r.stdout.includes('\\x1b[31m'), r.stdout);
        assert.doesNotMatch(r.stdout, /\x1b/);
        assert.equal(existsSync(marker), false, 'the name was evaluated by a shell');
        const line = daemon.audit().find((l) => String(l['name']).includes('prod/shell:v1$(touch'));
        assert.ok(line, 'the refusal is audited with the name as given');
        assert.equal(line['decision'], 'reject');
      });

      it('passes a descriptor with hostile annotations as data and decides on it', async () => {
        const img = await signedImage('prod/annotated');
        const r = await run({
          name: `${host}/prod/annotated:v1`,
          args: ['-name', `${host}/prod/annotated:v1`, '-digest', img.digest, '-stdin-media-type', 'application/vnd.oci.descriptor.v1+json'],
          stdin: `${JSON.stringify({ ...desc(img), annotations: { 'x&name=evil': '$(reboot)\x1b]0;pwned\x07', '%41': '\n\r' } })}\n`,
        });
        assert.equal(r.code, 0, r.stdout);
        assert.match(r.stdout, /accepted .*signed by release/);
      });

      it('answers -version without reading stdin', async () => {
        const r = await run({ args: ['-version'], stdin: null, timeoutMs: 5000 });
        assert.equal(r.code, 0);
        const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
        assert.equal(r.stdout, `signet-verifier ${pkg.version}`);
      });
    });

    describe('fail closed', () => {
      it('rejects within 2 s when signetd is down, naming the socket', async () => {
        const img = await signedImage('prod/down');
        const socket = join(daemon.dir, 'nobody-home.sock');
        const r = await run({ socket, name: `${host}/prod/down:v1`, descriptor: desc(img) });
        assert.equal(r.code, 1);
        assert.ok(r.ms < 2000, `took ${r.ms} ms`);
        assert.match(r.stdout, new RegExp(`signetd at ${socket}.*fail closed`));
      });

      it('rejects when the socket is left behind by a signetd that is gone (connection refused)', async () => {
        const socket = join(daemon.dir, 'stale.sock');
        // A listener that exits without closing leaves its file behind, as a killed signetd does.
        spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socket)}, () => process.exit(0))`]);
        assert.ok(existsSync(socket));
        const img = await signedImage('prod/stale');
        const r = await run({ socket, name: `${host}/prod/stale:v1`, descriptor: desc(img) });
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stdout, new RegExp(`signetd at ${socket}.*fail closed`));
        rmSync(socket, { force: true });
      });

      it('rejects when signetd accepts the connection but never answers', async () => {
        const socket = join(daemon.dir, 'silent.sock');
        const silent: Server = createServer(() => undefined);
        await new Promise<void>((r) => silent.listen(socket, r));
        try {
          const img = await signedImage('prod/silent');
          const r = await run({ socket, name: `${host}/prod/silent:v1`, descriptor: desc(img), env: { SIGNET_VERIFIER_TIMEOUT: '1s' } });
          assert.equal(r.code, 1);
          assert.match(r.stdout, /no answer within 1000 ms/);
          assert.ok(r.ms < 3000);
        } finally {
          silent.close();
        }
      });

      if (kind === 'sh') {
        const hostilePeer = async (status: number, body: string, check: (r: Awaited<ReturnType<typeof run>>) => void): Promise<void> => {
          const socket = join(daemon.dir, `peer-${status}.sock`);
          const peer = createHttpServer((req, res) => {
            req.resume();
            req.on('end', () => res.writeHead(status, { 'content-type': 'text/plain' }).end(body));
          });
          await new Promise<void>((r) => peer.listen(socket, r));
          try {
            const img = await pushImage(client, repo('prod/peer'), 'v1');
            check(await run({ socket, name: `${host}/prod/peer:v1`, descriptor: desc(img) }));
          } finally {
            peer.close();
          }
        };
        it('fails closed on an answer it does not know (HTTP 500, 302), saying what came', async () => {
          await hostilePeer(500, 'boom', (r) => {
            assert.equal(r.code, 1);
            assert.match(r.stdout, /signetd at .*peer-500\.sock \(it answered HTTP 500: boom\); rejecting .* \(fail closed\)/);
          });
          await hostilePeer(302, '', (r) => assert.equal(r.code, 1));
        });
        it('never prints control characters a peer sends', async () => {
          await hostilePeer(403, 'refused \x1b]0;pwned\x07\x1b[2J', (r) => {
            assert.equal(r.code, 1);
            assert.doesNotMatch(r.stdout, /[\x00-\x1f\x7f]/);
            assert.match(r.stdout, /control characters; not shown/);
          });
        });
        it('decides the same under busybox sh and bash as under dash', async () => {
          const img = await signedImage('prod/shells');
          const args = ['-name', `${host}/prod/shells:v1`, '-digest', img.digest, '-stdin-media-type', 'application/vnd.oci.descriptor.v1+json'];
          const env = { PATH: process.env['PATH'], SIGNET_VERIFY_SOCKET: socket() };
          for (const shell of [['busybox', 'sh'], ['bash'], ['dash']]) {
            const ok = spawnSync(shell[0]!, [...shell.slice(1), SHELL_VERIFIER, ...args], { env, input: JSON.stringify(desc(img)), encoding: 'utf8' });
            assert.equal(ok.status, 0, `${shell.join(' ')}: ${ok.stdout}`);
            assert.match(ok.stdout, /accepted .*signed by release/);
            const other = spawnSync(shell[0]!, [...shell.slice(1), SHELL_VERIFIER, ...args.slice(0, 1), `${host}/elsewhere/x:v1`, ...args.slice(2)], {
              env,
              input: JSON.stringify(desc(img)),
              encoding: 'utf8',
            });
            assert.equal(other.status, 1, `${shell.join(' ')}: ${other.stdout}`);
            assert.match(other.stdout, /scope default rejects/);
            const bad = spawnSync(shell[0]!, [...shell.slice(1), SHELL_VERIFIER, ...args, '-digest', img.digest], { env, input: '', encoding: 'utf8' });
            assert.equal(bad.status, 2, `${shell.join(' ')}: ${bad.stdout}`);
            assert.match(bad.stdout, /given twice/);
          }
        });

        it('refuses a SIGNET_VERIFIER_TIMEOUT that is not a duration', async () => {
          const img = await pushImage(client, repo('prod/peer'), 'v1');
          for (const t of ['8', 'abc', '1.2.3s', '0s', '9999999s', '-1s']) {
            const r = await run({ name: `${host}/prod/peer:v1`, descriptor: desc(img), env: { SIGNET_VERIFIER_TIMEOUT: t } });
            assert.equal(r.code, 2, `${t}: ${r.stdout}`);
            assert.match(r.stdout, /SIGNET_VERIFIER_TIMEOUT/);
          }
          const ok = await run({ name: `${host}/public/peer:v1`, descriptor: desc(img), env: { SIGNET_VERIFIER_TIMEOUT: '2.5s' } });
          assert.equal(ok.code, 0, ok.stdout);
        });
      }
    });

    it('never leaves a decision without an audit line', async () => {
      const lines = daemon.audit();
      assert.ok(lines.length >= 10);
      for (const l of lines) {
        for (const field of ['time', 'name', 'digest', 'scope', 'decision', 'reason', 'signatures', 'policyGeneration', 'durationMs'])
          assert.ok(field in l, `${field} missing in ${JSON.stringify(l)}`);
      }
      assert.ok(readdirSync(daemon.dir).includes('audit.log'));
    });
  });
}
