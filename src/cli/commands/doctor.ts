/** `signet doctor`: being written. */
import type { CommandIo } from './io.js';

export async function doctorCommand(_argv: string[], io: CommandIo): Promise<number> {
  io.stderr.write('signet doctor: not available yet\n');
  return 1;
}
