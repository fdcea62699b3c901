#!/usr/bin/env node
/** signet: the command line for CI and operators. Each subcommand lives in commands/. */
import { describeError, SignetError } from '../errors.js';
import type { CommandIo } from './commands/io.js';
import { LIMITS, printable } from '../util/printable.js';
import { bashCompletion, findCommand, helpText, manPage } from './spec.js';
import { VERSION } from '../version.js';

const USAGE = helpText([]).trimEnd();

/** Commands whose own usage text answers --help (more detail than the spec's); the others answer from the spec. */
const OWN_HELP = new Set(['sign', 'verify', 'audit', 'node', 'doctor']);

type Command = (argv: string[], io: CommandIo) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  status: async () => (await import('./commands/status.js')).statusCommand,
  keys: async () => (await import('./commands/keys.js')).keysCommand,
  sign: async () => (await import('./commands/sign.js')).signCommand,
  verify: async () => (await import('./commands/verify.js')).verifyCommand,
  audit: async () => (await import('./commands/audit.js')).auditCommand,
  policy: async () => (await import('./commands/policy.js')).policyCommand,
  node: async () => (await import('./commands/node.js')).nodeCommand,
  doctor: async () => (await import('./commands/doctor.js')).doctorCommand,
  install: async () => (await import('./commands/install.js')).installCommand,
  uninstall: async () => (await import('./commands/install.js')).uninstallCommand,
};

async function main(argv: string[]): Promise<number> {
  const io: CommandIo = { stdout: process.stdout, stderr: process.stderr };
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    (name === undefined ? process.stderr : process.stdout).write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  // --help (or -h) after any command or subcommand: that command's help, never its action.
  const dashdash = argv.indexOf('--');
  const words = dashdash < 0 ? argv : argv.slice(0, dashdash);
  if ((words.includes('--help') || words.includes('-h')) && !OWN_HELP.has(name)) {
    const path = [name];
    for (const w of rest) {
      if (w.startsWith('-') || findCommand([...path, w]) === undefined) break;
      path.push(w);
    }
    if (findCommand(path) !== undefined) {
      process.stdout.write(helpText(path));
      return 0;
    }
  }
  if (name === 'version' || name === '--version') {
    process.stdout.write(`signet ${VERSION}\n`);
    return 0;
  }
  if (name === 'completion') {
    if (rest[0] !== 'bash') {
      process.stderr.write(`signet completion: give the shell (bash)\n${helpText(['completion'])}`);
      return 2;
    }
    process.stdout.write(bashCompletion());
    return 0;
  }
  if (name === 'man') {
    process.stdout.write(manPage(VERSION));
    return 0;
  }
  const load = COMMANDS[name];
  if (load === undefined) {
    process.stderr.write(`signet: unknown command "${printable(name, LIMITS.name)}"\n${USAGE}\n`);
    return 2;
  }
  try {
    return await (
      await load()
    )(rest, io);
  } catch (err) {
    // One line, never a stack trace: usage errors exit 2, everything else 1.
    const usage = err instanceof TypeError && (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`signet ${name}: ${printableError(err)}\n`);
    return usage || (err as Error).name === 'UsageError' ? 2 : 1;
  }
}

/**
 * An error message quotes registries, files and arguments: escaped and bounded like every output. Usage
 * texts and policy problems (one per line) keep their lines, each escaped; anything else is one line.
 */
function printableError(err: unknown): string {
  const text = err instanceof SignetError ? describeError(err) : String((err as Error)?.message ?? err);
  const name = (err as Error)?.name;
  if (name === 'UsageError' || name === 'PolicyLoadError')
    return text
      .split('\n')
      .slice(0, 200)
      .map((line) => printable(line, LIMITS.reason))
      .join('\n');
  return printable(text, LIMITS.reason);
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
