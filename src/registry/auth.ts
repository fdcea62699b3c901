/**
 * Registry authentication per the distribution token spec: parse the `WWW-Authenticate` challenge of a
 * 401, then answer Basic with credentials or fetch a Bearer token from the realm, cached until expiry.
 */
import { SignetError } from '../errors.js';
import type { Credentials } from './credentials.js';

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/**
 * RFC 7235 challenge: `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"`.
 * Parameters are token or quoted-string (with backslash escapes); several challenges may be comma-separated.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipWs();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const scheme = token().toLowerCase();
    if (scheme === '') throw new SignetError('REGISTRY_PROTOCOL', `malformed WWW-Authenticate header near position ${i}`);
    const params: Record<string, string> = {};
    skipWs();
    // A token68 (`Negotiate abc==`) instead of parameters: only schemes we do not speak use it; skip it.
    const token68 = scheme === 'basic' || scheme === 'bearer' ? null : /^[A-Za-z0-9._~+/-]+=*[ \t]*(?:,|$)/.exec(header.slice(i));
    if (token68 !== null) {
      i += token68[0].length;
      continue;
    }
    // Parameters until the next scheme (a token not followed by '=').
    while (i < n) {
      skipWs();
      const save = i;
      const name = token().toLowerCase();
      skipWs();
      if (name === '' || header[i] !== '=') {
        i = save;
        break;
      }
      i++;
      skipWs();
      let value = '';
      if (header[i] === '"') {
        i++;
        let closed = false;
        while (i < n) {
          const c = header[i]!;
          if (c === '\\' && i + 1 < n) {
            value += header[i + 1];
            i += 2;
          } else if (c === '"') {
            i++;
            closed = true;
            break;
          } else {
            value += c;
            i++;
          }
        }
        if (!closed) throw new SignetError('REGISTRY_PROTOCOL', 'malformed WWW-Authenticate header: unterminated quoted string');
      } else {
        value = token();
        if (value === '') throw new SignetError('REGISTRY_PROTOCOL', `malformed WWW-Authenticate header: parameter "${name}" has no value`);
      }
      // RFC 7235 §2.1: each parameter name occurs once per challenge; two realms would be ambiguous.
      if (Object.hasOwn(params, name)) throw new SignetError('REGISTRY_PROTOCOL', `malformed WWW-Authenticate header: parameter "${name}" repeated`);
      params[name] = value;
      skipWs();
      if (header[i] === ',') i++;
      else if (i < n) throw new SignetError('REGISTRY_PROTOCOL', `malformed WWW-Authenticate header: unexpected character at position ${i}`);
    }
    if (scheme === 'basic' || scheme === 'bearer') out.push({ scheme, params });
  }
  return out;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Bearer tokens per realm, service and scope. */
export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();

  get(key: string): string | undefined {
    const t = this.tokens.get(key);
    if (t === undefined) return undefined;
    if (Date.now() >= t.expiresAt) {
      this.tokens.delete(key);
      return undefined;
    }
    return t.token;
  }

  set(key: string, token: string, expiresInSeconds: number): void {
    // Refresh a little early; the spec's minimum lifetime is 60 s.
    const lifetime = Math.max(10, (Number.isFinite(expiresInSeconds) && expiresInSeconds > 0 ? expiresInSeconds : 60) - 10);
    this.tokens.set(key, { token, expiresAt: Date.now() + lifetime * 1000 });
    if (this.tokens.size > 1000) this.tokens.delete(this.tokens.keys().next().value!);
  }
}

/**
 * May the registry's credentials (Basic, or an identity token) go to this token realm? Over HTTPS, yes.
 * Over plain HTTP only when the registry itself is reached over plain HTTP (it is in
 * `insecureRegistries`) and the realm is on the registry's own host: listing a registry as insecure
 * accepts clear text to that host, not to wherever its challenge points (a hostile or spoofed registry
 * would otherwise collect the password with `realm="http://elsewhere/token"`).
 */
export function credentialsMayGoTo(realm: URL, registryBase: URL): boolean {
  if (realm.protocol === 'https:') return true;
  return realm.protocol === 'http:' && registryBase.protocol === 'http:' && realm.hostname.toLowerCase() === registryBase.hostname.toLowerCase();
}

export function basicAuthorization(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username ?? ''}:${creds.password ?? ''}`).toString('base64')}`;
}

/** Parse a token endpoint's answer: `token` or `access_token`, and `expires_in`. */
export function parseTokenResponse(untrustedText: string, realm: string): { token: string; expiresIn: number } {
  let doc: unknown;
  try {
    doc = JSON.parse(untrustedText);
  } catch {
    throw new SignetError('REGISTRY_PROTOCOL', `token endpoint ${realm} answered with something other than JSON`);
  }
  const d = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  const token = typeof d['token'] === 'string' && d['token'] ? d['token'] : typeof d['access_token'] === 'string' ? d['access_token'] : '';
  if (!token) throw new SignetError('REGISTRY_PROTOCOL', `token endpoint ${realm} answered without a token`);
  return { token, expiresIn: typeof d['expires_in'] === 'number' ? d['expires_in'] : 60 };
}
