/**
 * Logs for operations: journald priority prefixes on signetd's stderr lines, Node's own warnings as
 * JSON log lines, and no MaxListenersExceededWarning from a decision with many concurrent lookups.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createLogger, routeProcessWarnings } from '../../src/daemon/logger.js';
import { cosignSignature, harness, KEYS, MemorySource, scopePolicy } from '../helpers/engine.js';
import type { DiscoveredSignature } from '../../src/engine/sources.js';

function capture(options: { syslogPrefix?: boolean }) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  return { log: createLogger('debug', out, options), lines: () => text.split('\n').filter(Boolean) };
}

describe('logs for operations', () => {
  it('prefixes each line with its journald priority when asked (<3> error … <7> debug), the JSON intact after it', async () => {
    const c = capture({ syslogPrefix: true });
    c.log.error('e');
    c.log.warn('w');
    c.log.info('i');
    c.log.debug('d');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      c.lines().map((l) => l.slice(0, 3)),
      ['<3>', '<4>', '<6>', '<7>'],
    );
    assert.equal((JSON.parse(c.lines()[0]!.slice(3)) as { message: string }).message, 'e');
  });

  it('writes plain JSON lines when not asked (a terminal, a pipe, the tests)', async () => {
    const c = capture({ syslogPrefix: false });
    c.log.warn('w');
    await new Promise((r) => setImmediate(r));
    assert.equal((JSON.parse(c.lines()[0]!) as { level: string }).level, 'warn');
  });

  it("turns Node's own warnings into log lines", async () => {
    const saved = process.listeners('warning');
    const c = capture({ syslogPrefix: false });
    try {
      routeProcessWarnings(c.log);
      process.emitWarning('something odd', 'MaxListenersExceededWarning');
      await new Promise((r) => setTimeout(r, 10));
      const line = JSON.parse(c.lines()[0]!) as Record<string, string>;
      assert.deepEqual([line['message'], line['name'], line['warning']], ['node warning', 'MaxListenersExceededWarning', 'something odd']);
    } finally {
      process.removeAllListeners('warning');
      for (const l of saved) process.on('warning', l);
    }
  });

  it('a decision whose lookups put 40 listeners on its deadline raises no MaxListenersExceededWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const signature = await cosignSignature(KEYS.release);
      // As 40 concurrent registry requests do: each listens on the decision's signal until it ends.
      const source = new MemorySource<DiscoveredSignature>('registry', async (signal) => {
        const listeners = Array.from({ length: 40 }, () => () => undefined);
        for (const l of listeners) signal?.addEventListener('abort', l);
        await new Promise((r) => setTimeout(r, 5));
        for (const l of listeners) signal?.removeEventListener('abort', l);
        return [signature];
      });
      const h = await harness({ policy: scopePolicy({ action: 'verify', signatures: { keys: ['release'] } }), signatures: [source] });
      assert.equal((await h.decide()).decision, 'accept');
      await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(warnings, []);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
