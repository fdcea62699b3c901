/**
 * Identity rules: does the identity a signer vouched for (cosign `docker-reference`) fit the image
 * being pulled? Names and semantics from containers-policy.json(5). Pure.
 */
import { formatReference, parseReference, repositoryName, type ImageReference } from '../registry/reference.js';
import type { IdentityRule } from './types.js';

export type IdentityResult = { ok: true } | { ok: false; reason: string };

/** An untrusted string, quoted and cut short enough for a log line. */
function quote(untrusted: string): string {
  return JSON.stringify(untrusted.length > 120 ? `${untrusted.slice(0, 120)}…` : untrusted);
}

function parseSigned(untrustedSignedReference: string): ImageReference | string {
  try {
    return parseReference(untrustedSignedReference);
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/^invalid image reference "[^]*?": /, '') : String(err);
    return `signed identity ${quote(untrustedSignedReference)} is not a valid image reference (${why.length > 120 ? `${why.slice(0, 120)}…` : why})`;
  }
}

/** Did the signer write a tag or digest, or did normalisation add `:latest`? */
function namesTagOrDigest(raw: string): boolean {
  return raw.includes('@') || raw.slice(raw.lastIndexOf('/') + 1).includes(':');
}

/** `host/repo:tag` without any digest. */
function withTagOnly(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}`;
}

/** The signed reference names the image's repository; its tag or digest does not matter (cosign signs `host/repo`). */
function matchRepository(image: ImageReference, signed: ImageReference, raw: string): IdentityResult {
  return repositoryName(signed) === repositoryName(image)
    ? { ok: true }
    : { ok: false, reason: `signed identity ${quote(raw)} does not match repository "${repositoryName(image)}"` };
}

/**
 * The signed reference is the image's `host/repo:tag`. As in containers-policy.json(5), nothing is
 * implied: a signed name without a tag does not stand for `:latest`, and an image pulled by digest
 * only has no tag to compare.
 */
function matchExact(image: ImageReference, signed: ImageReference, raw: string): IdentityResult {
  if (image.tag === undefined)
    return {
      ok: false,
      reason: `matchExact needs a tagged image reference; ${formatReference(image)} is pulled by digest only, so no signed identity can match it`,
    };
  if (signed.tag === undefined || !namesTagOrDigest(raw))
    return { ok: false, reason: `signed identity ${quote(raw)} has no tag; matchExact compares "${withTagOnly(image)}" including the tag` };
  return withTagOnly(signed) === withTagOnly(image)
    ? { ok: true }
    : { ok: false, reason: `signed identity ${quote(raw)} does not match "${withTagOnly(image)}" exactly` };
}

function matchRepoDigestOrExact(image: ImageReference, signed: ImageReference, raw: string): IdentityResult {
  return image.digest !== undefined ? matchRepository(image, signed, raw) : matchExact(image, signed, raw);
}

export function checkIdentity(rule: IdentityRule, image: ImageReference, untrustedSignedReference: string): IdentityResult {
  const signed = parseSigned(untrustedSignedReference);
  if (typeof signed === 'string') return { ok: false, reason: signed };
  switch (rule.type) {
    case 'matchRepository':
      return matchRepository(image, signed, untrustedSignedReference);
    case 'matchExact':
      return matchExact(image, signed, untrustedSignedReference);
    case 'matchRepoDigestOrExact':
      return matchRepoDigestOrExact(image, signed, untrustedSignedReference);
    case 'exactReference': {
      const want = parseReference(rule.dockerReference);
      return withTagOnly(signed) === withTagOnly(want) && signed.digest === want.digest
        ? { ok: true }
        : { ok: false, reason: `signed identity ${quote(untrustedSignedReference)} is not the required "${rule.dockerReference}"` };
    }
    case 'exactRepository': {
      const want = repositoryName(parseReference(rule.dockerRepository));
      return repositoryName(signed) === want
        ? { ok: true }
        : { ok: false, reason: `signed identity ${quote(untrustedSignedReference)} is not in the required repository "${want}"` };
    }
    case 'remapIdentity': {
      // Mirrors: an image pulled as <prefix>/x was signed as <signedPrefix>/x.
      const name = formatReference(image);
      const boundary = name.length === rule.prefix.length || ['/', ':', '@'].includes(name[rule.prefix.length] ?? '');
      const remapped = name.startsWith(rule.prefix) && boundary ? parseReference(`${rule.signedPrefix}${name.slice(rule.prefix.length)}`) : image;
      return matchRepoDigestOrExact(remapped, signed, untrustedSignedReference);
    }
  }
}
