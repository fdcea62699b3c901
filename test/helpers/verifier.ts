/**
 * Run signet-verifier exactly as containerd's bindir plugin does: a child process in its own
 * process group, the seven arguments, the descriptor as one JSON line on stdin then EOF;
 * containerd reads the exit code and the first 32 KiB of stdout, trimmed.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { ROOT, VERIFIER } from './daemon.js';

/** The shell verifier (sh + curl against signetd's HTTP socket), as signet install links it into bin_dir. */
export const SHELL_VERIFIER = join(ROOT, 'verifier/signet-verifier.sh');
/** The verifiers containerd may run: the shell one (the default install) and the Node one (the fallback). */
export type VerifierKind = 'sh' | 'node';
export const VERIFIER_KINDS: VerifierKind[] = ['sh', 'node'];
/** The socket each verifier asks, for a signetd whose gRPC socket is `grpcSocket` (verify.sock sits beside it). */
export function socketFor(kind: VerifierKind, grpcSocket: string): string {
  return kind === 'sh' ? join(dirname(grpcSocket), 'verify.sock') : grpcSocket;
}

export interface VerifierRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface DescriptorLike {
  mediaType: string;
  digest: string;
  size: number;
}

export function runVerifier(options: {
  /** The socket the verifier asks (see socketFor). */
  socket: string;
  /** Which verifier (default: the Node one). */
  kind?: VerifierKind;
  name?: string;
  descriptor?: DescriptorLike;
  /** Override the argv after the executable (for malformed-argument tests). */
  args?: string[];
  /** Override stdin (for malformed-descriptor tests); `null` leaves stdin open (never closed). */
  stdin?: string | null;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}): Promise<VerifierRun> {
  const args = options.args ?? ['-name', options.name!, '-digest', options.descriptor!.digest, '-stdin-media-type', 'application/vnd.oci.descriptor.v1+json'];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const sh = options.kind === 'sh';
    const child = spawn(sh ? SHELL_VERIFIER : VERIFIER, args, {
      detached: true, // containerd runs each verifier in its own process group
      env: { PATH: process.env['PATH'], [sh ? 'SIGNET_VERIFY_SOCKET' : 'SIGNET_SOCKET']: options.socket, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL'); // containerd kills the whole group on timeout
      } catch {
        /* already gone */
      }
    }, options.timeoutMs ?? 10_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: stdout.slice(0, 32 * 1024).trim(), stderr, ms: Date.now() - started });
    });
    child.stdin!.on('error', () => undefined);
    if (options.stdin === null) return;
    child.stdin!.end(options.stdin ?? `${JSON.stringify(options.descriptor)}\n`);
  });
}
