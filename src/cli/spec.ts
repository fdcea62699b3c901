/**
 * Every `signet` command, subcommand and option in one place: `--help` on each of them, the bash
 * completion (`signet completion bash`) and the man page (`signet man`, shipped as man/signet.1) are
 * generated from this list. The commands parse their own arguments (node:util parseArgs); a test checks
 * that every option named here is accepted by its command and that every command answers `--help`.
 */

export interface OptionSpec {
  /** Long name without dashes. */
  name: string;
  short?: string;
  /** Placeholder for its value; absent for a flag. */
  value?: string;
  repeatable?: boolean;
  help: string;
  /** Values completion offers. */
  choices?: string[];
  /** Complete file names (`file`) or directories (`dir`). */
  complete?: 'file' | 'dir';
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** What follows the command name in the usage line, e.g. `IMAGE [options]`. */
  args?: string;
  description?: string;
  options?: OptionSpec[];
  subcommands?: CommandSpec[];
}

const output: OptionSpec = { name: 'output', value: 'text|json', help: 'output format (default text)', choices: ['text', 'json'] };
const policyDir: OptionSpec = {
  name: 'policy-dir',
  value: 'DIR',
  help: 'policy directory (default $SIGNET_POLICY_DIR, else /etc/signet/policy.d)',
  complete: 'dir',
};
const pkcs11Module: OptionSpec = {
  name: 'pkcs11-module',
  value: 'PATH',
  help: "PKCS#11 module when a key URI has no module-path (default $SIGNET_PKCS11_MODULE, else SoftHSM's)",
  complete: 'file',
};
const registry: OptionSpec[] = [
  { name: 'insecure-registry', value: 'HOST:PORT', repeatable: true, help: 'a registry reached over plain HTTP (repeatable)' },
  {
    name: 'docker-config',
    value: 'FILE',
    help: 'Docker config.json with credentials and credential helpers (default $DOCKER_CONFIG/config.json, else ~/.docker/config.json)',
    complete: 'file',
  },
  {
    name: 'hosts-dir',
    value: 'DIR',
    help: "containerd's hosts.toml folder: mirrors, CAs, client certificates, as containerd pulls (default /etc/containerd/certs.d)",
    complete: 'dir',
  },
];
const socket: OptionSpec = {
  name: 'socket',
  value: 'PATH',
  help: "signetd's socket (default $SIGNET_SOCKET, else /run/signet/signetd.sock)",
  complete: 'file',
};
const keyUri: OptionSpec = { name: 'key', value: 'PKCS11-URI', help: 'the token object, as an RFC 7512 pkcs11: URI' };

export const SIGNET: CommandSpec = {
  name: 'signet',
  summary: 'container image signatures for containerd hosts: sign, verify, audit, check the policy and the node',
  args: '<command> [options]',
  options: [
    { name: 'help', short: 'h', help: 'show help (also after any command or subcommand)' },
    { name: 'version', help: 'print the version' },
  ],
  subcommands: [
    {
      name: 'status',
      summary: 'state of the local signetd (policy generation, keys, audit, containerd, NRI)',
      description:
        'Exit 0 when signetd serves a policy with every key loaded; 1 when it answers with a problem (no policy, a reload error, a key error, the audit log failing); 3 when signetd cannot be reached (the message names the socket and says whether the file exists).',
      options: [
        socket,
        output,
        { name: 'wait', value: 'DURATION', help: 'keep trying until signetd answers, at most this long (e.g. 30s)' },
        { name: 'ready', help: "print nothing; exit 0 when signetd answers, 3 when it does not (with --wait: the unit's readiness check)" },
      ],
    },
    {
      name: 'sign',
      summary: 'sign an image digest with a PKCS#11 or PEM key, gated on a vulnerability scan',
      args: '--key KEYREF IMAGE [options]',
      options: [
        { name: 'key', value: 'KEYREF', help: 'pkcs11:… URI or a PEM PKCS#8 private key file ($SIGNET_KEY_PASSPHRASE)' },
        { name: 'format', value: 'F', help: 'cosign (default) or sigstore-bundle', choices: ['cosign', 'sigstore-bundle'] },
        { name: 'annotation', short: 'a', value: 'K=V', repeatable: true, help: 'added to the signature (cosign format; repeatable)' },
        { name: 'scan-report', value: 'FILE', help: 'Trivy or Grype JSON for this image: the gate', complete: 'file' },
        { name: 'max-severity', value: 'LEVEL', help: 'highest severity still allowed (default high)', choices: ['none', 'low', 'medium', 'high', 'critical'] },
        { name: 'ignore', value: 'ID', repeatable: true, help: 'a finding to ignore (repeatable)' },
        { name: 'ignore-file', value: 'FILE', help: 'findings to ignore, one ID per line', complete: 'file' },
        { name: 'attest-scan', help: 'also push a signed vulnerability attestation (needs --scan-report)' },
        ...registry,
        pkcs11Module,
        output,
      ],
    },
    {
      name: 'verify',
      summary: 'what a node would decide for IMAGE, and why (no daemon needed)',
      args: 'IMAGE [options]',
      options: [policyDir, ...registry, pkcs11Module, output],
    },
    {
      name: 'audit',
      summary: 'verify every tag of a repository against the policy',
      args: 'REPOSITORY [options]',
      options: [policyDir, ...registry, pkcs11Module, { name: 'max-tags', value: 'N', help: 'image tags audited at most (default 10000)' }, output],
    },
    {
      name: 'policy',
      summary: 'check, explain and test the trust policy; print its JSON Schema; push it to a registry for a fleet',
      args: '<check|explain|test|schema|push|status> [options]',
      subcommands: [
        {
          name: 'check',
          summary: 'validate the policy directory as signetd does, and read every key file and trust root it names (exit 1 on any problem)',
          args: '[DIR] [options]',
          options: [output],
        },
        {
          name: 'explain',
          summary: 'which scope applies to IMAGE and why, what it requires, which keys count today (no registry access)',
          args: 'IMAGE [options]',
          options: [policyDir, output],
        },
        {
          name: 'test',
          summary: 'explain, then verify IMAGE against the registry with each step shown',
          args: 'IMAGE [options]',
          options: [policyDir, ...registry, pkcs11Module, output],
        },
        { name: 'schema', summary: 'print the JSON Schema of a policy file' },
        {
          name: 'push',
          summary: 'check DIR as signetd does, push it as a signed OCI artifact (one deterministic tar layer) to REF, print its digest',
          args: 'DIR REF --key KEYREF [options]',
          description:
            'Nodes whose signetd.yaml has policySource: { ref: REF, keys: … } verify the signature with those keys, then enforce it. The same files always give the same digest. The artifact is pushed by digest and signed before REF is moved to it.',
          options: [
            { name: 'key', value: 'KEYREF', help: 'pkcs11:… URI or a PEM PKCS#8 private key file ($SIGNET_KEY_PASSPHRASE)' },
            ...registry,
            pkcs11Module,
            output,
          ],
        },
        {
          name: 'status',
          summary: 'which digest REF points to now, its policy files and signatures (compare with signet status on a node)',
          args: 'REF [options]',
          options: [...registry, output],
        },
      ],
    },
    {
      name: 'keys',
      summary: 'keys on a PKCS#11 token: generate, list, export, import',
      args: '<generate|list|export|import> --key PKCS11-URI [options]',
      description: "PIN: the URI's pin-source=file:… or pin-value=…, else $SIGNET_PKCS11_PIN. --module is a deprecated spelling of --pkcs11-module.",
      subcommands: [
        {
          name: 'generate',
          summary: 'generate a key pair on the token',
          options: [
            keyUri,
            {
              name: 'algorithm',
              value: 'ALG',
              help: 'ec-p256 (default), ec-p384, rsa-3072 or ed25519',
              choices: ['ec-p256', 'ec-p384', 'rsa-3072', 'ed25519'],
            },
            { name: 'label', value: 'L', help: 'object label (default: object= of the URI)' },
            { name: 'id', value: 'HEX', help: 'object id (default: random)' },
            pkcs11Module,
          ],
        },
        { name: 'list', summary: 'list the objects on the token', options: [keyUri, pkcs11Module, output] },
        { name: 'export', summary: 'print a public key as PEM SubjectPublicKeyInfo', options: [keyUri, pkcs11Module] },
        {
          name: 'import',
          summary: 'import a PEM public key onto the token',
          options: [
            keyUri,
            { name: 'file', value: 'PEM', help: 'the public key', complete: 'file' },
            { name: 'label', value: 'L', help: 'object label' },
            { name: 'id', value: 'HEX', help: 'object id' },
            pkcs11Module,
          ],
        },
      ],
    },
    {
      name: 'node',
      summary: 'decide every image containerd holds on this node under the current policy',
      args: 'audit [options]',
      subcommands: [
        {
          name: 'audit',
          summary: 'decide every image record containerd holds; exit 1 if any is refused',
          options: [
            {
              name: 'containerd',
              value: 'SOCK',
              help: "containerd's socket (default $CONTAINERD_ADDRESS, else /run/containerd/containerd.sock)",
              complete: 'file',
            },
            { name: 'namespace', value: 'NS', repeatable: true, help: 'only this namespace (repeatable; default all)' },
            policyDir,
            ...registry,
            pkcs11Module,
            output,
          ],
        },
      ],
    },
    {
      name: 'doctor',
      summary: 'check that this node enforces: containerd, its verifier, CRI settings, NRI, signetd',
      options: [
        { name: 'containerd-config', value: 'FILE', help: "containerd's config (default /etc/containerd/config.toml; imports are followed)", complete: 'file' },
        {
          name: 'containerd',
          value: 'SOCK',
          help: "containerd's socket (default $CONTAINERD_ADDRESS, else /run/containerd/containerd.sock)",
          complete: 'file',
        },
        socket,
        { name: 'probe', value: 'IMAGE', help: 'pull IMAGE through CRI as kubelet does: it must be refused' },
        output,
      ],
    },
    {
      name: 'install',
      summary:
        "set up this host: systemd unit, signetd.yaml, an example policy (warn mode), the verifier in containerd's bin_dir, a containerd drop-in (verifier plugin, NRI)",
      description:
        "Says what it wrote; existing files are kept. containerd's config.toml is never rewritten: without one, one is created that imports conf.d/*.toml; when it does not import the drop-in, install names the line to add (exit 1).",
      options: [
        { name: 'prefix', value: 'DIR', help: 'write under DIR instead of / (a staging root)', complete: 'dir' },
        { name: 'containerd-config', value: 'FILE', help: "containerd's config (default PREFIX/etc/containerd/config.toml)", complete: 'file' },
      ],
    },
    {
      name: 'uninstall',
      summary: 'remove what signet install wrote (files changed since are kept and named)',
      options: [{ name: 'prefix', value: 'DIR', help: 'the root install wrote under', complete: 'dir' }],
    },
    {
      name: 'completion',
      summary: 'print the shell completion script',
      args: 'bash',
      description: 'Install: signet completion bash > /etc/bash_completion.d/signet',
    },
    { name: 'man', summary: 'print the man page (roff)', description: 'The package ships it as man/signet.1: man ./man/signet.1' },
    { name: 'version', summary: 'print the version' },
  ],
};

/** The command at `path` (e.g. ['policy', 'check']), or undefined. */
export function findCommand(path: string[], root: CommandSpec = SIGNET): CommandSpec | undefined {
  let at: CommandSpec = root;
  for (const p of path) {
    const next = at.subcommands?.find((c) => c.name === p);
    if (next === undefined) return undefined;
    at = next;
  }
  return at;
}

function optionLabel(o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : ''}--${o.name}${o.value ? ` ${o.value}` : ''}`;
}

/** The help text of the command at `path`. */
export function helpText(path: string[], root: CommandSpec = SIGNET): string {
  const cmd = findCommand(path, root);
  if (cmd === undefined) return helpText([], root);
  const name = [root.name, ...path].join(' ');
  const lines = [
    `usage: ${name}${cmd.args ? ` ${cmd.args}` : cmd.subcommands ? ' <command> [options]' : cmd.options?.length ? ' [options]' : ''}`,
    '',
    cmd.summary,
  ];
  if (cmd.description) lines.push('', ...wrap(cmd.description, 100));
  if (cmd.subcommands?.length) {
    lines.push('', 'commands:');
    const w = Math.max(...cmd.subcommands.map((c) => c.name.length));
    for (const c of cmd.subcommands) lines.push(`  ${c.name.padEnd(w)}  ${c.summary}`);
  }
  const options = [...(cmd.options ?? []), ...(path.length > 0 ? [{ name: 'help', short: 'h', help: 'show this help' }] : [])];
  if (options.length) {
    lines.push('', 'options:');
    const w = Math.max(...options.map((o) => optionLabel(o).length));
    for (const o of options) lines.push(`  ${optionLabel(o).padEnd(w)}  ${o.help}${o.repeatable && !o.help.includes('repeatable') ? ' (repeatable)' : ''}`);
  }
  if (cmd.subcommands?.length) lines.push('', `Run "${name} <command> --help" for a command's options.`);
  return `${lines.join('\n')}\n`;
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

/** Every command path, depth first: [], ['status'], ['policy'], ['policy', 'check'], … */
export function allPaths(root: CommandSpec = SIGNET, prefix: string[] = []): string[][] {
  return [prefix, ...(root.subcommands ?? []).flatMap((c) => allPaths(c, [...prefix, c.name]))];
}

/** bash completion: commands, subcommands, options and their values, from the spec. */
export function bashCompletion(root: CommandSpec = SIGNET): string {
  const cases: string[] = [];
  for (const path of allPaths(root)) {
    const cmd = findCommand(path, root)!;
    const words = [...(cmd.subcommands ?? []).map((c) => c.name), ...(cmd.options ?? []).map((o) => `--${o.name}`), '--help'];
    const valueCases = (cmd.options ?? [])
      .filter((o) => o.value)
      .map(
        (o) =>
          `        --${o.name}) ${o.choices ? `COMPREPLY=($(compgen -W "${o.choices.join(' ')}" -- "$cur"))` : o.complete === 'dir' ? 'COMPREPLY=($(compgen -d -- "$cur"))' : o.complete === 'file' ? 'COMPREPLY=($(compgen -f -- "$cur"))' : 'COMPREPLY=()'}; return ;;`,
      );
    cases.push(
      `    "${path.join(' ')}")\n      case "$prev" in\n${valueCases.join('\n')}${valueCases.length ? '\n' : ''}      esac\n      COMPREPLY=($(compgen -W "${words.join(' ')}" -- "$cur")) ;;`,
    );
  }
  const names = allPaths(root)
    .filter((p) => p.length > 0)
    .map((p) => p.join(' '));
  return `# bash completion for ${root.name} (generated from its command definitions: ${root.name} completion bash)
_${root.name}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local path="" w i
  # The deepest known command among the words typed so far.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${path:+$path }\${COMP_WORDS[i]}"
    case "$w" in
      ${names.map((n) => `"${n}"`).join('|')}) path="$w" ;;
    esac
  done
  case "$path" in
${cases.join('\n')}
  esac
}
complete -F _${root.name} ${root.name}
`;
}

/** The man page (roff, man(7) macros), from the spec. */
export function manPage(version: string, root: CommandSpec = SIGNET): string {
  const esc = (t: string) => t.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^\./gm, '\\&.').replace(/^'/gm, "\\&'");
  const out = [
    `.TH ${root.name.toUpperCase()} 1 "" "${root.name} ${version}" "User Commands"`,
    '.SH NAME',
    `${root.name} \\- ${esc(root.summary)}`,
    '.SH SYNOPSIS',
    `.B ${root.name}`,
    `.I ${esc(root.args ?? '')}`,
    '.SH COMMANDS',
  ];
  for (const path of allPaths(root).filter((p) => p.length > 0)) {
    const cmd = findCommand(path, root)!;
    out.push('.TP', `.B ${esc([root.name, ...path].join(' '))}${cmd.args ? ` ${esc(cmd.args)}` : ''}`, esc(cmd.summary));
    if (cmd.description) out.push('.br', esc(cmd.description));
    for (const o of cmd.options ?? []) out.push('.RS', '.TP', `.B ${esc(optionLabel(o))}`, esc(o.help), '.RE');
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
    '.B DOCKER_CONFIG',
    'the folder of the Docker config.json (credentials, credential helpers)',
    '.TP',
    '.B HTTP_PROXY, HTTPS_PROXY, NO_PROXY',
    'proxies for registry requests',
  );
  out.push(
    '.SH EXIT STATUS',
    '0 success or accepted; 1 refused, or a problem found; 2 usage error; 3 signetd unreachable (status).',
    '.SH SEE ALSO',
    'signetd(8), signet\\-verifier(8), containerd(8)',
  );
  return `${out.join('\n')}\n`;
}
