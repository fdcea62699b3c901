#!/usr/bin/env node
/**
 * signet-verifier: the executable containerd's image-verifier plugin runs for every pull.
 * It forwards the question to signetd and turns the answer into an exit code and a reason.
 * Exit 0 allows the pull; anything else rejects it; stdout is the reason containerd shows.
 * It fails closed: no answer from signetd means no pull.
 *
 * Keep the import graph tiny: node builtins and src/verifier only (start-up time is per pull).
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { isVersionRequest, parseDurationMs, parseStdinDescriptor, parseVerifierArgs, UsageError, versionLine } from '../verifier/contract.js';
import { CallError, unaryCall } from '../verifier/grpc-unary.js';
import { printable } from '../verifier/printable.js';
import { decodeJudgement, encodeVerifyImageRequest } from '../verifier/wire.js';

const DEFAULT_SOCKET = '/run/signet/signetd.sock';
const DEFAULT_TIMEOUT_MS = 8000;
const STDIN_LIMIT = 1 << 20;
/** The most the verifier prints (containerd shows it to the user, and keeps the first 32 KiB). */
const MAX_LINE = 4096;

const EXIT_ALLOW = 0;
const EXIT_REJECT = 1;
const EXIT_USAGE = 2;

/**
 * stdin to its end, within the verifier's whole wait (`timeoutMs` of its start, as containerd counts). Not
 * a shorter bound: in a burst of pulls containerd and this process are both starved of CPU, and 13 of 100
 * Node verifiers saw their descriptor later than 2 s after they started. When the timer is due, I/O already
 * waiting is read first (timers run before I/O in Node's loop): the descriptor that is there wins.
 */
function readStdin(timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(
      () => setImmediate(() => reject(new UsageError(`stdin was not closed within ${timeoutMs} ms of the verifier's start`))),
      Math.max(0, timeoutMs - performance.now()),
    );
    process.stdin.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > STDIN_LIMIT) {
        clearTimeout(timer);
        reject(new UsageError('stdin descriptor is larger than 1 MiB'));
        process.stdin.destroy();
        return;
      }
      chunks.push(chunk);
    });
    process.stdin.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    process.stdin.on('error', (err) => {
      clearTimeout(timer);
      reject(new UsageError(`cannot read stdin: ${err.message}`));
    });
  });
}

/** One line on stdout: what signetd or anyone else said, control characters escaped, bounded. */
function say(line: string): void {
  process.stdout.write(`${printable(line.replace(/[\r\n]+/g, ' ').trim(), MAX_LINE)}\n`);
}

/** The package version, from the package.json shipped next to dist/ (read only for -version). */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  if (isVersionRequest(process.argv.slice(2))) {
    process.stdout.write(`${versionLine(packageVersion())}\n`);
    return EXIT_ALLOW;
  }
  // Help, like -version, never reads stdin.
  const first = process.argv[2];
  if (process.argv.length === 3 && (first === '-help' || first === '--help' || first === '-h')) {
    process.stdout.write(`usage: signet-verifier -name REF -digest DIGEST -stdin-media-type application/vnd.oci.descriptor.v1+json < descriptor
       signet-verifier -version

containerd's image verifier (bindir plugin): asks signetd whether REF at DIGEST may be pulled.
Exit 0 allow, 1 reject (also when signetd cannot answer: fail closed), 2 malformed arguments or stdin.
Environment: SIGNET_SOCKET (default ${DEFAULT_SOCKET}), SIGNET_VERIFIER_TIMEOUT (default 8s).
`);
    return EXIT_ALLOW;
  }
  const socket = process.env['SIGNET_SOCKET'] || DEFAULT_SOCKET;
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  let args;
  let descriptor;
  try {
    if (process.env['SIGNET_VERIFIER_TIMEOUT']) timeoutMs = parseDurationMs(process.env['SIGNET_VERIFIER_TIMEOUT']);
    args = parseVerifierArgs(process.argv.slice(2));
    descriptor = parseStdinDescriptor(await readStdin(timeoutMs), args.digest);
  } catch (err) {
    if (err instanceof UsageError) {
      say(
        `signet-verifier: ${err.message}; rejecting (usage: signet-verifier -name REF -digest DIGEST -stdin-media-type application/vnd.oci.descriptor.v1+json, descriptor on stdin)`,
      );
      return EXIT_USAGE;
    }
    throw err;
  }

  try {
    // The wait counts from this process's start (performance.now() is the time since), as containerd's limit
    // does: a start slowed by a burst of pulls leaves less time for the answer, never more in total.
    const remainingMs = Math.max(1, Math.round(timeoutMs - performance.now()));
    const answer = await unaryCall(socket, '/signet.v1.ImageVerifier/VerifyImage', encodeVerifyImageRequest(args.name, descriptor), remainingMs);
    const judgement = decodeJudgement(answer);
    say(judgement.reason || (judgement.ok ? 'signet: accepted' : 'signet: rejected'));
    return judgement.ok ? EXIT_ALLOW : EXIT_REJECT;
  } catch (err) {
    const why =
      err instanceof CallError ? (err.kind === 'deadline' ? `no answer within ${timeoutMs} ms of the verifier's start` : err.message) : (err as Error).message;
    say(`signet: cannot get a decision from signetd at ${socket} (${why}); rejecting ${args.name} (fail closed)`);
    return EXIT_REJECT;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`signet-verifier: internal error: ${(err as Error)?.message ?? String(err)}; rejecting (fail closed)`);
    process.exit(EXIT_REJECT);
  },
);
