/** `signet verify IMAGE`: what a node would decide for IMAGE, and why, without a daemon. */
import type { Decision } from '../../engine/decision.js';
import { parseReference } from '../../registry/reference.js';
import { printableJson } from '../../util/printable.js';
import { printableDecision } from '../../util/printable-decision.js';
import { openEngineFromOptions, type PolicyOptions, type RegistryOptions } from './common.js';
import type { CommandIo } from './io.js';
import type { OutputFormat } from '../option-values.js';

export interface VerifyOptions extends RegistryOptions, PolicyOptions {
  output: OutputFormat;
}

export async function verifyCommand(image: string, options: VerifyOptions, io: CommandIo): Promise<number> {
  const output = options.output;
  const ref = parseReference(image);
  const local = await openEngineFromOptions(options);
  try {
    const descriptor = await local.client.resolve(ref, ref.digest ?? ref.tag!);
    const decision = await local.engine.verify({ name: image, descriptor });
    if (output === 'json') io.stdout.write(`${printableJson(printableDecision(decision), 2)}\n`);
    else io.stdout.write(formatDecision(decision));
    return decision.ok ? 0 : 1;
  } finally {
    await local.close();
  }
}

/** The decision as text: every field escaped and bounded (names, reasons and sources carry registry text). */
export function formatDecision(untrusted: Decision): string {
  const d = printableDecision(untrusted);
  const lines = [
    `${d.decision.toUpperCase()}  ${d.image}`,
    `  digest  ${d.digest}`,
    `  scope   ${d.scope || '(none)'}`,
    `  policy  ${d.policyGeneration || '(none)'}`,
    `  reason  ${d.reason}`,
  ];
  if (d.signatures.length > 0) {
    lines.push('  signatures');
    for (const s of d.signatures)
      lines.push(
        `    ${s.valid ? 'valid  ' : 'INVALID'}  ${s.format}  key=${s.key || '-'}  ${s.source}${s.valid ? '' : `\n             ${s.code ?? ''} ${s.reason}`}`,
      );
  }
  return `${lines.join('\n')}\n`;
}
