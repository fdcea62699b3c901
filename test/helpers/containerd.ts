/**
 * Real containerd as a test bed: one of the three lines (1.6 from Debian 12, 1.7 and 2.x unpacked by
 * scripts/fetch-debian-parts.sh) started as a plain process under a short temporary folder, with its
 * own root, state, sockets, opt path and NRI socket, and the config this VM needs for runc
 * (restrict_oom_score_adj, no systemd cgroups). On 2.x the image-verifier bindir plugin points at
 * `verifierDir` (an empty folder when not given, so a host's own verifiers never run).
 *
 * Stopping kills containerd by pid (SIGTERM, then SIGKILL), then the shims it started (found by the
 * socket address on their command line), unmounts whatever is still mounted under the folder and
 * removes it. The same happens synchronously when the test process exits first.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CONTAINERD_BIN, requireDebianParts, type ContainerdLine } from './debian-parts.js';

export type { ContainerdLine } from './debian-parts.js';

export interface ContainerdOptions {
  line: ContainerdLine;
  /** bin_dir of the image-verifier bindir plugin (2.x only): every executable in it runs for each pull. */
  verifierDir?: string;
  /**
   * TOML lines placed inside the CRI image section: `[plugins."io.containerd.cri.v1.images"]` on 2.x,
   * `[plugins."io.containerd.grpc.v1.cri"]` on 1.6/1.7 (where the image settings live at the CRI
   * plugin's top level), e.g. `max_concurrent_downloads = 2`. Plain `key = value` lines only: tables go
   * in `extraToml`.
   */
  criConfig?: string;
  /** TOML lines placed inside the CRI runtime section (`cri.v1.runtime` on 2.x, `grpc.v1.cri` on 1.x). */
  criRuntimeConfig?: string;
  /** The CRI registry `config_path` (a certs.d folder, see writeRegistryHosts). */
  registryConfigPath?: string;
  /** The pod sandbox ("pause") image CRI runs for RunPodSandbox; containerd's default is registry.k8s.io/pause. */
  sandboxImage?: string;
  /** Raw TOML appended at the end of the config (whole tables; must not repeat a table written above). */
  extraToml?: string;
  /**
   * Files (or globs) for the top-level `imports = [...]` line, written before any table (2.x, version 3),
   * e.g. the drop-in `signet install` writes. containerd merges them over this config.
   */
  imports?: string[];
  /** Enable NRI with the socket at `nriSocket` (default: on for 2.x and 1.7; 1.6 has no NRI). */
  nri?: boolean;
  /** Extra environment for containerd (inherited by shims and verifiers), over this process's own. */
  env?: NodeJS.ProcessEnv;
  /** Log level (default info). */
  logLevel?: 'debug' | 'info' | 'warn';
  /** How long to wait for the socket to answer (default 20 s). */
  startTimeoutMs?: number;
}

export interface CtrResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CtrOptions {
  /** containerd namespace (ctr's default is `default`; CRI uses `k8s.io`). */
  namespace?: string;
  timeoutMs?: number;
  input?: string;
}

export interface ContainerdHandle {
  line: ContainerdLine;
  /** The server's version, as `ctr version` reports it (e.g. `2.1.9+unknown`). */
  version: string;
  /** The temporary folder holding root, state, sockets and config. */
  dir: string;
  /** The gRPC socket (CRI and containerd API). */
  address: string;
  /** The NRI socket path (listening only when NRI is enabled). */
  nriSocket: string;
  configPath: string;
  /** The bin folder of this line (containerd, ctr, containerd-shim-runc-v2). */
  binDir: string;
  /** The verifier bin_dir configured (2.x), else undefined. */
  verifierDir: string | undefined;
  /** ms from spawn until `ctr version` answered. */
  startupMs: number;
  proc: ChildProcess;
  /** Everything containerd wrote (its log, level info unless set). */
  log(): string;
  /** Run this line's ctr against this containerd. */
  ctr(args: string[], opts?: CtrOptions): Promise<CtrResult>;
  stop(): Promise<void>;
}

/** Where each line keeps its CRI image and runtime settings, and the config format. */
function sections(line: ContainerdLine) {
  return line === '2.x'
    ? {
        version: 3,
        criImages: 'plugins."io.containerd.cri.v1.images"',
        criRuntime: 'plugins."io.containerd.cri.v1.runtime"',
        runc: 'plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc',
        registry: 'plugins."io.containerd.cri.v1.images".registry',
        pinned: 'plugins."io.containerd.cri.v1.images".pinned_images',
      }
    : {
        version: 2,
        criImages: 'plugins."io.containerd.grpc.v1.cri"',
        criRuntime: 'plugins."io.containerd.grpc.v1.cri"',
        runc: 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc',
        registry: 'plugins."io.containerd.grpc.v1.cri".registry',
        pinned: undefined,
      };
}

const tomlString = (s: string): string => JSON.stringify(s);

/** The config file text for `line` under `dir` (exported for tests of the helper and for reading). */
export function containerdConfig(dir: string, options: ContainerdOptions & { verifierDir?: string }): string {
  const { line } = options;
  const s = sections(line);
  const nri = options.nri ?? line !== '1.6';
  if (nri && line === '1.6') throw new Error('containerd 1.6 has no NRI');
  const out: string[] = [
    `version = ${s.version}`,
    `root = ${tomlString(join(dir, 'root'))}`,
    `state = ${tomlString(join(dir, 'state'))}`,
    ...(options.imports?.length ? [`imports = [${options.imports.map(tomlString).join(', ')}]`] : []),
    '',
    '[grpc]',
    `  address = ${tomlString(join(dir, 'c.sock'))}`,
    '[ttrpc]',
    `  address = ${tomlString(join(dir, 'c.sock.ttrpc'))}`,
    '[debug]',
    `  level = ${tomlString(options.logLevel ?? 'info')}`,
    '',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${tomlString(join(dir, 'opt'))}`,
  ];
  if (line !== '1.6') {
    out.push('[plugins."io.containerd.nri.v1.nri"]', `  disable = ${!nri}`, `  socket_path = ${tomlString(join(dir, 'nri.sock'))}`);
  }
  if (line === '2.x') {
    out.push('[plugins."io.containerd.image-verifier.v1.bindir"]', `  bin_dir = ${tomlString(options.verifierDir ?? join(dir, 'verifiers'))}`);
  } else if (options.verifierDir) {
    throw new Error(`containerd ${line} has no image-verifier plugin (2.x only)`);
  }

  const indent = (text: string | undefined) =>
    (text ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map((l) => `  ${l}`);
  if (line === '2.x') {
    out.push('', `[${s.criImages}]`, ...indent(options.criConfig));
    if (options.sandboxImage) out.push(`[${s.pinned}]`, `  sandbox = ${tomlString(options.sandboxImage)}`);
    if (options.registryConfigPath) out.push(`[${s.registry}]`, `  config_path = ${tomlString(options.registryConfigPath)}`);
    out.push('', `[${s.criRuntime}]`, '  restrict_oom_score_adj = true', ...indent(options.criRuntimeConfig));
  } else {
    // 1.x: one CRI plugin table holds both the image and the runtime settings.
    out.push('', `[${s.criImages}]`, '  restrict_oom_score_adj = true', ...indent(options.criConfig), ...indent(options.criRuntimeConfig));
    if (options.sandboxImage) out.push(`  sandbox_image = ${tomlString(options.sandboxImage)}`);
    out.push(`[plugins."io.containerd.grpc.v1.cri".containerd]`, '  default_runtime_name = "runc"');
    if (options.registryConfigPath) out.push(`[${s.registry}]`, `  config_path = ${tomlString(options.registryConfigPath)}`);
  }
  out.push(
    `[${s.runc}]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${s.runc}.options]`,
    '  SystemdCgroup = false',
    `  Root = ${tomlString(join(dir, 'runc'))}`,
  );
  if (options.extraToml) out.push('', options.extraToml);
  return `${out.join('\n')}\n`;
}

/**
 * A certs.d folder (for `registry.config_path` in CRI, or `ctr --hosts-dir`) that sends `host`
 * (`127.0.0.1:<port>`) to plain HTTP: `<dir>/<host>/hosts.toml`. Returns `dir`.
 */
export function writeRegistryHosts(dir: string, host: string): string {
  const folder = join(dir, host);
  mkdirSync(folder, { recursive: true });
  writeFileSync(
    join(folder, 'hosts.toml'),
    [`server = "http://${host}"`, '', `[host."http://${host}"]`, '  capabilities = ["pull", "resolve"]', ''].join('\n'),
  );
  return dir;
}

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescape = (p: string) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map(unescape)
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** pids of processes (other than `except`) whose command line mentions `needle`: the shims of one containerd. */
function pidsMentioning(needle: string, except: number | undefined): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === except || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(pid);
    } catch {
      /* gone */
    }
  }
  return pids;
}

/** pid → parent pid of every process. */
function parents(): Map<number, number> {
  const map = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // pid (comm) state ppid …; comm may hold spaces and parentheses: split after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      map.set(Number(entry), ppid);
    } catch {
      /* gone */
    }
  }
  return map;
}

function cleanupSync(dir: string, containerdPid: number | undefined): void {
  // Shims outlive containerd (they carry `-address <dir>/c.sock`), and so do the containers under them:
  // kill the containers (descendants of the shims) first, then the shims.
  const shims = pidsMentioning(`${dir}/`, containerdPid);
  if (shims.length > 0) {
    const ppids = parents();
    const doomed = new Set(shims);
    for (let grew = true; grew;) {
      grew = false;
      for (const [pid, ppid] of ppids) {
        if (!doomed.has(pid) && doomed.has(ppid)) {
          doomed.add(pid);
          grew = true;
        }
      }
    }
    const order = [...doomed].filter((p) => !shims.includes(p)).concat(shims);
    for (const pid of order) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const m of mountsUnder(dir)) {
    try {
      execFileSync('umount', ['-R', m], { stdio: 'ignore' });
    } catch {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      } catch {
        /* best effort: reported by rmSync below if it matters */
      }
    }
  }
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // A mount we could not remove: try once more lazily.
    for (const m of mountsUnder(dir)) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      } catch {
        /* ignore */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run an executable and collect its output (never throws for a non-zero exit). */
export function run(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<CtrResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (err) => (clearTimeout(timer), reject(err)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr: signal ? `${stderr}\n(killed by ${signal} after ${opts.timeoutMs ?? 60_000} ms)` : stderr });
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.input ?? '');
  });
}

const tail = (text: string, lines = 40): string => text.split('\n').slice(-lines).join('\n');

export async function startContainerd(options: ContainerdOptions): Promise<ContainerdHandle> {
  requireDebianParts();
  const { line } = options;
  const binDir = CONTAINERD_BIN[line];
  // Short: unix socket paths are limited to 108 bytes, and shims derive longer ones from it.
  const dir = mkdtempSync('/tmp/ctd-');
  const address = join(dir, 'c.sock');
  const nriSocket = join(dir, 'nri.sock');
  const configPath = join(dir, 'config.toml');
  const verifierDir = line === '2.x' ? (options.verifierDir ?? join(dir, 'verifiers')) : undefined;
  if (line === '2.x' && !options.verifierDir) mkdirSync(verifierDir!);
  let config: string;
  try {
    config = containerdConfig(dir, options);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  writeFileSync(configPath, config);

  // containerd finds its shim on PATH; verifiers are `#!/usr/bin/env node` scripts; runc is Debian 12's.
  const PATH = [binDir, dirname(process.execPath), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env, PATH: options.env?.['PATH'] ?? PATH };
  const started = Date.now();
  let output = '';
  const proc = spawn(join(binDir, 'containerd'), ['--config', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = () => {
    try {
      proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
    cleanupSync(dir, proc.pid);
  };
  process.once('exit', killOnExit);
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let spawnError: Error | undefined;
  proc.once('error', (err) => (spawnError = err));

  const ctrBin = join(binDir, 'ctr');
  const ctr = (args: string[], opts: CtrOptions = {}) =>
    run(ctrBin, ['--address', address, ...(opts.namespace ? ['--namespace', opts.namespace] : []), ...args], {
      env,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.input !== undefined ? { input: opts.input } : {}),
    });

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (proc.exitCode === null && proc.signalCode === null && !spawnError) {
      proc.kill('SIGTERM');
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          proc.kill('SIGKILL');
        }, 5000);
        proc.once('exit', () => {
          clearTimeout(t);
          r();
        });
      });
    }
    process.removeListener('exit', killOnExit);
    cleanupSync(dir, proc.pid);
  };

  const fail = async (why: string): Promise<never> => {
    await stop();
    throw new Error(`containerd ${line} (${join(binDir, 'containerd')}) ${why}\nlog tail:\n${tail(output)}\nconfig (${configPath}, now removed):\n${config}`);
  };

  const deadline = started + (options.startTimeoutMs ?? 20_000);
  let version: string | undefined;
  for (;;) {
    if (spawnError) return fail(`could not be started: ${spawnError.message}`);
    if (proc.exitCode !== null || proc.signalCode !== null) return fail(`exited (${proc.exitCode ?? proc.signalCode}) during start-up`);
    if (existsSync(address)) {
      const v = await ctr(['version'], { timeoutMs: 5000 });
      const m = /Server:[\s\S]*?Version:\s*(\S+)/.exec(v.stdout);
      if (v.code === 0 && m) {
        version = m[1]!;
        break;
      }
    }
    if (Date.now() > deadline) return fail(`did not answer on ${address} within ${options.startTimeoutMs ?? 20_000} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    line,
    version,
    dir,
    address,
    nriSocket,
    configPath,
    binDir,
    verifierDir,
    startupMs: Date.now() - started,
    proc,
    log: () => output,
    ctr,
    stop,
  };
}
