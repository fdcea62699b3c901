/** Durations as operators write them in configuration and policy: `500ms`, `30s`, `30m`, `24h`, `7d`. */
import { SignetError, type ErrorCode } from '../errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: unknown, what: string, code: ErrorCode = 'INVALID_ARGUMENT'): number {
  const m = typeof text === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim()) : null;
  if (m === null) throw new SignetError(code, `${what}: ${JSON.stringify(text)} is not a duration such as 500ms, 30s, 30m, 24h or 7d`);
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}
