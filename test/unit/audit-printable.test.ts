import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { Decision } from '../../src/engine/decision.js';
import { withChanges } from '../../src/util/printable-decision.js';
import { RAW_CONTROL } from '../helpers/raw-control.js';

const FORGED = '\x1b[2K\r\x1b[32mOK: image accepted\x1b[0m\x07\n\x9b1A\u202e';

describe('audit line: untrusted text escaped and bounded', () => {
  it('a 1 MiB name with escape sequences and a registry message quoting it make one short line without control characters', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-printable-'));
    try {
      const name = `registry.example.com/app${FORGED}${'n'.repeat(1 << 20)}:1`;
      const decision: Decision = {
        ok: false,
        decision: 'reject',
        reason: `rejected: invalid image reference "${name}": too long`,
        code: 'INVALID_REFERENCE',
        name,
        image: name,
        digest: `sha256:${'ab'.repeat(32)}`,
        mediaType: `application/vnd.oci.image.manifest.v1+json${FORGED}`,
        scope: '',
        signatures: Array.from({ length: 500 }, (_, i) => ({
          format: 'cosign' as const,
          source: `registry${FORGED}${i}`,
          key: 'k',
          valid: false,
          reason: `registry answered 500 (error: ${FORGED}${'m'.repeat(10_000)})`,
        })),
        warnings: [FORGED],
        policyGeneration: 'g1',
        durationMs: 1,
      };
      const audit = new AuditLog(join(dir, 'audit.log'));
      assert.equal(audit.record(decision, { event: 'image-event', namespace: `k8s.io${FORGED}`, action: 'reported' }), true);
      await audit.close();
      const text = readFileSync(join(dir, 'audit.log'), 'utf8');
      const lines = text.split('\n').filter(Boolean);
      assert.equal(lines.length, 1);
      assert.doesNotMatch(lines[0]!, RAW_CONTROL);
      assert.ok(lines[0]!.length < 256 * 1024, `${lines[0]!.length} bytes`);
      const record = JSON.parse(lines[0]!) as Record<string, any>;
      assert.doesNotMatch(JSON.stringify(record), /[\u0000-\u001f\u007f-\u009f\u202e]/, 'nothing raw after decoding either');
      assert.ok(record['name'].length <= 512 && record['image'].length <= 512);
      assert.match(
        record['reason'],
        /^rejected: invalid image reference "registry\.example\.com\/app\\x1b\[2K\\r\\x1b\[32mOK.*…\[\d+ characters cut\]…n+:1": too long$/,
        'the start and the end of the reason are kept',
      );
      assert.ok(record['signatures'].length <= 64);
      assert.match(record['warnings'].at(-1), /436 more signature results not listed/);
      assert.match(record['namespace'], /^k8s\.io\\x1b/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a plain decision line (made once per verdict, then per answer only time, cached, name, durationMs): the same fields, order and escaping as every other line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-printable-'));
    try {
      const stored: Decision = {
        ok: true,
        decision: 'accept',
        reason: `accepted registry.example.com/app${FORGED}`,
        name: `registry.example.com/app:v1${FORGED}`,
        image: 'registry.example.com/app:v1',
        digest: `sha256:${'cd'.repeat(32)}`,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        scope: 'registry.example.com/app',
        signatures: [{ format: 'cosign', source: `registry${FORGED}`, key: 'release', valid: true, reason: 'ok' }],
        warnings: [],
        policyGeneration: 'g1',
        durationMs: 4.2,
      };
      const answered = withChanges(stored, { name: `registry.example.com/app:other${FORGED}`, durationMs: 0.01, cached: true });
      const audit = new AuditLog(join(dir, 'audit.log'));
      assert.equal(audit.record(stored), true);
      assert.equal(audit.record(answered), true);
      assert.equal(audit.record(stored, { event: 'reverify', namespace: 'default', action: 'none' }), true);
      await audit.close();
      const lines = readFileSync(join(dir, 'audit.log'), 'utf8').split('\n').filter(Boolean);
      for (const line of lines) assert.doesNotMatch(line, RAW_CONTROL);
      const [first, second, node] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      const order = [
        'time',
        'event',
        'host',
        'cached',
        'name',
        'image',
        'digest',
        'mediaType',
        'scope',
        'decision',
        'reason',
        'signatures',
        'warnings',
        'policyGeneration',
        'durationMs',
        'level',
        'message',
      ];
      assert.deepEqual(Object.keys(first!), order);
      assert.deepEqual(Object.keys(second!), order);
      assert.deepEqual(
        Object.keys(node!).filter((k) => k !== 'namespace' && k !== 'action'),
        order,
        'as the lines built field by field',
      );
      const { time: _t1, ...a } = first!;
      const { time: _t2, ...b } = second!;
      assert.deepEqual(
        { ...a, cached: true, name: b['name'], durationMs: 0.01 },
        b,
        'the answer differs from the stored verdict in cached, name and durationMs only',
      );
      assert.match(String(b['name']), /^registry\.example\.com\/app:other\\x1b\[2K/);
      assert.deepEqual(first!['signatures'], node!['signatures']);
      assert.equal(first!['reason'], node!['reason']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
