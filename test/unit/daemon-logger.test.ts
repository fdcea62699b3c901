import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/daemon/logger.js';
import { RAW_CONTROL } from '../helpers/raw-control.js';

function capture(): { stream: Writable; lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, lines: () => text.split('\n').filter(Boolean) };
}

describe('daemon log: untrusted fields escaped and bounded', () => {
  it('escapes control characters in the message and every string field, nested ones included, and cuts long ones', async () => {
    const out = capture();
    const log = createLogger('debug', out.stream);
    const forged = '\x1b[2K\r\x1b[32mOK: image accepted\x1b[0m\x07\n\x9b1A\u202e';
    log.warn(`verification failed ${forged}`, {
      image: `evil${forged}${'a'.repeat(1 << 20)}`,
      error: new Error(`registry said ${forged}`),
      nested: { reasons: [forged] },
      count: 3,
    });
    await new Promise((r) => setImmediate(r));
    const lines = out.lines();
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    assert.doesNotMatch(line, RAW_CONTROL);
    assert.ok(line.length < 16 * 1024, `${line.length} bytes`);
    const parsed = JSON.parse(line) as Record<string, any>;
    assert.equal(parsed['level'], 'warn');
    assert.equal(parsed['count'], 3);
    assert.match(parsed['message'], /^verification failed \\x1b\[2K\\r\\x1b\[32mOK: image accepted\\x1b\[0m\\x07\\n\\x9b1A\\u\{202e\}$/);
    assert.match(parsed['image'], /^evil\\x1b.*a+…\[\d+ characters cut\]…a+$/);
    assert.doesNotMatch(JSON.stringify(parsed), /[\u0000-\u001f\u007f-\u009f\u202e]/, 'no control character even after JSON decoding');
    assert.match(parsed['error'], /^registry said \\x1b/);
    assert.match(parsed['nested'].reasons[0], /^\\x1b\[2K/);
  });
});
