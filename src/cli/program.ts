/**
 * Every `signet` command, subcommand, argument and option, defined once with commander: parsing,
 * `--help` on each of them, the bash completion (`signet completion bash`) and the man page (`signet
 * man`, shipped as man/signet.1) all come from this tree. Actions load their command module only when
 * run (start-up stays small) and hand it typed, already-validated options.
 *
 * Value placeholders say what completes them: <FILE>, <PATH>, <SOCK> and <PEM> complete file names,
 * <DIR> directories (src/cli/command-tree/walk.ts).
 */
import { Argument, Command, Option } from 'commander';
import { MAX_SEVERITIES, parseMaxSeverity } from '../attest/severity.js';
import { GENERATE_ALGORITHMS } from '../keys/pkcs11/manage.js';
import { VERSION } from '../version.js';
import type { AuditOptions } from './commands/audit.js';
import type { DoctorOptions } from './commands/doctor.js';
import type { InstallOptions, UninstallOptions } from './commands/install.js';
import { UsageError, type CommandIo } from './commands/io.js';
import type { KeysOptions, KeysSubcommand } from './commands/keys.js';
import type { NodeAuditOptions } from './commands/node.js';
import type { PolicyCheckOptions, PolicyExplainOptions, PolicyPushOptions, PolicyStatusOptions, PolicyTestOptions } from './commands/policy.js';
import type { SignOptions } from './commands/sign.js';
import type { StatusOptions } from './commands/status.js';
import type { VerifyOptions } from './commands/verify.js';
import { commandPath, forEachCommand } from './command-tree/walk.js';
import { choiceOption, collect, durationMs, integerIn, outputOption } from './option-values.js';

/** What the entry point needs from the tree: the program, and the exit code its action produced. */
export interface SignetProgram {
  program: Command;
  /** The exit code of the action that ran (0 when only help or the version was printed). */
  exitCode(): number;
}

/** A commander usage error (unknown option, missing argument, …) raised while parsing `commandPath`. */
export class CommandLineError extends Error {
  override readonly name = 'CommandLineError';
  constructor(
    readonly commandPath: string,
    message: string,
    /** 0 when commander printed help or the version as asked; otherwise a usage error. */
    readonly exitCode: number,
    /** Commander's code: `commander.help` when it printed the help as the error (a command given no subcommand). */
    readonly code: string,
  ) {
    super(message);
  }
}

const REGISTRY_GROUP = 'registry options:';

function policyDirOption(): Option {
  return new Option('--policy-dir <DIR>', 'policy directory (default $SIGNET_POLICY_DIR, else /etc/signet/policy.d)');
}

function pkcs11ModuleOption(): Option {
  return new Option('--pkcs11-module <PATH>', "PKCS#11 module when a key URI has no module-path (default $SIGNET_PKCS11_MODULE, else SoftHSM's)");
}

function registryOptions(): Option[] {
  return [
    new Option('--insecure-registry <HOST:PORT>', 'a registry reached over plain HTTP (repeatable)').argParser(collect),
    new Option(
      '--docker-config <FILE>',
      'Docker config.json with credentials and credential helpers (default $DOCKER_CONFIG/config.json, else ~/.docker/config.json)',
    ),
    new Option('--hosts-dir <DIR>', "containerd's hosts.toml folder: mirrors, CAs, client certificates, as containerd pulls (default /etc/containerd/certs.d)"),
  ].map((o) => o.helpGroup(REGISTRY_GROUP));
}

function signetdSocketOption(): Option {
  return new Option('--socket <PATH>', "signetd's socket (default $SIGNET_SOCKET, else /run/signet/signetd.sock)");
}

function containerdSocketOption(): Option {
  return new Option('--containerd <SOCK>', "containerd's socket (default $CONTAINERD_ADDRESS, else /run/containerd/containerd.sock)");
}

function signingKeyOption(why = ''): Option {
  return required(
    '--key <KEYREF>',
    `pkcs11:… URI (PIN: pin-source=, pin-value= or $SIGNET_PKCS11_PIN) or a PEM PKCS#8 private key file ($SIGNET_KEY_PASSPHRASE)${why}`,
  );
}

/** Options a command cannot run without (checked in preAction, below). */
const REQUIRED = new WeakSet<Option>();

/**
 * An option the command needs. Checked once the command line has otherwise parsed, not by commander's
 * makeOptionMandatory: that check runs first, so `--kee K` would be reported as a missing --key, not as
 * the unknown option it is.
 */
function required(flags: string, description: string): Option {
  const option = new Option(flags, `${description} (required)`);
  REQUIRED.add(option);
  return option;
}

/** A command's one-line summary (in its parent's list), and the longer text its own --help and the man page show. */
function describe(cmd: Command, summary: string, more?: string): Command {
  return cmd.summary(summary).description(more === undefined ? summary : `${summary}\n\n${more}`);
}

function addOptions(cmd: Command, options: Option[]): Command {
  for (const o of options) cmd.addOption(o);
  return cmd;
}

/**
 * The `signet` program. Output goes to `io`; actions record their exit code; every parsing problem
 * throws a CommandLineError (never exits the process), so the entry point decides what is printed.
 */
export function createProgram(io: CommandIo): SignetProgram {
  let exitCode = 0;
  /** Runs a command module's entry and keeps its exit code. */
  const run = async (command: () => Promise<number>): Promise<void> => {
    exitCode = await command();
  };

  const program = new Command('signet');
  // Set before any subcommand is added: subcommands inherit these settings.
  program
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // The entry point prints errors itself, on one line, escaped.
      outputError: () => undefined,
    })
    .configureHelp({ styleTitle: (title) => title.toLowerCase() })
    .helpOption('-h, --help', 'show this help (also after any command or subcommand)')
    .helpCommand('help [command]', "show a command's help")
    .showSuggestionAfterError(true);
  describe(program, 'container image signatures for containerd hosts: sign, verify, audit, check the policy and the node').version(
    `signet ${VERSION}`,
    '--version',
    'print the version',
  );

  describe(
    program.command('status'),
    'state of the local signetd (policy generation, keys, audit, containerd, NRI)',
    'Exit 0 when signetd serves a policy with every key loaded; 1 when it answers with a problem (no policy, a reload error, a key error, the audit log failing); 3 when signetd cannot be reached (the message names the socket and says whether the file exists).',
  )
    .addOption(signetdSocketOption())
    .addOption(outputOption())
    .addOption(new Option('--wait <DURATION>', 'keep trying until signetd answers, at most this long (e.g. 500ms, 30s, 2m)').argParser(durationMs('--wait')))
    .addOption(new Option('--ready', "print nothing; exit 0 when signetd answers, 3 when it does not (with --wait: a script's wait for signetd)"))
    .action((opts: StatusOptions) => run(async () => (await import('./commands/status.js')).statusCommand(opts, io)));

  addOptions(
    describe(program.command('sign'), 'sign an image digest with a PKCS#11 or PEM key, gated on a vulnerability scan')
      .addArgument(new Argument('<IMAGE>', 'host/repo:tag or host/repo@sha256:…; a tag is resolved first and the digest is signed'))
      .addOption(signingKeyOption())
      .addOption(
        choiceOption(
          '--format <FORMAT>',
          'cosign: simple signing at sha256-<hex>.sig; sigstore-bundle (cosign v3): a sigstore bundle pushed as an OCI 1.1 referrer, with the referrers tag for older registries',
          ['cosign', 'sigstore-bundle'] as const,
        ).default('cosign'),
      )
      .addOption(new Option('-a, --annotation <K=V>', `added to the signature's "optional" section (repeatable; cosign format)`).argParser(collect))
      .addOption(new Option('--scan-report <FILE>', 'Trivy or Grype JSON for this image: the gate'))
      .addOption(
        new Option('--max-severity <LEVEL>', 'highest severity still allowed (default high)').choices(MAX_SEVERITIES).argParser((value: string) => {
          try {
            return parseMaxSeverity(value);
          } catch (err) {
            throw new UsageError((err as Error).message);
          }
        }),
      )
      .addOption(new Option('--ignore <ID>', 'a finding to ignore (repeatable)').argParser(collect))
      .addOption(new Option('--ignore-file <FILE>', 'findings to ignore, one ID per line'))
      .addOption(new Option('--attest-scan', 'also push a signed vulnerability attestation (needs --scan-report)')),
    [...registryOptions(), pkcs11ModuleOption(), outputOption()],
  ).action((image: string, opts: SignOptions) => run(async () => (await import('./commands/sign.js')).signCommand(image, opts, io)));

  addOptions(
    describe(program.command('verify'), 'what a node would decide for IMAGE, and why (no daemon needed)').addArgument(
      new Argument('<IMAGE>', 'host/repo:tag or host/repo@sha256:…'),
    ),
    [policyDirOption(), ...registryOptions(), pkcs11ModuleOption(), outputOption()],
  ).action((image: string, opts: VerifyOptions) => run(async () => (await import('./commands/verify.js')).verifyCommand(image, opts, io)));

  addOptions(
    describe(
      program.command('audit'),
      'verify every tag of a repository against the policy',
      'Exit 1 when any tag would be rejected. Signature and attestation tags are skipped; more image tags than --max-tags is an error, never a partial audit.',
    ).addArgument(new Argument('<REPOSITORY>', 'host/repo, without tag or digest')),
    [
      policyDirOption(),
      ...registryOptions(),
      pkcs11ModuleOption(),
      new Option('--max-tags <N>', 'image tags audited at most').default(10_000).argParser(integerIn('--max-tags', 1, 1_000_000)),
      outputOption(),
    ],
  ).action((repository: string, opts: AuditOptions) => run(async () => (await import('./commands/audit.js')).auditCommand(repository, opts, io)));

  const policy = describe(program.command('policy'), 'check, explain and test the trust policy; print its JSON Schema; push it to a registry for a fleet');
  const policyModule = () => import('./commands/policy.js');
  describe(policy.command('check'), 'validate the policy directory as signetd does, and read every key file and trust root it names (exit 1 on any problem)')
    .addArgument(new Argument('[DIR]', 'the policy directory (default $SIGNET_POLICY_DIR, else /etc/signet/policy.d)'))
    .addOption(outputOption())
    .action((dir: string | undefined, opts: PolicyCheckOptions) => run(async () => (await policyModule()).policyCheckCommand(dir, opts, io)));
  describe(policy.command('explain'), 'which scope applies to IMAGE and why, what it requires, which keys count today (no registry access)')
    .addArgument(new Argument('<IMAGE>', 'host/repo:tag or host/repo@sha256:…'))
    .addOption(policyDirOption())
    .addOption(outputOption())
    .action((image: string, opts: PolicyExplainOptions) => run(async () => (await policyModule()).policyExplainCommand(image, opts, io)));
  addOptions(
    describe(
      policy.command('test'),
      'explain, then verify IMAGE against the registry with each step shown',
      'The explanation is text; --output applies to the verification that follows it.',
    ).addArgument(new Argument('<IMAGE>', 'host/repo:tag or host/repo@sha256:…')),
    [policyDirOption(), ...registryOptions(), pkcs11ModuleOption(), outputOption()],
  ).action((image: string, opts: PolicyTestOptions) => run(async () => (await policyModule()).policyTestCommand(image, opts, io)));
  describe(policy.command('schema'), 'print the JSON Schema of a policy file').action(() => run(async () => (await policyModule()).policySchemaCommand(io)));
  addOptions(
    describe(
      policy.command('push'),
      'check DIR as signetd does, push it as a signed OCI artifact (one deterministic tar layer) to REF, print its digest',
      'Nodes whose signetd.yaml has policySource: { ref: REF, keys: … } verify the signature with those keys, then enforce it. The same files always give the same digest. The artifact is pushed by digest and signed before REF is moved to it.',
    )
      .addArgument(new Argument('<DIR>', 'the policy directory'))
      .addArgument(new Argument('<REF>', 'host/repo:tag the nodes poll'))
      .addOption(signingKeyOption(': a policy is pushed signed, or not at all')),
    [...registryOptions(), pkcs11ModuleOption(), outputOption()],
  ).action((dir: string, ref: string, opts: PolicyPushOptions) => run(async () => (await policyModule()).policyPushCommand(dir, ref, opts, io)));
  addOptions(
    describe(policy.command('status'), 'which digest REF points to now, its policy files and signatures (compare with signet status on a node)').addArgument(
      new Argument('<REF>', 'host/repo:tag or host/repo@sha256:…'),
    ),
    [...registryOptions(), outputOption()],
  ).action((ref: string, opts: PolicyStatusOptions) => run(async () => (await policyModule()).policyStatusCommand(ref, opts, io)));

  const keys = describe(
    program.command('keys'),
    'keys on a PKCS#11 token: generate, list, export, import',
    "PIN: the URI's pin-source=file:… or pin-value=…, else $SIGNET_PKCS11_PIN.",
  );
  const keysCommand = (sub: KeysSubcommand, options: Option[], summary: string): void => {
    addOptions(describe(keys.command(sub), summary), [
      required('--key <PKCS11-URI>', 'the token object, as an RFC 7512 pkcs11: URI'),
      ...options,
      pkcs11ModuleOption(),
      // The spelling keys had before every command took --pkcs11-module: still read, with a warning.
      new Option('--module <PATH>', 'deprecated spelling of --pkcs11-module').hideHelp(),
    ]).action((opts: KeysOptions) => run(async () => (await import('./commands/keys.js')).keysCommand(sub, opts, io)));
  };
  keysCommand(
    'generate',
    [
      choiceOption('--algorithm <ALG>', 'key algorithm', GENERATE_ALGORITHMS).default('ec-p256'),
      new Option('--label <L>', 'object label (default: object= of the URI)'),
      new Option('--id <HEX>', 'object id (default: random)'),
    ],
    'generate a key pair on the token',
  );
  keysCommand('list', [outputOption()], 'list the objects on the token');
  keysCommand('export', [], 'print a public key as PEM SubjectPublicKeyInfo');
  keysCommand(
    'import',
    [
      required('--file <PEM>', 'the public key'),
      new Option('--label <L>', 'object label (default: object= of the URI)'),
      new Option('--id <HEX>', 'object id (default: random)'),
    ],
    'import a PEM public key onto the token',
  );

  const node = describe(program.command('node'), 'decide every image containerd holds on this node under the current policy');
  addOptions(
    describe(
      node.command('audit'),
      'decide every image record containerd holds; exit 1 if any is refused',
      'All namespaces unless --namespace is given, under the policy in --policy-dir: after a key is revoked, this names every image that still depends on it.',
    ),
    [
      containerdSocketOption(),
      new Option('--namespace <NS>', 'only this namespace (repeatable; default all)').argParser(collect),
      policyDirOption(),
      ...registryOptions(),
      pkcs11ModuleOption(),
      outputOption(),
    ],
  ).action((opts: NodeAuditOptions) => run(async () => (await import('./commands/node.js')).nodeAuditCommand(opts, io)));

  addOptions(
    describe(
      program.command('doctor'),
      'check that this node enforces: containerd, its verifier, CRI settings, NRI, signetd',
      "One line per check (✔ ok, ! warning, ✘ failure — the fix): containerd and its version, the image-verifier plugin and signet-verifier in its bin_dir, the CRI settings that make Kubernetes pulls skip the verifier, NRI, and signetd's health. Exit 1 on any ✘.",
    ),
    [
      new Option('--containerd-config <FILE>', "containerd's config (default /etc/containerd/config.toml; imports are followed)"),
      containerdSocketOption(),
      signetdSocketOption(),
      new Option(
        '--probe <IMAGE>',
        'pull IMAGE through CRI (namespace k8s.io), as kubelet does: it must be refused; pick an image the policy refuses. If the node pulls it, doctor removes it again.',
      ).argParser((value: string) => {
        if (value.trim() === '') throw new UsageError('--probe needs an image reference');
        return value;
      }),
      new Option('--signetd-config <FILE>', "signetd's config, for the hosts.toml folder it follows (default /etc/signet/signetd.yaml if it exists)"),
      outputOption('output format; json: an array of {check, ok, level, detail, fix}'),
    ],
  ).action((opts: DoctorOptions) => run(async () => (await import('./commands/doctor.js')).doctorCommand(opts, io)));

  describe(
    program.command('install'),
    "set up this host: systemd unit, signetd.yaml, an example policy (warn mode), the verifier in containerd's bin_dir, a containerd drop-in (verifier plugin, NRI)",
    "Says what it wrote; existing files are kept. containerd's config.toml is never rewritten: without one, one is created that imports conf.d/*.toml; when it does not import the drop-in, install names the line to add (exit 1).",
  )
    .addOption(new Option('--prefix <DIR>', 'write under DIR instead of / (a staging root)'))
    .addOption(new Option('--containerd-config <FILE>', "containerd's config (default PREFIX/etc/containerd/config.toml)"))
    .action((opts: InstallOptions) => run(async () => (await import('./commands/install.js')).installCommand(opts, io)));
  describe(program.command('uninstall'), 'remove what signet install wrote (files changed since are kept and named)')
    .addOption(new Option('--prefix <DIR>', 'the root install wrote under'))
    .action((opts: UninstallOptions) => run(async () => (await import('./commands/install.js')).uninstallCommand(opts, io)));

  describe(program.command('completion'), 'print the shell completion script', 'Install: signet completion bash > /etc/bash_completion.d/signet')
    .addArgument(new Argument('<SHELL>', 'the shell').choices(['bash']))
    .action(() =>
      run(async () => {
        io.stdout.write((await import('./command-tree/bash-completion.js')).bashCompletion(program));
        return 0;
      }),
    );
  describe(program.command('man'), 'print the man page (roff)', 'The package ships it as man/signet.1: man ./man/signet.1').action(() =>
    run(async () => {
      io.stdout.write((await import('./command-tree/man-page.js')).manPage(program, VERSION));
      return 0;
    }),
  );
  describe(program.command('version'), 'print the version').action(() =>
    run(() => {
      io.stdout.write(`signet ${VERSION}\n`);
      return Promise.resolve(0);
    }),
  );

  program.hook('preAction', (_program, action) => {
    for (const option of action.options)
      if (REQUIRED.has(option) && action.getOptionValue(option.attributeName()) === undefined)
        action.error(`error: required option '${option.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
  });

  // Every command reports its own parsing problems, named by its path (e.g. "signet policy push").
  forEachCommand(program, (cmd) =>
    cmd.exitOverride((err) => {
      throw new CommandLineError(commandPath(cmd), err.message, err.exitCode === 0 ? 0 : 2, err.code);
    }),
  );
  return { program, exitCode: () => exitCode };
}
