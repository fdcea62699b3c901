/** signet's version, read once from the package.json shipped next to dist/ (one place to change it). */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const VERSION = readVersion();
/** The User-Agent of signet's registry requests: `signetd/<v>` or `signet-cli/<v>`. */
export const userAgent = (program: 'signetd' | 'signet-cli'): string => `${program}/${VERSION}`;
