/** signetd's command line (commander): `--config FILE`, `--help`, `--version`. */
import { Command, CommanderError, Option } from 'commander';
import { LIMITS, printable } from '../util/printable.js';

export const DEFAULT_CONFIG_PATH = '/etc/signet/signetd.yaml';

/** Start with this config file (undefined: the default file if it exists, else built-in defaults), or exit with this code. */
export type SignetdArgs = { run: true; config?: string } | { run: false; exitCode: number };

export function parseSignetdArgs(argv: string[], version: string, io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }): SignetdArgs {
  const program = new Command('signetd')
    .description(
      `signet's node daemon: decides for containerd's verifier and NRI, over a gRPC unix socket.\n\nWithout --config: ${DEFAULT_CONFIG_PATH} if it exists, else the built-in defaults. SIGHUP reloads the policy and keys.`,
    )
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (message) =>
        io.stderr.write(
          `signetd: ${printable(
            message
              .trim()
              .replace(/^error: /, '')
              .replace(/\s*\n\s*/g, ' '),
            LIMITS.reason,
          )} (signetd --help shows the usage)\n`,
        ),
    })
    .configureHelp({ styleTitle: (title) => title.toLowerCase() })
    .helpOption('-h, --help', 'show this help')
    .version(`signetd ${version}`, '--version', 'print the version')
    .addOption(new Option('-c, --config <FILE>', `signetd.yaml (default ${DEFAULT_CONFIG_PATH} if it exists)`))
    .showSuggestionAfterError(true)
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return { run: false, exitCode: err.exitCode === 0 ? 0 : 2 };
    throw err;
  }
  const { config } = program.opts<{ config?: string }>();
  return config !== undefined ? { run: true, config } : { run: true };
}
