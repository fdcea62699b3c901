/**
 * systemd's side of sd_notify(3), for tests: a datagram socket at $NOTIFY_SOCKET whose messages the test
 * reads. Node has no AF_UNIX datagram sockets, so systemd's own `systemd-socket-activate --datagram`
 * (package systemd, which also ships the systemd-notify signetd runs) binds it and hands it as fd 3 to a
 * shell loop from coreutils: one `dd` read(2) takes exactly one datagram, `od` prints it as one hex line,
 * so message boundaries survive. A read without ancillary data closes the descriptors a datagram
 * carried, which is what ends systemd-notify's BARRIER=1 wait, as systemd closing them does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface NotifyMessage {
  /** The datagram's KEY=VALUE lines. */
  fields: Record<string, string>;
  /** The datagram as received. */
  text: string;
  /** Date.now() when the test read it. */
  at: number;
}

export interface NotifyReceiver {
  /** The value for NOTIFY_SOCKET: a path, or `@name` for an abstract socket. */
  socket: string;
  /** Every message received but systemd-notify's BARRIER=1, in order. */
  messages: NotifyMessage[];
  /** BARRIER=1 datagrams received (one per systemd-notify run that waited). */
  barriers(): number;
  /** The first message from index `from` on that `matches`, waiting for it up to `timeoutMs`. */
  next(matches: (m: NotifyMessage) => boolean, timeoutMs?: number, from?: number): Promise<NotifyMessage>;
  stop(): Promise<void>;
}

const LOOP = 'while :; do dd bs=65536 count=1 status=none <&3 | od -An -v -tx1 | tr -d " \\n"; echo; done';

export async function startNotifyReceiver(options: { abstract?: boolean } = {}): Promise<NotifyReceiver> {
  const dir = mkdtempSync('/tmp/signet-notify-');
  const socket = options.abstract ? `@signet-test-${process.pid}-${Date.now()}-${Math.floor(Math.random() * 1e9)}` : join(dir, 'notify.sock');
  // Its own process group: stop() ends the loop and the dd it may be blocked in together.
  const proc: ChildProcess = spawn('systemd-socket-activate', ['--datagram', '-l', socket, 'sh', '-c', LOOP], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const messages: NotifyMessage[] = [];
  let barriers = 0;
  const waiters = new Set<() => void>();
  createInterface({ input: proc.stdout! }).on('line', (hex) => {
    const text = Buffer.from(hex.trim(), 'hex').toString('utf8');
    const fields: Record<string, string> = {};
    for (const line of text.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
    }
    if (text === 'BARRIER=1') barriers++;
    else messages.push({ fields, text, at: Date.now() });
    for (const w of waiters) w();
  });
  // systemd-socket-activate says where it listens once the socket is bound.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`systemd-socket-activate did not listen within 10 s: ${stderr}`)), 10_000);
    const check = () => {
      if (stderr.includes('Listening on')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stderr!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`systemd-socket-activate exited with ${code}: ${stderr}`));
    });
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run systemd-socket-activate (${err.message}): install Debian's systemd package (scripts/bootstrap.sh does)`));
    });
  });
  return {
    socket,
    messages,
    barriers: () => barriers,
    next(matches, timeoutMs = 10_000, from = 0) {
      return new Promise<NotifyMessage>((resolve, reject) => {
        const look = () => {
          const found = messages.slice(from).find(matches);
          if (found === undefined) return false;
          waiters.delete(onMessage);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const onMessage = () => void look();
        const timer = setTimeout(() => {
          waiters.delete(onMessage);
          reject(new Error(`no such notify message within ${timeoutMs} ms; received: ${JSON.stringify(messages.map((m) => m.text))}`));
        }, timeoutMs);
        if (!look()) waiters.add(onMessage);
      });
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((r) => proc.once('exit', () => r()));
        try {
          process.kill(-proc.pid!, 'SIGTERM');
        } catch {
          /* already gone */
        }
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
