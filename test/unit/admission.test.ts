import assert from 'node:assert/strict';
import { Abandoned, Admission, Overloaded } from '../../src/daemon/admission.js';
import { DEFAULT_CONFIG, parseConfig } from '../../src/daemon/config.js';

const later = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Work that finishes when its `finish` is called. */
function gate() {
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  return { finish, work: () => done.then(() => 'done') };
}

describe('admission control', () => {
  it('runs at most maxInFlight at once and queues the next ones in order', async () => {
    const a = new Admission({ maxInFlight: 2, maxQueued: 10, maxQueueWaitMs: 5000 });
    const order: number[] = [];
    const gates = Array.from({ length: 5 }, gate);
    const runs = gates.map((g, i) => a.run(async () => (order.push(i), g.work())));
    await later(10);
    assert.deepEqual(order, [0, 1]);
    assert.deepEqual({ inFlight: a.status().inFlight, queued: a.status().queued }, { inFlight: 2, queued: 3 });
    gates[1]!.finish();
    await later(10);
    assert.deepEqual(order, [0, 1, 2]);
    for (const g of gates) g.finish();
    assert.deepEqual(await Promise.all(runs), ['done', 'done', 'done', 'done', 'done']);
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    assert.equal(a.status().inFlight, 0);
    assert.equal(a.status().admitted, 5);
  });

  it('refuses at once when the queue is full', async () => {
    const a = new Admission({ maxInFlight: 1, maxQueued: 1, maxQueueWaitMs: 5000 });
    const g = gate();
    const first = a.run(g.work);
    const second = a.run(g.work);
    await assert.rejects(a.run(g.work), (e: Overloaded) => e instanceof Overloaded && e.reason === 'queue-full' && /maxQueuedDecisions 1/.test(e.message));
    g.finish();
    await Promise.all([first, second]);
    assert.equal(a.status().refusedQueueFull, 1);
  });

  it("a waiter gives up after maxQueueWait, or just before its caller's deadline, whichever is first", async () => {
    const a = new Admission({ maxInFlight: 1, maxQueued: 10, maxQueueWaitMs: 150 });
    const g = gate();
    const first = a.run(g.work);
    let t = Date.now();
    await assert.rejects(a.run(g.work), (e: Overloaded) => e.reason === 'queue-timeout');
    assert.ok(Date.now() - t >= 140 && Date.now() - t < 1000, `${Date.now() - t} ms`);
    t = Date.now();
    await assert.rejects(a.run(g.work, { deadline: Date.now() + 180 }), (e: Overloaded) => e.reason === 'queue-timeout');
    assert.ok(Date.now() - t < 150, `gave up ${Date.now() - t} ms later, before the caller's deadline`);
    g.finish();
    await first;
    assert.equal(a.status().queued, 0);
  });

  it('a caller that goes away leaves the queue and is never run', async () => {
    const a = new Admission({ maxInFlight: 1, maxQueued: 10, maxQueueWaitMs: 5000 });
    const g = gate();
    const first = a.run(g.work);
    const gone = new AbortController();
    let ran = false;
    const waiting = a.run(async () => void (ran = true), { signal: gone.signal });
    gone.abort();
    await assert.rejects(waiting, (e: Error) => e instanceof Abandoned);
    g.finish();
    await first;
    await later(10);
    assert.equal(ran, false);
    assert.deepEqual({ inFlight: a.status().inFlight, queued: a.status().queued, abandoned: a.status().abandoned }, { inFlight: 0, queued: 0, abandoned: 1 });
  });

  it('a failing piece of work frees its slot', async () => {
    const a = new Admission({ maxInFlight: 1, maxQueued: 1, maxQueueWaitMs: 1000 });
    await assert.rejects(
      a.run(async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await a.run(async () => 'next'), 'next');
    assert.equal(a.status().inFlight, 0);
  });

  it('config: defaults, and the keys read from signetd.yaml', () => {
    assert.equal(DEFAULT_CONFIG.maxConcurrentDecisions, 64);
    assert.equal(DEFAULT_CONFIG.maxQueuedDecisions, 1024);
    assert.equal(DEFAULT_CONFIG.maxQueueWaitMs, 5000);
    assert.equal(DEFAULT_CONFIG.registryConcurrency, 16);
    const c = parseConfig('maxConcurrentDecisions: 8\nmaxQueuedDecisions: 0\nmaxQueueWait: 1500ms\nregistryConcurrency: 4\n', 'c.yaml');
    assert.deepEqual([c.maxConcurrentDecisions, c.maxQueuedDecisions, c.maxQueueWaitMs, c.registryConcurrency], [8, 0, 1500, 4]);
    for (const bad of ['maxConcurrentDecisions: 0', 'maxQueuedDecisions: -1', 'registryConcurrency: many', 'maxQueueWait: soon']) {
      assert.throws(
        () => parseConfig(`${bad}\n`, 'c.yaml'),
        (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && e.message.includes(bad.split(':')[0]!),
        bad,
      );
    }
  });
});
