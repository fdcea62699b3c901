/**
 * Deciding the image records containerd holds. One image usually has several records in a
 * namespace: the name it was pulled as (`host/repo:tag`), its digest form (`host/repo@sha256:…`) and,
 * for CRI, its ID (`sha256:<config digest>`), all pointing at one target. Named records are decided by
 * the engine, each under its own name (two names may fall in different scopes). An ID is not a name a
 * policy can speak about: it follows its named siblings — accepted when one of them is, refused when
 * all are, and refused as unnamed when it has none (its names were removed, or it was imported
 * without a name). Pure: the decision and the listing come in as functions and data.
 */
import type { Decision, VerifyRequest } from '../engine/decision.js';
import { isDigest } from '../registry/reference.js';
import type { ContainerdImage } from './client.js';

export interface ImageVerdict {
  image: ContainerdImage;
  decision: Decision;
}

/** `sha256:<hex>` alone: an image ID (CRI names images by their config digest), not a reference. */
export function isImageId(name: string): boolean {
  return isDigest(name);
}

/** Records of one image in one namespace: same namespace, same target digest. */
export function groupByTarget(images: ContainerdImage[]): ContainerdImage[][] {
  const groups = new Map<string, ContainerdImage[]>();
  for (const image of images) {
    const key = `${image.namespace}\u0000${image.target.digest}`;
    const group = groups.get(key);
    if (group) group.push(image);
    else groups.set(key, [image]);
  }
  return [...groups.values()];
}

function derived(image: ContainerdImage, from: Decision, ok: boolean, reason: string, code?: Decision['code']): Decision {
  return {
    ...from,
    ok,
    decision: ok ? from.decision : 'reject',
    reason,
    ...(code !== undefined ? { code } : {}),
    name: image.name,
    image: image.name,
    digest: image.target.digest,
    mediaType: image.target.mediaType,
    signatures: [],
    durationMs: 0,
  };
}

function unnamed(image: ContainerdImage, policyGeneration: string): Decision {
  return {
    ok: false,
    decision: 'reject',
    code: 'IMAGE_UNNAMED',
    reason: `rejected ${image.name} (namespace ${image.namespace}): the image has no name the policy can check, only its ID ${image.name}`,
    name: image.name,
    image: image.name,
    digest: image.target.digest,
    mediaType: image.target.mediaType,
    scope: '',
    signatures: [],
    warnings: [],
    policyGeneration,
    durationMs: 0,
  };
}

/**
 * Decide every record of one image (one group from groupByTarget). `decide` is the engine;
 * `policyGeneration` is named on the refusal of an ID without names.
 */
export async function decideGroup(
  group: ContainerdImage[],
  decide: (request: VerifyRequest) => Promise<Decision>,
  policyGeneration: () => string,
): Promise<ImageVerdict[]> {
  const named = group.filter((i) => !isImageId(i.name));
  const ids = group.filter((i) => isImageId(i.name));
  const verdicts: ImageVerdict[] = [];
  for (const image of named) {
    verdicts.push({ image, decision: await decide({ name: image.name, descriptor: image.target }) });
  }
  for (const image of ids) {
    const accepted = verdicts.find((v) => v.decision.ok);
    if (accepted) {
      verdicts.push({
        image,
        decision: derived(
          image,
          accepted.decision,
          true,
          `${accepted.decision.decision === 'warn' ? 'allowed' : 'accepted'} ${image.name} (namespace ${image.namespace}): the ID of ${accepted.image.name}, which is ${accepted.decision.decision === 'warn' ? 'allowed in warn mode' : 'accepted'}`,
        ),
      });
    } else if (verdicts.length > 0) {
      const first = verdicts[0]!;
      verdicts.push({
        image,
        decision: derived(
          image,
          first.decision,
          false,
          `rejected ${image.name} (namespace ${image.namespace}): the ID of ${first.image.name}, which is refused: ${first.decision.reason}`,
          first.decision.code,
        ),
      });
    } else {
      verdicts.push({ image, decision: unnamed(image, policyGeneration()) });
    }
  }
  return verdicts;
}

/** Run `work` over `items` with at most `limit` at a time, keeping the order of results. */
export async function mapLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
