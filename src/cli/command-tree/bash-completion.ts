/** bash completion for `signet`, generated from its commander tree: commands, subcommands, options and their values. */
import type { Command } from 'commander';
import { commandPaths, findCommand, valueCompletion, visibleOptions } from './walk.js';

/** The words offered after `cmd`: its subcommands (and `help`), argument choices, long options. */
function wordsOf(cmd: Command): string[] {
  const commands = cmd
    .createHelp()
    .visibleCommands(cmd)
    .map((c) => c.name());
  const argumentChoices = cmd.registeredArguments.flatMap((a) => a.argChoices ?? []);
  const options = visibleOptions(cmd).flatMap((o) => (o.long !== undefined ? [o.long] : []));
  return [...commands, ...argumentChoices, ...options];
}

/** The `case "$prev"` arms that complete an option's value. */
function valueCases(cmd: Command): string[] {
  const arms: string[] = [];
  for (const o of visibleOptions(cmd)) {
    const how = valueCompletion(o);
    if (how === undefined || o.long === undefined) continue;
    const reply =
      how === 'dir'
        ? 'COMPREPLY=($(compgen -d -- "$cur"))'
        : how === 'file'
          ? 'COMPREPLY=($(compgen -f -- "$cur"))'
          : how === 'none'
            ? 'COMPREPLY=()'
            : `COMPREPLY=($(compgen -W "${how.choices.join(' ')}" -- "$cur"))`;
    arms.push(`        ${o.long}) ${reply}; return ;;`);
  }
  return arms;
}

export function bashCompletion(root: Command): string {
  const name = root.name();
  const paths = commandPaths(root);
  const cases = paths.map((path) => {
    const cmd = findCommand(root, path)!;
    const arms = valueCases(cmd);
    return `    "${path.join(' ')}")\n      case "$prev" in\n${arms.map((a) => `${a}\n`).join('')}      esac\n      COMPREPLY=($(compgen -W "${wordsOf(cmd).join(' ')}" -- "$cur")) ;;`;
  });
  const names = paths.filter((p) => p.length > 0).map((p) => `"${p.join(' ')}"`);
  return `# bash completion for ${name} (generated from its command definitions: ${name} completion bash)
_${name}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local path="" w i
  # The deepest known command among the words typed so far.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${path:+$path }\${COMP_WORDS[i]}"
    case "$w" in
      ${names.join('|')}) path="$w" ;;
    esac
  done
  case "$path" in
${cases.join('\n')}
  esac
}
complete -F _${name} ${name}
`;
}
