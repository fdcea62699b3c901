/**
 * Identity rules: does the identity a signer vouched for (cosign `docker-reference`) fit the image
 * being pulled? Names and semantics from containers-policy.json(5). Pure.
 */
import { formatReference, parseReference, repositoryName, type ImageReference } from '../registry/reference.js';
import type { IdentityRule } from './types.js';

export type IdentityResult = { ok: true } | { ok: false; reason: string };

function parseSigned(untrustedSignedReference: string): ImageReference | string {
  try {
    return parseReference(untrustedSignedReference);
  } catch (err) {
    return `signed identity "${untrustedSignedReference}" is not a valid image reference`;
  }
}

/** The signed reference without any tag/digest it may not have carried: `host/repo:tag` → tag kept. */
function withTagOnly(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}`;
}

function matchRepository(image: ImageReference, signed: ImageReference, raw: string): IdentityResult {
  return repositoryName(signed) === repositoryName(image) ? { ok: true } : { ok: false, reason: `signed identity "${raw}" does not match repository "${repositoryName(image)}"` };
}

function matchExact(image: ImageReference, signed: ImageReference, raw: string): IdentityResult {
  if (image.tag === undefined) return { ok: false, reason: `matchExact needs a tagged image reference; ${formatReference(image)} is pulled by digest` };
  if (signed.digest !== undefined && signed.tag === undefined) return { ok: false, reason: `signed identity "${raw}" is a digest reference; matchExact compares tags` };
  return withTagOnly(signed) === withTagOnly(image) ? { ok: true } : { ok: false, reason: `signed identity "${raw}" does not match "${withTagOnly(image)}" exactly` };
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
        : { ok: false, reason: `signed identity "${untrustedSignedReference}" is not the required "${rule.dockerReference}"` };
    }
    case 'exactRepository': {
      const want = repositoryName(parseReference(rule.dockerRepository));
      return repositoryName(signed) === want ? { ok: true } : { ok: false, reason: `signed identity "${untrustedSignedReference}" is not in the required repository "${want}"` };
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
