#!/usr/bin/env node
/** signet: the command line for CI and operators. The commands are defined in program.ts, their logic lives in commands/. */
import { describeError, SignetError } from '../errors.js';
import type { CommandIo } from './commands/io.js';
import { commandPath, forEachCommand } from './command-tree/walk.js';
import type { Command } from 'commander';
import { CommandLineError, createProgram } from './program.js';
import { LIMITS, printable } from '../util/printable.js';

async function main(argv: string[]): Promise<number> {
  const io: CommandIo = { stdout: process.stdout, stderr: process.stderr };
  const { program, exitCode } = createProgram(io);
  // The command being parsed or run, to name it in an error.
  let running = 'signet';
  forEachCommand(program, (cmd) =>
    cmd.hook('preSubcommand', (_parent, sub) => {
      running = commandPath(sub);
    }),
  );
  // `signet help policy check` is `signet policy check --help` (commander's help command reads one name);
  // a path that names no command is parsed as given, so that commander says which name is unknown.
  const [first, ...names] = argv;
  let args = argv;
  if (first === 'help' && names.length > 1 && names.every((n) => !n.startsWith('-'))) {
    let cmd: Command | undefined = program;
    for (const n of names) cmd = cmd?.commands.find((c) => c.name() === n || c.aliases().includes(n));
    args = cmd === undefined ? names : [...names, '--help'];
  }
  try {
    await program.parseAsync(args, { from: 'user' });
    return exitCode();
  } catch (err) {
    if (err instanceof CommandLineError) {
      // Help and --version were printed as asked; a usage mistake is one line, with where to read more.
      if (err.exitCode === 0) return 0;
      // A command given without its subcommand: its help, on stderr, was the message.
      if (err.code === 'commander.help') return err.exitCode;
      const message = err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
      io.stderr.write(`${err.commandPath}: ${printable(message, LIMITS.reason)} (${err.commandPath} --help shows the usage)\n`);
      return err.exitCode;
    }
    // One line, never a stack trace: usage errors exit 2, everything else 1.
    io.stderr.write(`${running}: ${printableError(err)}\n`);
    return (err as Error)?.name === 'UsageError' ? 2 : 1;
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
