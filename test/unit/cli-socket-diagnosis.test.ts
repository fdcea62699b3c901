/** What `signet status` and `signet doctor` say about an unreachable signetd socket (src/cli/commands/socket.ts). */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diagnoseSocket } from '../../src/cli/commands/socket.js';

describe('signetd socket diagnosis', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'signet-sock-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('no such file: names the path, says signetd is not running or listens elsewhere, and where the path comes from', async () => {
    const d = await diagnoseSocket(join(dir, 'absent.sock'));
    assert.deepEqual([d.exists, d.isSocket, d.answers], [false, false, false]);
    assert.equal(d.problem, `signetd's socket ${join(dir, 'absent.sock')}: no such file (signetd is not running, or listens elsewhere)`);
    assert.match(d.remedy, /--socket, SIGNET_SOCKET or socket: in signetd\.yaml/);
  });

  it('a file that is not a socket', async () => {
    writeFileSync(join(dir, 'plain'), '');
    const d = await diagnoseSocket(join(dir, 'plain'));
    assert.deepEqual([d.exists, d.isSocket, d.answers], [true, false, false]);
    assert.match(d.problem, /plain: the file exists but is not a socket/);
  });

  it('a socket left behind by a killed listener: nothing answers (ECONNREFUSED)', async () => {
    const path = join(dir, 'dead.sock');
    const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    const d = await diagnoseSocket(path);
    assert.deepEqual([d.exists, d.isSocket, d.answers], [true, true, false]);
    assert.match(d.problem, /dead\.sock: a socket file, but nothing answers on it \(ECONNREFUSED\)/);
    assert.match(d.remedy, /^restart signetd/);
  });

  it('a socket something listens on: answers', async () => {
    const path = join(dir, 'live.sock');
    const server = createServer((c) => c.destroy());
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const d = await diagnoseSocket(path);
      assert.deepEqual([d.exists, d.isSocket, d.answers], [true, true, true]);
    } finally {
      server.close();
    }
  });

  it('a path with control characters is escaped in the problem, kept as given in `path`', async () => {
    const path = join(dir, 'evil\x1b[2J.sock');
    const d = await diagnoseSocket(path);
    assert.equal(d.path, path);
    assert.ok(!d.problem.includes('\x1b'));
    assert.match(d.problem, /evil\\x1b\[2J\.sock: no such file/);
  });
});
