/**
 * Start the real signetd (the compiled executable, as systemd would) with a temporary config,
 * policy directory, socket and audit log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
export const SIGNETD = join(ROOT, 'dist/src/cli/signetd.js');
export const VERIFIER = join(ROOT, 'dist/src/cli/signet-verifier.js');
export const SIGNET = join(ROOT, 'dist/src/cli/signet.js');

export interface DaemonHandle {
  dir: string;
  socket: string;
  policyDir: string;
  auditLog: string;
  configPath: string;
  proc: ChildProcess;
  /** Everything the daemon wrote to stderr (its log). */
  log(): string;
  audit(): Array<Record<string, unknown>>;
  writePolicy(file: string, content: string | object): void;
  stop(): Promise<void>;
}

export interface DaemonOptions {
  policy?: string | object;
  insecureRegistries?: string[];
  extraConfig?: string;
  env?: NodeJS.ProcessEnv;
  /** Do not wait for the socket (for tests of start-up failures). */
  noWait?: boolean;
}

export async function startDaemon(options: DaemonOptions = {}): Promise<DaemonHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'signetd-test-'));
  const policyDir = join(dir, 'policy.d');
  mkdirSync(policyDir);
  const socket = join(dir, 'run', 'signetd.sock');
  // A test may put the audit log elsewhere (auditLog: in extraConfig); the handle reads that file.
  const auditLog = /^auditLog: (\S+)$/m.exec(options.extraConfig ?? '')?.[1] ?? join(dir, 'audit.log');
  const configPath = join(dir, 'signetd.yaml');
  writeFileSync(
    configPath,
    [
      `socket: ${socket}`,
      `policyDir: ${policyDir}`,
      ...(/^auditLog:/m.test(options.extraConfig ?? '') ? [] : [`auditLog: ${auditLog}`]),
      `insecureRegistries: ${JSON.stringify(options.insecureRegistries ?? [])}`,
      // Settings the test's extraConfig gives replace these defaults.
      ...['registryTimeout: 2s', 'registryRetries: 0', 'verifyTimeout: 5s'].filter(
        (l) => !new RegExp(`^${l.split(':')[0]}:`, 'm').test(options.extraConfig ?? ''),
      ),
      ...(options.extraConfig?.includes('logLevel:') ? [] : ['logLevel: debug']),
      // Tests never watch a containerd of the machine's own; those that want one name its socket.
      ...(options.extraConfig?.includes('containerd:') ? [] : ['containerd: { enabled: false }']),
      options.extraConfig ?? '',
    ].join('\n'),
  );
  const writePolicy = (file: string, content: string | object): void => {
    const text = typeof content === 'string' ? content : JSON.stringify(content, null, 2);
    // Write then rename, as configuration management does, so the watcher never sees half a file.
    const tmp = join(dir, `.${file}.tmp`);
    writeFileSync(tmp, text);
    writeFileSync(join(policyDir, file), text);
    rmSync(tmp, { force: true });
  };
  if (options.policy !== undefined) writePolicy('policy.yaml', options.policy);

  let stderr = '';
  const proc = spawn(process.execPath, [SIGNETD, '--config', configPath], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const handle: DaemonHandle = {
    dir,
    socket,
    policyDir,
    auditLog,
    configPath,
    proc,
    log: () => stderr,
    audit: () =>
      existsSync(auditLog)
        ? readFileSync(auditLog, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        : [],
    writePolicy,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await new Promise<void>((r) => {
          const t = setTimeout(() => {
            proc.kill('SIGKILL');
            r();
          }, 5000);
          proc.once('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (!options.noWait) await waitForSocket(socket, proc, () => stderr);
  return handle;
}

export async function waitForSocket(socket: string, proc: ChildProcess, log: () => string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`signetd exited with ${proc.exitCode}: ${log()}`);
    if (existsSync(socket)) {
      const ok = await new Promise<boolean>((r) => {
        const s = connect(socket);
        s.once('connect', () => (s.destroy(), r(true)));
        s.once('error', () => r(false));
      });
      if (ok) return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`signetd did not listen on ${socket} within ${timeoutMs} ms: ${log()}`);
}

/** Wait until `predicate` holds, polling; throws with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await predicate()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
