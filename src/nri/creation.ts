/**
 * The decision at container creation. NRI's CreateContainer carries no image digest (NRI 0.6 in
 * containerd 1.7, 0.8 in 2.1): CRI puts the image reference it resolved in the container's annotation
 * `io.kubernetes.cri.image-name`, and (2.x only) the pod sandbox's image in the pod's
 * `io.kubernetes.cri.podsandbox.image-name`. Each name is resolved to its digest with containerd's
 * images API in CRI's namespace (k8s.io) and decided by the daemon's engine, like a pull.
 *
 * Fail closed: a name that does not resolve, containerd unreachable, or no decision within the bound
 * (containerd stops waiting at its plugin_request_timeout and then creates the container unchecked)
 * is a refusal, with a reason that says which.
 *
 * signetd passes `cacheTtlMs: 0` and a `decide` backed by its shared verdict cache (src/cache/), which
 * also holds the image watcher's verdicts and says `cached` on what it answers from memory. Standalone,
 * a small verdict memory keeps the last decision per (name, digest) for `cacheTtlMs`, valid only under
 * the policy generation it was made with, and emptied on every policy or key change (clear()); the
 * image watcher's verdicts are remembered too, so an image decided when it arrived is decided again at
 * creation without a registry round trip. Only definitive verdicts are kept: "could not check" is
 * never remembered.
 *
 * Resolving a name costs a round trip to containerd (about half a millisecond), so name → digest is
 * remembered too, but only while containerd's image event stream for CRI's namespace is followed:
 * any create, update or delete of the name forgets it, a lookup during which any image event arrived
 * is not remembered, nothing is remembered until the stream has been up for a second (containerd
 * gives no sign of when its side of a subscription starts), and everything is forgotten when the
 * stream ends. CRI's own view of its images comes from the same events, so this is no staler than
 * the name CRI resolved; entries also expire after `resolveTtlMs`.
 */
import type { Logger } from '../daemon/logger.js';
import { describeError } from '../errors.js';
import type { Decision, VerifyRequest } from '../engine/decision.js';
import type { ContainerdImage, EventSubscription } from '../containerd/client.js';
import type { ContainerdEvent } from '../containerd/events.js';
import { decideGroup, isImageId } from '../containerd/image-verdicts.js';
import { isUndecided } from '../containerd/node-enforcer.js';
import { parseReference, repositoryName } from '../registry/reference.js';
import { IMAGE_NAME_ANNOTATION, SANDBOX_IMAGE_NAME_ANNOTATION, type CreateContainerRequest, type PodSandbox } from './messages.js';

/** The containerd namespace CRI keeps its images and containers in. */
export const CRI_NAMESPACE = 'k8s.io';

export type ImageRole = 'container' | 'sandbox';

/** What an audit line of a creation decision says beyond the decision itself. */
export interface CreateAuditContext {
  event: 'create';
  /** The pod's Kubernetes namespace. */
  namespace: string;
  pod: string;
  /** The container's name; empty for a pod sandbox decided at RunPodSandbox. */
  container: string;
  /** Which image of the creation this line decides: the container's or its pod sandbox's. */
  role: ImageRole;
  action: 'allowed' | 'refused';
  /** The verdict came from memory (same name, digest and policy generation). */
  cached: boolean;
  /** A code for refusals that are not an ErrorCode (IMAGE_NOT_FOUND, IMAGE_NAME_MISSING). */
  code?: string;
}

export interface CreationGateDeps {
  images: {
    getImage(namespace: string, name: string): Promise<ContainerdImage | undefined>;
    listImages(namespace: string, filters?: string[]): Promise<ContainerdImage[]>;
    /** The image a container record names (containerd 1.7's pod sandbox, which it does not name to NRI). */
    containerImage?(namespace: string, id: string): Promise<string | undefined>;
    /** containerd's event stream; without it, every name is looked up at every creation. */
    subscribe?(filters: string[], onEvent: (event: ContainerdEvent) => void, onEnd: (err?: Error) => void): EventSubscription;
  };
  decide: (request: VerifyRequest) => Promise<Decision>;
  policyGeneration: () => string;
  /** Write the audit line; false when it could not be written. */
  record: (decision: Decision, context: CreateAuditContext) => boolean | void;
  /** `reject`: an allowed creation whose audit line cannot be written is refused (as pulls are). */
  auditFailure?: () => 'reject' | 'allow';
  log: Logger;
}

export interface CreationGateOptions {
  namespace?: string;
  cacheTtlMs?: number;
  cacheSize?: number;
  /** How long a remembered name → digest lasts at most (default 10 s). */
  resolveTtlMs?: number;
  /** How long the event stream must have been up before names are remembered (default 1 s). */
  watchGraceMs?: number;
}

export interface CreationStatus {
  /** Images decided at creation (a container's image and its sandbox's each count). */
  decided: number;
  refused: number;
  /** Refused because no decision came within the bound. */
  timedOut: number;
  /** Decisions answered from the verdict memory. */
  cached: number;
  /** Names resolved from the name → digest memory (no round trip to containerd). */
  namesFromMemory: number;
  lastRefusal: string;
}

interface Remembered {
  decision: Decision;
  expires: number;
}

interface Outcome {
  decision: Decision;
  cached: boolean;
  code?: string;
}

/** What is known of one image while it is being decided (for the reason when time runs out). */
interface Progress {
  role: ImageRole;
  name: string;
  digest?: string;
}

const DEFAULT_TTL_MS = 60_000;
const DEFAULT_CACHE_SIZE = 1024;
const DEFAULT_RESOLVE_TTL_MS = 10_000;
const MAX_WATCH_BACKOFF_MS = 30_000;

/** Pods whose sandbox image is remembered (the oldest forgotten first). */
const MAX_SANDBOX_IMAGES = 4096;

export class CreationGate {
  /** Pod id → its sandbox container's image (containerd 1.7 names it to no plugin). */
  private readonly sandboxImages = new Map<string, string | undefined>();
  private readonly memory = new Map<string, Remembered>();
  /** name → image record, while the event stream is followed. */
  private readonly resolved = new Map<string, { image: ContainerdImage; expires: number }>();
  /** Image events seen in the namespace (a lookup that saw one change is not remembered). */
  private eventSeq = 0;
  private watch: { subscription: EventSubscription; since: number } | undefined;
  private watchRetry: NodeJS.Timeout | undefined;
  private watchBackoffMs = 1000;
  private stopped = false;
  private readonly counts: CreationStatus = { decided: 0, refused: 0, timedOut: 0, cached: 0, namesFromMemory: 0, lastRefusal: '' };
  private readonly namespace: string;

  constructor(
    private readonly deps: CreationGateDeps,
    private readonly options: CreationGateOptions = {},
  ) {
    this.namespace = options.namespace ?? CRI_NAMESPACE;
  }

  status(): CreationStatus {
    return { ...this.counts };
  }

  /** Follow containerd's image events for the name → digest memory (when the client can). */
  start(): void {
    this.stopped = false;
    this.follow();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.watchRetry);
    this.watch?.subscription.close();
    this.watch = undefined;
    this.resolved.clear();
  }

  private follow(): void {
    const subscribe = this.deps.images.subscribe;
    if (!subscribe || this.stopped) return;
    const subscription = subscribe.call(
      this.deps.images,
      [`namespace=="${this.namespace}",topic~="^/images/"`],
      (event) => this.onImageEvent(event),
      (err) => {
        if (this.watch?.subscription !== subscription) return;
        this.watch = undefined;
        this.resolved.clear();
        this.eventSeq++;
        if (this.stopped) return;
        this.deps.log.debug('NRI: containerd image events ended; names are looked up at every creation until they are back', {
          error: err ? describeError(err) : 'end of stream',
          retryInMs: this.watchBackoffMs,
        });
        this.watchRetry = setTimeout(() => this.follow(), this.watchBackoffMs);
        this.watchRetry.unref();
        this.watchBackoffMs = Math.min(this.watchBackoffMs * 2, MAX_WATCH_BACKOFF_MS);
      },
    );
    this.watch = { subscription, since: Date.now() };
  }

  private onImageEvent(event: ContainerdEvent): void {
    if (event.namespace !== this.namespace) return;
    this.watchBackoffMs = 1000;
    this.eventSeq++;
    if (event.imageName !== undefined) this.resolved.delete(event.imageName);
    else this.resolved.clear();
  }

  /** The record of `name`: remembered while the event stream vouches for it, else from containerd. */
  private async lookup(name: string): Promise<ContainerdImage | undefined> {
    const now = Date.now();
    const known = this.resolved.get(name);
    if (known && known.expires > now && this.watch) {
      this.counts.namesFromMemory++;
      return known.image;
    }
    const seq = this.eventSeq;
    const image = await this.deps.images.getImage(this.namespace, name);
    const watching = this.watch !== undefined && now - this.watch.since >= (this.options.watchGraceMs ?? 1000);
    if (image && watching && seq === this.eventSeq) {
      this.resolved.set(name, { image, expires: Date.now() + (this.options.resolveTtlMs ?? DEFAULT_RESOLVE_TTL_MS) });
      if (this.resolved.size > (this.options.cacheSize ?? DEFAULT_CACHE_SIZE)) this.resolved.delete(this.resolved.keys().next().value!);
    }
    return image;
  }

  /** Forget every verdict (policy or keys changed). */
  clear(): void {
    this.memory.clear();
  }

  /** A verdict the image watcher made for a record in CRI's namespace. */
  remember(decision: Decision, namespace: string): void {
    if (namespace !== this.namespace) return;
    this.store(decision.name, decision.digest, decision);
  }

  /**
   * CreateContainer: the container's image and its pod sandbox's — named by CRI (2.x), or read from
   * the sandbox container's record (1.7 names it to nobody).
   */
  async createContainer(req: CreateContainerRequest, deadlineMs: number): Promise<string | undefined> {
    const pod = req.pod;
    const container = req.container;
    const images: Array<{ role: ImageRole; name: string | undefined }> = [{ role: 'container', name: container?.annotations[IMAGE_NAME_ANNOTATION] }];
    let sandboxImage = pod?.annotations[SANDBOX_IMAGE_NAME_ANNOTATION] ?? container?.annotations[SANDBOX_IMAGE_NAME_ANNOTATION];
    if (sandboxImage === undefined && pod?.id && this.deps.images.containerImage) {
      try {
        // A pod's sandbox container and its image do not change: one lookup per pod.
        if (this.sandboxImages.has(pod.id)) sandboxImage = this.sandboxImages.get(pod.id);
        else {
          sandboxImage = await this.deps.images.containerImage(this.namespace, pod.id);
          this.sandboxImages.set(pod.id, sandboxImage);
          if (this.sandboxImages.size > MAX_SANDBOX_IMAGES) this.sandboxImages.delete(this.sandboxImages.keys().next().value!);
        }
      } catch (err) {
        // Fail closed: a sandbox whose image cannot be told is not let through unchecked.
        this.deps.log.warn('cannot read the pod sandbox container to learn its image', { pod: pod.name, sandbox: pod.id, error: describeError(err) });
        sandboxImage = '';
      }
    }
    if (sandboxImage !== undefined) images.push({ role: 'sandbox', name: sandboxImage });
    return this.decideAll(images, { namespace: pod?.namespace ?? '', pod: pod?.name ?? '', container: container?.name ?? '' }, deadlineMs);
  }

  /** RunPodSandbox: the sandbox image, when CRI names it (containerd 2.x; 1.7 does not). */
  runPodSandbox(pod: PodSandbox, deadlineMs: number): Promise<string | undefined> {
    const name = pod.annotations[SANDBOX_IMAGE_NAME_ANNOTATION];
    if (name === undefined) return Promise.resolve(undefined);
    return this.decideAll([{ role: 'sandbox', name }], { namespace: pod.namespace, pod: pod.name, container: '' }, deadlineMs);
  }

  private async decideAll(
    images: Array<{ role: ImageRole; name: string | undefined }>,
    where: { namespace: string; pod: string; container: string },
    deadlineMs: number,
  ): Promise<string | undefined> {
    const started = Date.now();
    const progress: Progress[] = images.map((i) => ({ role: i.role, name: i.name ?? '' }));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), deadlineMs)));
    const work = Promise.all(images.map((img, i) => this.decideOne(img.role, img.name, progress[i]!)));
    let outcomes: Outcome[] | 'timeout';
    try {
      outcomes = await Promise.race([work, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    const elapsed = Date.now() - started;
    if (outcomes === 'timeout') {
      // The decision goes on and, when definitive, is remembered: kubelet's retry gets it at once.
      work.catch(() => undefined);
      const slow = progress.map((p) => this.timeoutDecision(p, deadlineMs, elapsed));
      this.counts.timedOut++;
      return this.conclude(
        slow.map((decision) => ({ decision, cached: false })),
        progress,
        where,
        elapsed,
      );
    }
    return this.conclude(outcomes, progress, where, elapsed);
  }

  private conclude(
    outcomes: Outcome[],
    progress: Progress[],
    where: { namespace: string; pod: string; container: string },
    elapsedMs: number,
  ): string | undefined {
    let refusal: string | undefined;
    outcomes.forEach((o, i) => {
      const role = progress[i]!.role;
      this.counts.decided++;
      if (o.cached) this.counts.cached++;
      const action = o.decision.ok ? 'allowed' : 'refused';
      const written = this.deps.record(
        { ...o.decision, durationMs: o.cached ? elapsedMs : o.decision.durationMs },
        { event: 'create', ...where, role, action, cached: o.cached, ...(o.code ? { code: o.code } : {}) },
      );
      let decision = o.decision;
      if (written === false && decision.ok && this.deps.auditFailure?.() === 'reject') {
        // Like a pull: what cannot be recorded is not allowed.
        decision = {
          ...decision,
          ok: false,
          decision: 'reject',
          code: 'AUDIT_UNAVAILABLE',
          reason: `rejected ${subjectOf(decision.name, decision.digest)}: the decision cannot be recorded in the audit log; auditFailure: reject refuses what cannot be audited`,
        };
      }
      if (!decision.ok && refusal === undefined) refusal = refusalMessage(decision, role);
    });
    if (refusal !== undefined) {
      this.counts.refused++;
      this.counts.lastRefusal = refusal;
      this.deps.log.warn(where.container ? 'refused a container creation' : 'refused a pod sandbox', {
        namespace: where.namespace,
        pod: where.pod,
        container: where.container,
        reason: refusal,
      });
    }
    return refusal;
  }

  private async decideOne(role: ImageRole, name: string | undefined, progress: Progress): Promise<Outcome> {
    try {
      return await this.resolveAndDecide(role, name, progress);
    } catch (err) {
      const what = progress.digest ? subjectOf(progress.name, progress.digest) : progress.name;
      return {
        decision: {
          ...synthetic(progress.name, progress.digest ?? '', `rejected ${what}: ${describeError(err)}`, this.deps.policyGeneration()),
          code: 'INTERNAL',
        },
        cached: false,
      };
    }
  }

  private async resolveAndDecide(role: ImageRole, name: string | undefined, progress: Progress): Promise<Outcome> {
    const generation = this.deps.policyGeneration();
    if (name === undefined || name === '') {
      const annotation = role === 'container' ? IMAGE_NAME_ANNOTATION : SANDBOX_IMAGE_NAME_ANNOTATION;
      return {
        decision: synthetic('', '', `rejected: the runtime did not say which image the ${role} runs (no ${annotation} annotation)`, generation),
        cached: false,
        code: 'IMAGE_NAME_MISSING',
      };
    }
    let image: ContainerdImage | undefined;
    try {
      image = await this.lookup(name);
    } catch (err) {
      return {
        decision: {
          ...synthetic(name, '', `rejected ${name}: cannot resolve the image's digest with containerd: ${describeError(err)}`, generation),
          code: 'CONTAINERD_UNAVAILABLE',
        },
        cached: false,
      };
    }
    if (!image) {
      return {
        decision: synthetic(
          name,
          '',
          `rejected ${name}: containerd has no image of that name in namespace ${this.namespace}, so its digest is unknown`,
          generation,
        ),
        cached: false,
        code: 'IMAGE_NOT_FOUND',
      };
    }
    progress.digest = image.target.digest;
    const known = this.recall(name, image.target.digest);
    if (known) return { decision: known, cached: true };
    let decision: Decision;
    if (isImageId(name)) {
      // An image ID is not a name a policy speaks about: it follows its named records.
      const group = await this.deps.images.listImages(this.namespace, [`target.digest==${image.target.digest}`]);
      const verdicts = await decideGroup(group.some((i) => i.name === name) ? group : [...group, image], this.deps.decide, this.deps.policyGeneration);
      decision = verdicts.find((v) => v.image.name === name)!.decision;
    } else {
      decision = await this.deps.decide({ name, descriptor: image.target });
    }
    this.store(name, image.target.digest, decision);
    // A decide() backed by signetd's shared verdict cache says when it answered from memory.
    return { decision, cached: decision.cached === true };
  }

  private timeoutDecision(p: Progress, deadlineMs: number, elapsedMs: number): Decision {
    const what = p.digest ? subjectOf(p.name, p.digest) : p.name;
    return {
      ...synthetic(
        p.name,
        p.digest ?? '',
        `rejected ${what}: no decision within ${deadlineMs} ms (${elapsedMs} ms elapsed); containerd would create the container unchecked once its plugin_request_timeout passes, so signet refuses it (fail closed)`,
        this.deps.policyGeneration(),
      ),
      code: 'DECISION_TIMEOUT',
    };
  }

  private key(name: string, digest: string): string {
    return `${name}\u0000${digest}`;
  }

  private recall(name: string, digest: string): Decision | undefined {
    const k = this.key(name, digest);
    const m = this.memory.get(k);
    if (!m) return undefined;
    if (m.expires <= Date.now() || m.decision.policyGeneration !== this.deps.policyGeneration()) {
      this.memory.delete(k);
      return undefined;
    }
    return m.decision;
  }

  private store(name: string, digest: string, decision: Decision): void {
    if (isUndecided(decision) || decision.policyGeneration === '' || digest === '' || (this.options.cacheTtlMs ?? DEFAULT_TTL_MS) <= 0) return;
    const k = this.key(name, digest);
    this.memory.delete(k);
    this.memory.set(k, { decision, expires: Date.now() + (this.options.cacheTtlMs ?? DEFAULT_TTL_MS) });
    const max = this.options.cacheSize ?? DEFAULT_CACHE_SIZE;
    while (this.memory.size > max) this.memory.delete(this.memory.keys().next().value!);
  }
}

function synthetic(name: string, digest: string, reason: string, policyGeneration: string): Decision {
  return {
    ok: false,
    decision: 'reject',
    reason,
    name,
    image: name,
    digest,
    mediaType: '',
    scope: '',
    signatures: [],
    warnings: [],
    policyGeneration,
    durationMs: 0,
  };
}

/** `host/repo@sha256:…` for a name and the digest it resolved to (the name itself when it does not parse). */
export function subjectOf(name: string, digest: string): string {
  if (isImageId(name)) return name;
  try {
    return `${repositoryName(parseReference(name))}@${digest}`;
  } catch {
    return `${name}@${digest}`;
  }
}

/**
 * The error containerd hands back to the CRI caller: `signet: rejected <repository>@<digest>: <the
 * engine's reason>`, as at pull time, with the sandbox named when it is the pod's image that failed.
 */
export function refusalMessage(decision: Decision, role: ImageRole): string {
  let text = decision.reason;
  if (decision.digest && decision.name && !isImageId(decision.name)) {
    // The engine's reasons start `rejected <reference>: `; name the image by repository and digest.
    const rest = /^rejected(?: \S+)?: ([\s\S]*)$/.exec(text)?.[1];
    if (rest !== undefined) text = `rejected ${subjectOf(decision.name, decision.digest)}: ${rest}`;
  }
  return `signet: ${text}${role === 'sandbox' ? ' (the pod sandbox image)' : ''}`;
}
