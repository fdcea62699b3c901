/**
 * Registry credentials as Docker finds them in a config.json: `credHelpers.<host>` names a credential
 * helper for one registry, `credsStore` one for all others, and without either the inline `auths`
 * entries (`auth`, `username`/`password`, `identitytoken`). A helper is run as Docker runs it:
 * `docker-credential-<name> get` with the server on stdin, its JSON answer on stdout, bounded in time;
 * its output is never quoted in errors (it holds secrets). The file is `dockerConfig` when given, else
 * `$DOCKER_CONFIG/config.json` when DOCKER_CONFIG is set.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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

export interface DockerConfig {
  auths: Record<string, Credentials>;
  credsStore?: string;
  credHelpers: Record<string, string>;
}

/** `$DOCKER_CONFIG/config.json` when DOCKER_CONFIG is set, else `fallback` (the CLI: ~/.docker/config.json). */
export function dockerConfigPath(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env, fallback?: string): string | undefined {
  if (explicit !== undefined) return explicit;
  const dir = env['DOCKER_CONFIG'];
  if (dir !== undefined && dir !== '') return join(dir, 'config.json');
  return fallback;
}

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function parseDockerConfigFile(text: string, path: string): DockerConfig {
  const auths = parseDockerConfig(text, path);
  const doc = JSON.parse(text) as Record<string, unknown>;
  const out: DockerConfig = { auths, credHelpers: {} };
  const store = doc['credsStore'];
  if (store !== undefined && store !== '') {
    if (typeof store !== 'string' || !HELPER_NAME.test(store)) throw new SignetError('CONFIG_INVALID', `${path}: "credsStore" is not a helper name`);
    out.credsStore = store;
  }
  const helpers = doc['credHelpers'];
  if (helpers !== undefined) {
    if (typeof helpers !== 'object' || helpers === null || Array.isArray(helpers))
      throw new SignetError('CONFIG_INVALID', `${path}: "credHelpers" is not an object`);
    for (const [host, name] of Object.entries(helpers as Record<string, unknown>)) {
      if (typeof name !== 'string' || !HELPER_NAME.test(name))
        throw new SignetError('CONFIG_INVALID', `${path}: credHelpers["${host.slice(0, 100)}"] is not a helper name`);
      out.credHelpers[host] = name;
    }
  }
  return out;
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
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(auth) || colon < 0)
        throw new SignetError('CONFIG_INVALID', `${path}: auths["${key}"].auth is not base64 of user:password`);
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

/** Longest wait for a credential helper (Docker waits forever; a daemon cannot). */
export const HELPER_TIMEOUT_MS = 10_000;
const HELPER_MAX_OUTPUT = 64 * 1024;

/**
 * Run `docker-credential-<name> get` for `server`: credentials, or undefined when the helper has none
 * ("credentials not found"). Errors name the helper and what went wrong, never its output.
 */
export function runCredentialHelper(name: string, server: string, timeoutMs: number = HELPER_TIMEOUT_MS): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const fail = (why: string) => reject(new SignetError('REGISTRY_UNAUTHORIZED', `credential helper ${program} (for ${server}): ${why}`));
    let child;
    try {
      child = spawn(program, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    } catch (err) {
      return fail(`cannot run (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const out: Buffer[] = [];
    let size = 0;
    let timedOut = false;
    // Settled at the bound without waiting for 'close': a grandchild holding the pipes keeps it away.
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
      child.stdout.destroy();
      child.stderr.destroy();
      fail(`no answer within ${timeoutMs} ms`);
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= HELPER_MAX_OUTPUT) out.push(c);
    });
    child.stderr.resume();
    child.stdin.on('error', () => undefined);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(err.code === 'ENOENT' ? `not found on the PATH (install it, or remove it from the Docker config)` : `cannot run (${err.code ?? 'error'})`);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return;
      if (signal !== null) return fail(`killed by ${signal}`);
      const text = Buffer.concat(out).toString('utf8');
      if (code !== 0) {
        // docker-credential-helpers' ErrCredentialsNotFound: anonymous access, as Docker does.
        if (/credentials not found/i.test(text)) return resolve(undefined);
        return fail(`exited with status ${code}`);
      }
      if (size > HELPER_MAX_OUTPUT) return fail(`answered more than ${HELPER_MAX_OUTPUT} bytes`);
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        return fail('answered something other than JSON');
      }
      const d = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
      const user = d['Username'];
      const secret = d['Secret'];
      if (typeof user !== 'string' || typeof secret !== 'string') return fail('answered without Username and Secret strings');
      if (secret === '') return resolve(undefined);
      // Docker's convention: the user "<token>" means the secret is an identity (refresh) token.
      resolve(user === '<token>' ? { identityToken: secret } : { username: user, password: secret });
    });
    child.stdin.end(`${server}\n`);
  });
}

export class CredentialStore {
  private cache: { mtimeKey: string; config: DockerConfig } | undefined;
  private readonly helperAnswers = new Map<string, { at: number; creds: Credentials | undefined }>();
  private readonly path: string | undefined;

  /** `path` undefined: $DOCKER_CONFIG/config.json when DOCKER_CONFIG is set, else anonymous. */
  constructor(
    path: string | undefined,
    private readonly helperTimeoutMs: number = HELPER_TIMEOUT_MS,
  ) {
    this.path = dockerConfigPath(path);
  }

  /** Credentials for `registry`, or undefined for anonymous access. Re-reads the file when it changes. */
  async lookup(registry: string): Promise<Credentials | undefined> {
    if (this.path === undefined) return undefined;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new SignetError('CONFIG_INVALID', `cannot read registry credentials ${this.path}: ${(err as NodeJS.ErrnoException).code}`);
    }
    if (this.cache?.mtimeKey !== text) {
      this.cache = { mtimeKey: text, config: parseDockerConfigFile(text, this.path) };
      this.helperAnswers.clear();
    }
    const config = this.cache.config;
    const helper =
      candidateKeys(registry)
        .map((k) => config.credHelpers[k])
        .find((h) => h !== undefined) ?? config.credsStore;
    if (helper !== undefined) {
      // Docker asks a helper for Docker Hub under its v1 URL, for any other registry by host name.
      const server = registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
      const key = `${helper}|${server}`;
      const cached = this.helperAnswers.get(key);
      if (cached !== undefined && Date.now() - cached.at < 60_000) return cached.creds;
      const creds = await runCredentialHelper(helper, server, this.helperTimeoutMs);
      this.helperAnswers.set(key, { at: Date.now(), creds });
      return creds;
    }
    for (const key of candidateKeys(registry)) {
      const c = config.auths[key];
      if (c !== undefined && (c.username !== undefined || c.identityToken !== undefined)) return c;
    }
    return undefined;
  }
}
