/** What a policy scope may look like, and the scopes an image reference falls under, most specific first. */
import { isDigest, isValidHost, isValidRepository, repositoryName, type ImageReference } from '../registry/reference.js';

const TAG_RE = /^[\w][\w.-]{0,127}$/;

/** Why `scope` is not a valid scope, or undefined when it is. */
export function scopeSyntaxError(scope: string): string | undefined {
  if (scope.startsWith('*.')) {
    const domain = scope.slice(2);
    return isValidHost(domain) && !domain.includes(':') && domain === domain.toLowerCase() && domain.includes('.')
      ? undefined
      : `"${scope}" is not a valid wildcard: write *.example.com (no port, lower case)`;
  }
  if (/[A-Z]/.test(scope.split('/')[0] ?? '') || /^[a-z]+:\/\//.test(scope) || scope.endsWith('/')) {
    return `"${scope}" is not a valid scope: write host[:port][/repository][:tag|@digest] in lower case, without a scheme or trailing slash`;
  }
  let rest = scope;
  const at = rest.indexOf('@');
  if (at >= 0) {
    if (!isDigest(rest.slice(at + 1))) return `"${scope}": "${rest.slice(at + 1)}" is not a digest`;
    rest = rest.slice(0, at);
  }
  const slash = rest.indexOf('/');
  const host = slash >= 0 ? rest.slice(0, slash) : rest;
  if (!isValidHost(host) || !(host.includes('.') || host.includes(':') || host === 'localhost')) {
    return `"${scope}" does not start with a registry host (e.g. docker.io/library or registry.example.com:5000): scopes are fully qualified`;
  }
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') return `"${scope}": write docker.io for Docker Hub`;
  if (slash < 0) return at >= 0 ? `"${scope}": a digest needs a repository` : undefined;
  let repo = rest.slice(slash + 1);
  const colon = repo.lastIndexOf(':');
  if (colon >= 0) {
    if (at >= 0) return `"${scope}": give a tag or a digest, not both`;
    if (!TAG_RE.test(repo.slice(colon + 1))) return `"${scope}": "${repo.slice(colon + 1)}" is not a valid tag`;
    repo = repo.slice(0, colon);
  }
  if (!isValidRepository(repo)) return `"${scope}": "${repo}" is not a valid repository path (lower case letters, digits, separators)`;
  return undefined;
}

/**
 * The scopes that can apply to `ref`, in the order they are tried (containers-policy.json(5)):
 *   host/repo@digest, host/repo:tag      the exact reference (digest first when both are given)
 *   host/repo                            the repository
 *   host/a/b, host/a                     each parent namespace, longest first
 *   host[:port]                          the registry, port included: `example.com` does not cover
 *                                        `example.com:5000`, they are different registries
 *   *.sub.example.com, *.example.com     wildcards, most specific first; they match subdomains only
 *                                        (`*.example.com` does not cover `example.com`), and the port
 *                                        is not part of the match (`*.example.com` covers
 *                                        `r.example.com:5000`). IP literals get no wildcards.
 * `default` is not listed: the caller falls back to it.
 */
export function scopeCandidates(ref: ImageReference): string[] {
  const repo = repositoryName(ref);
  const out: string[] = [];
  if (ref.digest !== undefined) out.push(`${repo}@${ref.digest}`);
  if (ref.tag !== undefined) out.push(`${repo}:${ref.tag}`);
  out.push(repo);
  const parts = ref.repository.split('/');
  for (let i = parts.length - 1; i >= 1; i--) out.push(`${ref.registry}/${parts.slice(0, i).join('/')}`);
  out.push(ref.registry);
  const host = ref.registry.replace(/:\d+$/, '');
  if (host.startsWith('[') || /^\d+(\.\d+){3}$/.test(host)) return out;
  const labels = host.split('.');
  for (let i = 1; i < labels.length; i++) out.push(`*.${labels.slice(i).join('.')}`);
  return out;
}
