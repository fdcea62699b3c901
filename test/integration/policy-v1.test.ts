/**
 * Trust policy v1 through the containerd contract: k-of-n thresholds, groups that must all hold,
 * rejectIfSignedBy, key windows and revocation, deny lists, warn mode, expiry warnings.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
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
        a: key('a'), b: key('b'), c: key('c'), release: key('release'), security: key('security'), compromised: key('compromised'),
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
  const verify = (repo: string, img: PushedImage) => runVerifier({ socket: daemon.socket, name: `${host}/${repo}:v1`, descriptor: { mediaType: img.mediaType, digest: img.digest, size: img.size } });
  const auditOf = (img: PushedImage) => daemon.audit().filter((l) => l['digest'] === img.digest).at(-1)!;

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
    assert.match(r1.stdout, /1 of 2 signature requirements not met: no signatures found; needs a valid signature by security|1 of 2 signature requirements not met: needs a valid signature by security/);
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
    for (const [k, re, code] of [['expired', /key "expired" expired on/, 'KEY_EXPIRED'], ['future', /key "future" is not valid before/, 'KEY_NOT_YET_VALID'], ['revoked', /key "revoked" is revoked/, 'KEY_REVOKED']] as const) {
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
});
