import assert from 'node:assert/strict';
import { Admission } from '../../src/daemon/admission.js';
import { IdleCompactor } from '../../src/daemon/idle-gc.js';

const later = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** About `mib` MiB of objects that survive long enough to reach the old generation, then are dropped. */
async function burst(mib: number): Promise<void> {
  let keep: unknown[] = [];
  for (let i = 0; i < mib * 16; i++) {
    keep.push(Array.from({ length: 1024 }, (_, j) => ({ i, j })));
    if (i % 64 === 0) await later(0);
  }
  keep = [];
  void keep;
}

describe('idle compaction: memory given back after a burst', function () {
  this.timeout(30_000);

  it('collects once, when idle after enough work, and gives the garbage back', async () => {
    const c = new IdleCompactor({ idleMs: 50, minWork: 3, minSlackBytes: 8 * 1024 * 1024 });
    await burst(120);
    const before = process.memoryUsage();
    for (let i = 0; i < 3; i++) c.ended(false);
    await later(300);
    const after = process.memoryUsage();
    assert.equal(c.collections, 1);
    assert.ok(
      after.heapUsed < before.heapUsed - 32 * 1024 * 1024,
      `heap in use ${Math.round(before.heapUsed / 2 ** 20)} → ${Math.round(after.heapUsed / 2 ** 20)} MiB`,
    );
    c.stop();
  });

  it('does nothing while busy, before enough work, or when little would be gained', async () => {
    const busy = new IdleCompactor({ idleMs: 20, minWork: 1, minSlackBytes: 0 });
    for (let i = 0; i < 10; i++) busy.ended(true);
    const few = new IdleCompactor({ idleMs: 20, minWork: 100, minSlackBytes: 0 });
    for (let i = 0; i < 10; i++) few.ended(false);
    const small = new IdleCompactor({ idleMs: 20, minWork: 1, minSlackBytes: 2 ** 40 });
    small.ended(false);
    await later(100);
    assert.deepEqual([busy.collections, few.collections, small.collections], [0, 0, 0]);
  });

  it('admission tells when a request leaves, done or refused, busy or not', async () => {
    const seen: boolean[] = [];
    const a = new Admission({ maxInFlight: 1, maxQueued: 1, maxQueueWaitMs: 1000, onSettled: (b) => seen.push(b) });
    const runs = [a.run(async () => later(10)), a.run(async () => later(10)), a.run(async () => later(10)).catch(() => 'refused')];
    assert.equal(await runs[2], 'refused');
    await Promise.all(runs);
    assert.deepEqual(seen, [true, true, false]);
  });
});
