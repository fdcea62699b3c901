/**
 * signetd under load, as counts and bounds rather than timings: a flood of simultaneous decisions is
 * shed with RESOURCE_EXHAUSTED (fail closed) while every admitted decision is answered correctly, and a
 * long run at a sustainable rate gets every answer right, refuses nothing spuriously, writes one audit
 * line per decision and gives its memory back. Driven through signetd's gRPC API (as many
 * signet-verifier processes would be), with a sample through the verifier executable itself.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { signImageCosign } from '../../src/signing/cosign-sign.js';
import { startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { pool, verifyClient, type VerifyAnswer } from '../helpers/grpc-verify.js';
import { pushImage } from '../helpers/images.js';
import { makeTestKey } from '../helpers/keys.js';
import { isAlive, memoryOf } from '../helpers/proc-stats.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { runVerifier } from '../helpers/verifier.js';

const GRPC_RESOURCE_EXHAUSTED = 8;

interface Case {
  name: string;
  descriptor: { mediaType: string; digest: string; size: number };
  expect: 'accept' | 'reject';
}

describe('signetd under load', function () {
  this.timeout(300_000);
  const release = makeTestKey();
  const other = makeTestKey();
  let registry: RegistryHandle;
  let cases: Case[];

  before(async () => {
    registry = await startRegistry();
    const client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    const repo = (r: string) => ({ registry: registry.host, repository: r });
    const signed = await pushImage(client, repo('load/signed'), 'v1');
    await signImageCosign(client, repo('load/signed'), signed.digest, release.signer, { dockerReference: `${registry.host}/load/signed` });
    const unsigned = await pushImage(client, repo('load/unsigned'), 'v1');
    const wrong = await pushImage(client, repo('load/wrong'), 'v1');
    await signImageCosign(client, repo('load/wrong'), wrong.digest, other.signer, { dockerReference: `${registry.host}/load/wrong` });
    const d = (i: { mediaType: string; digest: string; size: number }) => ({ mediaType: i.mediaType, digest: i.digest, size: i.size });
    cases = [
      { name: `${registry.host}/load/signed:v1`, descriptor: d(signed), expect: 'accept' },
      { name: `${registry.host}/load/unsigned:v1`, descriptor: d(unsigned), expect: 'reject' },
      { name: `${registry.host}/load/wrong:v1`, descriptor: d(wrong), expect: 'reject' },
    ];
  });
  after(async () => {
    await registry?.stop();
  });

  async function daemonWithPolicy(extraConfig = ''): Promise<DaemonHandle> {
    // The production timeouts (the test helper's are shorter): the test machine is shared and busy.
    const daemon = await startDaemon({
      insecureRegistries: [registry.host],
      extraConfig: `logLevel: warn\nregistryTimeout: 5s\nverifyTimeout: 7s\n${extraConfig}`,
    });
    release.writePublic(join(daemon.dir, 'release.pub'));
    daemon.writePolicy('policy.yaml', {
      apiVersion: 'signet/v1',
      keys: { release: { file: join(daemon.dir, 'release.pub') } },
      scopes: { [`${registry.host}/load`]: { action: 'verify', formats: ['cosign'], signatures: { keys: ['release'] } } },
    });
    const client = verifyClient(daemon.socket);
    try {
      await waitFor(async () => (await client.verify(cases[0]!.name, cases[0]!.descriptor)).ok, 'the policy to load', 10_000);
    } finally {
      client.close();
    }
    return daemon;
  }

  /**
   * A name of its own for every request (`…:t<i>`, same digest): each is a decision of its own, not a hit in
   * signetd's verdict cache nor coalesced with an identical request — the worst case, every pull different.
   */
  const nameOf = (i: number): string => cases[i % cases.length]!.name.replace(/:v1$/, `:t${i}`);

  function tally(answers: VerifyAnswer[], caseOf: (i: number) => Case) {
    const t = { accepted: 0, rejected: 0, wrong: [] as string[], shed: 0, otherStatus: [] as string[], refusedValid: [] as string[] };
    answers.forEach((a, i) => {
      const c = caseOf(i);
      if (a.status === GRPC_RESOURCE_EXHAUSTED) return void t.shed++;
      if (a.status !== 0) return void t.otherStatus.push(`${a.status} ${a.details}`);
      if (a.ok) t.accepted++;
      else t.rejected++;
      if (a.ok && c.expect === 'reject') t.wrong.push(`accepted ${c.name}: ${a.reason}`);
      if (!a.ok && c.expect === 'accept') t.refusedValid.push(`${a.code} ${a.reason}`);
    });
    return t;
  }

  it('a flood of 10,000 simultaneous decisions: the excess is shed with RESOURCE_EXHAUSTED, every admitted decision is right, memory stays bounded', async () => {
    const daemon = await daemonWithPolicy();
    const pid = daemon.proc.pid!;
    const client = verifyClient(daemon.socket, 50);
    try {
      const before = memoryOf(pid);
      const auditBefore = daemon.audit().length;
      const total = 10_000;
      const caseOf = (i: number) => cases[i % cases.length]!;
      // A long client deadline: this process, which makes and reads 10,000 calls at once, must not be
      // what times out. signetd still gives up on a queued call after maxQueueWait (5 s).
      const answers = await Promise.all(Array.from({ length: total }, (_, i) => client.verify(nameOf(i), caseOf(i).descriptor, 20_000)));
      const after = memoryOf(pid);
      const t = tally(answers, caseOf);
      console.log(
        `      flood: ${total} calls, ${t.accepted} accepted, ${t.rejected} rejected, ${t.shed} shed (RESOURCE_EXHAUSTED), ${t.otherStatus.length} other gRPC errors; signetd RSS ${before.rssMiB} MiB before, peak ${after.peakMiB} MiB, ${after.rssMiB} MiB after`,
      );
      assert.deepEqual(t.wrong, [], 'no image is accepted that the policy refuses');
      assert.deepEqual(t.otherStatus.slice(0, 5), [], 'every call gets a Judgement or RESOURCE_EXHAUSTED, never a deadline');
      assert.deepEqual(t.refusedValid.slice(0, 5), [], 'an admitted decision of a validly signed image is never refused (no REGISTRY_TIMEOUT from queueing)');
      assert.equal(t.accepted + t.rejected + t.shed, total);
      assert.ok(t.accepted > 0, 'some decisions are admitted');
      const shedAnswer = answers.find((a) => a.status === GRPC_RESOURCE_EXHAUSTED);
      if (shedAnswer) assert.match(shedAnswer.details, /overloaded/);
      assert.ok(
        after.peakMiB - before.rssMiB < 192,
        `peak RSS ${after.peakMiB} MiB, ${after.peakMiB - before.rssMiB} MiB above the ${before.rssMiB} MiB before`,
      );
      // One audit line per decision made (shed calls are not decisions: the engine never ran).
      await waitFor(() => daemon.audit().length - auditBefore === t.accepted + t.rejected, 'one audit line per decision', 10_000);
      assert.ok(isAlive(pid));
      const control = await client.verify(cases[0]!.name, cases[0]!.descriptor);
      assert.equal(control.ok, true, control.reason || control.details);
      // Idle again: the heap the flood grew is given back (idle-gc.ts); what stays is bounded.
      await new Promise((r) => setTimeout(r, 5000));
      const kept = memoryOf(pid).rssMiB;
      console.log(`      flood: signetd RSS ${kept} MiB 5 s later`);
      // V8 does not always hand pages back at once (kept 5 s later: 143-157 MiB above the start in the last
      // runs, as much as the peak): the bound here is on what a flood can cost at all, the same as the
      // peak's; whether decisions leave anything behind is the 20,000-decision test's second burst.
      assert.ok(kept - before.rssMiB < 192, `RSS kept ${kept} MiB, ${kept - before.rssMiB} MiB above the ${before.rssMiB} MiB before`);
    } finally {
      client.close();
      await daemon.stop();
    }
  });

  it('20,000 decisions at a sustainable concurrency: no wrong answer, no spurious refusal, one audit line each, and a second burst does not grow RSS again', async () => {
    // Every request a decision of the engine's own: names all different and no verdict cache (a bounded
    // memory consumer of its own; this measures what the decisions leave behind). The content cache stays
    // on, as in production: payloads fetched by digest are not fetched again, the .sig manifest always is.
    const daemon = await daemonWithPolicy('cacheTTL: 0s\nnegativeCacheTTL: 0s');
    const pid = daemon.proc.pid!;
    const client = verifyClient(daemon.socket, 16);
    try {
      // Warm up (JIT, connections, token and key caches), then measure from there.
      await pool(500, 64, (i) => client.verify(cases[i % 3]!.name.replace(/:v1$/, `:w${i}`), cases[i % 3]!.descriptor));
      await new Promise((r) => setTimeout(r, 500));
      const before = memoryOf(pid);
      const auditBefore = daemon.audit().length;
      const total = Number(process.env['SIGNET_LOAD_DECISIONS'] ?? 20_000);
      const caseOf = (i: number) => cases[i % cases.length]!;
      const started = Date.now();
      // Twice maxConcurrentDecisions at once: 64 deciding, up to 64 waiting.
      const answers = await pool(total, 128, (i) => client.verify(nameOf(i), caseOf(i).descriptor, 8000));
      const seconds = (Date.now() - started) / 1000;
      const t = tally(answers, caseOf);
      await waitFor(() => daemon.audit().length - auditBefore >= total, 'one audit line per decision', 30_000);
      // Idle: signetd gives back the heap the burst grew (after 2 s without work; see idle-gc.ts).
      await new Promise((r) => setTimeout(r, 5000));
      const after = memoryOf(pid);
      console.log(
        `      load: ${total} decisions in ${seconds.toFixed(1)} s (${Math.round(total / seconds)}/s), ${t.accepted} accepted, ${t.rejected} rejected, ${t.shed} shed; signetd RSS ${before.rssMiB} MiB before, ${after.rssMiB} MiB after, peak ${after.peakMiB} MiB`,
      );
      assert.deepEqual(t.wrong, [], 'no wrong answer');
      assert.deepEqual(t.otherStatus.slice(0, 5), [], 'no gRPC error');
      assert.equal(t.shed, 0, 'nothing shed at a sustainable concurrency');
      assert.deepEqual(t.refusedValid.slice(0, 5), [], 'no spurious refusal');
      assert.equal(t.accepted, answers.filter((_, i) => caseOf(i).expect === 'accept').length);
      assert.equal(daemon.audit().length - auditBefore, total, 'exactly one audit line per decision');
      // What decisions leave behind, told apart from V8's high-water mark: the first burst may leave the
      // heap bigger than before (pages V8 keeps; seen from +35 to +76 MiB in the whole suite), a second
      // burst of the same size must not grow it again — a leak would, by its size per decision.
      assert.ok(after.rssMiB - before.rssMiB <= 96, `RSS ${before.rssMiB} → ${after.rssMiB} MiB`);
      const auditSecond = daemon.audit().length;
      const again = await pool(total, 128, (i) => client.verify(caseOf(i).name.replace(/:v1$/, `:u${i}`), caseOf(i).descriptor, 8000));
      assert.equal(tally(again, caseOf).wrong.length, 0);
      await waitFor(() => daemon.audit().length - auditSecond >= total, 'one audit line per decision (second burst)', 30_000);
      await new Promise((r) => setTimeout(r, 5000));
      const second = memoryOf(pid);
      console.log(
        `      load: a second ${total} decisions; signetd RSS ${second.rssMiB} MiB after (${second.rssMiB - after.rssMiB} MiB more than after the first)`,
      );
      assert.ok(second.rssMiB - after.rssMiB <= 24, `RSS after the first burst ${after.rssMiB} MiB, after the second ${second.rssMiB} MiB`);
      assert.ok(isAlive(pid));
    } finally {
      client.close();
      await daemon.stop();
    }
  });

  it('300 pulls through the verifier executable, 10 at a time as containerd runs them: every exit code right', async () => {
    const daemon = await daemonWithPolicy();
    try {
      const auditBefore = daemon.audit().length;
      const runs = await pool(300, 10, (i) =>
        runVerifier({ socket: daemon.socket, name: cases[i % 3]!.name, descriptor: cases[i % 3]!.descriptor, timeoutMs: 20_000 }),
      );
      const wrong = runs
        .map((r, i) => ({ r, c: cases[i % 3]! }))
        .filter(({ r, c }) => r.code !== (c.expect === 'accept' ? 0 : 1))
        .map(({ r, c }) => `${c.name}: exit ${r.code} ${r.stdout}`);
      assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} wrong exit codes`);
      await waitFor(() => daemon.audit().length - auditBefore === 300, 'one audit line per pull', 10_000);
    } finally {
      await daemon.stop();
    }
  });
});
