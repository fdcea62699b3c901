/** `signet policy check|explain|test|schema`: the policy a node enforces, checked and explained. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SignetError } from '../../errors.js';
import { explain, formatExplanation } from '../../policy/explain.js';
import { loadPolicyDir, PolicyLoadError, formatProblem } from '../../policy/load.js';
import type { Policy, PolicyProblem } from '../../policy/types.js';
import { policySchemaText } from '../../policy/schema.js';
import { parseReference } from '../../registry/reference.js';
import { LIMITS, printable, printableJson } from '../../util/printable.js';
import { outputFormat, policyDir, POLICY_OPTIONS } from './common.js';
import { UsageError, type CommandIo } from './io.js';
import { verifyCommand } from './verify.js';

const USAGE = `usage: signet policy <command>
  check [DIR]                       validate the policy directory as signetd does (exit 1 on any problem)
  explain IMAGE [--policy-dir DIR]  which scope applies and why, what it requires, which keys count today (no registry access)
  test IMAGE [--policy-dir DIR] [registry options]   explain, then verify against the registry with each step shown
  schema                            print the JSON Schema of a policy file`;

export async function policyCommand(argv: string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'schema':
      io.stdout.write(policySchemaText());
      return 0;
    case 'check':
      return check(rest, io);
    case 'explain':
      return explainCommand(rest, io);
    case 'test': {
      const code = await explainCommand(rest.filter((a, i) => !isRegistryArg(rest, i)), io);
      if (code !== 0) return code;
      io.stdout.write('\nverification:\n');
      return verifyCommand(rest.filter((a) => a !== '--explain'), io);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout.write(`${USAGE}\n`);
      return sub === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown policy command "${sub}"\n${USAGE}`);
  }
}

/** Registry options that `explain` does not take, with their values. */
function isRegistryArg(args: string[], i: number): boolean {
  const takesValue = ['--insecure-registry', '--docker-config', '--hosts-dir', '--output', '--pkcs11-module'];
  return takesValue.includes(args[i]!) || (i > 0 && takesValue.includes(args[i - 1]!)) || takesValue.some((t) => t !== '--output' && args[i]!.startsWith(`${t}=`));
}

async function check(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { output: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals.length > 1) throw new UsageError('give at most one DIR');
  const output = outputFormat(values.output);
  const dir = positionals[0] ?? policyDir({});
  try {
    const p = await loadPolicyDir(dir);
    // signetd would load this policy and then fail on each key whose file it cannot read: say so now.
    const keyProblems = unreadableKeyFiles(p);
    if (keyProblems.length > 0) {
      if (output === 'json') io.stdout.write(`${printableJson({ ok: false, problems: keyProblems }, 2)}\n`);
      else io.stdout.write(`${keyProblems.map((problem) => printable(formatProblem(problem), LIMITS.reason)).join('\n')}\n${keyProblems.length} problem(s): signetd would load this policy, and refuse every image that needs these keys\n`);
      return 1;
    }
    if (output === 'json') io.stdout.write(`${printableJson({ ok: true, generation: p.generation, files: p.files, keys: Object.keys(p.keys).length, scopes: Object.keys(p.scopes).length }, 2)}\n`);
    else io.stdout.write(`ok: ${p.files.length} file(s), ${Object.keys(p.keys).length} key(s), ${Object.keys(p.scopes).length} scope(s), generation ${p.generation}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    if (output === 'json') io.stdout.write(`${printableJson({ ok: false, problems: err.problems }, 2)}\n`);
    else io.stdout.write(`${err.problems.map((problem) => printable(formatProblem(problem), LIMITS.reason)).join('\n')}\n${err.problems.length} problem(s); signetd would keep its last good policy\n`);
    return 1;
  }
}

/** Key files, trust-store certificates and sigstore trusted roots the policy names that cannot be read or are not what they should be. */
function unreadableKeyFiles(p: Policy): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  for (const [name, key] of Object.entries(p.keys)) {
    const origin = p.origins[`key:${name}`] ?? p.files[0] ?? '';
    const m = /^(.*?)(?::(\d+))?$/.exec(origin)!;
    const at = { file: m[1]!, ...(m[2] !== undefined ? { line: Number(m[2]) } : {}) };
    const files: Array<[string, string, 'pem' | 'json']> = [];
    if (key.file !== undefined) files.push(['file', key.file, 'pem']);
    if (key.certificates !== undefined) files.push(['certificates', key.certificates, 'pem']);
    if (key.sigstore?.trustedRoot !== undefined) files.push(['sigstore.trustedRoot', key.sigstore.trustedRoot, 'json']);
    for (const [field, path, kind] of files) {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied; signetd reads it as root)' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code})`;
        problems.push({ ...at, message: `key "${name}": ${field} ${path} ${why}` });
        continue;
      }
      if (kind === 'pem' && !/-----BEGIN [A-Z0-9 ]+-----/.test(text)) problems.push({ ...at, message: `key "${name}": ${field} ${path} holds no PEM block (-----BEGIN …-----)` });
      if (kind === 'json') {
        try {
          JSON.parse(text);
        } catch {
          problems.push({ ...at, message: `key "${name}": ${field} ${path} is not JSON (a sigstore trusted_root.json)` });
        }
      }
    }
  }
  return problems;
}

async function explainCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { ...POLICY_OPTIONS, output: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError(`expected one IMAGE\n${USAGE}`);
  const output = outputFormat(values.output);
  const policy = await loadPolicyDir(policyDir(values)).catch((err: unknown) => {
    throw err instanceof PolicyLoadError ? new SignetError(err.code, `the policy does not load (run signet policy check): ${err.problems.length} problem(s), first: ${formatProblem(err.problems[0]!)}`) : err;
  });
  const e = explain(policy, parseReference(positionals[0]!));
  io.stdout.write(output === 'json' ? `${printableJson(e, 2)}\n` : formatExplanation(e));
  return 0;
}
