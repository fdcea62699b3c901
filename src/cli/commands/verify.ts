/** `signet verify IMAGE`: what a node would decide for IMAGE, and why, without a daemon. */
import { parseArgs } from 'node:util';
import { openLocalEngine } from '../../engine/local.js';
import type { Decision } from '../../engine/decision.js';
import { parseReference } from '../../registry/reference.js';
import { insecureRegistries, outputFormat, policyDir, POLICY_OPTIONS, REGISTRY_OPTIONS } from './common.js';
import { UsageError, type CommandIo } from './io.js';

const USAGE = 'usage: signet verify IMAGE [--policy-dir DIR] [--insecure-registry HOST:PORT]... [--docker-config FILE] [--output text|json]';

export async function verifyCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...REGISTRY_OPTIONS, ...POLICY_OPTIONS, output: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one IMAGE\n${USAGE}`);
  const output = outputFormat(values.output);
  const image = positionals[0]!;
  const ref = parseReference(image);
  const local = await openLocalEngine({
    policyDir: policyDir(values),
    insecureRegistries: insecureRegistries(values),
    ...(values['docker-config'] !== undefined ? { dockerConfig: values['docker-config'] } : {}),
    ...(values['pkcs11-module'] !== undefined ? { pkcs11Module: values['pkcs11-module'] } : {}),
  });
  try {
    const descriptor = await local.client.resolve(ref, ref.digest ?? ref.tag!);
    const decision = await local.engine.verify({ name: image, descriptor });
    if (output === 'json') io.stdout.write(`${JSON.stringify(decision, null, 2)}\n`);
    else io.stdout.write(formatDecision(decision));
    return decision.ok ? 0 : 1;
  } finally {
    await local.close();
  }
}

export function formatDecision(d: Decision): string {
  const lines = [
    `${d.decision.toUpperCase()}  ${d.image}`,
    `  digest  ${d.digest}`,
    `  scope   ${d.scope || '(none)'}`,
    `  policy  ${d.policyGeneration || '(none)'}`,
    `  reason  ${d.reason}`,
  ];
  if (d.signatures.length > 0) {
    lines.push('  signatures');
    for (const s of d.signatures) lines.push(`    ${s.valid ? 'valid  ' : 'INVALID'}  ${s.format}  key=${s.key || '-'}  ${s.source}${s.valid ? '' : `\n             ${s.code ?? ''} ${s.reason}`}`);
  }
  return `${lines.join('\n')}\n`;
}
