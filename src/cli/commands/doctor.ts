/**
 * `signet doctor`: does this node enforce? One line per check: containerd and its version (which
 * pulls it verifies at all), the image-verifier plugin and its bin_dir (signet-verifier there, and it
 * starts), the CRI settings that send Kubernetes pulls around the verifier, the hosts.toml folders CRI and
 * signetd read (usable, and the same), NRI, signetd's health, and optionally a real CRI pull of an image
 * the policy refuses. Exit 1 when any check fails.
 *
 * containerd's address and its config file are resolved independently: the config (and signetd) are
 * checked even when containerd does not answer.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ContainerdClient, DEFAULT_CONTAINERD_ADDRESS, type ContainerdPlugin } from '../../containerd/client.js';
import {
  BINDIR_PLUGIN,
  ContainerdConfigError,
  DEFAULT_CONTAINERD_CONFIG,
  DEFAULT_VERIFIER_BIN_DIR,
  NRI_PLUGIN,
  readContainerdConfig,
  TRANSFER_PLUGIN,
  type ContainerdConfigReport,
} from '../../containerd/containerd-config.js';
import { CRI_NAMESPACE, CriCallError, CriImageClient } from '../../containerd/cri-client.js';
import { DEFAULT_CONFIG, loadConfig } from '../../daemon/config.js';
import { loadProtos } from '../../daemon/grpc-server.js';
import { inspectHostsRoot } from '../../registry/hosts-check.js';
import { executableOnPath } from '../../util/executable-on-path.js';
import { LIMITS, printable, printableJson } from '../../util/printable.js';
import type { CommandIo } from './io.js';
import type { OutputFormat } from '../option-values.js';
import { diagnoseSocket, signetdSocket } from './socket.js';
import { DEFAULT_CONFIG_PATH as SIGNETD_CONFIG } from '../signetd-args.js';

export interface DoctorOptions {
  containerdConfig?: string;
  /** containerd's socket. */
  containerd?: string;
  /** signetd's socket. */
  socket?: string;
  /** Pull this image through CRI, as kubelet does: it must be refused. */
  probe?: string;
  /** signetd.yaml, for the hosts.toml folder signetd follows (default /etc/signet/signetd.yaml if it exists). */
  signetdConfig?: string;
  output: OutputFormat;
}

/** signet-verifier's default wait for signetd (SIGNET_VERIFIER_TIMEOUT), which per_verifier_timeout must exceed. */
const VERIFIER_WAIT_MS = 8000;
const CALL_TIMEOUT_MS = 5000;

type Level = 'ok' | 'warn' | 'fail';

interface Check {
  check: string;
  level: Level;
  detail: string;
  fix?: string;
}

class Checks {
  readonly list: Check[] = [];
  ok(check: string, detail: string): void {
    this.list.push({ check, level: 'ok', detail });
  }
  warn(check: string, detail: string, fix?: string): void {
    this.list.push({ check, level: 'warn', detail, ...(fix ? { fix } : {}) });
  }
  fail(check: string, detail: string, fix: string): void {
    this.list.push({ check, level: 'fail', detail, fix });
  }
}

/** Which pulls a containerd line verifies: none (1.x), transfer service only (2.0), transfer service incl. CRI (2.1+). */
type Line = '1.6' | '1.7' | '2.0' | '2.1+';

export function containerdLine(version: string): Line | undefined {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  if (!m) return undefined;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major < 1) return undefined;
  if (major === 1) return minor >= 7 ? '1.7' : '1.6';
  if (major === 2 && minor === 0) return '2.0';
  return '2.1+';
}

const AFTER_THE_FACT =
  "what is enforced instead: signetd's image-event watcher decides every image once it has landed and reports it (signetd.yaml images.onUnverified: report) or removes it (remove), after the fact and best effort";

const where = (s: { file?: string | undefined; key?: string | undefined }, fallback = "containerd's default"): string =>
  s.file ? `${s.key} in ${s.file}` : fallback;
const lnFix = (dir: string): string => `mkdir -p ${dir} && ln -sf "$(command -v signet-verifier)" ${dir}/signet-verifier`;

// ---- containerd ----

interface ContainerdState {
  address: string;
  version?: string;
  line?: Line;
  plugins?: ContainerdPlugin[];
}

async function checkContainerd(checks: Checks, address: string): Promise<ContainerdState> {
  const state: ContainerdState = { address };
  if (!existsSync(address)) {
    checks.fail(
      'containerd',
      `containerd is not running here: no socket at ${address}`,
      'start containerd, or name its socket with --containerd or CONTAINERD_ADDRESS',
    );
    return state;
  }
  const client = new ContainerdClient(address, CALL_TIMEOUT_MS);
  try {
    state.version = (await client.version()).version;
    state.plugins = await client.plugins();
  } catch (err) {
    checks.fail(
      'containerd',
      `a socket is at ${address} but containerd does not answer: ${(err as Error).message}`,
      'start or restart containerd, or name its socket with --containerd or CONTAINERD_ADDRESS',
    );
    return state;
  } finally {
    client.close();
  }
  checks.ok('containerd', `containerd ${state.version} answers at ${address}`);
  const line = containerdLine(state.version);
  if (line) state.line = line;
  switch (line) {
    case '1.6':
    case '1.7':
      checks.fail(
        'containerd.verifier',
        `containerd ${state.version} has no image verifier: pulls are not checked before they land; ${AFTER_THE_FACT}`,
        'upgrade to containerd 2.1 or later (its bindir image verifier runs signet-verifier before every ctr and CRI pull)',
      );
      break;
    case '2.0':
      checks.fail(
        'containerd.verifier',
        `containerd ${state.version} runs image verifiers only for ctr/transfer-service pulls: its CRI never uses the transfer service, so Kubernetes pulls bypass the verifier; ${AFTER_THE_FACT}`,
        'upgrade to containerd 2.1 or later (CRI pulls through the transfer service)',
      );
      break;
    case '2.1+':
      checks.ok(
        'containerd.verifier',
        `containerd ${state.version} runs image verifiers before pulls through its transfer service (ctr image pull, CRI PullImage)`,
      );
      break;
    default:
      checks.warn('containerd.verifier', `containerd version "${state.version}" is not one doctor knows: cannot tell whether it verifies pulls`);
  }
  return state;
}

const findPlugin = (plugins: ContainerdPlugin[] | undefined, type: string, id: string): ContainerdPlugin | undefined =>
  plugins?.find((p) => p.type === type && p.id === id);

function checkVerifierPlugin(checks: Checks, state: ContainerdState, config: ContainerdConfigReport | undefined): void {
  if (!state.plugins || (state.line !== '2.0' && state.line !== '2.1+')) return;
  const p = findPlugin(state.plugins, 'io.containerd.image-verifier.v1', 'bindir');
  const disabled = config?.disabledPlugins.find((d) => d.id === BINDIR_PLUGIN);
  if (!p) {
    checks.fail(
      'verifier.plugin',
      `the image verifier plugin ${BINDIR_PLUGIN} is not loaded${disabled ? ` (disabled_plugins in ${disabled.file})` : ''}: containerd runs no verifier`,
      disabled ? `remove ${BINDIR_PLUGIN} from disabled_plugins and restart containerd` : "check containerd's log for why the plugin did not load",
    );
  } else if (p.initError) {
    checks.fail(
      'verifier.plugin',
      `the image verifier plugin ${BINDIR_PLUGIN} failed to load: ${p.initError}`,
      "fix its section in containerd's config and restart containerd",
    );
  } else {
    checks.ok('verifier.plugin', `the image verifier plugin ${BINDIR_PLUGIN} is loaded`);
  }
  if (!findPlugin(state.plugins, 'io.containerd.transfer.v1', 'local')) {
    checks.fail(
      'verifier.transfer',
      `the transfer service ${TRANSFER_PLUGIN} is not loaded: no pull reaches the verifier`,
      `remove ${TRANSFER_PLUGIN} from disabled_plugins and restart containerd`,
    );
  }
}

// ---- bin_dir ----

function runVersion(file: string): Promise<{ code: number | null; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    execFile(file, ['-version'], { timeout: CALL_TIMEOUT_MS, maxBuffer: 64 << 10 }, (err, stdout, stderr) => {
      if (!err) return resolve({ code: 0, stdout, stderr });
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'number') return resolve({ code, stdout, stderr });
      resolve({ code: null, stdout, stderr, error: err.killed ? `no answer within ${CALL_TIMEOUT_MS / 1000} s` : err.message });
    });
  });
}

/** Is this bin_dir entry signet's verifier? By its name or by what its link points at. */
function isSignetVerifier(path: string): boolean {
  if (/^signet-verifier/.test(basename(path))) return true;
  try {
    return /^signet-verifier(\.js|\.sh)?$/.test(basename(realpathSync(path)));
  } catch {
    return false;
  }
}

/** Is the verifier at `path` the shell one (verifier/signet-verifier.sh), by what its link points at? */
function isShellVerifier(path: string): boolean {
  try {
    return basename(realpathSync(path)) === 'signet-verifier.sh';
  } catch {
    return false;
  }
}

/**
 * The shell verifier needs curl (without it every pull is refused: it fails closed); the Node one costs a
 * Node start per pull, so many pulls at once may outlast containerd's 10 s per verifier. Checked on this
 * command's PATH, which should be containerd's.
 */
function checkVerifierKind(checks: Checks, path: string, shell: boolean): void {
  const curl = executableOnPath('curl');
  if (shell && curl) checks.ok('verifier.curl', `${path} is the shell verifier (sh + curl); curl is ${curl}`);
  else if (shell)
    checks.fail(
      'verifier.curl',
      `${path} is the shell verifier, but curl is not on the PATH: it refuses every pull (fail closed)`,
      'install curl (apt-get install curl), or link the Node verifier (dist/src/cli/signet-verifier.js) instead',
    );
  else
    checks.warn(
      'verifier.curl',
      `${path} is the Node verifier: a Node start per pull, so many pulls at once may outlast containerd's 10 s per verifier${curl ? '' : ' (curl, which the shell verifier needs, is not on the PATH)'}`,
      `${curl ? '' : 'install curl, then '}link the package's verifier/signet-verifier.sh as ${path} (signet install does where curl is present)`,
    );
}

async function checkBinDir(checks: Checks, config: ContainerdConfigReport): Promise<void> {
  const dir = config.binDir.value;
  const from = config.binDir.file ? `set in ${config.binDir.file}` : 'the default';
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) {
      checks.fail(
        'verifier.bin_dir',
        `verifier bin_dir ${dir} (${from}) is not a directory: containerd fails every pull`,
        `make ${dir} a directory holding signet-verifier`,
      );
      return;
    }
    entries = readdirSync(dir).sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1)); // os.ReadDir: by name, bytewise
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      checks.fail(
        'verifier.bin_dir',
        `verifier bin_dir ${dir} (${from}) does not exist: containerd lets every pull through ("image verifier directory … does not exist")`,
        lnFix(dir),
      );
    } else {
      checks.fail('verifier.bin_dir', `cannot read verifier bin_dir ${dir} (${from}): ${(err as Error).message}`, 'run signet doctor as root');
    }
    return;
  }
  if (entries.length === 0) {
    checks.fail(
      'verifier.bin_dir',
      `verifier bin_dir ${dir} (${from}) is empty: containerd lets every pull through ("no image verifier binaries found")`,
      lnFix(dir),
    );
    return;
  }

  const max = config.maxVerifiers.value;
  const signet = entries.filter((e) => isSignetVerifier(join(dir, e)));
  const others: string[] = [];
  for (const e of entries) {
    if (signet.includes(e)) continue;
    const path = join(dir, e);
    let isDir = false;
    try {
      isDir = statSync(path).isDirectory();
    } catch {
      checks.fail('verifier.bin_dir', `bin_dir entry ${path} is a dangling link: containerd fails every pull trying to run it`, `remove ${path}`);
      continue;
    }
    if (isDir) {
      checks.fail('verifier.bin_dir', `bin_dir entry ${path} is a directory: containerd fails every pull trying to run it`, `move ${path} out of ${dir}`);
      continue;
    }
    try {
      accessSync(path, constants.X_OK);
      others.push(e);
    } catch {
      checks.fail(
        'verifier.bin_dir',
        `bin_dir entry ${path} is not executable: containerd fails every pull trying to run it`,
        `remove it, or chmod +x ${path}`,
      );
    }
  }

  if (signet.length === 0) {
    checks.fail('verifier.signet', `verifier bin_dir ${dir} (${from}) holds no signet-verifier (it holds: ${entries.join(', ')})`, lnFix(dir));
  }
  for (const e of signet) {
    const path = join(dir, e);
    const index = entries.indexOf(e);
    let target = '';
    try {
      const real = realpathSync(path);
      if (real !== path) target = ` → ${real}`;
    } catch {
      checks.fail('verifier.signet', `${path} is a dangling link: containerd fails every pull trying to run it`, lnFix(dir));
      continue;
    }
    if (max >= 0 && index >= max) {
      checks.fail(
        'verifier.signet',
        `${path} is entry ${index + 1} of ${entries.length} in bin_dir, but max_verifiers = ${max} (${where(config.maxVerifiers)}): containerd never runs it`,
        `raise max_verifiers in [plugins."${BINDIR_PLUGIN}"] or remove other entries from ${dir}`,
      );
      continue;
    }
    try {
      accessSync(path, constants.X_OK);
    } catch {
      checks.fail('verifier.signet', `${path}${target} is not executable: containerd fails every pull trying to run it`, `chmod +x ${path}`);
      continue;
    }
    const run = await runVersion(path);
    const m = /^signet-verifier (\S+)\n?$/.exec(run.stdout);
    const shell = isShellVerifier(path);
    if (run.code === 0 && m) {
      checks.ok('verifier.signet', `verifier bin_dir ${dir} (${from}) holds ${e}${target}, which starts: signet-verifier ${m[1]}`);
    } else {
      const why = (run.error ?? (run.stderr.trim() || run.stdout.trim()).split('\n')[0]) || 'no output';
      checks.fail(
        'verifier.signet',
        `${path}${target} -version did not answer "signet-verifier <version>" (exit ${run.code ?? 'none'}): ${why}`,
        `${shell ? 'sh' : 'node'} must be on the PATH containerd runs verifiers with; reinstall signet or fix the link`,
      );
    }
    checkVerifierKind(checks, path, shell);
  }
  if (others.length > 0)
    checks.warn('verifier.others', `bin_dir ${dir} also holds other verifiers, each run for every pull and each able to refuse it: ${others.join(', ')}`);

  const t = config.perVerifierTimeout;
  if (t.ms === undefined) {
    checks.fail('verifier.timeout', `per_verifier_timeout = ${JSON.stringify(t.value)} (${where(t)}) is not a duration`, 'write it like "10s"');
  } else if (t.ms <= VERIFIER_WAIT_MS) {
    checks.warn(
      'verifier.timeout',
      `per_verifier_timeout = ${t.value} (${where(t)}) is not above signet-verifier's ${VERIFIER_WAIT_MS / 1000} s wait for signetd: containerd may kill it before signetd answers, and the pull fails`,
      `set per_verifier_timeout above ${VERIFIER_WAIT_MS / 1000}s (containerd's default is 10s), or lower SIGNET_VERIFIER_TIMEOUT in containerd's environment`,
    );
  }
}

// ---- containerd config ----

function checkConfig(
  checks: Checks,
  configPath: string,
  config: ContainerdConfigReport | undefined,
  error: ContainerdConfigError | undefined,
  state: ContainerdState,
): void {
  if (error) {
    checks.fail('containerd.config', `containerd config: ${error.message}`, `fix ${error.file}`);
    return;
  }
  if (!config) return;
  if (!config.exists) {
    checks.ok(
      'containerd.config',
      `containerd config ${configPath} does not exist: containerd's defaults apply (CRI pulls through the transfer service, bin_dir ${DEFAULT_VERIFIER_BIN_DIR})`,
    );
  }
  // Only 2.1+ sends CRI pulls through the verifier; on older lines the same settings matter after an upgrade.
  const moot = state.line === '1.6' || state.line === '1.7' || state.line === '2.0';
  for (const b of config.criBypass) {
    const detail = `CRI setting ${b.key} = ${b.value} (default ${b.default}) in ${b.files.join(', ')} ${moot ? 'will make CRI pull without the verifier on containerd 2.1+' : 'makes CRI pull without the verifier'}`;
    if (moot) checks.warn('cri.bypass', detail, b.fix);
    else checks.fail('cri.bypass', detail, b.fix);
  }
  for (const d of config.disabledPlugins) {
    if (d.id === BINDIR_PLUGIN || d.id === TRANSFER_PLUGIN) {
      checks.fail('containerd.config', `disabled_plugins in ${d.file} lists ${d.id}: no pull reaches a verifier`, `remove ${d.id} from disabled_plugins`);
    }
  }
  for (const p of config.problems) checks.fail('containerd.config', `${p}`, 'remove registry.mirrors: configure mirrors as hosts.toml files under config_path');
  if (config.exists && config.criBypass.length === 0) {
    const files = config.files.length > 1 ? `${config.files[0]} (+ ${config.files.slice(1).join(', ')})` : config.files[0];
    const hosts = config.registryConfigPath ? `; registry.config_path ${config.registryConfigPath.value} (hosts.toml) keeps them on it` : '';
    checks.ok(
      'containerd.config',
      `containerd config ${files}, version ${config.version.value}: no CRI setting ${moot ? 'would take CRI pulls off the verifier on containerd 2.1+' : 'takes CRI pulls off the verifier'}${hosts}`,
    );
  }
  if (config.grpcAddress && config.grpcAddress.value !== state.address) {
    checks.warn(
      'containerd.config',
      `${config.grpcAddress.file} sets grpc.address = ${config.grpcAddress.value}, but doctor asked containerd at ${state.address}: the config may not be this containerd's`,
      `--containerd ${config.grpcAddress.value}`,
    );
  }
  if (state.plugins && state.line === '2.1+') {
    const cri = findPlugin(state.plugins, 'io.containerd.cri.v1', 'images');
    if (cri?.initError)
      checks.fail(
        'cri.plugin',
        `containerd's CRI image service (io.containerd.cri.v1.images) failed to load: ${cri.initError}`,
        'fix the CRI image section of the config and restart containerd',
      );
    else if (!cri)
      checks.warn('cri.plugin', "containerd's CRI image service (io.containerd.cri.v1.images) is not loaded: Kubernetes cannot use this containerd");
  }
}

// ---- registry hosts (hosts.toml) ----

/** Where signetd looks for hosts.toml: its config's registryConfigPath, and which file said so. */
async function signetdHostsPath(checks: Checks, file: string | undefined): Promise<{ path: string | undefined; from: string }> {
  const path = file ?? SIGNETD_CONFIG;
  if (file === undefined && !existsSync(path)) return { path: DEFAULT_CONFIG.registryConfigPath, from: "signetd's default registryConfigPath" };
  try {
    const config = await loadConfig(path);
    return { path: config.registryConfigPath, from: `registryConfigPath in ${path}` };
  } catch (err) {
    checks.fail('signetd.config', `signetd's config: ${(err as Error).message}; signetd does not start with it`, `fix ${path}`);
    return { path: DEFAULT_CONFIG.registryConfigPath, from: "signetd's default registryConfigPath" };
  }
}

/**
 * The hosts.toml files containerd's CRI and signetd read: each usable by both (item by item, as containerd
 * treats it), and both reading the same folder, so signatures are looked up on the hosts the pull used.
 */
async function checkRegistryHosts(
  checks: Checks,
  config: ContainerdConfigReport | undefined,
  state: ContainerdState,
  signetdConfig: string | undefined,
): Promise<void> {
  const signetd = await signetdHostsPath(checks, signetdConfig);
  // CRI splits config_path like a PATH (filepath.SplitList): the first folder that has the registry wins.
  const criPaths = config?.registryConfigPath?.value.split(':').filter((p) => p !== '') ?? [];
  const roots = [...new Set([...(signetd.path !== undefined ? [signetd.path] : []), ...criPaths])];
  const reports = roots.map(inspectHostsRoot);
  for (const r of reports) {
    for (const f of r.findings) {
      if (f.level === 'fail') checks.fail('registry.hosts', f.detail, f.fix);
      else checks.warn('registry.hosts', f.detail, f.fix);
    }
    if (r.folders.length > 0 && r.findings.length === 0)
      checks.ok('registry.hosts', `${r.root} holds hosts settings for ${r.folders.join(', ')}: each one usable by containerd and signet`);
  }
  if (!config) return;

  const withSettings = reports.filter((r) => r.folders.length > 0);
  if (withSettings.length === 0) return;
  const v1Cri = state.line === '1.6' || state.line === '1.7' || config.version.value < 3;
  const table = v1Cri ? '[plugins."io.containerd.grpc.v1.cri".registry]' : '[plugins."io.containerd.cri.v1.images".registry]';
  const mainFile = config.files[0] ?? config.path;
  if (criPaths.length === 0) {
    const folder = signetd.path;
    const held = reports.find((r) => r.root === folder)?.folders ?? [];
    if (folder === undefined || held.length === 0) return;
    checks.warn(
      'registry.config_path',
      `containerd's CRI registry config_path is empty (${config.exists ? `not set in ${config.files.join(', ')}` : "containerd's default"}), but ${folder} holds hosts settings for ${held.join(', ')} that signetd follows (${signetd.from}): CRI pulls ignore those mirrors and certificates, so signet may look up signatures on hosts the pull did not use`,
      `add to ${mainFile}: ${table} config_path = ${JSON.stringify(folder)}, then restart containerd`,
    );
    return;
  }
  if (signetd.path === undefined || !criPaths.includes(signetd.path)) {
    const key = config.registryConfigPath!;
    checks.warn(
      'registry.config_path',
      `containerd's CRI reads hosts.toml from ${key.value} (${key.key} in ${key.file}), but signetd from ${signetd.path ?? 'nowhere'} (${signetd.from}): signet may look up signatures on hosts the pull did not use`,
      `set registryConfigPath: ${criPaths[0]} in signetd.yaml and restart signetd`,
    );
  }
}

// ---- NRI ----

function checkNri(checks: Checks, state: ContainerdState, config: ContainerdConfigReport | undefined): void {
  const later = "signetd's NRI plugin checks every container creation there (see the signetd lines)";
  if (state.line === '1.6') {
    checks.warn(
      'nri',
      `containerd ${state.version} has no NRI: container creation cannot be checked, only the images on the node (the image watcher)`,
      'upgrade containerd to 1.7 (NRI enabled) or 2.1 or later',
    );
    return;
  }
  const plugin = findPlugin(state.plugins, 'io.containerd.nri.v1', 'nri');
  if (state.plugins && (!plugin || plugin.initError)) {
    checks.warn(
      'nri',
      `NRI (${NRI_PLUGIN}) ${plugin ? `failed to load: ${plugin.initError}` : 'is not loaded'}; ${later}`,
      `enable it: [plugins."${NRI_PLUGIN}"] disable = false`,
    );
    return;
  }
  const defaultDisabled = state.line === '1.7';
  const disable = config?.nri.disable;
  const disabled = disable?.value ?? defaultDisabled;
  const source = disable ? where(disable) : state.plugins ? `containerd ${state.version}'s default` : "containerd 2.x's default";
  const unknown = state.plugins ? '' : ' (read from the config: containerd does not answer)';
  if (disabled) {
    checks.warn('nri', `NRI is disabled (${source})${unknown}; ${later}`, `enable it: [plugins."${NRI_PLUGIN}"] disable = false`);
  } else {
    checks.ok('nri', `NRI is enabled (socket ${config?.nri.socketPath?.value ?? '/var/run/nri/nri.sock'})${unknown}; ${later}`);
  }
}

// ---- signetd ----

type Unary = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Record<string, any>) => void) => void;

function unary(client: grpc.Client, method: string, request: object, timeoutMs = CALL_TIMEOUT_MS): Promise<Record<string, any>> {
  const fn = (client as unknown as Record<string, Unary>)[method]!.bind(client);
  return new Promise((resolve, reject) =>
    fn(request, new grpc.Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

/** Returns whether signetd answers (its socket, for asking it about the probe image). */
async function checkSignetd(checks: Checks, socket: string): Promise<boolean> {
  const restart = 'restart signetd (systemctl restart signetd)';
  // The same diagnosis as `signet status` (socket.ts): which path, a file or not, a socket or not, answering or not.
  const diagnosis = await diagnoseSocket(socket, CALL_TIMEOUT_MS);
  if (!diagnosis.answers) {
    checks.fail('signetd', diagnosis.problem, diagnosis.remedy);
    return false;
  }
  const root = loadProtos() as unknown as {
    signet: { v1: { ImageVerifier: grpc.ServiceClientConstructor } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const creds = grpc.credentials.createInsecure();
  const health = new root.grpc.health.v1.Health(`unix://${socket}`, creds);
  const verifier = new root.signet.v1.ImageVerifier(`unix://${socket}`, creds);
  try {
    let serving: string;
    let status: Record<string, any>;
    try {
      serving = String((await unary(health, 'Check', { service: '' }))['status']);
      status = await unary(verifier, 'Status', {});
    } catch (err) {
      checks.fail(
        'signetd',
        `something listens on ${socket} but does not answer as signetd: ${(err as grpc.ServiceError).details || (err as Error).message}`,
        restart,
      );
      return false;
    }
    const policyDir = String(status['policyDir'] || '/etc/signet/policy.d');
    const reloadError = String(status['lastReloadError'] ?? '');
    if (serving !== 'SERVING' || !status['ready']) {
      checks.fail(
        'signetd',
        `signetd ${status['version']} at ${socket} is ${serving} with no valid policy loaded: every image is rejected${reloadError ? ` (${reloadError})` : ''}`,
        `fix the policy in ${policyDir} (signet policy check ${policyDir})`,
      );
    } else {
      const files = (status['policyFiles'] as string[] | undefined) ?? [];
      checks.ok(
        'signetd',
        `signetd ${status['version']} at ${socket} is SERVING with policy ${status['policyGeneration']} (${files.length} file${files.length === 1 ? '' : 's'} in ${policyDir})`,
      );
      if (reloadError)
        checks.fail(
          'signetd.policy',
          `signetd's last policy reload failed, the previous policy is still in force: ${reloadError}`,
          `fix the policy (signet policy check ${policyDir})`,
        );
    }
    const keys = (status['keys'] as Array<Record<string, string>> | undefined) ?? [];
    const failing = keys.filter((k) => k['lastError']);
    for (const k of failing) {
      checks.fail(
        'signetd.key',
        `signetd key ${k['name']} (${k['location']}): ${k['lastError']}`,
        'images that need this key are rejected until it loads: fix the key file or token (signet status shows its state)',
      );
    }
    if (keys.length > 0 && failing.length === 0)
      checks.ok('signetd.key', `signetd's ${keys.length} key${keys.length === 1 ? '' : 's'} loaded without errors: ${keys.map((k) => k['name']).join(', ')}`);
    checkWatch(checks, status['containerd'] as Record<string, any> | null | undefined);
    checkNriRegistration(checks, status['nri'] as Record<string, any> | null | undefined);
    return true;
  } finally {
    health.close();
    verifier.close();
  }
}

/** signetd's watch over containerd's images (events and reverification). */
function checkWatch(checks: Checks, c: Record<string, any> | null | undefined): void {
  if (!c) {
    checks.warn(
      'signetd.containerd',
      'signetd does not watch containerd (containerd: { enabled: false }): images that arrive without the verifier (import, --local, CRI fallbacks, containerd 1.x) are not decided',
      'remove enabled: false from the containerd section of signetd.yaml',
    );
  } else if (!c['connected']) {
    checks.fail(
      'signetd.containerd',
      `signetd cannot reach containerd at ${c['address']}${c['lastError'] ? ` (${c['lastError']})` : ''}: images that arrive without the verifier are not decided until it can`,
      "set containerd.address in signetd.yaml to containerd's socket",
    );
  } else {
    checks.ok(
      'signetd.containerd',
      `signetd watches containerd ${c['version']} at ${c['address']}: every image that arrives is decided (onUnverified: ${c['onUnverified']})`,
    );
  }
}

/** signetd registered as an NRI plugin: every container creation is decided. */
function checkNriRegistration(checks: Checks, n: Record<string, any> | null | undefined): void {
  if (!n) {
    checks.warn(
      'signetd.nri',
      "signetd's NRI plugin is off: containers are created from images already on the node without a check",
      'add nri: {} to signetd.yaml (containerd 1.7 with NRI enabled, or 2.x)',
    );
  } else if (!n['connected']) {
    checks.fail(
      'signetd.nri',
      `signetd's NRI plugin is not registered with containerd at ${n['socket']}${n['lastError'] ? ` (${n['lastError']})` : ''}: NRI fails open, so containers are created unchecked`,
      'enable NRI in containerd and point nri.socket in signetd.yaml at its socket_path; then restart signetd',
    );
  } else {
    checks.ok(
      'signetd.nri',
      `signetd is registered with ${n['runtime'] || 'containerd'}'s NRI at ${n['socket']} (index ${n['index']}) since ${n['since']}: every container creation is decided`,
    );
  }
}

// ---- probe ----

/** What signetd decides for `name` at `digest` (undefined when it cannot be asked). */
async function policyVerdict(socket: string, name: string, digest: string): Promise<{ ok: boolean; decision: string; reason: string } | undefined> {
  const root = loadProtos() as unknown as { signet: { v1: { ImageVerifier: grpc.ServiceClientConstructor } } };
  const verifier = new root.signet.v1.ImageVerifier(`unix://${socket}`, grpc.credentials.createInsecure());
  try {
    const j = await unary(verifier, 'VerifyImage', { name, descriptor: { digest, mediaType: '', size: 0 } }, 15_000);
    return { ok: Boolean(j['ok']), decision: String(j['decision'] ?? ''), reason: String(j['reason'] ?? '') };
  } catch {
    return undefined;
  } finally {
    verifier.close();
  }
}

async function probe(
  checks: Checks,
  image: string,
  state: ContainerdState,
  config: ContainerdConfigReport | undefined,
  signetdSocket: string | undefined,
): Promise<void> {
  if (!state.version) {
    checks.fail('probe', `probe of ${image} not run: containerd does not answer at ${state.address}`, 'start containerd first');
    return;
  }
  const cri = new CriImageClient(state.address, CALL_TIMEOUT_MS);
  try {
    let before;
    try {
      before = await cri.imageStatus(image);
    } catch (err) {
      const unimplemented = err instanceof CriCallError && err.grpcCode === grpc.status.UNIMPLEMENTED;
      checks.fail(
        'probe',
        unimplemented
          ? `containerd at ${state.address} does not serve CRI (runtime.v1): the probe cannot pull as kubelet does`
          : `probe of ${image}: ${(err as Error).message}`,
        unimplemented ? 'enable the CRI plugin (it is in disabled_plugins?)' : 'check the image reference and containerd',
      );
      return;
    }
    let id: string;
    try {
      id = await cri.pullImage(image);
    } catch (err) {
      const details = err instanceof CriCallError ? err.details : (err as Error).message;
      if (/blocked pull of|verifier \S+ rejected image/.test(details)) {
        checks.ok('probe', `containerd refused to pull ${image} through CRI (as kubelet would): ${details}`);
      } else {
        checks.fail(
          'probe',
          `CRI PullImage of ${image} failed, but not because a verifier refused it, so the probe proves nothing: ${details}`,
          'probe with an image this node can reach and the policy refuses',
        );
      }
      return;
    }
    // Which digest the node pulled, and whether the policy really refuses it (asked before the image is removed).
    let digest: string | undefined;
    try {
      const pulled = await cri.imageStatus(id);
      digest = pulled?.repoDigests.map((d) => /@(sha256:[a-f0-9]{64})$/.exec(d)?.[1]).find((d) => d !== undefined);
    } catch {
      /* the verdict stays unknown */
    }
    const verdict = digest && signetdSocket ? await policyVerdict(signetdSocket, image, digest) : undefined;
    let after: string;
    if (before) {
      after = 'it was already on the node before the probe and is left there';
    } else {
      try {
        await cri.removeImage(id);
        after = 'doctor removed it again';
      } catch (err) {
        after = `doctor could not remove it (${(err as Error).message}): remove it with crictl rmi ${id}`;
      }
    }
    if (verdict?.ok) {
      checks.fail(
        'probe',
        `the node pulled ${image}, but the policy accepts it (signetd: ${verdict.decision}: ${verdict.reason}), so the probe proves nothing (image ${id}; ${after})`,
        'probe with an image the policy refuses (an unsigned one in a verify scope)',
      );
      return;
    }
    const refuses = verdict
      ? `, which the policy refuses (signetd: ${verdict.reason})`
      : ', which the policy refuses (as the probe image must be: signetd could not be asked)';
    const fix =
      state.line === '1.6' || state.line === '1.7' || state.line === '2.0'
        ? `containerd ${state.version} does not verify CRI pulls: upgrade to containerd 2.1 or later`
        : config && config.criBypass.length > 0
          ? 'remove the CRI settings named above'
          : 'fix the ✘ lines above (bin_dir, signet-verifier, signetd)';
    checks.fail('probe', `the node pulled ${image}${refuses}: CRI pulls are not verified (image ${id}; ${after})`, fix);
  } finally {
    cri.close();
  }
}

// ---- output ----

const SYMBOL: Record<Level, string> = { ok: '✔', warn: '!', fail: '✘' };

function printText(io: CommandIo, list: Check[]): void {
  // Details quote config values and containerd's and signetd's errors: escaped, and bounded.
  for (const c of list) io.stdout.write(`${SYMBOL[c.level]} ${printable(c.detail, LIMITS.reason)}${c.fix ? ` — ${printable(c.fix, LIMITS.reason)}` : ''}\n`);
}

export async function doctorCommand(values: DoctorOptions, io: CommandIo): Promise<number> {
  const output = values.output;

  const address = values.containerd || process.env['CONTAINERD_ADDRESS'] || DEFAULT_CONTAINERD_ADDRESS;
  const configPath = values.containerdConfig ?? DEFAULT_CONTAINERD_CONFIG;
  const socket = signetdSocket(values.socket);

  let config: ContainerdConfigReport | undefined;
  let configError: ContainerdConfigError | undefined;
  try {
    config = readContainerdConfig(configPath);
  } catch (err) {
    if (!(err instanceof ContainerdConfigError)) throw err;
    configError = err;
  }

  const checks = new Checks();
  const state = await checkContainerd(checks, address);
  checkVerifierPlugin(checks, state, config);
  // bin_dir matters where containerd has the bindir plugin (2.x), and is checked too when containerd does not answer.
  const hasBindir = state.line === '2.0' || state.line === '2.1+' || state.version === undefined || state.line === undefined;
  if (config && hasBindir) await checkBinDir(checks, config);
  checkConfig(checks, configPath, config, configError, state);
  await checkRegistryHosts(checks, config, state, values.signetdConfig);
  checkNri(checks, state, config);
  const signetdAnswers = await checkSignetd(checks, socket);
  if (values.probe !== undefined) await probe(checks, values.probe, state, config, signetdAnswers ? socket : undefined);

  if (output === 'json') {
    io.stdout.write(
      `${printableJson(
        checks.list.map((c) => ({ check: c.check, ok: c.level !== 'fail', level: c.level, detail: c.detail, fix: c.fix ?? null })),
        2,
      )}\n`,
    );
  } else {
    printText(io, checks.list);
  }
  return checks.list.some((c) => c.level === 'fail') ? 1 : 0;
}
