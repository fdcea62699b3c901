/**
 * Registry credentials from a Docker-style config.json. Only inline credentials are read
 * (`auths.<host>.auth`, `username`/`password`, `identitytoken`); credential helpers
 * (`credsStore`, `credHelpers`) would mean running other programs from the daemon, so they are ignored.
 */
import { readFileSync } from 'node:fs';
import { SignetError } from '../errors.js';
import { DOCKER_HUB } from './reference.js';

export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint. */
  identityToken?: string;
}

/** Keys under which config.json may hold a registry's entry. */
function candidateKeys(registry: string): string[] {
  if (registry === DOCKER_HUB) return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'https://registry-1.docker.io'];
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

export function parseDockerConfig(text: string, path: string): Record<string, Credentials> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // Not the parser's message: V8 quotes the surrounding text, which here is a secret.
    throw new SignetError('CONFIG_INVALID', `${path} is not valid JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new SignetError('CONFIG_INVALID', `${path} is not a JSON object`);
  const auths = (doc as Record<string, unknown>)['auths'];
  if (auths === undefined) return {};
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) throw new SignetError('CONFIG_INVALID', `${path}: "auths" is not an object`);
  const out: Record<string, Credentials> = {};
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    if (typeof entry !== 'object' || entry === null) throw new SignetError('CONFIG_INVALID', `${path}: auths["${key}"] is not an object`);
    const e = entry as Record<string, unknown>;
    for (const field of ['auth', 'username', 'password', 'identitytoken'] as const) {
      if (e[field] !== undefined && typeof e[field] !== 'string') throw new SignetError('CONFIG_INVALID', `${path}: auths["${key}"].${field} is not a string`);
    }
    const creds: Credentials = {};
    if (typeof e['auth'] === 'string' && e['auth'].length > 0) {
      const auth = e['auth'];
      const decoded = Buffer.from(auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(auth) || colon < 0) throw new SignetError('CONFIG_INVALID', `${path}: auths["${key}"].auth is not base64 of user:password`);
      creds.username = decoded.slice(0, colon);
      creds.password = decoded.slice(colon + 1);
    }
    if (typeof e['username'] === 'string') creds.username = e['username'];
    if (typeof e['password'] === 'string') creds.password = e['password'];
    if (typeof e['identitytoken'] === 'string' && e['identitytoken'].length > 0) creds.identityToken = e['identitytoken'];
    out[key] = creds;
  }
  return out;
}

export class CredentialStore {
  private cache: { mtimeKey: string; entries: Record<string, Credentials> } | undefined;

  constructor(private readonly path: string | undefined) {}

  /** Credentials for `registry`, or undefined for anonymous access. Re-reads the file when it changes. */
  lookup(registry: string): Credentials | undefined {
    if (this.path === undefined) return undefined;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new SignetError('CONFIG_INVALID', `cannot read registry credentials ${this.path}: ${(err as NodeJS.ErrnoException).code}`);
    }
    if (this.cache?.mtimeKey !== text) this.cache = { mtimeKey: text, entries: parseDockerConfig(text, this.path) };
    for (const key of candidateKeys(registry)) {
      const c = this.cache.entries[key];
      if (c !== undefined && (c.username !== undefined || c.identityToken !== undefined)) return c;
    }
    return undefined;
  }
}
