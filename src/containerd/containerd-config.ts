/**
 * containerd's config.toml, read the way containerd 2.x reads it, for the settings that decide
 * whether signet's verifier sees a pull: the image-verifier bindir plugin (bin_dir, max_verifiers,
 * per_verifier_timeout), the CRI image settings that make CRI leave the transfer service (and with it
 * the verifier), disabled_plugins, and NRI. Pure: the files come through a `ConfigSource`
 * (`fsSource` reads the disk), so every rule is unit-tested without containerd.
 *
 * What containerd does (v2.1, cmd/containerd/server/config/config.go, plugins/cri/images/plugin.go,
 * internal/cri/config/config.go):
 * - LoadConfig reads the file, then its `imports` breadth-first (relative to the importing file, `*`
 *   globbed, each file once); a missing file named on the command line's default path means defaults,
 *   a missing import is an error. Later files win: plugin tables merge key by key, a scalar or an array
 *   replaces the earlier value (false and 0 included).
 * - The config version starts at 3 (containerd's default config); a file with `version` 0/1 (or none)
 *   is migrated to the current version (short plugin names such as `cri` become full URIs) and does not
 *   change it; a file with version 2 or 3 sets it. More than 3 is refused.
 * - Only when the resulting version is below 3, the CRI plugin's migration copies the version-2 image
 *   settings from `plugins."io.containerd.grpc.v1.cri"` (registry, max_concurrent_downloads,
 *   image_pull_with_sync_fs, …, and containerd.{snapshotter, disable_snapshot_annotations,
 *   discard_unpacked_layers}) over `plugins."io.containerd.cri.v1.images"`. With version 3 they are
 *   ignored ("Ignoring unknown key in TOML for plugin").
 * - CheckLocalImagePullConfigs: unless use_local_image_pull is already true, CRI falls back to local
 *   image pull mode (no transfer service, no verifier) when disable_snapshot_annotations is false
 *   (default true), discard_unpacked_layers is true, registry.mirrors, registry.configs or
 *   registry.auths is non-empty, max_concurrent_downloads is not 3, or image_pull_with_sync_fs is true.
 *   registry.config_path (hosts.toml) keeps the transfer service.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { parse, TomlDate, TomlError } from 'smol-toml';

export const DEFAULT_CONTAINERD_CONFIG = '/etc/containerd/config.toml';
export const DEFAULT_VERIFIER_BIN_DIR = '/opt/containerd/image-verifier/bin';
export const BINDIR_PLUGIN = 'io.containerd.image-verifier.v1.bindir';
export const CRI_IMAGES_PLUGIN = 'io.containerd.cri.v1.images';
export const CRI_V2_PLUGIN = 'io.containerd.grpc.v1.cri';
export const NRI_PLUGIN = 'io.containerd.nri.v1.nri';
export const TRANSFER_PLUGIN = 'io.containerd.transfer.v1.local';
/** The highest config version containerd 2.x reads. */
export const CONFIG_VERSION = 3;

/** Where the files come from: undefined from readFile means the file does not exist. */
export interface ConfigSource {
  readFile(path: string): string | undefined;
  /** Paths matching a pattern with `*`, `?` or `[…]` (Go's filepath.Glob), sorted. */
  glob(pattern: string): string[];
}

/** A value and where it was set; `file` undefined means containerd's default. */
export interface Setting<T> {
  value: T;
  file?: string;
  /** The key as written, e.g. `plugins."io.containerd.image-verifier.v1.bindir".bin_dir`. */
  key?: string;
}

/** A CRI setting that makes CRI pull without the transfer service, hence without any verifier. */
export interface BypassSetting {
  /** containerd's name for it, as its log says ("Found 'MaxConcurrentDownloads' in CRI config …"). */
  name: string;
  /** The key as written in the file (version-2 or version-3 form). */
  key: string;
  /** The value, rendered as TOML (tables: their keys). */
  value: string;
  /** containerd's default. */
  default: string;
  files: string[];
  fix: string;
}

export interface ContainerdConfigReport {
  path: string;
  /** false: no file at `path`, containerd runs with its defaults. */
  exists: boolean;
  /** Every file read, in containerd's order (the main file, then imports). */
  files: string[];
  /** The config version in force, and the file that set it (undefined: containerd's default, 3). */
  version: Setting<number>;
  binDir: Setting<string>;
  maxVerifiers: Setting<number>;
  /** Go duration text (default 10s) and its value in ms (undefined when it does not parse). */
  perVerifierTimeout: Setting<string> & { ms: number | undefined };
  disabledPlugins: Array<{ id: string; file: string }>;
  criBypass: BypassSetting[];
  /** registry.config_path in force (the hosts.toml folder), when set. */
  registryConfigPath?: Setting<string>;
  /** NRI plugin settings as written; absent means containerd's default (2.x: enabled; 1.7: disabled). */
  nri: { disable?: Setting<boolean>; socketPath?: Setting<string> };
  grpcAddress?: Setting<string>;
  /** Settings containerd itself refuses (a plugin then fails to load), one sentence each. */
  problems: string[];
}

export class ContainerdConfigError extends Error {
  override readonly name = 'ContainerdConfigError';
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}

// ---- a TOML tree that remembers where each value came from ----

interface Leaf {
  kind: 'leaf';
  value: unknown;
  file: string;
  path: string[];
}
interface Table {
  kind: 'table';
  entries: Map<string, TreeNode>;
  file: string;
  path: string[];
}
type TreeNode = Leaf | Table;

const isTomlTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof TomlDate);

function toTree(value: Record<string, unknown>, file: string, path: string[]): Table {
  const entries = new Map<string, TreeNode>();
  for (const [k, v] of Object.entries(value)) {
    entries.set(k, isTomlTable(v) ? toTree(v, file, [...path, k]) : { kind: 'leaf', value: v, file, path: [...path, k] });
  }
  return { kind: 'table', entries, file, path };
}

/** containerd's merge of plugin tables (mergo with override): tables merge, anything else replaces. */
function mergeTable(dst: Table, src: Table): void {
  dst.file = src.file;
  for (const [k, s] of src.entries) {
    const d = dst.entries.get(k);
    if (s.kind === 'table' && d?.kind === 'table') mergeTable(d, s);
    else dst.entries.set(k, s);
  }
}

function lookup(node: TreeNode | undefined, ...keys: string[]): TreeNode | undefined {
  for (const k of keys) {
    if (node?.kind !== 'table') return undefined;
    node = node.entries.get(k);
  }
  return node;
}

/** Every file a node's value came from (a table: the files of its entries, or its own when empty). */
function filesOf(node: TreeNode): string[] {
  if (node.kind === 'leaf' || node.entries.size === 0) return [node.file];
  return [...new Set([...node.entries.values()].flatMap(filesOf))];
}

/** `plugins."io.containerd.cri.v1.images".registry.mirrors`: bare keys bare, others quoted. */
export function formatKey(path: string[]): string {
  return path.map((k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k))).join('.');
}

function renderValue(node: TreeNode): string {
  if (node.kind === 'table') return `{ ${[...node.entries.keys()].map((k) => formatKey([k])).join(', ')} }`;
  const v = node.value;
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => (typeof x === 'string' ? JSON.stringify(x) : String(x))).join(', ')}]`;
  return String(v);
}

// ---- containerd's rules ----

/** v1MigratePluginName: a plugin name without a dot becomes a full URI (version 0/1 files). */
export function migrateV1PluginName(name: string): string {
  if (name.includes('.')) return name;
  const core: Record<string, string> = {
    cri: 'io.containerd.grpc.v1.cri',
    cgroups: 'io.containerd.monitor.v1.cgroups',
    linux: 'io.containerd.runtime.v1.linux',
    scheduler: 'io.containerd.gc.v1.scheduler',
    bolt: 'io.containerd.metadata.v1.bolt',
    task: 'io.containerd.runtime.v2.task',
    opt: 'io.containerd.internal.v1.opt',
    restart: 'io.containerd.internal.v1.restart',
    tracing: 'io.containerd.internal.v1.tracing',
    otlp: 'io.containerd.tracing.processor.v1.otlp',
    aufs: 'io.containerd.snapshotter.v1.aufs',
    btrfs: 'io.containerd.snapshotter.v1.btrfs',
    devmapper: 'io.containerd.snapshotter.v1.devmapper',
    native: 'io.containerd.snapshotter.v1.native',
    overlayfs: 'io.containerd.snapshotter.v1.overlayfs',
    zfs: 'io.containerd.snapshotter.v1.zfs',
  };
  if (core[name]) return core[name]!;
  if (name.endsWith('-service')) return `io.containerd.service.v1.${name}`;
  if (name === 'windows' || name === 'windows-lcow') return `io.containerd.snapshotter.v1.${name}`;
  return `io.containerd.grpc.v1.${name}`;
}

/** Go's time.ParseDuration for the forms config files use (`10s`, `1m30s`, `500ms`); undefined if it does not parse. */
export function parseGoDurationMs(text: string): number | undefined {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === text.length && matched > 0 ? total : undefined;
}

/** A Go filepath.Match-style pattern component as a RegExp (`*`, `?`, `[…]`, `\` escapes). */
function componentRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) out += '\\[';
      else {
        const body = pattern.slice(i + 1, end).replace(/^\^/, '!');
        out += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) out += `\\${pattern[++i]}`;
    else out += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/** The disk, as containerd sees it. */
export const fsSource: ConfigSource = {
  readFile(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ContainerdConfigError(path, `cannot read ${path}: ${(err as Error).message}`);
    }
  },
  glob(pattern) {
    const parts = pattern.split('/');
    let bases = [parts[0] === '' ? '/' : parts[0]!];
    for (const part of parts.slice(1)) {
      if (part === '') continue;
      const next: string[] = [];
      for (const base of bases) {
        if (!/[*?[]/.test(part)) {
          next.push(join(base, part));
          continue;
        }
        let names: string[];
        try {
          names = readdirSync(base).sort();
        } catch {
          continue;
        }
        const re = componentRegExp(part);
        for (const n of names) if (re.test(n)) next.push(join(base, n));
      }
      bases = next;
    }
    // Like Go's Glob, a literal component matches only what exists.
    return bases.filter((p) => {
      try {
        lstatSync(p);
        return true;
      } catch {
        return false;
      }
    });
  },
};

function parseFile(path: string, text: string): Record<string, unknown> {
  try {
    return parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const what = err.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/, '');
      throw new ContainerdConfigError(path, `${path}:${err.line}:${err.column}: not valid TOML (${what}); containerd will not start with it`);
    }
    throw new ContainerdConfigError(path, `${path}: not valid TOML (${(err as Error).message})`);
  }
}

/** Imports of one file: cleaned, relative to the importing file's folder, globbed when they hold `*`. */
function resolveImports(parent: string, imports: unknown, source: ConfigSource): string[] {
  if (imports === undefined) return [];
  if (!Array.isArray(imports) || imports.some((i) => typeof i !== 'string'))
    throw new ContainerdConfigError(parent, `${parent}: imports must be a list of paths`);
  const out: string[] = [];
  for (const raw of imports as string[]) {
    let p = normalize(raw);
    if (!isAbsolute(p)) p = join(dirname(parent), p);
    if (p.includes('*')) out.push(...source.glob(p));
    else out.push(p);
  }
  return out;
}

interface Bypass {
  name: string;
  /** Where it sits in the effective CRI images table. */
  at: string[];
  default: string;
  /** Does this value (undefined: not set) send CRI to local pull? */
  trips(node: TreeNode | undefined): boolean;
  fix: string;
}

const nonEmptyTable = (n: TreeNode | undefined): boolean => n?.kind === 'table' && n.entries.size > 0;
const leafIs = (n: TreeNode | undefined, v: unknown): boolean => n?.kind === 'leaf' && n.value === v;

/** CheckLocalImagePullConfigs (v2.1 internal/cri/config/config.go), plus use_local_image_pull itself. */
const BYPASSES: Bypass[] = [
  { name: 'UseLocalImagePull', at: ['use_local_image_pull'], default: 'false', trips: (n) => leafIs(n, true), fix: 'remove it or set false' },
  {
    name: 'DisableSnapshotAnnotations',
    at: ['disable_snapshot_annotations'],
    default: 'true',
    trips: (n) => leafIs(n, false),
    fix: 'remove it or set true (snapshot annotations are configured on the snapshotter plugin with the transfer service)',
  },
  { name: 'DiscardUnpackedLayers', at: ['discard_unpacked_layers'], default: 'false', trips: (n) => leafIs(n, true), fix: 'remove it or set false' },
  {
    name: 'Registry.Mirrors',
    at: ['registry', 'mirrors'],
    default: 'none',
    trips: nonEmptyTable,
    fix: 'move the mirrors to hosts.toml files under registry.config_path and remove this table',
  },
  {
    name: 'Registry.Configs',
    at: ['registry', 'configs'],
    default: 'none',
    trips: nonEmptyTable,
    fix: 'move TLS settings to hosts.toml (registry.config_path) and credentials to image pull secrets, and remove this table',
  },
  {
    name: 'Registry.Auths',
    at: ['registry', 'auths'],
    default: 'none',
    trips: nonEmptyTable,
    fix: 'use image pull secrets (or hosts.toml) instead, and remove this table',
  },
  {
    name: 'MaxConcurrentDownloads',
    at: ['max_concurrent_downloads'],
    default: '3',
    trips: (n) => n?.kind === 'leaf' && typeof n.value === 'number' && n.value !== 3,
    fix: `remove it or set 3 (set download concurrency in [plugins."${TRANSFER_PLUGIN}"] max_concurrent_downloads instead)`,
  },
  { name: 'ImagePullWithSyncFs', at: ['image_pull_with_sync_fs'], default: 'false', trips: (n) => leafIs(n, true), fix: 'remove it or set false' },
];

/** The version-2 image keys the CRI images plugin's migration copies (plugins/cri/images/plugin.go migrateConfig). */
const V2_TOP_KEYS = [
  'registry',
  'image_decryption',
  'max_concurrent_downloads',
  'image_pull_progress_timeout',
  'image_pull_with_sync_fs',
  'stats_collect_period',
];
const V2_CONTAINERD_KEYS = ['snapshotter', 'disable_snapshot_annotations', 'discard_unpacked_layers'];

const emptyTable = (path: string[]): Table => ({ kind: 'table', entries: new Map(), file: '', path });

/**
 * Read `path` and its imports as containerd 2.x does and report what signet cares about. Throws
 * ContainerdConfigError (naming the file) for what containerd would refuse to start with: TOML that
 * does not parse, a missing import, a version above 3.
 */
export function readContainerdConfig(path: string = DEFAULT_CONTAINERD_CONFIG, source: ConfigSource = fsSource): ContainerdConfigReport {
  const files: string[] = [];
  const plugins = emptyTable(['plugins']);
  const disabled: Array<{ id: string; file: string }> = [];
  let version: Setting<number> = { value: CONFIG_VERSION };
  let grpcAddress: Setting<string> | undefined;
  let exists = true;

  const pending = [path];
  const loaded = new Set<string>();
  while (pending.length > 0) {
    const file = pending.shift()!;
    if (loaded.has(file)) continue;
    const text = source.readFile(file);
    if (text === undefined) {
      if (file === path) {
        exists = false;
        break;
      }
      throw new ContainerdConfigError(file, `${file} (imported) does not exist; containerd will not start`);
    }
    const doc = parseFile(file, text);
    files.push(file);
    const v = doc['version'] ?? 0;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      throw new ContainerdConfigError(file, `${file}: version must be an integer, not ${JSON.stringify(String(v))}`);
    const v1 = v <= 1;
    if (!v1) version = { value: v, file, key: 'version' };

    const rawPlugins = doc['plugins'];
    if (rawPlugins !== undefined) {
      if (!isTomlTable(rawPlugins)) throw new ContainerdConfigError(file, `${file}: plugins must be a table`);
      const tree = toTree(rawPlugins, file, ['plugins']);
      if (v1) {
        // Version 0/1: plugin names are migrated to full URIs; the keys as written stay in each node's path.
        const renamed = new Map<string, TreeNode>();
        for (const [k, n] of tree.entries) renamed.set(migrateV1PluginName(k), n);
        tree.entries = renamed;
      }
      mergeTable(plugins, tree);
    }
    const rawDisabled = doc['disabled_plugins'];
    if (Array.isArray(rawDisabled)) {
      for (const id of rawDisabled) {
        if (typeof id !== 'string') continue;
        const full = v1 ? migrateV1PluginName(id) : id;
        if (!disabled.some((d) => d.id === full)) disabled.push({ id: full, file });
      }
    }
    const grpc = doc['grpc'];
    if (isTomlTable(grpc) && typeof grpc['address'] === 'string' && grpc['address'] !== '') grpcAddress = { value: grpc['address'], file, key: 'grpc.address' };

    loaded.add(file);
    pending.push(...resolveImports(file, doc['imports'], source));
  }
  if (version.value > CONFIG_VERSION) {
    throw new ContainerdConfigError(
      version.file ?? path,
      `${version.file}: version = ${version.value}; containerd 2.x reads versions up to ${CONFIG_VERSION} and will not start`,
    );
  }

  // The effective CRI image settings: version-3 table, with the version-2 keys copied over it when the version is below 3.
  const v3 = lookup(plugins, CRI_IMAGES_PLUGIN);
  const images: Table = { kind: 'table', entries: new Map(v3?.kind === 'table' ? v3.entries : []), file: '', path: ['plugins', CRI_IMAGES_PLUGIN] };
  if (version.value < CONFIG_VERSION) {
    const v2 = lookup(plugins, CRI_V2_PLUGIN);
    for (const k of V2_TOP_KEYS) {
      const n = lookup(v2, k);
      if (n) images.entries.set(k, n);
    }
    for (const k of V2_CONTAINERD_KEYS) {
      const n = lookup(v2, 'containerd', k);
      if (n) images.entries.set(k, n);
    }
  }

  const criBypass: BypassSetting[] = [];
  const alreadyLocal = leafIs(lookup(images, 'use_local_image_pull'), true);
  for (const b of BYPASSES) {
    // With use_local_image_pull = true, that one line is the cause: the others change nothing more.
    if (alreadyLocal && b.name !== 'UseLocalImagePull') continue;
    const node = lookup(images, ...b.at);
    if (!b.trips(node)) continue;
    criBypass.push({ name: b.name, key: formatKey(node!.path), value: renderValue(node!), default: b.default, files: filesOf(node!), fix: b.fix });
  }

  const problems: string[] = [];
  const configPathNode = lookup(images, 'registry', 'config_path');
  const registryConfigPath =
    configPathNode?.kind === 'leaf' && typeof configPathNode.value === 'string' && configPathNode.value !== ''
      ? { value: configPathNode.value, file: configPathNode.file, key: formatKey(configPathNode.path) }
      : undefined;
  const mirrors = lookup(images, 'registry', 'mirrors');
  if (registryConfigPath && nonEmptyTable(mirrors)) {
    problems.push(
      `${formatKey(mirrors!.path)} is set together with ${registryConfigPath.key}: containerd's CRI image service refuses to load ("\`mirrors\` cannot be set when \`config_path\` is provided")`,
    );
  }

  const bindir = lookup(plugins, BINDIR_PLUGIN);
  const str = (n: TreeNode | undefined): Setting<string> | undefined =>
    n?.kind === 'leaf' && typeof n.value === 'string' ? { value: n.value, file: n.file, key: formatKey(n.path) } : undefined;
  const int = (n: TreeNode | undefined): Setting<number> | undefined =>
    n?.kind === 'leaf' && typeof n.value === 'number' ? { value: n.value, file: n.file, key: formatKey(n.path) } : undefined;
  const bool = (n: TreeNode | undefined): Setting<boolean> | undefined =>
    n?.kind === 'leaf' && typeof n.value === 'boolean' ? { value: n.value, file: n.file, key: formatKey(n.path) } : undefined;

  const binDir = str(lookup(bindir, 'bin_dir')) ?? { value: DEFAULT_VERIFIER_BIN_DIR };
  const maxVerifiers = int(lookup(bindir, 'max_verifiers')) ?? { value: 10 };
  const timeoutNode = lookup(bindir, 'per_verifier_timeout');
  let perVerifierTimeout: Setting<string> & { ms: number | undefined } = { value: '10s', ms: 10_000 };
  if (timeoutNode?.kind === 'leaf') {
    const raw = timeoutNode.value;
    const text = typeof raw === 'string' ? raw : String(raw);
    const ms = typeof raw === 'string' ? parseGoDurationMs(raw) : typeof raw === 'number' ? raw / 1e6 : undefined;
    perVerifierTimeout = { value: text, ms, file: timeoutNode.file, key: formatKey(timeoutNode.path) };
  }

  const nriNode = lookup(plugins, NRI_PLUGIN);
  const nriDisable = bool(lookup(nriNode, 'disable'));
  const nriSocket = str(lookup(nriNode, 'socket_path'));

  return {
    path,
    exists,
    files,
    version,
    binDir,
    maxVerifiers,
    perVerifierTimeout,
    disabledPlugins: disabled,
    criBypass,
    ...(registryConfigPath ? { registryConfigPath } : {}),
    nri: { ...(nriDisable ? { disable: nriDisable } : {}), ...(nriSocket ? { socketPath: nriSocket } : {}) },
    ...(grpcAddress ? { grpcAddress } : {}),
    problems,
  };
}
