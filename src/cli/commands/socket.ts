/**
 * signetd's socket for the commands that talk to signetd: where it is (--socket, else $SIGNET_SOCKET, else
 * signetd's default), and, when signetd cannot be asked, what is at that path — one wording for every
 * command (status, doctor), so a wrong path, a stopped daemon and a missing permission read differently.
 */
import { lstatSync } from 'node:fs';
import { connect } from 'node:net';
import { DEFAULT_CONFIG } from '../../daemon/config.js';
import { printable } from '../../util/printable.js';

export function signetdSocket(flag: string | undefined): string {
  return flag ?? process.env['SIGNET_SOCKET'] ?? DEFAULT_CONFIG.socket;
}

export interface SocketDiagnosis {
  /** The path tried (as given, unescaped). */
  path: string;
  exists: boolean;
  isSocket: boolean;
  /** Something accepted a connection on it (which does not yet say it is signetd). */
  answers: boolean;
  /** One line: the path tried (escaped) and what is there. */
  problem: string;
  /** What to do about it. */
  remedy: string;
}

const CONNECT_TIMEOUT_MS = 5000;
const RESTART = 'restart signetd (systemctl restart signetd; systemctl status signetd says why it stopped)';
const AS_ROOT = 'run as root (the socket is mode 0600)';

/** Looks at `path` (lstat) and tries one connection to it. Never throws. */
export async function diagnoseSocket(path: string, timeoutMs: number = CONNECT_TIMEOUT_MS): Promise<SocketDiagnosis> {
  const at = `signetd's socket ${printable(path)}`;
  const found = (exists: boolean, isSocket: boolean, answers: boolean, state: string, remedy: string): SocketDiagnosis => ({
    path,
    exists,
    isSocket,
    answers,
    problem: `${at}: ${state}`,
    remedy,
  });
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return found(
        false,
        false,
        false,
        'no such file (signetd is not running, or listens elsewhere)',
        'start signetd (systemctl enable --now signetd), or name its socket with --socket, SIGNET_SOCKET or socket: in signetd.yaml',
      );
    return found(false, false, false, `cannot look at the path (${code === 'EACCES' ? 'EACCES: permission denied' : code})`, AS_ROOT);
  }
  if (!isSocket)
    return found(
      true,
      false,
      false,
      'the file exists but is not a socket (signetd does not listen there)',
      `check --socket and SIGNET_SOCKET; if it is signetd's configured socket, remove the file and ${RESTART}`,
    );
  const code = await connectError(path, timeoutMs);
  if (code === undefined) return found(true, true, true, 'a socket, and something accepts connections on it', RESTART);
  if (code === 'EACCES') return found(true, true, false, 'a socket, but this user may not connect to it (EACCES)', AS_ROOT);
  return found(true, true, false, `a socket file, but nothing answers on it (${code}): signetd stopped without removing it, or is still starting`, RESTART);
}

/** The error code of one connection attempt; undefined when it connected. */
function connectError(path: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect(path);
    const timer = setTimeout(() => (s.destroy(), resolve('ETIMEDOUT')), timeoutMs);
    s.once('connect', () => (clearTimeout(timer), s.destroy(), resolve(undefined)));
    s.once('error', (err: NodeJS.ErrnoException) => (clearTimeout(timer), resolve(err.code ?? 'error')));
  });
}
