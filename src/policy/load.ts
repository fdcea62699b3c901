/**
 * Load a policy directory: every *.yaml, *.yml, *.json file, each parsed strictly (duplicate keys are
 * errors), validated against schema/policy.schema.json, then checked for meaning and merged.
 * Every problem is collected and located (file, line, column) so that one run shows everything to fix.
 * Atomic by construction: either a complete Policy comes back, or a PolicyLoadError.
 */
import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, open, opendir, realpath } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { CST, isScalar, Lexer, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { Worker } from 'node:worker_threads';
import { describeError, SignetError } from '../errors.js';
import { printable } from '../util/printable.js';
import { parseReference } from '../registry/reference.js';
import { parseDuration } from '../util/duration.js';
import { ALL_FORMATS, type FormatName } from '../formats/types.js';
import { locate, pointerSegments } from './locate.js';
import { validatePolicyFile } from './schema.js';
import { scopeSyntaxError } from './scope-syntax.js';
import type {
  AttestationRequirement,
  SignatureSourceSpec,
  IdentityRule,
  KeyDefinition,
  Mode,
  Policy,
  PolicyProblem,
  ScopePolicy,
  SignatureRequirement,
} from './types.js';

/**
 * Bounds that keep a hostile or foreign file cheap: checked before anything is parsed. A policy file
 * of a thousand scopes is about 100 KiB and nested about 8 levels deep.
 */
export const POLICY_LIMITS = {
  /** One file, in bytes. */
  fileBytes: 256 * 1024,
  /** All files of the directory together, in bytes. */
  totalBytes: 2 * 1024 * 1024,
  /** Files in the directory. */
  files: 1000,
  /** Nesting of collections (block indentation, compact `- -` sequences and flow `[ {`). */
  nesting: 32,
  /** Alias expansions (billion laughs). */
  aliases: 100,
  /** Problems reported for one file; more are summarised in one line. */
  problemsPerFile: 20,
  /** Unknown fields named for one file; a foreign file has one per line. */
  unknownFieldsPerFile: 5,
} as const;
const MAX_FILE_BYTES = POLICY_LIMITS.fileBytes;
const MAX_FILES = POLICY_LIMITS.files;
const MAX_ALIAS_COUNT = POLICY_LIMITS.aliases;
/** Characters of an untrusted value (a message, a path) kept in a problem. */
const MAX_MESSAGE_CHARS = 1024;
const DEFAULT_EXPIRY_WARNING_MS = 30 * 86_400_000;

export class PolicyLoadError extends SignetError {
  /** Every problem, its file and message escaped (control characters) and bounded. */
  readonly problems: PolicyProblem[];

  constructor(problems: PolicyProblem[], code: 'POLICY_INVALID' | 'POLICY_NOT_FOUND' = 'POLICY_INVALID') {
    const safe = problems.map((p) => ({
      ...p,
      file: printable(p.file, MAX_MESSAGE_CHARS),
      message: printable(p.message, MAX_MESSAGE_CHARS),
      ...(p.path !== undefined ? { path: printable(p.path, MAX_MESSAGE_CHARS) } : {}),
    }));
    super(code, safe.map(formatProblem).join('\n'));
    this.problems = safe;
    this.name = 'PolicyLoadError';
  }
}

export function formatProblem(p: PolicyProblem): string {
  return `${p.file}${p.line !== undefined ? `:${p.line}${p.column !== undefined ? `:${p.column}` : ''}` : ''}: ${p.message}`;
}

/** Files a policy directory contributes: dotfiles and editor leftovers are skipped. */
export function isPolicyFileName(name: string): boolean {
  return /\.(ya?ml|json)$/.test(name) && !name.startsWith('.') && !name.startsWith('#') && !name.endsWith('~');
}

/**
 * The policy files of a directory, read with every bound applied before parsing. A policy file must be
 * a regular file, or a symbolic link that resolves to a regular file within the directory (as
 * Kubernetes mounts a ConfigMap: `policy.yaml -> ..data/policy.yaml`, `..data -> ..2026_…`); a link
 * to anywhere else (`/etc/shadow`), a named pipe, a socket or a device is refused, naming the file.
 * Subdirectories are not policy files and are skipped.
 */
export async function readPolicyFiles(dir: string, options: { allowEmpty?: boolean } = {}): Promise<Array<{ path: string; text: string }>> {
  const abs = resolve(dir);
  let names: string[];
  let realDir: string;
  try {
    names = await policyFileNames(abs);
    realDir = await realpath(abs);
  } catch (err) {
    if (err instanceof PolicyLoadError) throw err;
    throw new PolicyLoadError(
      [{ file: abs, message: `cannot read the policy directory: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }],
      'POLICY_NOT_FOUND',
    );
  }
  // allowEmpty: a directory merged with a policy artifact (policySource) may contribute nothing.
  if (names.length === 0 && options.allowEmpty) return [];
  if (names.length === 0)
    throw new PolicyLoadError([{ file: abs, message: 'no policy files (*.yaml, *.yml, *.json) in the policy directory' }], 'POLICY_NOT_FOUND');
  const out: Array<{ path: string; text: string }> = [];
  let total = 0;
  for (const name of names) {
    const path = join(abs, name);
    let text: string | undefined;
    try {
      text = await readPolicyFile(path, realDir);
    } catch (err) {
      if (err instanceof PolicyLoadError) throw err;
      // Vanished between readdir and read (an editor's rename), or a dangling link: the watcher reloads again.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new PolicyLoadError([{ file: path, message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
    }
    if (text === undefined) continue;
    total += Buffer.byteLength(text);
    if (total > POLICY_LIMITS.totalBytes)
      throw new PolicyLoadError([{ file: abs, message: `the policy files together are larger than ${POLICY_LIMITS.totalBytes} bytes` }]);
    out.push({ path, text });
  }
  if (out.length === 0) throw new PolicyLoadError([{ file: abs, message: 'no readable policy files in the policy directory' }], 'POLICY_NOT_FOUND');
  return out;
}

/** The names of policy files in `dir`, sorted; at most MAX_FILES of them are kept in memory. */
async function policyFileNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of await opendir(dir)) {
    if (!isPolicyFileName(entry.name)) continue;
    names.push(entry.name);
    if (names.length > MAX_FILES) throw new PolicyLoadError([{ file: dir, message: `more than ${MAX_FILES} policy files` }]);
  }
  return names.sort();
}

function kindOf(s: Stats): string {
  if (s.isFIFO()) return 'a named pipe';
  if (s.isSocket()) return 'a socket';
  if (s.isBlockDevice() || s.isCharacterDevice()) return 'a device';
  if (s.isSymbolicLink()) return 'a symbolic link';
  return 'not a file';
}

/** One policy file's text, or undefined for a directory; throws PolicyLoadError for anything refused. */
async function readPolicyFile(path: string, realDir: string): Promise<string | undefined> {
  const entry = await lstat(path);
  let target = path;
  if (entry.isSymbolicLink()) {
    const real = await realpath(path);
    if (real !== realDir && !real.startsWith(realDir === sep ? sep : `${realDir}${sep}`)) {
      throw new PolicyLoadError([
        {
          file: path,
          message: `is a symbolic link to ${printable(real, 256)}, outside the policy directory; a policy file must be a regular file, or a link that stays within ${realDir} (as Kubernetes mounts ConfigMaps)`,
        },
      ]);
    }
    target = real;
  } else if (entry.isDirectory()) {
    return undefined;
  }
  // O_NONBLOCK: opening a named pipe must not wait for a writer; O_NOFOLLOW: `target` has no link left.
  const fh = await open(target, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    const s = await fh.stat();
    if (s.isDirectory()) return undefined;
    if (!s.isFile())
      throw new PolicyLoadError([
        { file: path, message: `is ${kindOf(s)}, not a regular file; a policy file must be a regular file, or a link to one within the policy directory` },
      ]);
    if (s.size > MAX_FILE_BYTES)
      throw new PolicyLoadError([{ file: path, message: `larger than ${MAX_FILE_BYTES} bytes; split the policy into several files` }]);
    // Read at most one byte more than allowed, whatever the size said (the file may grow meanwhile).
    const buf = Buffer.alloc(MAX_FILE_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) throw new PolicyLoadError([{ file: path, message: `larger than ${MAX_FILE_BYTES} bytes; split the policy into several files` }]);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * Read and build the policy of a directory. A small policy (the usual few KiB) is built here; a large
 * one in a worker thread, so that parsing it never holds up the decisions this process is making,
 * with its memory and time bounded. The last result is kept: the same files again (a rescan) cost one
 * hash, not a parse.
 */
export async function loadPolicyDir(dir: string): Promise<Policy> {
  return loadPolicyFiles(await readPolicyFiles(dir), resolve(dir));
}

/**
 * Build the policy of files already in memory (a policy directory's, a signed policy artifact's, or
 * both merged), with the same bounds, merge rules, worker and memo as loadPolicyDir. `where` names
 * them in problems that concern them all (too large, too slow to parse).
 */
export async function loadPolicyFiles(files: Array<{ path: string; text: string }>, where: string): Promise<Policy> {
  if (files.length > MAX_FILES) throw new PolicyLoadError([{ file: where, message: `more than ${MAX_FILES} policy files` }]);
  if (files.reduce((n, f) => n + Buffer.byteLength(f.text), 0) > POLICY_LIMITS.totalBytes)
    throw new PolicyLoadError([{ file: where, message: `the policy files together are larger than ${POLICY_LIMITS.totalBytes} bytes` }]);
  const key = createHash('sha256');
  for (const f of files) key.update(`${f.path}\0${f.text.length}\0`).update(f.text);
  const fingerprint = key.digest('hex');
  if (lastBuild?.fingerprint === fingerprint) {
    if (lastBuild.error) throw lastBuild.error;
    return lastBuild.policy!;
  }
  const bytes = files.reduce((n, f) => n + f.text.length, 0);
  try {
    const policy = bytes <= IN_THREAD_BYTES ? buildPolicy(files) : await buildPolicyInWorker(where, files);
    lastBuild = { fingerprint, policy };
    return policy;
  } catch (err) {
    if (err instanceof PolicyLoadError) lastBuild = { fingerprint, error: err };
    throw err;
  }
}

/** Policies up to this many characters are parsed on the calling thread (a few milliseconds). */
const IN_THREAD_BYTES = 32 * 1024;
/** Bounds on the worker that parses a larger policy. */
const WORKER_LIMITS = { timeoutMs: 20_000, maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32 };
let lastBuild: { fingerprint: string; policy?: Policy; error?: PolicyLoadError } | undefined;

function buildPolicyInWorker(dir: string, files: Array<{ path: string; text: string }>): Promise<Policy> {
  return new Promise<Policy>((resolvePolicy, reject) => {
    const worker = new Worker(new URL('./build-worker.js', import.meta.url), {
      workerData: files,
      resourceLimits: { maxOldGenerationSizeMb: WORKER_LIMITS.maxOldGenerationSizeMb, maxYoungGenerationSizeMb: WORKER_LIMITS.maxYoungGenerationSizeMb },
    });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      fn();
    };
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(
            new PolicyLoadError([
              { file: dir, message: `the policy files took longer than ${WORKER_LIMITS.timeoutMs / 1000} s to parse; split or simplify them` },
            ]),
          ),
        ),
      WORKER_LIMITS.timeoutMs,
    );
    timer.unref();
    worker.once('message', (m: { ok: true; policy: Policy } | { ok: false; code: 'POLICY_INVALID' | 'POLICY_NOT_FOUND'; problems: PolicyProblem[] }) => {
      settle(() => (m.ok ? resolvePolicy(m.policy) : reject(new PolicyLoadError(m.problems, m.code))));
    });
    worker.once('error', (err: Error & { code?: string }) => {
      const why = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `parsing them needs more than ${WORKER_LIMITS.maxOldGenerationSizeMb} MB` : describeError(err);
      settle(() => reject(new PolicyLoadError([{ file: dir, message: `the policy files cannot be loaded: ${why}` }])));
    });
    worker.once('exit', (code) =>
      settle(() => reject(new PolicyLoadError([{ file: dir, message: `the policy files cannot be loaded: the parser stopped (exit ${code})` }]))),
    );
  });
}

interface ParsedFile {
  path: string;
  doc: Document;
  lines: LineCounter;
  value: RawFile;
}

interface RawGroup {
  keys: string[];
  threshold?: number;
  identity?: Record<string, string>;
}
interface RawScope {
  action: 'verify' | 'accept' | 'reject';
  mode?: Mode;
  signatures?: RawGroup | RawGroup[];
  rejectIfSignedBy?: string[];
  deny?: { digests?: string[] };
  signatureSources?: Array<'registry' | { ociLayout: string }>;
  formats?: FormatName[];
  attestations?: Array<{
    predicateType: string;
    keys: string[];
    threshold?: number;
    maxAge?: string;
    maxSeverity?: AttestationRequirement['maxSeverity'];
    ignore?: string[];
  }>;
}
interface RawKey {
  trustedIdentities?: string[];
  sigstore?: { trustedRoot: string; issuer: string; subject?: string; subjectRegExp?: string };
  file?: string;
  certificates?: string;
  intermediates?: string;
  subjectEmail?: string;
  subjectHostname?: string;
  subjectURI?: string;
  tsaCertificates?: string;
  tsaTrustedRoot?: string;
  tlog?: 'required';
  rekorKey?: string;
  trustedRoot?: string;
  pkcs11?: string;
  verifyOn?: 'node' | 'token';
  notBefore?: string;
  notAfter?: string;
  expiryWarning?: string;
  revoked?: boolean;
}
interface RawFile {
  apiVersion: 'signet/v1';
  mode?: Mode;
  deny?: { digests?: string[] };
  keys?: Record<string, RawKey>;
  default?: RawScope;
  scopes?: Record<string, RawScope>;
}

/** Pure: from file contents to a Policy, or a PolicyLoadError listing every problem. */
export function buildPolicy(files: Array<{ path: string; text: string }>): Policy {
  const problems: PolicyProblem[] = [];
  const parsed: ParsedFile[] = [];
  // Sorted so that "defined first in" and the generation do not depend on the caller's order.
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (sorted.length === 0) throw new PolicyLoadError([{ file: '(none)', message: 'no policy files given' }], 'POLICY_NOT_FOUND');
  // A file that does not parse or fails the schema is left out of the merge, but the others are still
  // checked so that one run shows every problem. Only "key not defined" is not reported then: the
  // definition may sit in the broken file.
  let broken = false;
  for (const f of sorted) {
    const p = parseFile(f.path, f.text, problems);
    if (p !== undefined) parsed.push(p);
    else broken = true;
  }

  const at = (pf: ParsedFile, path: Array<string | number>, key?: string): { file: string; line?: number; column?: number } => {
    const pos = locate(pf.doc, pf.lines, path, key);
    return { file: pf.path, ...(pos ? { line: pos.line, column: pos.col } : {}) };
  };
  const problem = (pf: ParsedFile, path: Array<string | number>, message: string, key?: string) =>
    problems.push({ ...at(pf, path, key), path: toPointer(key !== undefined ? [...path, key] : path), message });

  // Merge, refusing anything defined twice.
  const keys: Record<string, KeyDefinition> = {};
  const scopes: Record<string, ScopePolicy> = {};
  const origins: Record<string, string> = {};
  const keyOrigin = new Map<string, ParsedFile>();
  const scopeOrigin = new Map<string, ParsedFile>();
  let defaultScope: { pf: ParsedFile; raw: RawScope } | undefined;
  let defaultMode: { pf: ParsedFile; mode: Mode } | undefined;
  const denyDigests = new Set<string>();
  const where = (pf: ParsedFile, path: Array<string | number>, key?: string) => {
    const a = at(pf, path, key);
    return `${a.file}${a.line !== undefined ? `:${a.line}` : ''}`;
  };

  for (const pf of parsed) {
    const v = pf.value;
    if (v.mode !== undefined) {
      if (defaultMode) problem(pf, [], `the default mode is already set in ${where(defaultMode.pf, [], 'mode')}; set it in one file only`, 'mode');
      else defaultMode = { pf, mode: v.mode };
    }
    for (const d of v.deny?.digests ?? []) denyDigests.add(d);
    for (const [name, raw] of Object.entries(v.keys ?? {})) {
      const first = keyOrigin.get(name);
      if (first) {
        problem(pf, ['keys'], `key "${name}" is already defined in ${where(first, ['keys'], name)}; rename one of them`, name);
        continue;
      }
      keyOrigin.set(name, pf);
      origins[`key:${name}`] = where(pf, ['keys'], name);
      const def = keyDefinition(pf, name, raw, problem);
      if (def) keys[name] = def;
    }
    if (v.default !== undefined) {
      if (defaultScope) problem(pf, [], `"default" is already defined in ${where(defaultScope.pf, [], 'default')}; define it in one file only`, 'default');
      else defaultScope = { pf, raw: v.default };
    }
    for (const scope of Object.keys(v.scopes ?? {})) {
      const syntax = scopeSyntaxError(scope);
      if (syntax) problem(pf, ['scopes'], syntax, scope);
      const first = scopeOrigin.get(scope);
      if (first) problem(pf, ['scopes'], `scope "${scope}" is already defined in ${where(first, ['scopes'], scope)}; merge the two definitions`, scope);
      else scopeOrigin.set(scope, pf);
    }
  }
  const mode: Mode = defaultMode?.mode ?? 'enforce';
  const scopePolicy = (pf: ParsedFile, path: string[], raw: RawScope): ScopePolicy => {
    const groups = raw.signatures === undefined ? [] : Array.isArray(raw.signatures) ? raw.signatures : [raw.signatures];
    const signatures = groups.map((g, i): SignatureRequirement => {
      const gpath = Array.isArray(raw.signatures) ? [...path, 'signatures', i] : [...path, 'signatures'];
      const threshold = g.threshold ?? 1;
      const seen = new Set<string>();
      g.keys.forEach((k, j) => {
        if (seen.has(k)) problem(pf, [...gpath, 'keys', j], `key "${k}" is listed twice; each key counts once`);
        seen.add(k);
        if (!broken && !keyOrigin.has(k)) problem(pf, [...gpath, 'keys', j], `key "${k}" is not defined under "keys" in any policy file`);
      });
      if (threshold > seen.size)
        problem(pf, [...gpath, 'threshold'], `threshold ${threshold} is larger than the ${seen.size} key(s) listed; lower it or add keys`);
      return { keys: [...seen], threshold, identity: identityRule(pf, [...gpath, 'identity'], g.identity, problem) };
    });
    (raw.rejectIfSignedBy ?? []).forEach((k, j) => {
      if (!broken && !keyOrigin.has(k)) problem(pf, [...path, 'rejectIfSignedBy', j], `key "${k}" is not defined under "keys" in any policy file`);
    });
    const attestations = (raw.attestations ?? []).map((a, i): AttestationRequirement => {
      const apath = [...path, 'attestations', i];
      const seen = new Set<string>();
      a.keys.forEach((k, j) => {
        if (seen.has(k)) problem(pf, [...apath, 'keys', j], `key "${k}" is listed twice; each key counts once`);
        seen.add(k);
        if (!broken && !keyOrigin.has(k)) problem(pf, [...apath, 'keys', j], `key "${k}" is not defined under "keys" in any policy file`);
      });
      const threshold = a.threshold ?? 1;
      if (threshold > seen.size)
        problem(pf, [...apath, 'threshold'], `threshold ${threshold} is larger than the ${seen.size} key(s) listed; lower it or add keys`);
      let maxAgeMs: number | undefined;
      if (a.maxAge !== undefined) {
        try {
          maxAgeMs = parseDuration(a.maxAge, 'maxAge', 'POLICY_INVALID');
        } catch (err) {
          problem(pf, [...apath, 'maxAge'], (err as Error).message);
        }
      }
      return {
        predicateType: a.predicateType,
        keys: [...seen],
        threshold,
        ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
        ...(a.maxSeverity ? { maxSeverity: a.maxSeverity } : {}),
        ignore: a.ignore ?? [],
      };
    });
    const signatureSources: SignatureSourceSpec[] = raw.signatureSources ?? ['registry'];
    const seenSources = new Set<string>();
    signatureSources.forEach((src, i) => {
      const key = src === 'registry' ? src : src.ociLayout;
      if (seenSources.has(key)) problem(pf, [...path, 'signatureSources', i], `signature source ${JSON.stringify(src)} is listed twice`);
      seenSources.add(key);
      if (src !== 'registry' && !isAbsolute(src.ociLayout))
        problem(pf, [...path, 'signatureSources', i, 'ociLayout'], `OCI layout "${src.ociLayout}" must be an absolute path`);
    });
    const formats = raw.formats ?? [...ALL_FORMATS];
    return {
      action: raw.action,
      mode: raw.mode ?? mode,
      signatures,
      rejectIfSignedBy: raw.rejectIfSignedBy ?? [],
      denyDigests: raw.deny?.digests ?? [],
      attestations,
      signatureSources,
      formats: [...new Set(formats)],
    };
  };
  for (const pf of parsed) {
    for (const [scope, raw] of Object.entries(pf.value.scopes ?? {})) {
      if (scopeOrigin.get(scope) !== pf) continue;
      scopes[scope] = scopePolicy(pf, ['scopes', scope], raw);
      origins[`scope:${scope}`] = where(pf, ['scopes'], scope);
    }
  }
  const def = defaultScope
    ? scopePolicy(defaultScope.pf, ['default'], defaultScope.raw)
    : {
        action: 'reject' as const,
        mode,
        signatures: [],
        rejectIfSignedBy: [],
        denyDigests: [],
        attestations: [],
        signatureSources: ['registry' as const],
        formats: [...ALL_FORMATS],
      };
  if (defaultScope) origins['scope:default'] = where(defaultScope.pf, [], 'default');
  if (problems.length > 0) throw new PolicyLoadError(boundProblems(sortProblems(problems)));

  const merged = { apiVersion: 'signet/v1' as const, keys, default: def, scopes, denyDigests: [...denyDigests].sort() };
  return {
    ...merged,
    generation: `sha256:${createHash('sha256').update(canonicalJson(merged)).digest('hex')}`,
    files: parsed.map((p) => p.path).sort(),
    origins,
  };
}

function parseFile(path: string, text: string, problems: PolicyProblem[]): ParsedFile | undefined {
  // Problems of this file are collected apart and bounded: a foreign file must not produce one per line.
  const mine: PolicyProblem[] = [];
  const parsed = parseFileUnbounded(path, text, (p) => mine.push(p));
  problems.push(...boundFileProblems(path, mine));
  return parsed;
}

function parseFileUnbounded(path: string, text: string, add: (p: PolicyProblem) => void): ParsedFile | undefined {
  const lines = new LineCounter();
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) {
    add({ file: path, message: `larger than ${MAX_FILE_BYTES} bytes; split the policy into several files` });
    return undefined;
  }
  // Before the parser sees it: the cost of parsing grows with nesting, and no policy nests deep.
  const deep = nestedTooDeep(text, POLICY_LIMITS.nesting);
  if (deep !== undefined) {
    const pos = lineCol(text, deep);
    add({
      file: path,
      line: pos.line,
      column: pos.col,
      message: `nested deeper than ${POLICY_LIMITS.nesting} levels; a policy file needs far fewer (is this a policy file?)`,
    });
    return undefined;
  }
  // Duplicate keys are found below in one pass: yaml's own check is quadratic in the keys of a mapping.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false, strict: true });
  // Warnings are errors here: an unresolved tag (`!foo x`) must not silently become a string.
  const yamlErrors = [...doc.errors, ...doc.warnings];
  for (const e of yamlErrors) {
    const pos = lines.linePos(e.pos[0]);
    add({ file: path, line: pos.line, column: pos.col, message: yamlMessage(e.code, e.message) });
  }
  const duplicates = duplicateKeys(doc);
  for (const d of duplicates) {
    const pos = lines.linePos(d.offset);
    add({
      file: path,
      line: pos.line,
      column: pos.col,
      message: `duplicate key "${printable(d.key, 128)}": each key may appear once in a mapping; remove or merge one of them`,
    });
  }
  if (yamlErrors.length > 0 || duplicates.length > 0) return undefined;
  let value: unknown;
  try {
    // Aliases are capped (billion laughs); a policy has no real use for many of them.
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    add({ file: path, line: 1, column: 1, message: `${(err as Error).message}: use fewer YAML aliases (at most ${MAX_ALIAS_COUNT} expansions)` });
    return undefined;
  }
  if (value === null || value === undefined) {
    add({ file: path, line: 1, message: 'the file is empty; it needs at least "apiVersion: signet/v1"' });
    return undefined;
  }
  const schemaProblems = validatePolicyFile(value);
  let unknownFields = 0;
  for (const sp of schemaProblems) {
    if (sp.unknownField && ++unknownFields > POLICY_LIMITS.unknownFieldsPerFile) continue;
    const segments = pointerSegments(sp.pointer);
    const pos = locate(doc, lines, segments, sp.key);
    add({ file: path, ...(pos ? { line: pos.line, column: pos.col } : {}), path: sp.pointer || '/', message: sp.message });
  }
  if (unknownFields > POLICY_LIMITS.unknownFieldsPerFile) {
    const more = unknownFields - POLICY_LIMITS.unknownFieldsPerFile;
    add({ file: path, message: `${more} more unknown field${more === 1 ? '' : 's'} not listed; is this a signet policy file?` });
  }
  if (schemaProblems.length > 0) return undefined;
  return { path, doc, lines, value: value as RawFile };
}

/** At most POLICY_LIMITS.problemsPerFile problems per file (in a list sorted by file), the rest summarised. */
function boundProblems(problems: PolicyProblem[]): PolicyProblem[] {
  const out: PolicyProblem[] = [];
  for (let i = 0; i < problems.length;) {
    let j = i;
    while (j < problems.length && problems[j]!.file === problems[i]!.file) j++;
    out.push(...boundFileProblems(problems[i]!.file, problems.slice(i, j)));
    i = j;
  }
  return out;
}

/** At most POLICY_LIMITS.problemsPerFile problems of one file, the rest summarised in the last one. */
function boundFileProblems(path: string, problems: PolicyProblem[]): PolicyProblem[] {
  const max = POLICY_LIMITS.problemsPerFile;
  if (problems.length <= max) return problems;
  return [...problems.slice(0, max - 1), { file: path, message: `${problems.length - max + 1} more problems in this file not listed` }];
}

/** Line and column (1-based) of `offset` in `text`. */
function lineCol(text: string, offset: number): { line: number; col: number } {
  const lc = new LineCounter();
  lc.addNewLine(0);
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) lc.addNewLine(i + 1);
  return lc.linePos(offset);
}

/**
 * The offset where `text` first nests deeper than `max` collections, or undefined. It reads yaml's own
 * lexer tokens (so quotes, comments and block scalars are what the parser will see) and stops there:
 * a million `[` cost a few dozen tokens. Block nesting is counted by indentation columns and compact
 * `- ` / `? ` indicators, flow nesting by `[` and `{`; the count errs on the high side (an indented
 * line counts as a level), which the bound leaves room for.
 */
export function nestedTooDeep(text: string, max: number): number | undefined {
  let flow = 0;
  const columns: number[] = [];
  let col = 0;
  let offset = 0;
  let lineStart = true;
  let scalarNext = false;
  for (const token of new Lexer().lex(text)) {
    if (token === '\x02' || token === '\x18') continue; // document mode, flow error end: no source text
    if (token === '\x1f') {
      scalarNext = true; // a scalar's source follows, whatever it looks like
      continue;
    }
    const start = offset;
    const startCol = col;
    offset += token.length;
    const nl = token.lastIndexOf('\n');
    col = nl === -1 ? col + token.length : token.length - nl - 1;
    const type = scalarNext ? 'scalar' : CST.tokenType(token);
    scalarNext = false;
    if (type === 'newline') {
      lineStart = true;
      continue;
    }
    if (type === 'space' || type === 'comment' || type === 'byte-order-mark') continue;
    if (flow === 0 && (lineStart || type === 'seq-item-ind' || type === 'explicit-key-ind')) {
      while (columns.length > 0 && columns[columns.length - 1]! >= startCol) columns.pop();
      columns.push(startCol);
    }
    lineStart = false;
    if (type === 'flow-seq-start' || type === 'flow-map-start') flow++;
    else if ((type === 'flow-seq-end' || type === 'flow-map-end') && flow > 0) flow--;
    if (columns.length + flow > max) return start;
  }
  return undefined;
}

/** Keys that appear twice in one mapping, with the offset of the second; one pass over the document. */
function duplicateKeys(doc: Document): Array<{ key: string; offset: number }> {
  const out: Array<{ key: string; offset: number }> = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const k = pair.key as unknown;
        const text = isScalar(k) ? String(k.value) : String(k);
        const id = isScalar(k) ? `${typeof k.value}:${text}` : `node:${text}`;
        if (seen.has(id)) out.push({ key: text, offset: (k as { range?: [number, number] } | null)?.range?.[0] ?? 0 });
        else seen.add(id);
      }
    },
  });
  return out;
}

/** yaml's messages, phrased as what to change (their text can quote the file: escaped and cut short). */
function yamlMessage(code: string, message: string): string {
  const first = printable(message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''), 200);
  switch (code) {
    case 'MULTIPLE_DOCS':
      return 'a policy file holds one YAML document; remove the "---" separator or split it into several files';
    case 'TAG_RESOLVE_FAILED':
      return `${first}; remove the tag, policy files use plain YAML values`;
    default:
      return `invalid YAML: ${first}`;
  }
}

type ProblemFn = (pf: ParsedFile, path: Array<string | number>, message: string, key?: string) => void;

function keyDefinition(pf: ParsedFile, name: string, raw: RawKey, problem: ProblemFn): KeyDefinition | undefined {
  const path = ['keys', name];
  // Relative key paths are refused rather than resolved against the policy directory: the same file
  // is read by signetd (its working directory is /), by `signet policy check DIR` from anywhere and
  // by tests, and an absolute path means the same thing to all of them.
  if (raw.sigstore !== undefined && !isAbsolute(raw.sigstore.trustedRoot)) {
    problem(pf, [...path, 'sigstore', 'trustedRoot'], `trusted root "${raw.sigstore.trustedRoot}" must be an absolute path`);
    return undefined;
  }
  if (raw.sigstore?.subject === undefined && raw.sigstore?.subjectRegExp === undefined && raw.sigstore !== undefined) {
    problem(
      pf,
      [...path, 'sigstore'],
      'a keyless identity needs "subject" or "subjectRegExp": without one, any signer the issuer vouches for would be trusted',
    );
    return undefined;
  }
  if (raw.certificates !== undefined && !isAbsolute(raw.certificates)) {
    problem(pf, [...path, 'certificates'], `certificates file "${raw.certificates}" must be an absolute path`);
    return undefined;
  }
  for (const field of ['rekorKey', 'trustedRoot', 'tsaCertificates', 'tsaTrustedRoot'] as const) {
    const v = raw[field];
    if (v !== undefined && !isAbsolute(v)) {
      problem(pf, [...path, field], `${field} file "${v}" must be an absolute path`);
      return undefined;
    }
  }
  if (raw.intermediates !== undefined && !isAbsolute(raw.intermediates)) {
    problem(pf, [...path, 'intermediates'], `intermediates file "${raw.intermediates}" must be an absolute path`);
    return undefined;
  }
  if (raw.file !== undefined && !isAbsolute(raw.file)) {
    problem(pf, [...path, 'file'], `key file "${raw.file}" must be an absolute path (e.g. /etc/signet/keys/${name}.pub)`);
    return undefined;
  }
  const time = (field: 'notBefore' | 'notAfter'): Date | undefined => {
    const t = raw[field];
    if (t === undefined) return undefined;
    const d = new Date(t);
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(t) || Number.isNaN(d.getTime())) {
      problem(pf, [...path, field], `${field} "${t}" is not an RFC 3339 time such as 2026-12-31T00:00:00Z`);
      return undefined;
    }
    return d;
  };
  const notBefore = time('notBefore');
  const notAfter = time('notAfter');
  if (notBefore && notAfter && notAfter <= notBefore)
    problem(pf, [...path, 'notAfter'], `notAfter ${raw.notAfter} is not after notBefore ${raw.notBefore}; swap or correct them`);
  let expiryWarningMs = DEFAULT_EXPIRY_WARNING_MS;
  if (raw.expiryWarning !== undefined) {
    try {
      expiryWarningMs = parseDuration(raw.expiryWarning, 'expiryWarning', 'POLICY_INVALID');
    } catch (err) {
      problem(pf, [...path, 'expiryWarning'], (err as Error).message);
    }
  }
  return {
    ...(raw.file !== undefined ? { file: raw.file } : {}),
    ...(raw.pkcs11 !== undefined ? { pkcs11: raw.pkcs11 } : {}),
    ...(raw.certificates !== undefined ? { certificates: raw.certificates } : {}),
    ...(raw.intermediates !== undefined ? { intermediates: raw.intermediates } : {}),
    ...(raw.subjectEmail !== undefined ? { subjectEmail: raw.subjectEmail } : {}),
    ...(raw.subjectHostname !== undefined ? { subjectHostname: raw.subjectHostname } : {}),
    ...(raw.subjectURI !== undefined ? { subjectURI: raw.subjectURI } : {}),
    ...(raw.tsaCertificates !== undefined ? { tsaCertificates: raw.tsaCertificates } : {}),
    ...(raw.tsaTrustedRoot !== undefined ? { tsaTrustedRoot: raw.tsaTrustedRoot } : {}),
    ...(raw.tlog !== undefined ? { tlog: raw.tlog } : {}),
    ...(raw.rekorKey !== undefined ? { rekorKey: raw.rekorKey } : {}),
    ...(raw.trustedRoot !== undefined ? { trustedRoot: raw.trustedRoot } : {}),
    ...(raw.trustedIdentities !== undefined ? { trustedIdentities: raw.trustedIdentities } : {}),
    ...(raw.sigstore !== undefined ? { sigstore: raw.sigstore } : {}),
    ...(raw.verifyOn !== undefined ? { verifyOn: raw.verifyOn } : {}),
    ...(notBefore ? { notBefore } : {}),
    ...(notAfter ? { notAfter } : {}),
    expiryWarningMs,
    revoked: raw.revoked ?? false,
  };
}

function identityRule(pf: ParsedFile, path: Array<string | number>, raw: Record<string, string> | undefined, problem: ProblemFn): IdentityRule {
  if (raw === undefined) return { type: 'matchRepository' };
  const need = (field: string, check: (v: string) => string | undefined): string => {
    const v = raw[field];
    if (v === undefined) {
      problem(pf, path, `identity type ${raw['type']} needs "${field}"`);
      return '';
    }
    const err = check(v);
    if (err) problem(pf, [...path, field], err);
    return v;
  };
  const allowed: Record<string, string[]> = {
    exactReference: ['dockerReference'],
    exactRepository: ['dockerRepository'],
    remapIdentity: ['prefix', 'signedPrefix'],
  };
  for (const field of Object.keys(raw)) {
    if (field !== 'type' && !(allowed[raw['type']!] ?? []).includes(field))
      problem(pf, [...path, field], `"${field}" does not apply to identity type ${raw['type']}`);
  }
  const ref = (v: string) => {
    try {
      parseReference(v);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  };
  switch (raw['type']) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      return { type: raw['type'] };
    case 'exactReference':
      return {
        type: 'exactReference',
        dockerReference: need('dockerReference', (v) => ref(v) ?? (/[:@]/.test(v.split('/').pop() ?? '') ? undefined : `"${v}" needs a tag or digest`)),
      };
    case 'exactRepository':
      return { type: 'exactRepository', dockerRepository: need('dockerRepository', ref) };
    case 'remapIdentity':
      return { type: 'remapIdentity', prefix: need('prefix', (v) => scopeSyntaxError(v)), signedPrefix: need('signedPrefix', (v) => scopeSyntaxError(v)) };
    default:
      return { type: 'matchRepository' };
  }
}

/** RFC 6901 pointer of a path. */
function toPointer(path: Array<string | number>): string {
  return path.length === 0 ? '/' : path.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

function sortProblems(problems: PolicyProblem[]): PolicyProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) =>
      a.p.file < b.p.file ? -1 : a.p.file > b.p.file ? 1 : (a.p.line ?? 0) - (b.p.line ?? 0) || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i,
    )
    .map(({ p }) => p);
}

/** JSON with sorted keys, so that the generation depends on content only. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Date) return v.toISOString();
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}
