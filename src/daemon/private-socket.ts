/**
 * signetd's unix sockets (gRPC, the verifier's HTTP): mode 0600 from the moment they exist, and never
 * taken from another signetd that is serving them. One implementation for both doors.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { SignetError } from '../errors.js';

/**
 * Bind `socketPath` with `bind` under a restrictive umask (so the socket is never briefly wider than
 * 0600), after removing a stale socket file; refuses when another process answers on it.
 */
export async function listenPrivately(socketPath: string, bind: () => Promise<void>): Promise<void> {
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o750 });
  if (existsSync(socketPath)) {
    if (await isListening(socketPath)) throw new SignetError('CONFIG_INVALID', `another process is serving ${socketPath}; is signetd already running?`);
    unlinkSync(socketPath);
  }
  const oldMask = process.umask(0o177);
  try {
    await bind();
  } finally {
    process.umask(oldMask);
  }
  chmodSync(socketPath, 0o600);
}

function isListening(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
