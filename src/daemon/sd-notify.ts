/**
 * The sd_notify protocol (sd_notify(3)) for a `Type=notify` unit: READY=1 once signetd serves,
 * RELOADING=1 … READY=1 around a reload, STOPPING=1 at shutdown, and STATUS= lines that
 * `systemctl status` shows. Nothing is sent when $NOTIFY_SOCKET is unset (not started by systemd).
 *
 * Node has no AF_UNIX datagram sockets, so each message is sent by systemd's own `systemd-notify`
 * (package systemd, present wherever systemd is). As of systemd 252 it sends the message claiming its
 * parent's PID (signetd, the unit's main PID) when it may (CAP_SYS_ADMIN), otherwise under its own PID;
 * it then waits (BARRIER=1, up to 5 s) until the manager has read the message, so the manager can still
 * find its cgroup. The unit therefore says NotifyAccess=all: the hardened unit has no capabilities.
 *
 * Messages go out one at a time, in order (two systemd-notify processes racing could deliver READY=1
 * before RELOADING=1); a STATUS= line still waiting is replaced by a newer one.
 */
import { spawn } from 'node:child_process';
import { LIMITS, printable } from '../util/printable.js';

/** What this module logs through (the daemon's winston logger fits). */
export interface NotifyLog {
  error(message: string, meta: Record<string, unknown>): unknown;
  warn(message: string, meta: Record<string, unknown>): unknown;
}

export interface SdNotifyOptions {
  /** The sender executable (default `systemd-notify`, looked up in PATH). */
  command?: string;
  /** One systemd-notify run, its barrier wait included; then it is killed. */
  timeoutMs?: number;
  /** PATH for the lookup of `command` (default: the environment's, else /usr/bin:/bin). */
  path?: string;
}

/** One systemd-notify run, killed after this: its own wait for the manager (the barrier) is 5 s. */
export const SEND_TIMEOUT_MS = 10_000;

type Field = readonly [key: string, value: string];

interface Pending {
  fields: Field[];
  statusOnly: boolean;
  done: (sent: boolean) => void;
}

/** A STATUS= value: one line (a newline would start another KEY=VALUE), escaped and bounded. */
function statusValue(text: string): string {
  return printable(text, LIMITS.detail);
}

/** CLOCK_MONOTONIC in µs, as RELOADING=1 carries it (required by Type=notify-reload, systemd ≥ 253). */
function monotonicUsec(): string {
  return (process.hrtime.bigint() / 1000n).toString();
}

export class SdNotifier {
  private readonly queue: Pending[] = [];
  private running = false;
  private unavailable = false;
  private readonly idleWaiters: Array<() => void> = [];
  private readonly command: string;
  private readonly timeoutMs: number;
  private readonly path: string;

  /**
   * The notifier for this process: $NOTIFY_SOCKET is read, then removed from `env`, so that the
   * processes signetd starts (credential helpers…) cannot speak for the unit (NotifyAccess=all).
   */
  static fromEnvironment(env: NodeJS.ProcessEnv, log: NotifyLog, options: SdNotifyOptions = {}): SdNotifier {
    const socket = env['NOTIFY_SOCKET'];
    delete env['NOTIFY_SOCKET'];
    const path = options.path ?? env['PATH'];
    return new SdNotifier(socket === '' ? undefined : socket, log, { ...options, ...(path !== undefined ? { path } : {}) });
  }

  constructor(
    /** $NOTIFY_SOCKET: a path, or `@name` for an abstract socket; undefined: send nothing. */
    readonly socket: string | undefined,
    private readonly log: NotifyLog,
    options: SdNotifyOptions = {},
  ) {
    this.command = options.command ?? 'systemd-notify';
    this.timeoutMs = options.timeoutMs ?? SEND_TIMEOUT_MS;
    this.path = options.path ?? '/usr/bin:/bin';
  }

  /** Whether messages are sent at all ($NOTIFY_SOCKET set, and systemd-notify not found missing). */
  get enabled(): boolean {
    return this.socket !== undefined && !this.unavailable;
  }

  /** Start-up complete, or a reload finished: the manager starts what is ordered after signetd. */
  ready(status: string): Promise<boolean> {
    return this.send(
      [
        ['READY', '1'],
        ['STATUS', statusValue(status)],
      ],
      false,
    );
  }

  /** A reload began; ready() ends it. */
  reloading(status: string): Promise<boolean> {
    return this.send(
      [
        ['RELOADING', '1'],
        ['MONOTONIC_USEC', monotonicUsec()],
        ['STATUS', statusValue(status)],
      ],
      false,
    );
  }

  /** Shutdown began. */
  stopping(status: string): Promise<boolean> {
    return this.send(
      [
        ['STOPPING', '1'],
        ['STATUS', statusValue(status)],
      ],
      false,
    );
  }

  /** A status line for humans only. */
  status(status: string): Promise<boolean> {
    return this.send([['STATUS', statusValue(status)]], true);
  }

  /** Resolves when every queued message has been handled, or after `timeoutMs`. */
  settled(timeoutMs: number): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Queue one message; resolves true once systemd-notify reported it delivered, false otherwise. */
  private send(fields: Field[], statusOnly: boolean): Promise<boolean> {
    if (!this.enabled) return Promise.resolve(false);
    return new Promise<boolean>((done) => {
      if (statusOnly) {
        // Only the newest status line matters: one still waiting is replaced (and reported as not sent).
        const stale = this.queue.findIndex((p) => p.statusOnly);
        if (stale >= 0) this.queue.splice(stale, 1)[0]!.done(false);
      }
      this.queue.push({ fields, statusOnly, done });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
      const sent = this.unavailable ? false : await this.run(next.fields);
      next.done(sent);
    }
    this.running = false;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** One systemd-notify run with `fields` as its VARIABLE=VALUE arguments. */
  private run(fields: Field[]): Promise<boolean> {
    const args = fields.map(([k, v]) => `${k}=${v}`);
    const what = fields.map(([k]) => k).join(' ');
    return new Promise<boolean>((resolve) => {
      // Its environment is the socket and PATH only: nothing else of signetd's is passed on.
      const child = spawn(this.command, args, { env: { NOTIFY_SOCKET: this.socket, PATH: this.path }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => {
        if (stderr.length < LIMITS.detail) stderr += d;
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), this.timeoutMs);
      let finished = false;
      const finish = (sent: boolean) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        resolve(sent);
      };
      child.once('error', (err: NodeJS.ErrnoException) => {
        // Missing or not executable: every later message would fail the same way; said once, then none sent.
        this.unavailable = true;
        this.log.error(
          'NOTIFY_SOCKET is set but systemd-notify cannot be run: systemd is not told that signetd is ready (a Type=notify unit then fails to start)',
          {
            command: this.command,
            error: err.code ?? err.message,
            fix: 'install systemd-notify (Debian package systemd), or run signetd from a unit with Type=exec',
          },
        );
        finish(false);
      });
      child.once('close', (code, signal) => {
        if (finished) return;
        if (code === 0) return finish(true);
        this.log.warn('systemd-notify did not deliver a message to the service manager', {
          message: what,
          socket: this.socket,
          exit: code ?? signal,
          ...(signal === 'SIGKILL' ? { timeoutMs: this.timeoutMs } : {}),
          stderr: printable(stderr.trim(), LIMITS.detail),
        });
        finish(false);
      });
    });
  }
}
