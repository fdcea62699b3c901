/**
 * Load a policy directory: every *.yaml, *.yml, *.json file, each parsed strictly (duplicate keys are
 * errors), validated against schema/policy.schema.json, then checked for meaning and merged.
 * Every problem is collected and located (file, line, column) so that one run shows everything to fix.
 * Atomic by construction: either a complete Policy comes back, or a PolicyLoadError.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { SignetError } from '../errors.js';
import { parseReference } from '../registry/reference.js';
import { parseDuration } from '../util/duration.js';
import { ALL_FORMATS, type FormatName } from '../formats/types.js';
import { locate, pointerSegments } from './locate.js';
import { validatePolicyFile } from './schema.js';
import { scopeSyntaxError } from './scope-syntax.js';
import type { AttestationRequirement, SignatureSourceSpec, IdentityRule, KeyDefinition, Mode, Policy, PolicyProblem, ScopePolicy, SignatureRequirement } from './types.js';

const MAX_FILE_BYTES = 1 << 20;
const MAX_FILES = 1000;
const MAX_ALIAS_COUNT = 100;
const DEFAULT_EXPIRY_WARNING_MS = 30 * 86_400_000;

export class PolicyLoadError extends SignetError {
  constructor(readonly problems: PolicyProblem[], code: 'POLICY_INVALID' | 'POLICY_NOT_FOUND' = 'POLICY_INVALID') {
    super(code, problems.map(formatProblem).join('\n'));
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

export async function readPolicyFiles(dir: string): Promise<Array<{ path: string; text: string }>> {
  const abs = resolve(dir);
  let names: string[];
  try {
    names = await readdir(abs);
  } catch (err) {
    throw new PolicyLoadError([{ file: abs, message: `cannot read the policy directory: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }], 'POLICY_NOT_FOUND');
  }
  const files = names.filter(isPolicyFileName).sort();
  if (files.length === 0) throw new PolicyLoadError([{ file: abs, message: 'no policy files (*.yaml, *.yml, *.json) in the policy directory' }], 'POLICY_NOT_FOUND');
  if (files.length > MAX_FILES) throw new PolicyLoadError([{ file: abs, message: `more than ${MAX_FILES} policy files` }]);
  const out: Array<{ path: string; text: string }> = [];
  for (const name of files) {
    const path = join(abs, name);
    try {
      const s = await stat(path);
      if (!s.isFile()) continue;
      if (s.size > MAX_FILE_BYTES) throw new PolicyLoadError([{ file: path, message: `larger than ${MAX_FILE_BYTES} bytes` }]);
      out.push({ path, text: await readFile(path, 'utf8') });
    } catch (err) {
      if (err instanceof PolicyLoadError) throw err;
      // Vanished between readdir and read (an editor's rename): the watcher reloads again.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new PolicyLoadError([{ file: path, message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
    }
  }
  if (out.length === 0) throw new PolicyLoadError([{ file: abs, message: 'no readable policy files in the policy directory' }], 'POLICY_NOT_FOUND');
  return out;
}

export async function loadPolicyDir(dir: string): Promise<Policy> {
  return buildPolicy(await readPolicyFiles(dir));
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
  attestations?: Array<{ predicateType: string; keys: string[]; threshold?: number; maxAge?: string; maxSeverity?: AttestationRequirement['maxSeverity']; ignore?: string[] }>;
}
interface RawKey {
  trustedIdentities?: string[];
  sigstore?: { trustedRoot: string; issuer: string; subject?: string; subjectRegExp?: string };
  file?: string;
  certificates?: string;
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
      if (threshold > seen.size) problem(pf, [...gpath, 'threshold'], `threshold ${threshold} is larger than the ${seen.size} key(s) listed; lower it or add keys`);
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
      if (threshold > seen.size) problem(pf, [...apath, 'threshold'], `threshold ${threshold} is larger than the ${seen.size} key(s) listed; lower it or add keys`);
      let maxAgeMs: number | undefined;
      if (a.maxAge !== undefined) {
        try {
          maxAgeMs = parseDuration(a.maxAge, 'maxAge', 'POLICY_INVALID');
        } catch (err) {
          problem(pf, [...apath, 'maxAge'], (err as Error).message);
        }
      }
      return { predicateType: a.predicateType, keys: [...seen], threshold, ...(maxAgeMs !== undefined ? { maxAgeMs } : {}), ...(a.maxSeverity ? { maxSeverity: a.maxSeverity } : {}), ignore: a.ignore ?? [] };
    });
    const signatureSources: SignatureSourceSpec[] = raw.signatureSources ?? ['registry'];
    const seenSources = new Set<string>();
    signatureSources.forEach((src, i) => {
      const key = src === 'registry' ? src : src.ociLayout;
      if (seenSources.has(key)) problem(pf, [...path, 'signatureSources', i], `signature source ${JSON.stringify(src)} is listed twice`);
      seenSources.add(key);
      if (src !== 'registry' && !isAbsolute(src.ociLayout)) problem(pf, [...path, 'signatureSources', i, 'ociLayout'], `OCI layout "${src.ociLayout}" must be an absolute path`);
    });
    const formats = raw.formats ?? [...ALL_FORMATS];
    return { action: raw.action, mode: raw.mode ?? mode, signatures, rejectIfSignedBy: raw.rejectIfSignedBy ?? [], denyDigests: raw.deny?.digests ?? [], attestations, signatureSources, formats: [...new Set(formats)] };
  };
  for (const pf of parsed) {
    for (const [scope, raw] of Object.entries(pf.value.scopes ?? {})) {
      if (scopeOrigin.get(scope) !== pf) continue;
      scopes[scope] = scopePolicy(pf, ['scopes', scope], raw);
      origins[`scope:${scope}`] = where(pf, ['scopes'], scope);
    }
  }
  const def = defaultScope ? scopePolicy(defaultScope.pf, ['default'], defaultScope.raw) : { action: 'reject' as const, mode, signatures: [], rejectIfSignedBy: [], denyDigests: [], attestations: [], signatureSources: ['registry' as const], formats: [...ALL_FORMATS] };
  if (defaultScope) origins['scope:default'] = where(defaultScope.pf, [], 'default');
  if (problems.length > 0) throw new PolicyLoadError(sortProblems(problems));

  const merged = { apiVersion: 'signet/v1' as const, keys, default: def, scopes, denyDigests: [...denyDigests].sort() };
  return { ...merged, generation: `sha256:${createHash('sha256').update(canonicalJson(merged)).digest('hex')}`, files: parsed.map((p) => p.path).sort(), origins };
}

function parseFile(path: string, text: string, problems: PolicyProblem[]): ParsedFile | undefined {
  const lines = new LineCounter();
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) {
    problems.push({ file: path, message: `larger than ${MAX_FILE_BYTES} bytes; split the policy into several files` });
    return undefined;
  }
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
  // Warnings are errors here: an unresolved tag (`!foo x`) must not silently become a string.
  const yamlErrors = [...doc.errors, ...doc.warnings];
  if (yamlErrors.length > 0) {
    for (const e of yamlErrors) {
      const pos = lines.linePos(e.pos[0]);
      problems.push({ file: path, line: pos.line, column: pos.col, message: yamlMessage(e.code, e.message, text, e.pos) });
    }
    return undefined;
  }
  let value: unknown;
  try {
    // Aliases are capped (billion laughs); a policy has no real use for many of them.
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    problems.push({ file: path, line: 1, column: 1, message: `${(err as Error).message}: use fewer YAML aliases (at most ${MAX_ALIAS_COUNT} expansions)` });
    return undefined;
  }
  if (value === null || value === undefined) {
    problems.push({ file: path, line: 1, message: 'the file is empty; it needs at least "apiVersion: signet/v1"' });
    return undefined;
  }
  const schemaProblems = validatePolicyFile(value);
  for (const sp of schemaProblems) {
    const segments = pointerSegments(sp.pointer);
    const pos = locate(doc, lines, segments, sp.key);
    problems.push({ file: path, ...(pos ? { line: pos.line, column: pos.col } : {}), path: sp.pointer || '/', message: sp.message });
  }
  if (schemaProblems.length > 0) return undefined;
  return { path, doc, lines, value: value as RawFile };
}

/** The mapping key written at `offset` (yaml points at its first character only). */
function keyAt(text: string, offset: number): string {
  const m = /^(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^:,{}\n]*?))\s*:/.exec(text.slice(offset, offset + 1024));
  return m ? (m[1] ?? m[2] ?? m[3] ?? '') : text.slice(offset, offset + 1);
}

/** yaml's messages, phrased as what to change. */
function yamlMessage(code: string, message: string, text: string, pos: [number, number]): string {
  const first = message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  switch (code) {
    case 'DUPLICATE_KEY':
      return `duplicate key "${keyAt(text, pos[0])}": each key may appear once in a mapping; remove or merge one of them`;
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
    problem(pf, [...path, 'sigstore'], 'a keyless identity needs "subject" or "subjectRegExp": without one, any signer the issuer vouches for would be trusted');
    return undefined;
  }
  if (raw.certificates !== undefined && !isAbsolute(raw.certificates)) {
    problem(pf, [...path, 'certificates'], `certificates file "${raw.certificates}" must be an absolute path`);
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
  if (notBefore && notAfter && notAfter <= notBefore) problem(pf, [...path, 'notAfter'], `notAfter ${raw.notAfter} is not after notBefore ${raw.notBefore}; swap or correct them`);
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
  const allowed: Record<string, string[]> = { exactReference: ['dockerReference'], exactRepository: ['dockerRepository'], remapIdentity: ['prefix', 'signedPrefix'] };
  for (const field of Object.keys(raw)) {
    if (field !== 'type' && !(allowed[raw['type']!] ?? []).includes(field)) problem(pf, [...path, field], `"${field}" does not apply to identity type ${raw['type']}`);
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
      return { type: 'exactReference', dockerReference: need('dockerReference', (v) => ref(v) ?? (/[:@]/.test(v.split('/').pop() ?? '') ? undefined : `"${v}" needs a tag or digest`)) };
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
    .sort((a, b) => (a.p.file < b.p.file ? -1 : a.p.file > b.p.file ? 1 : (a.p.line ?? 0) - (b.p.line ?? 0) || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i))
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
