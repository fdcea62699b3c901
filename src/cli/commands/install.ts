/**
 * `signet install` / `signet uninstall`: set a host up in one command, and undo exactly that.
 *
 * Writes (under --prefix, default /): the systemd unit (signetd before containerd, Type=notify: signetd
 * sends READY=1 once its socket answers, so `systemctl start` returns when signetd serves),
 * /etc/signet/signetd.yaml and a commented example policy in warn mode (each only when absent),
 * the verifier linked into containerd's bin_dir, and containerd's settings in a drop-in file
 * (conf.d/signet.toml beside config.toml) that containerd loads through `imports`. The operator's
 * config.toml is never rewritten: when there is none, one is created that only imports conf.d/*.toml;
 * when it does not import the drop-in, install says which line to add. What was written is recorded in
 * /var/lib/signet/install.json; uninstall removes those files when they are still as written.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONTAINERD_CONFIG, DEFAULT_VERIFIER_BIN_DIR, readContainerdConfig } from '../../containerd/containerd-config.js';
import { executableOnPath } from '../../util/executable-on-path.js';
import { LIMITS, printable } from '../../util/printable.js';
import { UsageError, type CommandIo } from './io.js';

export interface InstallOptions {
  /** Write under this root instead of / (a staging root). */
  prefix?: string;
  containerdConfig?: string;
}

export interface UninstallOptions {
  /** The root install wrote under. */
  prefix?: string;
}

const MANIFEST = '/var/lib/signet/install.json';

interface Written {
  path: string;
  kind: 'file' | 'symlink' | 'dir';
  sha256?: string;
  target?: string;
}

const CLI_DIR = dirname(fileURLToPath(import.meta.url)).replace(/\/commands$/, '');
const PACKAGE_ROOT = resolve(CLI_DIR, '../../..');

function sha(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

function unitText(): string {
  const base = readFileSync(join(PACKAGE_ROOT, 'systemd', 'signetd.service'), 'utf8');
  // The shipped unit runs signetd from PATH (/usr/bin/env); the installed one names this node and this package.
  return base.replace(/^ExecStart=.*$/m, `ExecStart=${process.execPath} ${join(CLI_DIR, 'signetd.js')} --config /etc/signet/signetd.yaml`);
}

const CONFIG = `# signetd's configuration (signet install wrote this; every key is optional, see the README).
socket: /run/signet/signetd.sock
# The shell verifier's HTTP socket (default: verify.sock beside socket; "" turns it off).
# verifySocket: /run/signet/verify.sock
policyDir: /etc/signet/policy.d
auditLog: /var/log/signet/audit.log
# containerd's hosts.toml folder: signatures are looked up on the mirrors containerd pulls from.
registryConfigPath: /etc/containerd/certs.d
# insecureRegistries: ["10.0.0.5:5000"]
# dockerConfig: /etc/signet/docker-config.json
# Every container creation checked through containerd's NRI (containerd 2.x; enabled by the drop-in).
nri: {}
`;

const EXAMPLE_POLICY = `# An example policy, in warn mode: every image is checked for a signature by the key "release" and
# allowed either way, with the verdict in the audit log (/var/log/signet/audit.log). Put your public
# key at /etc/signet/keys/release.pub, watch the audit log, then change mode to enforce.
# signet policy check and signet policy explain IMAGE show what it does.
apiVersion: signet/v1
keys:
  release:
    file: /etc/signet/keys/release.pub
default:
  action: verify
  mode: warn
  signatures:
    keys: [release]
`;

function dropIn(binDir: string): string {
  return `# signet: containerd runs signet-verifier before every pull, and NRI lets signetd check container creations.
# Written by signet install; signet uninstall removes it.
# version 2: containerd 1.7 refuses version 3, and containerd 2.x would read a version 2 config.toml that
# imports a version 3 file as version 3, dropping its io.containerd.grpc.v1.cri settings. Neither table
# below differs between the two versions.
version = 2

[plugins."io.containerd.image-verifier.v1.bindir"]
  bin_dir = ${JSON.stringify(binDir)}
  max_verifiers = 10
  per_verifier_timeout = "10s"

[plugins."io.containerd.nri.v1.nri"]
  disable = false
`;
}

export async function installCommand(values: InstallOptions, io: CommandIo): Promise<number> {
  const prefix = resolve(values.prefix ?? '/');
  const at = (p: string) => join(prefix, p);
  const say = (line: string) => io.stdout.write(`${printable(line, LIMITS.reason)}\n`);
  if (existsSync(at(MANIFEST))) throw new UsageError(`${at(MANIFEST)} exists: signet is installed here already (signet uninstall first)`);
  const written: Written[] = [];
  const mkdirs = (dir: string) => {
    const missing: string[] = [];
    for (let d = dir; !existsSync(d); d = dirname(d)) missing.unshift(d);
    for (const d of missing) {
      mkdirSync(d);
      written.push({ path: d, kind: 'dir' });
    }
  };
  const writeNew = (path: string, text: string, what: string) => {
    const full = at(path);
    if (existsSync(full)) return say(`kept    ${full} (exists; ${what})`);
    mkdirs(dirname(full));
    writeFileSync(full, text, { mode: path.endsWith('.service') ? 0o644 : 0o600 });
    written.push({ path: full, kind: 'file', sha256: sha(text) });
    say(`wrote   ${full} (${what})`);
  };

  writeNew('/etc/systemd/system/signetd.service', unitText(), 'the systemd unit: signetd before containerd, ready when its socket answers');
  writeNew('/etc/signet/signetd.yaml', CONFIG, "signetd's configuration");
  const policyDir = at('/etc/signet/policy.d');
  const hasPolicy = existsSync(policyDir) && readdirSync(policyDir).some((f) => /\.(ya?ml|json)$/.test(f));
  if (hasPolicy) say(`kept    ${policyDir} (holds a policy already)`);
  else writeNew('/etc/signet/policy.d/00-example.yaml', EXAMPLE_POLICY, 'an example policy in warn mode');

  // containerd's configuration: its bin_dir, and whether config.toml imports our drop-in.
  const configPath = values.containerdConfig !== undefined ? resolve(values.containerdConfig) : at(DEFAULT_CONTAINERD_CONFIG);
  let binDir = DEFAULT_VERIFIER_BIN_DIR;
  try {
    const report = readContainerdConfig(configPath);
    if (report.binDir.file !== undefined) binDir = report.binDir.value;
  } catch (err) {
    say(`!       ${configPath} does not read as containerd reads it (${(err as Error).message}); using bin_dir ${binDir}`);
  }
  const verifierLink = join(at(binDir), 'signet-verifier');
  // The shell verifier (sh + curl) costs about a fifth of a Node start per pull, so a burst of pulls ends
  // well inside containerd's 10 s per verifier; the Node one is the fallback where there is no curl.
  const curl = executableOnPath('curl');
  const verifierTarget = curl ? join(PACKAGE_ROOT, 'verifier', 'signet-verifier.sh') : join(CLI_DIR, 'signet-verifier.js');
  if (existsSync(verifierLink) || isLink(verifierLink)) say(`kept    ${verifierLink} (exists)`);
  else {
    if (!curl)
      say(
        "!       curl is not on the PATH: linking the Node verifier, which costs a Node start per pull (many pulls at once may outlast containerd's 10 s per verifier). Install curl, then link verifier/signet-verifier.sh instead (signet doctor says so too)",
      );
    mkdirs(dirname(verifierLink));
    symlinkSync(verifierTarget, verifierLink);
    written.push({ path: verifierLink, kind: 'symlink', target: verifierTarget });
    say(`linked  ${verifierLink} -> ${verifierTarget} (containerd runs it for every pull)`);
  }
  const dropInPath = join(dirname(configPath), 'conf.d', 'signet.toml');
  if (!existsSync(configPath)) {
    mkdirs(dirname(configPath));
    const text =
      '# containerd configuration created by signet install: containerd defaults, plus the drop-ins in conf.d.\nversion = 3\nimports = ["conf.d/*.toml"]\n';
    writeFileSync(configPath, text);
    written.push({ path: configPath, kind: 'file', sha256: sha(text) });
    say(`wrote   ${configPath} (there was none: containerd's defaults, importing conf.d/*.toml)`);
  }
  if (existsSync(dropInPath)) say(`kept    ${dropInPath} (exists)`);
  else {
    mkdirs(dirname(dropInPath));
    const text = dropIn(binDir);
    writeFileSync(dropInPath, text);
    written.push({ path: dropInPath, kind: 'file', sha256: sha(text) });
    say(`wrote   ${dropInPath} (containerd drop-in: the verifier plugin and NRI)`);
  }
  let imported = false;
  try {
    imported = readContainerdConfig(configPath).files.includes(dropInPath);
  } catch {
    /* reported above */
  }
  mkdirs(dirname(at(MANIFEST)));
  writeFileSync(at(MANIFEST), `${JSON.stringify({ version: 1, written }, null, 2)}\n`);
  say(`wrote   ${at(MANIFEST)} (what signet uninstall removes)`);
  if (!imported) {
    say(`!       ${configPath} does not import ${dropInPath}; signet did not change it. Add at its top level:`);
    say(`          imports = ["${dropInPath.slice(prefix === '/' ? 0 : prefix.length)}"]   (or a glob such as "conf.d/*.toml", relative to config.toml)`);
  }
  say('next:   systemctl daemon-reload && systemctl enable --now signetd && systemctl restart containerd; then signet doctor');
  return imported ? 0 : 1;
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

export async function uninstallCommand(values: UninstallOptions, io: CommandIo): Promise<number> {
  const prefix = resolve(values.prefix ?? '/');
  const manifestPath = join(prefix, MANIFEST);
  const say = (line: string) => io.stdout.write(`${printable(line, LIMITS.reason)}\n`);
  let manifest: { written: Written[] };
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { written: Written[] };
  } catch (err) {
    io.stderr.write(
      `signet uninstall: cannot read ${manifestPath} (${(err as NodeJS.ErrnoException).code ?? 'not JSON'}): nothing was installed here by signet install\n`,
    );
    return 1;
  }
  let kept = 0;
  for (const w of [...manifest.written].reverse()) {
    try {
      if (w.kind === 'dir') {
        if (existsSync(w.path) && readdirSync(w.path).length === 0) rmdirSync(w.path);
        continue;
      }
      if (w.kind === 'symlink') {
        if (isLink(w.path) && readlinkSync(w.path) === w.target) {
          rmSync(w.path);
          say(`removed ${w.path}`);
        } else if (existsSync(w.path) || isLink(w.path)) {
          kept++;
          say(`kept    ${w.path} (changed since install)`);
        }
        continue;
      }
      if (!existsSync(w.path)) continue;
      if (sha(readFileSync(w.path)) === w.sha256) {
        rmSync(w.path);
        say(`removed ${w.path}`);
      } else {
        kept++;
        say(`kept    ${w.path} (changed since install)`);
      }
    } catch (err) {
      kept++;
      say(`kept    ${w.path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  rmSync(manifestPath);
  say(`removed ${manifestPath}`);
  for (let d = dirname(manifestPath); d.startsWith(prefix) && d !== prefix; d = dirname(d)) {
    if (existsSync(d) && readdirSync(d).length === 0 && manifest.written.some((w) => w.kind === 'dir' && w.path === d)) rmdirSync(d);
  }
  say('next:   systemctl disable --now signetd; systemctl daemon-reload; systemctl restart containerd');
  return kept === 0 ? 0 : 1;
}
