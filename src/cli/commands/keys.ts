/** `signet keys generate|list|export|import`: keys on a PKCS#11 token. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SignetError } from '../../errors.js';
import { moduleFor } from '../../keys/pkcs11/module.js';
import {
  exportPublicKey,
  generateKeyPair,
  GENERATE_ALGORITHMS,
  importPublicKey,
  listObjects,
  randomId,
  type GenerateAlgorithm,
} from '../../keys/pkcs11/manage.js';
import { DEFAULT_PKCS11_MODULE } from '../../keys/pkcs11/provider.js';
import { parsePkcs11Uri, resolvePin, type Pkcs11Uri } from '../../keys/pkcs11/uri.js';
import { LIMITS, printable, printableJson } from '../../util/printable.js';
import { fingerprintOf } from '../../keys/node-key.js';
import { outputFormat } from './common.js';
import { UsageError, type CommandIo } from './io.js';

const USAGE = `usage: signet keys <generate|list|export|import> --key PKCS11-URI [options]
  generate --key URI [--algorithm ec-p256|ec-p384|rsa-3072|ed25519] [--label L] [--id HEX]
  list     --key URI [--output text|json]
  export   --key URI                      public key as PEM SubjectPublicKeyInfo
  import   --key URI --file PEM [--label L] [--id HEX]
common: --pkcs11-module PATH (default: the URI's module-path, $SIGNET_PKCS11_MODULE, ${DEFAULT_PKCS11_MODULE}); --module is its deprecated spelling
PIN: the URI's pin-source=file:… or pin-value=…, else $SIGNET_PKCS11_PIN.`;

const OPTIONS = {
  key: { type: 'string' },
  'pkcs11-module': { type: 'string' },
  /** Deprecated spelling of --pkcs11-module (the other commands' name). */
  module: { type: 'string' },
  algorithm: { type: 'string' },
  label: { type: 'string' },
  id: { type: 'string' },
  file: { type: 'string' },
  output: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function keysCommand(argv: string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return sub === undefined ? 2 : 0;
  }
  const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true });
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${String(positionals[0 as number])}"`);
  if (values.key === undefined) throw new UsageError(`--key PKCS11-URI is required\n${USAGE}`);
  const uri = parsePkcs11Uri(values.key);
  if (values.module !== undefined) io.stderr.write('signet keys: --module is deprecated; use --pkcs11-module (the same flag as the other commands)\n');
  if (values.module !== undefined && values['pkcs11-module'] !== undefined && values.module !== values['pkcs11-module'])
    throw new UsageError('--module and --pkcs11-module name different modules; give --pkcs11-module only');
  const module = moduleFor(uri.modulePath ?? values['pkcs11-module'] ?? values.module ?? process.env['SIGNET_PKCS11_MODULE'] ?? DEFAULT_PKCS11_MODULE);
  // An empty SIGNET_PKCS11_PIN is no PIN (as an unset one), not an empty PIN for the token to refuse.
  const pin = (): string | undefined => resolvePin(uri, process.env['SIGNET_PKCS11_PIN'] || undefined) || undefined;
  const needPin = (): string => {
    const p = pin();
    if (p === undefined)
      throw new SignetError(
        'PIN_REQUIRED',
        `${uri.redacted}: this needs the token's user PIN, and none was given: add pin-source=file:/path/to/pin (or pin-value=…) to the URI, or set SIGNET_PKCS11_PIN`,
      );
    return p;
  };
  try {
    switch (sub) {
      case 'generate': {
        const algorithm = (values.algorithm ?? 'ec-p256') as GenerateAlgorithm;
        if (!GENERATE_ALGORITHMS.includes(algorithm)) throw new UsageError(`--algorithm must be one of ${GENERATE_ALGORITHMS.join(', ')}`);
        const label = values.label ?? uri.object;
        if (!label) throw new UsageError('give --label or object= in the URI');
        const id = idOf(values.id, uri) ?? randomId();
        const res = await generateKeyPair(module, uri, needPin(), algorithm, label, id);
        io.stdout.write(
          `generated ${algorithm} key "${printable(label, LIMITS.name)}" id ${id.toString('hex')}\nfingerprint ${fingerprintOf(res.publicKey)}\npolicy URI  ${printable(res.uri, LIMITS.reason)}\n`,
        );
        return 0;
      }
      case 'list': {
        const output = outputFormat(values.output);
        const objects = (await listObjects(module, { ...uri }, pin())).sort((a, b) => a.label.localeCompare(b.label) || a.type.localeCompare(b.type));
        if (output === 'json') io.stdout.write(`${printableJson(objects, 2)}\n`);
        else {
          const rows = [
            ['LABEL', 'ID', 'TYPE', 'ALGORITHM', 'URI'],
            ...objects.map((o) => [o.label, o.id, o.type, o.algorithm, o.uri].map((c) => printable(c, LIMITS.name))),
          ];
          const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
          io.stdout.write(`${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n')}\n`);
        }
        return 0;
      }
      case 'export':
        io.stdout.write(await exportPublicKey(module, uri, pin()));
        return 0;
      case 'import': {
        if (values.file === undefined) throw new UsageError('--file PEM is required');
        let pem: string;
        try {
          pem = readFileSync(values.file, 'utf8');
        } catch (err) {
          throw new UsageError(`cannot read ${values.file}: ${(err as NodeJS.ErrnoException).code}`);
        }
        const label = values.label ?? uri.object;
        if (!label) throw new UsageError('give --label or object= in the URI');
        const res = await importPublicKey(module, uri, needPin(), pem, label, idOf(values.id, uri) ?? randomId());
        io.stdout.write(
          `imported ${res.algorithm} public key "${printable(label, LIMITS.name)}"\nfingerprint ${res.fingerprint}\npolicy URI  ${printable(res.uri, LIMITS.reason)}\n`,
        );
        return 0;
      }
      default:
        throw new UsageError(`unknown keys command "${sub}"\n${USAGE}`);
    }
  } finally {
    module.close();
  }
}

function idOf(hex: string | undefined, uri: Pkcs11Uri): Buffer | undefined {
  if (hex === undefined) return uri.id;
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new UsageError('--id must be hex bytes, e.g. 01a2');
  return Buffer.from(hex, 'hex');
}
