/**
 * Reading the commander tree of `signet` (src/cli/program.ts): the command paths, what each command
 * shows, and how an option's value completes. The completion, the man page and the tests walk it with
 * these, so what they offer is exactly what the parser accepts.
 */
import type { Command, Option } from 'commander';

/** `signet policy push` for the push command. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export function forEachCommand(cmd: Command, fn: (cmd: Command) => void): void {
  fn(cmd);
  for (const sub of cmd.commands) forEachCommand(sub, fn);
}

/** The subcommands --help lists (not commander's implicit `help` command). */
export function subcommands(cmd: Command): Command[] {
  return cmd
    .createHelp()
    .visibleCommands(cmd)
    .filter((c) => cmd.commands.includes(c));
}

/** Every command path, depth first: [], ['status'], ['policy'], ['policy', 'check'], … */
export function commandPaths(root: Command, prefix: string[] = []): string[][] {
  return [prefix, ...subcommands(root).flatMap((c) => commandPaths(c, [...prefix, c.name()]))];
}

/** The command at `path` (e.g. ['policy', 'check']), or undefined. */
export function findCommand(root: Command, path: string[]): Command | undefined {
  let at: Command | undefined = root;
  for (const name of path) at = at === undefined ? undefined : subcommands(at).find((c) => c.name() === name);
  return at;
}

/** The options --help shows for `cmd`, -h/--help (and --version on the program) included. */
export function visibleOptions(cmd: Command): Option[] {
  return cmd.createHelp().visibleOptions(cmd);
}

/** What completes an option's value: its choices, file names, directories, or nothing offered. */
export type ValueCompletion = { choices: readonly string[] } | 'file' | 'dir' | 'none';

const FILE_PLACEHOLDERS = new Set(['FILE', 'PATH', 'SOCK', 'PEM']);

/** Undefined for a flag without a value. The placeholder in the option's flags (<DIR>, <FILE>, …) says which. */
export function valueCompletion(option: Option): ValueCompletion | undefined {
  if (!option.required && !option.optional) return undefined;
  if (option.argChoices !== undefined) return { choices: option.argChoices };
  const placeholder = /[<[]([^>\]]+)[>\]]/.exec(option.flags)?.[1] ?? '';
  if (placeholder === 'DIR') return 'dir';
  return FILE_PLACEHOLDERS.has(placeholder) ? 'file' : 'none';
}
