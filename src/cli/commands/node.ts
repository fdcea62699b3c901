/** `signet node`: being written. */
import type { CommandIo } from './io.js';

export async function nodeCommand(_argv: string[], io: CommandIo): Promise<number> {
  io.stderr.write('signet node: not available yet\n');
  return 1;
}
