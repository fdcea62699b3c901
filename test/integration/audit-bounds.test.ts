/**
 * `signet audit` and the tag listing it reads are bounded: a registry that serves huge tag pages without
 * end (it once took the command to 4.7 GB) or loops its pagination gets a clear error, quickly and in
 * bounded memory; `--max-tags` raises the bound; signature and attestation tags never count.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignetError } from '../../src/errors.js';
import { RegistryClient } from '../../src/registry/client.js';
import { MEDIA_TYPES } from '../../src/registry/types.js';
import { SIGNET } from '../helpers/daemon.js';
import { startHostileRegistry, type HostileRegistry } from '../helpers/hostile-registry.js';
import { pushImage } from '../helpers/images.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Peak resident set of the command, MiB (GNU time). */
  peakMiB: number;
}

/** `signet ARGS` under GNU time, with a V8 heap cap so that unbounded growth shows as a crash, not a swap storm. */
function signet(args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'peak-kib=%M', process.execPath, '--max-old-space-size=512', SIGNET, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const m = /peak-kib=(\d+)/.exec(stderr);
      resolve({
        code,
        stdout,
        stderr: stderr.replace(/.*peak-kib=\d+\n?/s, (t) => t.replace(/peak-kib=\d+\n?/, '')),
        peakMiB: m ? Math.round(Number(m[1]) / 1024) : NaN,
      });
    });
  });
}

describe('signet audit: bounded tag listings', function () {
  this.timeout(120_000);
  let registry: HostileRegistry;
  let client: RegistryClient;
  let dir: string;
  let policyDir: string;

  before(async () => {
    registry = await startHostileRegistry();
    client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    dir = mkdtempSync(join(tmpdir(), 'signet-audit-bounds-'));
    policyDir = join(dir, 'policy.d');
    mkdirSync(policyDir);
    writeFileSync(join(policyDir, 'policy.yaml'), 'apiVersion: signet/v1\ndefault: { action: reject }\n');
  });
  after(async () => {
    await registry?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => registry.reset());

  /** Pages of 50,000 fresh tags each (about 800 KB), every one pointing at a next page, without end. */
  const endlessHugePages = (repo: string) => {
    registry.on(/\/tags\/list/, {
      kind: 'body',
      body: (path) => {
        const page = Number(new URL(path, 'http://x').searchParams.get('last')?.replace(/^p(\d+)-.*/, '$1') ?? -1) + 1;
        return Buffer.from(JSON.stringify({ name: repo, tags: Array.from({ length: 50_000 }, (_, i) => `p${page}-${String(i).padStart(6, '0')}`) }));
      },
      headers: (path) => {
        const page = Number(new URL(path, 'http://x').searchParams.get('last')?.replace(/^p(\d+)-.*/, '$1') ?? -1) + 1;
        return { link: `</v2/${repo}/tags/list?n=50000&last=p${page}-049999>; rel="next"` };
      },
    });
  };

  it('stops at the default bound (10,000 image tags) with a clear error, in bounded memory', async () => {
    endlessHugePages('huge/tags');
    const run = await signet(['audit', `${registry.host}/huge/tags`, '--policy-dir', policyDir, '--insecure-registry', registry.host]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /huge\/tags has more than 10000 image tags: nothing audited .*--max-tags/);
    assert.ok(registry.seen.length <= 3, `${registry.seen.length} pages read`);
    assert.ok(run.peakMiB < 200, `peak RSS ${run.peakMiB} MiB`);
    console.log(`      signet audit peak RSS ${run.peakMiB} MiB, ${registry.seen.length} requests`);
  });

  it('with --max-tags raised, still bounded by the bytes read in all (16 MiB)', async () => {
    endlessHugePages('huge/tags');
    const run = await signet(['audit', `${registry.host}/huge/tags`, '--policy-dir', policyDir, '--insecure-registry', registry.host, '--max-tags', '1000000']);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /(larger than 16777216 bytes in all|more than 1000000)/);
    assert.ok(run.peakMiB < 300, `peak RSS ${run.peakMiB} MiB`);
    console.log(`      signet audit --max-tags 1000000: peak RSS ${run.peakMiB} MiB, ${registry.seen.length} requests`);
  });

  it('a Link that loops back to a page already read is an error, not an endless listing', async () => {
    registry.on(/\/tags\/list/, { kind: 'headers', headers: { link: '</v2/loop/tags/list?n=5&last=a>; rel="next"' } });
    await pushImage(client, { registry: registry.host, repository: 'loop' }, 'v1');
    await assert.rejects(
      client.listTags({ registry: registry.host, repository: 'loop' }),
      (e: SignetError) => e.code === 'REGISTRY_PROTOCOL' && /loops back/.test(e.message),
    );
    assert.ok(registry.seen.filter((s) => s.path.includes('/tags/list')).length <= 2);
  });

  it('--max-tags counts image tags only, across pages; signature tags (sha256 and sha512) are dropped as they arrive', async () => {
    const repo = { registry: registry.host, repository: 'many/tags' };
    const img = await pushImage(client, repo, 'v0');
    const bytes = registry.manifest('many/tags', 'v0')!;
    for (let i = 1; i < 30; i++) registry.putManifest('many/tags', `v${i}`, bytes, MEDIA_TYPES.ociManifest);
    for (let i = 0; i < 40; i++) registry.putManifest('many/tags', `sha256-${String(i).padStart(64, '0')}.sig`, bytes, MEDIA_TYPES.ociManifest);
    for (let i = 0; i < 5; i++)
      registry.putManifest('many/tags', `sha512-${String(i).padStart(128, '0')}.${['sig', 'att', 'sbom'][i % 3]}`, bytes, MEDIA_TYPES.ociManifest);
    assert.equal((await client.listTags(repo, { pageSize: 7, keep: (t) => !t.startsWith('sha') })).length, 30);
    await assert.rejects(
      client.listTags(repo, { pageSize: 7, maxTags: 29, keep: (t) => !t.startsWith('sha') }),
      (e: SignetError) => e.code === 'BLOB_TOO_LARGE' && /more than 29 tags/.test(e.message),
    );
    await assert.rejects(
      client.listTags(repo, { pageSize: 7, maxBytes: 300 }),
      (e: SignetError) => e.code === 'BLOB_TOO_LARGE' && /larger than 300 bytes in all/.test(e.message),
    );
    const tooFew = await signet(['audit', `${registry.host}/many/tags`, '--policy-dir', policyDir, '--insecure-registry', registry.host, '--max-tags', '29']);
    assert.equal(tooFew.code, 1);
    assert.match(tooFew.stderr, /more than 29 image tags/);
    const enough = await signet([
      'audit',
      `${registry.host}/many/tags`,
      '--policy-dir',
      policyDir,
      '--insecure-registry',
      registry.host,
      '--max-tags',
      '30',
      '--output',
      'json',
    ]);
    const report = JSON.parse(enough.stdout) as { tags: number; results: Array<{ digest: string }> };
    assert.equal(report.tags, 30, enough.stderr);
    assert.ok(report.results.every((r) => r.digest === img.digest));
  });

  it('a tag list holding something that is not a tag is a protocol error', async () => {
    registry.on(/\/tags\/list/, { kind: 'body', body: Buffer.from(JSON.stringify({ name: 'x', tags: ['ok', `bad\u001b[32m${'x'.repeat(1000)}`] })) });
    await assert.rejects(
      client.listTags({ registry: registry.host, repository: 'x' }),
      (e: SignetError) => e.code === 'REGISTRY_PROTOCOL' && /not a tag/.test(e.message) && e.message.length < 200,
    );
  });
});
