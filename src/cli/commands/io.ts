/** What a command writes to; the entry point passes process streams, tests pass buffers. */
export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** A mistake in the command line: the entry point prints it on one line and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
