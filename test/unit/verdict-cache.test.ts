/**
 * The verdict cache and request coalescing in front of the real engine (policies through the real
 * loader, PEM keys, in-memory signature sources that count their lookups), on a fake clock shared by
 * the engine and the cache: lifetimes are checked at the instant before and after they end.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createVulnAttestation, COSIGN_VULN_PREDICATE_TYPE } from '../../src/attest/vuln.js';
import { VerdictCache, type CacheSnapshot } from '../../src/cache/verdict-cache.js';
import { VerificationEngine } from '../../src/engine/engine.js';
import type { DiscoveredSignature } from '../../src/engine/sources.js';
import type { UntrustedAttestation } from '../../src/engine/attestation-source.js';
import { SignetError } from '../../src/errors.js';
import type { Policy } from '../../src/policy/types.js';
import { parseScanReport } from '../../src/scan/report.js';
import { cosignSignature, DIGEST, IMAGE, KEYS, keysDoc, loadPolicy, MANIFEST, OTHER_DIGEST, REPO, ringKeys } from '../helpers/engine.js';

const MIN = 60_000;
const T0 = Date.parse('2026-06-01T12:00:00Z');

interface Rig {
  cache: VerdictCache;
  lookups: () => number;
  clock: { now: number };
  setSignatures(s: DiscoveredSignature[]): void;
  setPolicy(p: Policy): Promise<void>;
  ask(name?: string, digest?: string): ReturnType<VerdictCache['decide']>;
}

async function rig(
  policy: Policy,
  options: {
    find?: (call: number) => Promise<DiscoveredSignature[]>;
    signatures?: DiscoveredSignature[];
    attestations?: UntrustedAttestation[];
    fail?: SignetError;
    hold?: Promise<void>;
    ttlMs?: number;
    negativeTtlMs?: number;
    maxEntries?: number;
    now?: number;
  } = {},
): Promise<Rig> {
  const clock = { now: options.now ?? T0 };
  let signatures = options.signatures ?? [];
  let lookups = 0;
  let snapshot: CacheSnapshot = { policy, keys: await ringKeys(policy), keyGeneration: 1 };
  const engine = new VerificationEngine({
    snapshot: () => snapshot,
    sourcesFor: () => ({
      signatures: [
        {
          name: 'registry',
          find: async () => {
            lookups++;
            if (options.find) return options.find(lookups);
            await options.hold;
            if (options.fail) throw options.fail;
            return signatures;
          },
        },
      ],
      attestations: [{ name: 'registry', find: async () => options.attestations ?? [] }],
    }),
    timeoutMs: 5000,
    maxSignatures: 32,
    now: () => new Date(clock.now),
  });
  const cache = new VerdictCache(
    { decide: (r) => engine.verify(r), snapshot: () => snapshot },
    { ttlMs: options.ttlMs ?? 5 * MIN, negativeTtlMs: options.negativeTtlMs ?? 10_000, maxEntries: options.maxEntries ?? 10_000, now: () => clock.now },
  );
  return {
    cache,
    clock,
    lookups: () => lookups,
    setSignatures: (s) => (signatures = s),
    async setPolicy(p) {
      // As signetd installs a policy: keys loaded, one swap, the cache dropped in the same tick.
      const keys = await ringKeys(p);
      snapshot = { policy: p, keys, keyGeneration: snapshot.keyGeneration + 1 };
      cache.clear();
    },
    ask: (name = IMAGE, digest = DIGEST) => cache.decide({ name, descriptor: { mediaType: MANIFEST, digest, size: 1234 } }),
  };
}

const verify = (keys: Record<string, Record<string, unknown>> = {}, extra: Record<string, unknown> = {}, scope: Record<string, unknown> = {}) =>
  loadPolicy({ keys: keysDoc(['release', 'security'], keys), scopes: { [REPO]: { action: 'verify', signatures: { keys: ['release'] }, ...scope } }, ...extra });

describe('verdict cache', () => {
  it('answers the same question from memory, cached: true, without a lookup; another digest or name is another question', async () => {
    const r = await rig(verify(), { signatures: [await cosignSignature(KEYS.release)] });
    const first = await r.ask();
    assert.equal(first.decision.decision, 'accept', first.decision.reason);
    assert.equal(first.cached, false);
    const second = await r.ask();
    assert.equal(second.cached, true);
    assert.equal(second.decision.cached, true);
    assert.equal(second.decision.reason, first.decision.reason);
    assert.equal(r.lookups(), 1);
    // The same image named differently (normalised alike) is the same question.
    await r.ask(`${REPO}:1.0`);
    assert.equal(r.lookups(), 1);
    await r.ask(`${REPO}:2.0`);
    await r.ask(IMAGE, OTHER_DIGEST);
    assert.equal(r.lookups(), 3);
    assert.deepEqual({ hits: r.cache.stats().hits, misses: r.cache.stats().misses }, { hits: 2, misses: 3 });
  });

  it('50 simultaneous requests for one image share one verification (one lookup)', async () => {
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const r = await rig(verify(), { signatures: [await cosignSignature(KEYS.release)], hold });
    const asks = Array.from({ length: 50 }, () => r.ask());
    release();
    const answers = await Promise.all(asks);
    assert.equal(r.lookups(), 1);
    assert.ok(answers.every((a) => a.decision.decision === 'accept'));
    assert.equal(answers.filter((a) => a.coalesced).length, 49);
    assert.equal(r.cache.stats().coalesced, 49);
  });

  it('an acceptance lives cacheTTL: served at its last millisecond, decided again after it', async () => {
    const r = await rig(verify(), { signatures: [await cosignSignature(KEYS.release)] });
    await r.ask();
    r.clock.now = T0 + 5 * MIN - 1;
    assert.equal((await r.ask()).cached, true);
    r.clock.now = T0 + 5 * MIN;
    assert.equal((await r.ask()).cached, false);
    assert.equal(r.lookups(), 2);
  });

  it("an acceptance ends at the signing key's notAfter: the next answer is KEY_EXPIRED", async () => {
    const notAfter = new Date(T0 + 2 * MIN).toISOString();
    const r = await rig(verify({ release: { notAfter, expiryWarning: '1s' } }), { signatures: [await cosignSignature(KEYS.release)] });
    assert.equal((await r.ask()).decision.decision, 'accept');
    r.clock.now = T0 + 2 * MIN - 1001;
    assert.equal((await r.ask()).cached, true, 'served until the expiry warning starts');
    r.clock.now = T0 + 2 * MIN - 1000;
    const warned = await r.ask();
    assert.equal(warned.cached, false, 'the expiry warning changes the decision: decided again');
    assert.equal(warned.decision.warnings.length, 1);
    r.clock.now = T0 + 2 * MIN;
    const late = await r.ask();
    assert.equal(late.cached, false);
    assert.equal(late.decision.code, 'KEY_EXPIRED');
  });

  it('a refusal lives at most negativeCacheTTL: a just-signed image is accepted after it', async () => {
    const r = await rig(verify());
    assert.equal((await r.ask()).decision.code, 'SIGNATURE_NOT_FOUND');
    r.setSignatures([await cosignSignature(KEYS.release)]);
    r.clock.now = T0 + 10_000 - 1;
    assert.equal((await r.ask()).decision.code, 'SIGNATURE_NOT_FOUND', 'still the cached refusal');
    r.clock.now = T0 + 10_000;
    const after = await r.ask();
    assert.equal(after.decision.decision, 'accept', after.decision.reason);
    assert.equal(after.cached, false);
  });

  it('a warn-mode "would have refused" lives at most negativeCacheTTL too', async () => {
    const r = await rig(verify({}, {}, { mode: 'warn' }));
    assert.equal((await r.ask()).decision.decision, 'warn');
    r.clock.now = T0 + 10_000;
    assert.equal((await r.ask()).cached, false);
  });

  it('never keeps "could not check" (registry unavailable): every request looks again', async () => {
    const r = await rig(verify(), { fail: new SignetError('REGISTRY_UNAVAILABLE', 'connection refused') });
    assert.equal((await r.ask()).decision.code, 'REGISTRY_UNAVAILABLE');
    assert.equal((await r.ask()).cached, false);
    assert.equal(r.lookups(), 2);
    assert.equal(r.cache.stats().entries, 0);
  });

  it('a policy change drops every verdict: a digest put on the deny list is refused at once', async () => {
    const r = await rig(verify(), { signatures: [await cosignSignature(KEYS.release)] });
    assert.equal((await r.ask()).decision.decision, 'accept');
    await r.setPolicy(verify({}, { deny: { digests: [DIGEST] } }));
    const denied = await r.ask();
    assert.equal(denied.cached, false);
    assert.equal(denied.decision.code, 'DIGEST_DENIED');
  });

  it('a key revoked by a policy change is not served from memory, even by a verification that was under way', async () => {
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const r = await rig(verify(), { signatures: [await cosignSignature(KEYS.release)], hold });
    const underWay = r.ask();
    await new Promise((resolve) => setImmediate(resolve));
    await r.setPolicy(verify({ release: { revoked: true } }));
    release();
    assert.equal((await underWay).decision.decision, 'accept', 'decided under the policy it started with');
    const now = await r.ask();
    assert.equal(now.cached, false, 'the verdict of the old policy was not stored');
    assert.equal(now.decision.code, 'KEY_REVOKED');
  });

  it('an acceptance resting on a vulnerability scan ends when the scan passes maxAge', async () => {
    const fix = fileURLToPath(new URL('../../../test/fixtures/scan/', import.meta.url));
    const report = parseScanReport(readFileSync(fix + 'grype-high.json', 'utf8'), 'grype-high.json');
    const finished = Date.parse(report.scanFinished!);
    const att = await createVulnAttestation(report, { repository: REPO, digest: DIGEST }, KEYS.security.signer);
    const p = verify({}, {}, { attestations: [{ predicateType: COSIGN_VULN_PREDICATE_TYPE, keys: ['security'], maxAge: '2h', maxSeverity: 'critical' }] });
    const r = await rig(p, {
      signatures: [await cosignSignature(KEYS.release)],
      attestations: [{ source: 'registry', untrustedEnvelope: att.envelopeBytes }],
      now: finished + 3600_000,
      ttlMs: 24 * 3600_000,
    });
    const first = await r.ask();
    assert.equal(first.decision.decision, 'accept', first.decision.reason);
    r.clock.now = finished + 2 * 3600_000 - 1;
    assert.equal((await r.ask()).cached, true);
    r.clock.now = finished + 2 * 3600_000 + 1;
    const stale = await r.ask();
    assert.equal(stale.cached, false);
    assert.equal(stale.decision.code, 'ATTESTATION_REJECTED');
  });

  it('is bounded: the least recently used verdict goes first', async () => {
    const r = await rig(verify(), { signatures: [await cosignSignature(KEYS.release)], maxEntries: 2 });
    await r.ask(`${REPO}:a`);
    await r.ask(`${REPO}:b`);
    await r.ask(`${REPO}:a`); // a is now the most recent
    await r.ask(`${REPO}:c`); // b goes
    assert.equal(r.cache.stats().entries, 2);
    assert.equal((await r.ask(`${REPO}:a`)).cached, true);
    assert.equal((await r.ask(`${REPO}:b`)).cached, false);
  });

  it('a request that joins a decision under way for over a second, which then could not check, asks again itself; one of the same burst shares the failure', async () => {
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const sig = await cosignSignature(KEYS.release);
    // The first lookup hangs, then times out (a registry overloaded); later ones answer.
    const r = await rig(verify(), {
      find: async (call) => {
        if (call > 1) return [sig];
        await hold;
        throw new SignetError('REGISTRY_TIMEOUT', 'no complete answer within 2000 ms');
      },
    });
    const first = r.ask();
    const sameBurst = r.ask();
    r.clock.now = T0 + 1000;
    const retry = r.ask(); // kubelet's retry, a second later
    release();
    assert.equal((await first).decision.code, 'REGISTRY_TIMEOUT');
    assert.equal((await sameBurst).decision.code, 'REGISTRY_TIMEOUT', 'shared the failure');
    const again = await retry;
    assert.equal(again.decision.decision, 'accept', again.decision.reason);
    assert.equal(r.lookups(), 2);
  });

  it('cacheTTL 0: nothing is kept, identical requests under way still share one verification', async () => {
    const r = await rig(verify(), { signatures: [await cosignSignature(KEYS.release)], ttlMs: 0 });
    await Promise.all([r.ask(), r.ask()]);
    assert.equal(r.lookups(), 1);
    assert.equal((await r.ask()).cached, false);
    assert.equal(r.lookups(), 2);
  });
});
