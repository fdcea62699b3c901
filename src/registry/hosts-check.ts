/**
 * A hosts.toml folder (`registry.config_path`) checked the way containerd 2.1 uses it
 * (core/remotes/docker/config/hosts.go), for `signet doctor`: every registry folder is read through
 * `RegistryHosts` (signet's own reading, so what is found is what signetd does), then the TLS files
 * it names are loaded as containerd loads them.
 *
 * What containerd does with a bad folder, hence how bad each finding is:
 * - hosts.toml that does not parse, or that it refuses (an unknown capability, a wrong type): it logs
 *   "failed to decode …/hosts.toml" and uses the folder's Docker certificate files for the registry's
 *   own host instead: the mirrors in the file are ignored. signet does the same. A warning.
 * - hosts.toml it cannot read (not ENOENT), a `ca` file it cannot read or that holds no PEM certificate,
 *   a `client` pair that does not load: ConfigureHosts returns an error, so every pull from that registry
 *   fails. A failure.
 * - A folder that another folder shadows (`host_port_` beside `host:port`) is never read. A warning.
 */
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { hostDir, RegistryHosts } from './hosts.js';

export interface HostsFinding {
  level: 'warn' | 'fail';
  /** The file (or folder) the finding is about. */
  file: string;
  /** What is wrong and what containerd and signet do about it. */
  detail: string;
  fix: string;
}

export interface HostsRootReport {
  root: string;
  exists: boolean;
  /** Registry folders that hold settings (hosts.toml or Docker certificate files), by folder name. */
  folders: string[];
  findings: HostsFinding[];
}

/** The registry a folder name stands for: `host_port_` is `host:port`; `_default` every registry without its own folder. */
export function folderRegistry(name: string): string {
  const m = /^(.+)_(\d+)_$/.exec(name);
  return m ? `${m[1]}:${m[2]}` : name;
}

const registryLabel = (registry: string): string => (registry === '_default' ? 'every registry without its own folder' : registry);

const errCode = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

function readText(file: string): { text: string } | { error: string } {
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (err) {
    return { error: errCode(err) === 'ENOENT' ? 'does not exist' : `cannot be read (${errCode(err)})` };
  }
}

/** Go's AppendCertsFromPEM: true when at least one CERTIFICATE block parses. */
function holdsPemCertificate(text: string): boolean {
  for (const block of text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []) {
    try {
      new X509Certificate(block);
      return true;
    } catch {
      /* the next block */
    }
  }
  return false;
}

/** Why a `ca` file fails containerd's load, or undefined. */
function caProblem(file: string): string | undefined {
  const r = readText(file);
  if ('error' in r) return r.error;
  return holdsPemCertificate(r.text) ? undefined : 'holds no PEM certificate';
}

/** Why a `client` pair fails containerd's tls.X509KeyPair, or undefined. An empty key: the key is in the certificate's file. */
function clientProblem(cert: string, key: string): string | undefined {
  const c = readText(cert);
  if ('error' in c) return `certificate ${cert} ${c.error}`;
  let keyText = c.text;
  if (key !== '') {
    const k = readText(key);
    if ('error' in k) return `key ${key} ${k.error}`;
    keyText = k.text;
  }
  try {
    createSecureContext({ cert: c.text, key: keyText });
    return undefined;
  } catch (err) {
    return `does not load as a certificate and its key (${(err as Error).message})`;
  }
}

function hasSettings(dir: string): boolean {
  try {
    return readdirSync(dir).some((n) => n === 'hosts.toml' || n.endsWith('.crt') || n.endsWith('.cert'));
  } catch {
    return false;
  }
}

/** Check every registry folder under `root`, as containerd and signetd read them. */
export function inspectHostsRoot(root: string): HostsRootReport {
  const report: HostsRootReport = { root, exists: false, folders: [], findings: [] };
  let names: string[];
  try {
    names = readdirSync(root).sort();
    report.exists = true;
  } catch {
    return report;
  }
  const seen = new Set<string>();
  for (const name of names) {
    const dir = join(root, name);
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      /* a dangling link: containerd's os.Stat skips it too */
    }
    if (!isDir) {
      if (name === 'hosts.toml')
        report.findings.push({
          level: 'warn',
          file: dir,
          detail: `${dir} sits directly in ${root}: containerd and signet read hosts.toml only in a registry's folder, so no registry uses it`,
          fix: `move it to ${root}/<registry host>/hosts.toml (or ${root}/_default/hosts.toml for every registry)`,
        });
      continue;
    }
    if (!hasSettings(dir)) continue;
    report.folders.push(name);
    const registry = folderRegistry(name);
    const used = hostDir(root, registry);
    if (used !== dir) {
      report.findings.push({
        level: 'warn',
        file: dir,
        detail: `${dir} is never read: containerd and signet take ${used} for ${registry}`,
        fix: `merge it into ${used} and remove it`,
      });
      continue;
    }
    const hosts = new RegistryHosts({ configPath: root });
    const list = hosts.hostsFor(registry);
    const own = registryLabel(registry);
    for (const [file, problem] of hosts.problems) {
      const message = problem.startsWith(file) ? problem : `${file}: ${problem}`;
      if (problem.startsWith('cannot read'))
        report.findings.push({
          level: 'fail',
          file,
          detail: `${message}: containerd fails every pull from ${own}; signet looks up signatures on ${own}'s own host`,
          fix: `make ${file} readable by root`,
        });
      else
        report.findings.push({
          level: 'warn',
          file,
          detail: `${message}: containerd logs "failed to decode ${file}" and ignores the whole file, pulling from ${own}'s own host (with the folder's *.crt/*.cert files); signet does the same, so neither uses its mirrors`,
          fix: `fix ${file} (containerd's docs/hosts.md)`,
        });
    }
    for (const h of list) {
      if (!h.tls) continue;
      const from = h.source ?? dir;
      const on = h.mirror ? h.host : registry === '_default' ? "each such registry's own host" : `${registry}'s own host`;
      const failed = `containerd fails every pull from ${own} (it cannot build the TLS settings); signet's lookups on ${on} fail, so images it must verify from there are refused`;
      for (const ca of h.tls.ca) {
        const key = `ca|${ca}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const problem = caProblem(ca);
        if (problem)
          report.findings.push({
            level: 'fail',
            file: from,
            detail: `CA file ${ca} (${from}) ${problem}: ${failed}`,
            fix: `put the registry's CA certificate (PEM) at ${ca}`,
          });
      }
      for (const [cert, keyFile] of h.tls.clients) {
        const key = `client|${cert}|${keyFile}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const problem = clientProblem(cert, keyFile);
        if (problem)
          report.findings.push({
            level: 'fail',
            file: from,
            detail: `client certificate ${cert}${keyFile ? ` with key ${keyFile}` : ''} (${from}): ${problem}: ${failed}`,
            fix: 'put a matching PEM certificate and unencrypted key there',
          });
      }
    }
  }
  return report;
}
