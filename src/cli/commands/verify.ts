/** `signet verify IMAGE`: what a node would decide for IMAGE, and why, without a daemon. */
import type { Decision } from '../../engine/decision.js';
import { parseReference } from '../../registry/reference.js';
import { printableJson } from '../../util/printable.js';
import { printableDecision } from '../../util/printable-decision.js';
import { openEngineFromOptions, parseEngineCommand } from './common.js';
import type { CommandIo } from './io.js';

const USAGE = 'usage: signet verify IMAGE [--policy-dir DIR] [--insecure-registry HOST:PORT]... [--docker-config FILE] [--output text|json]';

export async function verifyCommand(argv: string[], io: CommandIo): Promise<number> {
  const cmd = parseEngineCommand(argv, USAGE, 'IMAGE', io);
  if (cmd === undefined) return 0;
  const image = cmd.target;
  const output = cmd.output;
  const ref = parseReference(image);
  const local = await openEngineFromOptions(cmd.values);
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
