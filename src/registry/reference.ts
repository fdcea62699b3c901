/**
 * Image references as Docker normalises them (distribution/reference):
 *   nginx                  -> docker.io/library/nginx:latest
 *   library/nginx:1.27     -> docker.io/library/nginx:1.27
 *   host:5000/a/b@sha256:… -> host:5000/a/b@sha256:…
 * The first path component is a registry host only if it contains '.' or ':' or is 'localhost'.
 */
import { SignetError } from '../errors.js';

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's API actually lives. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

export interface ImageReference {
  /** Registry host, possibly with port: `docker.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  /** Repository path inside the registry: `library/nginx`. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;
/** A tag as people write them (distribution/reference, the OCI rule): at most 128 characters. */
const TAG_RE = /^[\w][\w.-]{0,127}$/;
/**
 * A tag derived from a digest: cosign's `<alg>-<hex>.sig`, `.att`, `.sbom` (pkg/oci/remote `normalize`:
 * algorithm, `-`, hex, `.`, suffix, never shortened) and the OCI referrers tag schema's `<alg>-<hex>`.
 * For a sha512 digest these are 135 and 139 characters, beyond the 128 of the tag rule: that is how
 * cosign names them, so that is where signet looks for them and writes them.
 */
const DIGEST_TAG_RE = /^(?:sha256-[a-f0-9]{64}|sha512-[a-f0-9]{128})(?:\.(?:sig|att|sbom))?$/;

/** A tag a person may write in a reference: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** A tag signet reads or writes in a registry: a valid tag, or a tag derived from a digest (see DIGEST_TAG_RE). */
export function isRegistryTag(tag: string): boolean {
  return TAG_RE.test(tag) || DIGEST_TAG_RE.test(tag);
}

/** A tag cosign or the referrers tag schema derived from a digest (a signature, an attestation, an SBOM, a referrers index). */
export function isDigestTag(tag: string): boolean {
  return DIGEST_TAG_RE.test(tag);
}
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;

export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

export function isValidRepository(repository: string): boolean {
  return repository.length > 0 && repository.length <= 255 && repository.split('/').every((c) => PATH_COMPONENT_RE.test(c));
}

export function isValidHost(host: string): boolean {
  return HOST_RE.test(host);
}

/** Parse and normalise a reference; throws INVALID_REFERENCE with the reason. */
export function parseReference(input: string): ImageReference {
  const fail = (why: string): never => {
    throw new SignetError('INVALID_REFERENCE', `invalid image reference "${input}": ${why}`);
  };
  if (typeof input !== 'string' || input.length === 0) fail('empty');
  if (input.length > 4096) fail('too long');
  if (/\s/.test(input)) fail('contains whitespace');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) fail(`"${digest}" is not a sha256 or sha512 digest`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) fail(`"${tag}" is not a valid tag`);
  }
  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      registry = first;
      repository = rest.slice(slash + 1);
      if (!isValidHost(registry)) fail(`"${registry}" is not a valid registry host`);
    }
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (!isValidRepository(repository)) fail(`"${repository}" is not a valid repository name (lower case letters, digits and separators)`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** `host/repo`, the name cosign signs as docker-reference. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** Fully normalised string form: `host/repo:tag`, `host/repo@digest` or `host/repo:tag@digest`. */
export function formatReference(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}
