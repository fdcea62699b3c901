/** The man page of `signet` (roff, man(7) macros), generated from its commander tree. */
import type { Command } from 'commander';
import { commandPath, commandPaths, findCommand, visibleOptions } from './walk.js';

/** Text as roff: backslashes and dashes escaped, no line read as a request. */
function roff(text: string): string {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^\./gm, '\\&.').replace(/^'/gm, "\\&'");
}

/** Paragraphs of a description, separated by line breaks. */
function paragraphs(text: string): string[] {
  return text
    .split(/\n\s*\n/)
    .map((p) => roff(p.replace(/\s*\n\s*/g, ' ')))
    .flatMap((p, i) => (i === 0 ? [p] : ['.sp', p]));
}

/** A command's arguments and options, indented under it; -h/--help is said once, under OPTIONS. */
function details(cmd: Command): string[] {
  const help = cmd.createHelp();
  const out: string[] = [];
  for (const a of help.visibleArguments(cmd)) out.push('.RS', '.TP', `.I ${roff(help.argumentTerm(a))}`, roff(help.argumentDescription(a)), '.RE');
  for (const o of visibleOptions(cmd))
    if (cmd.parent === null || o.long !== '--help') out.push('.RS', '.TP', `.B ${roff(help.optionTerm(o))}`, roff(help.optionDescription(o)), '.RE');
  return out;
}

export function manPage(root: Command, version: string): string {
  const name = root.name();
  const out = [
    `.TH ${name.toUpperCase()} 1 "" "${name} ${version}" "User Commands"`,
    '.SH NAME',
    `${name} \\- ${roff(root.summary())}`,
    '.SH SYNOPSIS',
    `.B ${name}`,
    '.I <command> [options]',
    '.SH OPTIONS',
    ...details(root).filter((line) => line !== '.RS' && line !== '.RE'),
    '.SH COMMANDS',
  ];
  for (const path of commandPaths(root).filter((p) => p.length > 0)) {
    const cmd = findCommand(root, path)!;
    const usage = cmd.usage();
    out.push('.TP', `.B ${roff(commandPath(cmd))}${usage ? ` ${roff(usage)}` : ''}`, ...paragraphs(cmd.description()), ...details(cmd));
  }
  out.push(
    '.SH ENVIRONMENT',
    '.TP',
    '.B SIGNET_SOCKET',
    "signetd's socket",
    '.TP',
    '.B SIGNET_POLICY_DIR',
    'the policy directory',
    '.TP',
    '.B SIGNET_PKCS11_MODULE, SIGNET_PKCS11_PIN',
    'PKCS#11 module and PIN',
    '.TP',
    '.B SIGNET_KEY_PASSPHRASE',
    'the passphrase of an encrypted PEM signing key',
    '.TP',
    '.B DOCKER_CONFIG',
    'the folder of the Docker config.json (credentials, credential helpers)',
    '.TP',
    '.B CONTAINERD_ADDRESS',
    "containerd's socket",
    '.TP',
    '.B HTTP_PROXY, HTTPS_PROXY, NO_PROXY',
    'proxies for registry requests',
    '.SH EXIT STATUS',
    '0 success or accepted; 1 refused, or a problem found; 2 usage error; 3 signetd unreachable (status).',
    '.SH SEE ALSO',
    'signetd(8), signet\\-verifier(8), containerd(8)',
  );
  return `${out.join('\n')}\n`;
}
