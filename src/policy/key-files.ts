/**
 * `signet policy check`'s second half: every file a key names — `file`, the `certificates` trust store,
 * `intermediates`, `rekorKey`, `trustedRoot`, `tsaCertificates`, `tsaTrustedRoot`, a sigstore key's
 * trusted root — read and parsed by the same loaders signetd uses, so that a file signetd would fail on
 * is a problem with the policy file and line of its key, before any image needs it.
 */
import { readFile } from 'node:fs/promises';
import { SignetError } from '../errors.js';
import { loadCertificateKey, loadPemKey, loadPemList } from '../keys/pem.js';
import { SigstoreKeyProvider } from '../keys/sigstore-provider.js';
import { loadTsaTrustedRoot } from '../keys/timestamp-authorities.js';
import { loadTlogRequirement } from '../keys/tlog.js';
import type { KeyDefinition, Policy, PolicyProblem } from './types.js';

type Kind = 'pem' | 'json';

type KeyFileField = 'file' | 'certificates' | 'intermediates' | 'tsaCertificates' | 'tsaTrustedRoot' | 'rekorKey' | 'trustedRoot';

/** How signetd reads the file each key field names: one entry per field (a sigstore key's trusted root besides). */
const LOADERS: Record<KeyFileField, { kind: Kind; load(name: string, path: string): Promise<unknown> }> = {
  file: { kind: 'pem', load: (name, p) => loadPemKey(name, p) },
  certificates: { kind: 'pem', load: (name, p) => loadCertificateKey(name, p) },
  intermediates: { kind: 'pem', load: (name, p) => loadPemList(name, p, 'intermediates') },
  tsaCertificates: { kind: 'pem', load: (name, p) => loadPemList(name, p, 'timestamp-authority certificates') },
  tsaTrustedRoot: { kind: 'json', load: (name, p) => loadTsaTrustedRoot(name, p) },
  rekorKey: { kind: 'pem', load: (name, p) => loadTlogRequirement(name, { tlog: 'required', rekorKey: p }) },
  trustedRoot: { kind: 'json', load: (name, p) => loadTlogRequirement(name, { tlog: 'required', trustedRoot: p }) },
};

/** The key fields that name files, each read by `policy check` (the schema is held to this list). */
export const KEY_FILE_FIELDS = Object.keys(LOADERS) as readonly KeyFileField[];

interface KeyFile {
  field: string;
  path: string;
  kind: Kind;
  /** Parse it as signetd does; throws the loader's SignetError. */
  load(): Promise<unknown>;
}

/** The files `key` names, each with the loader signetd reads it with. */
function filesOf(name: string, key: KeyDefinition): KeyFile[] {
  const files: KeyFile[] = [];
  for (const field of KEY_FILE_FIELDS) {
    const path = key[field];
    const { kind, load } = LOADERS[field];
    if (path !== undefined) files.push({ field, path, kind, load: () => load(name, path) });
  }
  const root = key.sigstore?.trustedRoot;
  if (root !== undefined) files.push({ field: 'sigstore.trustedRoot', path: root, kind: 'json', load: () => new SigstoreKeyProvider().load(name, key) });
  return files;
}

function unreadable(code: string): string {
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES') return 'cannot be read (permission denied; signetd reads it as root)';
  if (code === 'EISDIR') return 'is a directory';
  return `cannot be read (${code})`;
}

/** What is wrong with one file, or undefined when signetd would read it. */
async function fileProblem(name: string, f: KeyFile): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(f.path, 'utf8');
  } catch (err) {
    return `${f.field} ${f.path} ${unreadable((err as NodeJS.ErrnoException).code ?? 'error')}`;
  }
  if (f.kind === 'pem' && !/-----BEGIN [A-Z0-9 ]+-----/.test(text)) return `${f.field} ${f.path} holds no PEM block (-----BEGIN …-----)`;
  try {
    await f.load();
    return undefined;
  } catch (err) {
    if (!(err instanceof SignetError)) throw err;
    // The loaders name the key; the problem line names it once.
    return `${f.field} ${f.path}: ${err.message.replace(`key "${name}": `, '')}`;
  }
}

/** Every file of every key that signetd could not read or parse, at the policy file and line of its key. */
export async function keyFileProblems(p: Policy): Promise<PolicyProblem[]> {
  const problems: PolicyProblem[] = [];
  for (const [name, key] of Object.entries(p.keys)) {
    const origin = p.origins[`key:${name}`] ?? p.files[0] ?? '';
    const m = /^(.*?)(?::(\d+))?$/.exec(origin)!;
    const at = { file: m[1]!, ...(m[2] !== undefined ? { line: Number(m[2]) } : {}) };
    for (const f of filesOf(name, key)) {
      const problem = await fileProblem(name, f);
      if (problem !== undefined) problems.push({ ...at, message: `key "${name}": ${problem}` });
    }
  }
  return problems;
}
