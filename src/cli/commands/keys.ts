/** `signet keys generate|list|export|import`: keys on a PKCS#11 token. */
import { readFileSync } from 'node:fs';
import { SignetError } from '../../errors.js';
import { moduleFor } from '../../keys/pkcs11/module.js';
import { exportPublicKey, generateKeyPair, importPublicKey, listObjects, randomId, type GenerateAlgorithm } from '../../keys/pkcs11/manage.js';
import { DEFAULT_PKCS11_MODULE } from '../../keys/pkcs11/provider.js';
import { parsePkcs11Uri, resolvePin, type Pkcs11Uri } from '../../keys/pkcs11/uri.js';
import { LIMITS, printable, printableJson } from '../../util/printable.js';
import { fingerprintOf } from '../../keys/node-key.js';
import type { OutputFormat } from '../option-values.js';
import { UsageError, type CommandIo } from './io.js';

export type KeysSubcommand = 'generate' | 'list' | 'export' | 'import';

/** The options of every keys subcommand; each takes the ones it names in --help. */
export interface KeysOptions {
  /** The token object, as an RFC 7512 pkcs11: URI. */
  key: string;
  pkcs11Module?: string;
  /** Deprecated spelling of --pkcs11-module (the other commands' name). */
  module?: string;
  algorithm?: GenerateAlgorithm;
  label?: string;
  id?: string;
  file?: string;
  output?: OutputFormat;
}

export async function keysCommand(sub: KeysSubcommand, values: KeysOptions, io: CommandIo): Promise<number> {
  const uri = parsePkcs11Uri(values.key);
  if (values.module !== undefined) io.stderr.write('signet keys: --module is deprecated; use --pkcs11-module (the same flag as the other commands)\n');
  if (values.module !== undefined && values.pkcs11Module !== undefined && values.module !== values.pkcs11Module)
    throw new UsageError('--module and --pkcs11-module name different modules; give --pkcs11-module only');
  const module = moduleFor(uri.modulePath ?? values.pkcs11Module ?? values.module ?? process.env['SIGNET_PKCS11_MODULE'] ?? DEFAULT_PKCS11_MODULE);
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
        const algorithm = values.algorithm ?? 'ec-p256';
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
        const output = values.output ?? 'text';
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
