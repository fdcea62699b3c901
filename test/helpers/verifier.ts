/**
 * Run signet-verifier exactly as containerd's bindir plugin does: a child process in its own
 * process group, the seven arguments, the descriptor as one JSON line on stdin then EOF;
 * containerd reads the exit code and the first 32 KiB of stdout, trimmed.
 */
import { spawn } from 'node:child_process';
import { VERIFIER } from './daemon.js';

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
  socket: string;
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
    const child = spawn(VERIFIER, args, {
      detached: true, // containerd runs each verifier in its own process group
      env: { PATH: process.env['PATH'], SIGNET_SOCKET: options.socket, ...options.env },
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
