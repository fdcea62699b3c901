/**
 * signet-verifier against a hostile peer on its socket: whatever "signetd" answers, containerd's
 * terminal gets one bounded line without raw control characters, and an endless answer is cut off
 * quickly, with bounded memory, and refused (fail closed).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ROOT, VERIFIER } from '../helpers/daemon.js';
import { startFakeSignetd, type FakeAnswer } from '../helpers/fake-signetd.js';
import { RAW_CONTROL } from '../helpers/raw-control.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const DESCRIPTOR = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: DIGEST, size: 512 };
const FORGED = '\x1b[2K\r\x1b[32mOK: image accepted\x1b[0m\x07\n\x9b1A\u202e';

interface Run {
  code: number | null;
  stdout: string;
  ms: number;
  /** The verifier's peak resident set (VmHWM), sampled while it ran, in bytes. */
  peakRss: number;
}

/** The verifier as containerd runs it, its peak RSS sampled from /proc while it runs. */
function runVerifier(socket: string, name = 'registry.example.com/app:1', timeout = '8s'): Promise<Run> {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(VERIFIER, ['-name', name, '-digest', DIGEST, '-stdin-media-type', 'application/vnd.oci.descriptor.v1+json'], {
      env: { PATH: process.env['PATH'], SIGNET_SOCKET: socket, SIGNET_VERIFIER_TIMEOUT: timeout },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let stdout = '';
    let peakRss = 0;
    const sample = (): void => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024);
      } catch {
        /* exited */
      }
    };
    const poll = setInterval(sample, 5);
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      clearTimeout(kill);
      resolvePromise({ code, stdout, ms: Date.now() - started, peakRss });
    });
    child.stdin!.end(`${JSON.stringify(DESCRIPTOR)}\n`);
  });
}

async function withFake<T>(answer: FakeAnswer, fn: (socket: string, bytesSent: () => number) => Promise<T>): Promise<T> {
  const fake = await startFakeSignetd(answer);
  try {
    return await fn(fake.socket, fake.bytesSent);
  } finally {
    await fake.stop();
  }
}

describe('signet-verifier against a hostile peer on its socket', function () {
  this.timeout(60_000);

  it('refuses an endless answer quickly, reading at most about 1 MiB, with bounded memory (fail closed)', async () => {
    // Baseline: the verifier refused by a short answer.
    const small = await withFake({ judgement: { ok: false, reason: 'rejected' } }, (s) => runVerifier(s));
    assert.equal(small.code, 1);
    await withFake({ stream: { bytes: 400 << 20 } }, async (socket, bytesSent) => {
      const run = await runVerifier(socket);
      assert.equal(run.code, 1, run.stdout);
      assert.match(
        run.stdout,
        /^signet: cannot get a decision from signetd at .*\(the answer is larger than 1048576 bytes\); rejecting registry\.example\.com\/app:1 \(fail closed\)\n$/,
      );
      assert.ok(run.ms < 5000, `refused in ${run.ms} ms`);
      assert.ok(bytesSent() < 4 << 20, `the verifier took ${bytesSent()} bytes of a 400 MiB answer`);
      if (small.peakRss > 0 && run.peakRss > 0) {
        assert.ok(run.peakRss - small.peakRss < 32 << 20, `peak RSS ${run.peakRss >> 20} MiB, ${small.peakRss >> 20} MiB for a short answer`);
      }
    });
  });

  it("prints a Judgement's forged terminal sequences escaped, and a 900 KiB reason bounded", async () => {
    const reason = `rejected registry.example.com/app:1: ${FORGED}${'x'.repeat(900 << 10)} no signatures found`;
    await withFake({ judgement: { ok: false, reason } }, async (socket) => {
      const run = await runVerifier(socket);
      assert.equal(run.code, 1);
      assert.doesNotMatch(run.stdout.slice(0, -1), RAW_CONTROL);
      assert.ok(run.stdout.length <= 4097, `${run.stdout.length} characters`);
      assert.match(
        run.stdout,
        /^rejected registry\.example\.com\/app:1: \\x1b\[2K \\x1b\[32mOK: image accepted\\x1b\[0m\\x07 \\x9b1A\\u\{202e\}x+…\[\d+ characters cut\]…x+ no signatures found\n$/,
      );
    });
  });

  it('prints a gRPC error message with escape sequences escaped and bounded', async () => {
    await withFake({ grpcError: { status: 13, message: `boom ${FORGED}${'y'.repeat(30_000)}` } }, async (socket) => {
      const run = await runVerifier(socket);
      assert.equal(run.code, 1);
      assert.doesNotMatch(run.stdout.slice(0, -1), RAW_CONTROL);
      assert.ok(run.stdout.length <= 4097, `${run.stdout.length} characters`);
      assert.match(
        run.stdout,
        /gRPC status 13: boom \\x1b\[2K \\x1b\[32mOK: image accepted\\x1b\[0m\\x07 \\x9b1A\\u\{202e\}y+…\[\d+ characters cut\]…y+\); rejecting/,
      );
      assert.match(run.stdout, /\(fail closed\)\n$/);
    });
  });

  it('escapes an image name with escape sequences in its own messages', async () => {
    await withFake({ stream: { bytes: 8 << 20 } }, async (socket) => {
      const run = await runVerifier(socket, `evil\x1b[32mOK\x07${'z'.repeat(3000)}`);
      assert.equal(run.code, 1);
      assert.doesNotMatch(run.stdout.slice(0, -1), RAW_CONTROL);
      assert.match(run.stdout, /rejecting evil\\x1b\[32mOK\\x07z+/);
    });
  });
});

describe('signet-verifier import graph', () => {
  it('reaches only node builtins and src/verifier (start-up time is per pull)', () => {
    const start = resolve(VERIFIER);
    const seen = new Set<string>();
    const todo = [start];
    const outside: string[] = [];
    while (todo.length > 0) {
      const file = todo.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const spec = m[1] ?? m[2]!;
        if (spec.startsWith('node:')) continue;
        if (!spec.startsWith('.')) {
          outside.push(`${file}: ${spec}`);
          continue;
        }
        const target = join(dirname(file), spec);
        if (target !== start && !target.startsWith(join(ROOT, 'dist/src/verifier/'))) outside.push(`${file}: ${spec}`);
        todo.push(target);
      }
    }
    assert.deepEqual(outside, []);
    assert.ok(
      [...seen].some((f) => f.endsWith('verifier/printable.js')),
      'the verifier escapes with the shared printable()',
    );
  });
});
