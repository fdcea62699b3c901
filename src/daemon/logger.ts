/**
 * The daemon's own log (not the audit trail): JSON lines on stderr, for journald. Its fields carry
 * untrusted text (image names, registry and containerd errors): every string is escaped and bounded
 * before it is written, so a line can neither forge another line nor grow without bound.
 */
import type { Writable } from 'node:stream';
import winston from 'winston';
import { LIMITS, printable } from '../util/printable.js';

export type Logger = winston.Logger;

/** The most fields of one object, and the deepest nesting, written for one line. */
const MAX_KEYS = 64;
const MAX_DEPTH = 4;

function sanitize(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return printable(value, LIMITS.field);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return printable(value.message, LIMITS.field);
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  if (Array.isArray(value)) return value.slice(0, LIMITS.items).map((v) => sanitize(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).slice(0, MAX_KEYS)) out[printable(key, LIMITS.name)] = sanitize((value as Record<string, unknown>)[key], depth + 1);
  return out;
}

/** Every string-keyed field of the line (message included), escaped and bounded; winston's symbols kept. */
export const printableFields = winston.format((info) => {
  for (const key of Object.keys(info)) info[key] = sanitize(info[key], 0);
  return info;
});

/** sd-daemon(3) priorities: journald reads `<N>` at the start of a line as its priority (SyslogLevelPrefix). */
const PRIORITY: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7 };
const MESSAGE = Symbol.for('message');

/** `<3>{…}`: the priority in front of the finished JSON line. */
const syslogPrefix = winston.format((info) => {
  const line = (info as unknown as Record<symbol, unknown>)[MESSAGE];
  (info as unknown as Record<symbol, unknown>)[MESSAGE] = `<${PRIORITY[info.level] ?? 6}>${String(line)}`;
  return info;
});

/**
 * `syslogPrefix`: start each line with its journald priority (`<3>` error, `<4>` warn, `<6>` info,
 * `<7>` debug). Default: when stderr is connected to the journal (systemd sets JOURNAL_STREAM), so
 * that `journalctl -p warning -u signetd` works; a terminal or a pipe gets plain JSON lines.
 */
export function createLogger(level: string, stream: Writable = process.stderr, options: { syslogPrefix?: boolean } = {}): Logger {
  const prefix = options.syslogPrefix ?? (process.env['JOURNAL_STREAM'] !== undefined && stream === process.stderr);
  return winston.createLogger({
    level,
    format: winston.format.combine(printableFields(), winston.format.timestamp(), winston.format.json(), ...(prefix ? [syslogPrefix()] : [])),
    transports: [new winston.transports.Stream({ stream })],
  });
}

/**
 * Node's own warnings (MaxListenersExceededWarning, deprecations) as log lines: by default Node writes
 * them to stderr as free text, which breaks the JSON lines journald and log shippers parse.
 */
export function routeProcessWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn('node warning', { name: warning.name, warning: warning.message }));
}
